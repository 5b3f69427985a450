"""Gemini streamGenerateContent ↔ canonical stream events.

Each SSE ``data:`` line is a whole GenerateContentResponse chunk; there are no event names and no
[DONE] marker: the chunk with ``finishReason`` is the end. Gemini CLI treats a stream without a
finishReason as failed and retries, so the encoder always ends with one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cliproxy.model import (
    BlockEnd,
    ErrorKind,
    FinishReason,
    MessageEnd,
    MessageStart,
    ProxyError,
    ReasoningDelta,
    ReasoningPart,
    ReasoningStart,
    Request,
    StreamError,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    ToolArgsDelta,
    ToolCallPart,
    ToolCallStart,
    Usage,
    UsageUpdate,
    loads_limited,
    loads_upstream,
)
from cliproxy.model.ids import random_hex
from cliproxy.protocols.base import StreamDecoder, StreamEncoder
from cliproxy.protocols.gemini_errors import error_from_object, render_error
from cliproxy.protocols.gemini_parts import (
    ISSUER,
    JSON,
    CallIds,
    get,
    parse_finish_reason,
    parse_parts,
    parse_usage,
    render_finish_reason,
    render_usage,
    wire_signature,
)
from cliproxy.protocols.signatures import foreign, wrap_part
from cliproxy.protocols.sse import SSEEvent, frame


def new_response_id() -> str:
    return random_hex(22)


class GeminiStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.finished = False
        self._ended = False  # MessageEnd or StreamError already emitted
        self._started = False
        self._next_index = 0
        self._open: tuple[int, str] | None = None  # (index, "text" | "reasoning")
        self._open_signed = False  # the open reasoning block already got a signature
        self._usage = Usage()
        self._tool_calls = False
        self._ids = CallIds(deterministic=False)

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        data = event.data.strip()
        if self._ended or not data:
            return []
        try:
            chunk = loads_upstream(data, "Gemini stream chunk")
        except orjson.JSONDecodeError:
            return self._fail(
                ProxyError(ErrorKind.UPSTREAM, f"malformed JSON in Gemini stream: {data[:200]}")
            )
        except ProxyError as error:
            return self._fail(error)
        chunks = chunk if isinstance(chunk, list) else [chunk]
        events: list[StreamEvent] = []
        for item in chunks:
            if not self._ended:
                events.extend(self._chunk(item))
        return events

    def close(self) -> list[StreamEvent]:
        if self._ended:
            return []
        return self._fail(
            ProxyError(ErrorKind.UPSTREAM, "upstream stream ended early: no finishReason was sent")
        )

    def _fail(self, error: ProxyError) -> list[StreamEvent]:
        events = self._close_open()
        self._ended = True
        events.append(StreamError(error))
        return events

    def _chunk(self, chunk: Any) -> list[StreamEvent]:
        if not isinstance(chunk, dict):
            return self._fail(
                ProxyError(ErrorKind.UPSTREAM, "Gemini stream chunk is not an object")
            )
        if "error" in chunk:
            return self._fail(error_from_object(chunk["error"], 200))
        events: list[StreamEvent] = []
        usage = parse_usage(get(chunk, "usageMetadata"))
        self._usage = self._usage.merge(usage)
        if not self._started:
            self._started = True
            response_id = get(chunk, "responseId")
            start_usage = Usage(input_tokens=usage.input_tokens, cached_tokens=usage.cached_tokens)
            events.append(
                MessageStart(
                    id=response_id
                    if isinstance(response_id, str) and response_id
                    else new_response_id(),
                    model=str(get(chunk, "modelVersion") or ""),
                    usage=start_usage,
                )
            )
        candidates = chunk.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(candidate, dict):
            feedback = get(chunk, "promptFeedback")
            if isinstance(feedback, dict) and get(feedback, "blockReason"):
                return events + self._end(FinishReason.CONTENT_FILTER)
            return events
        content = candidate.get("content")
        if isinstance(content, dict):
            try:
                parts = parse_parts(
                    content.get("parts"), "candidates[0].content.parts", self._ids, strict=False
                )
            except ProxyError as error:
                return events + self._fail(
                    ProxyError(ErrorKind.UPSTREAM, f"unusable Gemini chunk: {error.message}")
                )
            for part in parts:
                events.extend(self._part(part))
        finish = get(candidate, "finishReason")
        if finish:
            events.extend(self._end(parse_finish_reason(finish, self._tool_calls)))
        return events

    def _part(self, part: Any) -> list[StreamEvent]:
        if isinstance(part, TextPart):
            if self._open is not None and self._open[1] == "text":
                return [TextDelta(self._open[0], part.text)]
            index, events = self._start("text")
            return [*events, TextStart(index), TextDelta(index, part.text)]
        if isinstance(part, ReasoningPart) and part.text:
            signature = part.signature
            open_reasoning = self._open is not None and self._open[1] == "reasoning"
            if open_reasoning and not (signature and self._open_signed):
                assert self._open is not None
                index, events = self._open[0], []
            else:
                index, events = self._start("reasoning")
                events.append(ReasoningStart(index, issuer=ISSUER))
            events.append(ReasoningDelta(index, text=part.text, signature=signature))
            self._open_signed = self._open_signed or bool(signature)
            return events
        if isinstance(part, ReasoningPart) and part.signature:
            # A signature on a plain text part: its own signature-only reasoning block.
            index, events = self._start("reasoning")
            events += [
                ReasoningStart(index, issuer=ISSUER),
                ReasoningDelta(index, signature=part.signature),
            ]
            return [*events, *self._close_open()]
        if isinstance(part, ToolCallPart):
            self._tool_calls = True
            index, events = self._start("tool")
            self._open = None
            return [
                *events,
                ToolCallStart(index, part.id, part.name, signature=part.signature),
                ToolArgsDelta(index, part.arguments),
                BlockEnd(index),
            ]
        return []  # inline images and other media have no stream event

    def _start(self, kind: str) -> tuple[int, list[StreamEvent]]:
        events = self._close_open()
        index = self._next_index
        self._next_index += 1
        self._open = (index, kind)
        self._open_signed = False
        return index, events

    def _close_open(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        index = self._open[0]
        self._open = None
        return [BlockEnd(index)]

    def _end(self, reason: FinishReason) -> list[StreamEvent]:
        events = self._close_open()
        events.append(MessageEnd(reason, self._usage))
        self.finished = True
        self._ended = True
        return events


@dataclass(slots=True)
class _Block:
    kind: str  # "text" | "reasoning" | "tool"
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    signature: str = ""
    # Another vendor's reasoning (text, signature/blob): sent wrapped as a thoughtSignature
    # (signatures.py) on the next part, like Gemini's own reasoning signature.
    carry: ReasoningPart | None = None


def _call_args(block: _Block) -> JSON | ProxyError:
    """A finished tool call's arguments as Gemini's ``args`` object, or why they cannot be
    one (the arguments came from an upstream: its error, a 502)."""
    where = f"tool call {block.name!r} arguments"
    if not block.arguments.strip():
        return {}
    try:
        args = loads_limited(block.arguments, where, ErrorKind.UPSTREAM)
    except orjson.JSONDecodeError:
        args = None
    except ProxyError as error:
        return error
    if not isinstance(args, dict):
        return ProxyError(ErrorKind.UPSTREAM, f"{where} are not a JSON object")
    return args


class GeminiStreamEncoder(StreamEncoder):
    """Canonical events → streamGenerateContent output: SSE frames, or (``sse=False``) the JSON
    array the endpoint returns without ``alt=sse``."""

    def __init__(self, request: Request, sse: bool = True) -> None:
        self._model = request.model
        self._sse = sse
        self._id = ""
        self._usage = Usage()
        self._blocks: dict[int, _Block] = {}
        # A reasoning signature is sent on the next non-thought part: clients such as Gemini CLI
        # drop thought parts from their history, so a signature there would never come back.
        self._pending_signature: str | None = None
        self._sent = 0
        self._done = False

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        match event:
            case MessageStart(id=id_, usage=usage):
                self._id = id_
                self._usage = self._usage.merge(usage)
            case TextStart(index=index):
                self._blocks[index] = _Block("text")
            case TextDelta(text=text):
                if text:
                    return self._parts([self._signed({"text": text})])
            case ReasoningStart(
                index=index, id=id_, redacted=redacted, encrypted=encrypted, issuer=issuer
            ):
                self._blocks[index] = _Block("reasoning")
                if foreign(issuer, ISSUER):
                    self._blocks[index].carry = ReasoningPart(
                        id=id_, redacted=redacted, encrypted=encrypted, issuer=issuer
                    )
            case ReasoningDelta(index=index, text=text, signature=signature, encrypted=encrypted):
                block = self._blocks.setdefault(index, _Block("reasoning"))
                if block.carry is not None:
                    block.carry.text += text
                    if signature:
                        block.carry.signature = (block.carry.signature or "") + signature
                    if encrypted:
                        block.carry.encrypted = encrypted
                elif signature:
                    block.signature += signature
                if text:
                    return self._parts([{"text": text, "thought": True}])
            case ToolCallStart(index=index, id=id_, name=name, signature=signature):
                self._blocks[index] = _Block("tool", id_, name, "", signature or "")
            case ToolArgsDelta(index=index, delta=delta):
                self._blocks.setdefault(index, _Block("tool")).arguments += delta
            case BlockEnd(index=index):
                return self._end_block(index)
            case UsageUpdate(usage=usage):
                self._usage = self._usage.merge(usage)
            case MessageEnd(finish_reason=reason, usage=usage):
                out = b""
                for index in sorted(self._blocks):
                    out += self._end_block(index)
                    if self._done:  # a tool call could not be rendered: already ended
                        return out
                self._usage = self._usage.merge(usage)
                final = self._chunk([self._signed({"text": ""})])
                final["candidates"][0]["finishReason"] = render_finish_reason(reason)
                final["usageMetadata"] = render_usage(self._usage)
                self._done = True
                return out + self._emit(final) + self._close_array()
            case StreamError(error=error):
                self._done = True
                return self._emit(render_error(error)) + self._close_array()
        return b""

    def _end_block(self, index: int) -> bytes:
        block = self._blocks.pop(index, None)
        if block is None:
            return b""
        if block.kind == "reasoning":
            return self._hold_signature(block)
        if block.kind != "tool":
            return b""
        args = _call_args(block)
        if isinstance(args, ProxyError):
            self._done = True
            return self._emit(render_error(args)) + self._close_array()
        call: JSON = {"name": block.name, "args": args}
        if block.call_id:
            call["id"] = block.call_id
        part: JSON = {"functionCall": call}
        if wire_signature(block.signature):
            part["thoughtSignature"] = block.signature
        return self._parts([self._signed(part)])

    def _hold_signature(self, block: _Block) -> bytes:
        """Keep an ended reasoning block's signature for the next part (one already waiting
        goes out first on an empty part of its own, so none is lost)."""
        if block.carry is not None:
            signature = wrap_part(block.carry, with_text=True)
        else:
            signature = wire_signature(block.signature)
        if not signature:
            return b""
        out = b""
        if self._pending_signature:
            out = self._parts([{"text": "", "thoughtSignature": self._pending_signature}])
        self._pending_signature = signature
        return out

    def _signed(self, part: JSON) -> JSON:
        if self._pending_signature and "thoughtSignature" not in part:
            part["thoughtSignature"] = self._pending_signature
            self._pending_signature = None
        return part

    def _chunk(self, parts: list[JSON]) -> JSON:
        if not self._id:
            self._id = new_response_id()
        return {
            "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
            "modelVersion": self._model,
            "responseId": self._id,
        }

    def _parts(self, parts: list[JSON]) -> bytes:
        return self._emit(self._chunk(parts))

    def _emit(self, chunk: JSON) -> bytes:
        data = orjson.dumps(chunk)
        self._sent += 1
        if self._sse:
            return frame(data)
        return (b"[" if self._sent == 1 else b",\r\n") + data

    def _close_array(self) -> bytes:
        if self._sse:
            return b""
        return b"]" if self._sent else b"[]"
