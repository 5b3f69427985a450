"""Anthropic Messages streams: SSE events ⇄ canonical stream events.

Wire order: message_start → for each block content_block_start, content_block_delta...,
content_block_stop → message_delta (stop_reason, cumulative usage) → message_stop. ``ping`` may
appear anywhere; an ``error`` event ends the stream. Block indexes on the wire are 0, 1, 2... in
the order blocks start, and the SDK looks blocks up by that index, so both directions renumber.
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
    StreamError,
    StreamEvent,
    TextDelta,
    TextStart,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
    loads_upstream,
)
from cliproxy.protocols.anthropic_wire import (
    ERROR_KINDS,
    JSON,
    NAME,
    error_body,
    finish_reason,
    message_id,
    parse_usage,
    render_usage,
    stop_reason,
    tool_use_id,
)
from cliproxy.protocols.base import StreamDecoder, StreamEncoder
from cliproxy.protocols.signatures import foreign, wrap_part
from cliproxy.protocols.sse import SSEEvent, frame

# ---------------------------------------------------------------------------------------------
# Encoder: canonical events → Anthropic SSE bytes


@dataclass(slots=True)
class _WireBlock:
    index: int  # the wire index (order of content_block_start)
    kind: str  # text | thinking | redacted_thinking | tool_use
    # Another vendor's reasoning: its signature/blob is collected here and sent wrapped in one
    # signature_delta when the block stops (the SDK keeps only the last signature_delta).
    carry: ReasoningPart | None = None


def _event(kind: str, payload: JSON) -> bytes:
    return frame(orjson.dumps({"type": kind, **payload}), kind)


class AnthropicStreamEncoder(StreamEncoder):
    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: dict[int, _WireBlock] = {}  # canonical index → open wire block
        self._usage = Usage()
        self._saw_tool_call = False

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, StreamError):
            # The error event is the last thing the client sees; the SDK raises on it.
            self._done = True
            return _event(
                "error", {"error": error_body(event.error.kind, event.error.message)["error"]}
            )
        out: list[bytes] = []
        if isinstance(event, MessageStart):
            self._usage = self._usage.merge(event.usage)
            if not self._started:
                out.append(self._message_start(event.id))
            return b"".join(out)
        if not self._started:
            out.append(self._message_start(""))
        match event:
            case TextStart(index=index):
                self._start(index, "text", {"type": "text", "text": ""}, out)
            case TextDelta(index=index, text=text):
                block = self._ensure(index, "text", out)
                if text:
                    out.append(self._delta(block, {"type": "text_delta", "text": text}))
            case ReasoningStart(index=index, redacted=True, encrypted=encrypted, issuer=issuer) if (
                not foreign(issuer, NAME)
            ):
                payload = {"type": "redacted_thinking", "data": encrypted or ""}
                self._start(index, "redacted_thinking", payload, out)
            case ReasoningStart(
                index=index, id=id_, redacted=redacted, encrypted=encrypted, issuer=issuer
            ):
                started = self._start(
                    index, "thinking", {"type": "thinking", "thinking": "", "signature": ""}, out
                )
                if foreign(issuer, NAME):
                    started.carry = ReasoningPart(
                        id=id_, redacted=redacted, encrypted=encrypted, issuer=issuer
                    )
            case ReasoningDelta(index=index, text=text, signature=signature, encrypted=encrypted):
                self._reasoning_delta(index, text, signature, encrypted, out)
            case ToolCallStart(index=index, id=call_id, name=name):
                self._saw_tool_call = True
                tool_block: JSON = {
                    "type": "tool_use",
                    "id": tool_use_id(call_id),
                    "name": name,
                    "input": {},
                }
                self._start(index, "tool_use", tool_block, out)
            case ToolArgsDelta(index=index, delta=delta):
                block = self._ensure(index, "tool_use", out)
                if delta:
                    out.append(
                        self._delta(block, {"type": "input_json_delta", "partial_json": delta})
                    )
            case BlockEnd(index=index):
                self._stop(index, out)
            case UsageUpdate(usage=usage):
                self._usage = self._usage.merge(usage)
            case MessageEnd():
                self._finish(event, out)
        return b"".join(out)

    def _message_start(self, raw_id: str) -> bytes:
        self._started = True
        usage = render_usage(
            Usage(
                input_tokens=self._usage.input_tokens,
                cached_tokens=self._usage.cached_tokens,
                cache_creation_tokens=self._usage.cache_creation_tokens,
            )
        )
        message: JSON = {
            "id": message_id(raw_id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return _event("message_start", {"message": message})

    def _start(self, index: int, kind: str, block: JSON, out: list[bytes]) -> _WireBlock:
        if index in self._open:
            self._stop(index, out)  # a restarted index is a new block
        wire = _WireBlock(self._next_index, kind)
        self._next_index += 1
        self._open[index] = wire
        out.append(_event("content_block_start", {"index": wire.index, "content_block": block}))
        return wire

    def _ensure(self, index: int, kind: str, out: list[bytes]) -> _WireBlock:
        """The open block for ``index``, opened implicitly when its start was never seen."""
        block = self._open.get(index)
        if block is not None and block.kind == kind:
            return block
        if kind == "text":
            return self._start(index, kind, {"type": "text", "text": ""}, out)
        if kind == "thinking":
            return self._start(
                index, kind, {"type": "thinking", "thinking": "", "signature": ""}, out
            )
        self._saw_tool_call = True
        payload = {"type": "tool_use", "id": tool_use_id(None), "name": "", "input": {}}
        return self._start(index, kind, payload, out)

    def _reasoning_delta(
        self,
        index: int,
        text: str,
        signature: str | None,
        encrypted: str | None,
        out: list[bytes],
    ) -> None:
        current = self._open.get(index)
        if current is not None and current.kind == "redacted_thinking":
            return  # a redacted block carries its data in the start event only
        block = self._ensure(index, "thinking", out)
        if text:
            out.append(self._delta(block, {"type": "thinking_delta", "thinking": text}))
        if block.carry is not None:
            if signature:
                block.carry.signature = (block.carry.signature or "") + signature
            if encrypted:
                block.carry.encrypted = encrypted
        elif signature:
            out.append(self._delta(block, {"type": "signature_delta", "signature": signature}))

    def _delta(self, block: _WireBlock, delta: JSON) -> bytes:
        return _event("content_block_delta", {"index": block.index, "delta": delta})

    def _stop(self, index: int, out: list[bytes]) -> None:
        block = self._open.pop(index, None)
        if block is None:
            return
        wrapped = wrap_part(block.carry) if block.carry is not None else None
        if wrapped:
            out.append(self._delta(block, {"type": "signature_delta", "signature": wrapped}))
        out.append(_event("content_block_stop", {"index": block.index}))

    def _finish(self, end: MessageEnd, out: list[bytes]) -> None:
        for index in sorted(self._open, key=lambda i: self._open[i].index):
            self._stop(index, out)
        self._usage = self._usage.merge(end.usage)
        reason = stop_reason(end.finish_reason, self._saw_tool_call)
        sequence = end.stop_sequence if reason == "stop_sequence" else None
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        out.append(_event("message_delta", {"delta": delta, "usage": render_usage(self._usage)}))
        out.append(_event("message_stop", {}))
        self._done = True


# ---------------------------------------------------------------------------------------------
# Decoder: Anthropic SSE events → canonical events


@dataclass(slots=True)
class _OpenBlock:
    index: int | None  # canonical index; None for blocks with no canonical form (server tools)


class AnthropicStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.finished = False
        self._failed = False
        self._started = False
        self._next_index = 0
        self._open: dict[int, _OpenBlock] = {}  # wire index → block
        self._usage: JSON = {}  # raw wire usage, later reports overwrite earlier ones
        self._stop_reason: Any = None
        self._stop_sequence: Any = None

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self.finished or self._failed or event.event == "ping" or not event.data.strip():
            return []
        try:
            data = loads_upstream(event.data, "upstream stream event")
        except orjson.JSONDecodeError:
            return self._fail(
                ProxyError(ErrorKind.UPSTREAM, "upstream sent malformed JSON in its stream")
            )
        except ProxyError as error:
            return self._fail(error)
        if not isinstance(data, dict):
            return self._fail(
                ProxyError(ErrorKind.UPSTREAM, "upstream stream event is not an object")
            )
        kind = event.event or data.get("type")
        if kind == "error":
            return self._fail(_stream_error(data))
        out: list[StreamEvent] = []
        if kind == "message_start":
            self._message_start(data, out)
        elif kind == "content_block_start":
            self._block_start(data, out)
        elif kind == "content_block_delta":
            self._block_delta(data, out)
        elif kind == "content_block_stop":
            self._block_stop(data, out)
        elif kind == "message_delta":
            self._message_delta(data)
        elif kind == "message_stop":
            self._message_stop(out)
        return out

    def close(self) -> list[StreamEvent]:
        if self.finished or self._failed:
            return []
        out: list[StreamEvent] = self._close_blocks()
        out.append(
            StreamError(
                ProxyError(ErrorKind.UPSTREAM, "upstream stream ended early (no message_stop)")
            )
        )
        self._failed = True
        return out

    def _fail(self, error: ProxyError) -> list[StreamEvent]:
        self._failed = True
        return [StreamError(error)]

    def _ensure_started(self, out: list[StreamEvent]) -> None:
        if not self._started:
            self._started = True
            out.append(MessageStart(id=message_id(None), model=""))

    def _message_start(self, data: JSON, out: list[StreamEvent]) -> None:
        if self._started:
            return
        message = data.get("message")
        message = message if isinstance(message, dict) else {}
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        self._started = True
        out.append(
            MessageStart(
                id=str(message.get("id") or message_id(None)),
                model=str(message.get("model") or ""),
                usage=parse_usage(self._usage),
            )
        )

    def _open_block(self, wire_index: Any, canonical: bool) -> int | None:
        index = self._next_index if canonical else None
        if canonical:
            self._next_index += 1
        if isinstance(wire_index, int):
            self._open[wire_index] = _OpenBlock(index)
        return index

    def _block_start(self, data: JSON, out: list[StreamEvent]) -> None:
        self._ensure_started(out)
        block = data.get("content_block")
        block = block if isinstance(block, dict) else {}
        wire_index = data.get("index")
        if wire_index in self._open:
            self._block_stop(data, out)
        kind = block.get("type")
        if kind not in ("text", "thinking", "redacted_thinking", "tool_use"):
            self._open_block(wire_index, canonical=False)
            return
        index = self._open_block(wire_index, canonical=True)
        assert index is not None
        if kind == "text":
            out.append(TextStart(index))
            if block.get("text"):
                out.append(TextDelta(index, str(block["text"])))
        elif kind == "thinking":
            out.append(ReasoningStart(index, issuer=NAME))
            if block.get("thinking") or block.get("signature"):
                out.append(
                    ReasoningDelta(
                        index,
                        text=str(block.get("thinking") or ""),
                        signature=block.get("signature") or None,
                    )
                )
        elif kind == "redacted_thinking":
            blob = str(block.get("data") or "")
            out.append(ReasoningStart(index, redacted=True, encrypted=blob, issuer=NAME))
        else:
            call_id = str(block.get("id") or tool_use_id(None))
            out.append(ToolCallStart(index, id=call_id, name=str(block.get("name") or "")))
            if isinstance(block.get("input"), dict) and block["input"]:
                out.append(ToolArgsDelta(index, orjson.dumps(block["input"]).decode()))

    def _block_delta(self, data: JSON, out: list[StreamEvent]) -> None:
        delta = data.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        kind = delta.get("type")
        wire_index = data.get("index")
        block = self._open.get(wire_index) if isinstance(wire_index, int) else None
        if block is None:
            block = self._implicit_block(wire_index, kind, out)
            if block is None:
                return
        index = block.index
        if index is None:
            return
        if kind == "text_delta":
            out.append(TextDelta(index, str(delta.get("text") or "")))
        elif kind == "input_json_delta" and delta.get("partial_json"):
            out.append(ToolArgsDelta(index, str(delta["partial_json"])))
        elif kind == "thinking_delta":
            out.append(ReasoningDelta(index, text=str(delta.get("thinking") or "")))
        elif kind == "signature_delta" and delta.get("signature"):
            out.append(ReasoningDelta(index, signature=str(delta["signature"])))

    def _implicit_block(
        self, wire_index: Any, kind: Any, out: list[StreamEvent]
    ) -> _OpenBlock | None:
        """A delta for a block whose start never came: open one of the delta's kind."""
        self._ensure_started(out)
        starts = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "thinking"}
        if kind not in starts and kind != "input_json_delta":
            return None
        index = self._open_block(wire_index, canonical=True)
        assert index is not None
        if kind == "text_delta":
            out.append(TextStart(index))
        elif kind == "input_json_delta":
            out.append(ToolCallStart(index, id=tool_use_id(None), name=""))
        else:
            out.append(ReasoningStart(index, issuer=NAME))
        return _OpenBlock(index) if not isinstance(wire_index, int) else self._open[wire_index]

    def _block_stop(self, data: JSON, out: list[StreamEvent]) -> None:
        wire_index = data.get("index")
        block = self._open.pop(wire_index, None) if isinstance(wire_index, int) else None
        if block is not None and block.index is not None:
            out.append(BlockEnd(block.index))

    def _message_delta(self, data: JSON) -> None:
        delta = data.get("delta")
        if isinstance(delta, dict):
            self._stop_reason = delta.get("stop_reason") or self._stop_reason
            self._stop_sequence = delta.get("stop_sequence") or self._stop_sequence
        usage = data.get("usage")
        if isinstance(usage, dict):
            # Cumulative totals: present values replace earlier ones, absent ones are kept.
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _close_blocks(self) -> list[StreamEvent]:
        ends: list[StreamEvent] = [
            BlockEnd(block.index)
            for block in sorted(self._open.values(), key=lambda b: b.index or 0)
            if block.index is not None
        ]
        self._open.clear()
        return ends

    def _message_stop(self, out: list[StreamEvent]) -> None:
        self._ensure_started(out)
        out.extend(self._close_blocks())
        reason = finish_reason(self._stop_reason)
        sequence = self._stop_sequence if reason is FinishReason.STOP_SEQUENCE else None
        out.append(MessageEnd(reason, parse_usage(self._usage), sequence))
        self.finished = True


def _stream_error(data: JSON) -> ProxyError:
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    kind = ERROR_KINDS.get(str(error.get("type")), ErrorKind.UPSTREAM)
    message = error.get("message")
    return ProxyError(kind, str(message) if message else "upstream reported a stream error")
