"""OpenAI Responses streams: SSE events ↔ canonical stream events.

Each canonical content block is one output item (message / function_call / reasoning). Codex CLI
only reads response.output_item.done and response.completed, while the openai SDK's stream helper
checks that every output_item.added is matched by a done item with the same identity, so the
encoder always sends the full added → deltas → done sequence with stable ids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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
    TextStart,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
    loads_upstream,
)
from cliproxy.protocols.base import StreamDecoder, StreamEncoder
from cliproxy.protocols.openai_responses_request import NAME
from cliproxy.protocols.openai_responses_wire import (
    error_from_wire,
    failed_error,
    finish_reason_of,
    function_call_item,
    message_item,
    new_id,
    output_text_part,
    parse_reasoning_item,
    parse_usage,
    reasoning_item,
    reasoning_item_id,
    response_id,
    response_object,
    terminal_state,
)
from cliproxy.protocols.signatures import foreign, wrap_part
from cliproxy.protocols.sse import SSEEvent, frame

JSON = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# encoder: canonical → Responses SSE


@dataclass(slots=True)
class _OutputItem:
    kind: str  # "message" | "function_call" | "reasoning"
    output_index: int
    item_id: str
    text: str = ""  # message text, reasoning summary or function arguments
    call_id: str = ""
    name: str = ""
    encrypted: str | None = None
    summary_open: bool = False  # a reasoning summary part was announced
    done: bool = False
    # Another vendor's reasoning: its signature/blob, sent wrapped in encrypted_content when
    # the item is done (signatures.py).
    carry: ReasoningPart | None = None


class ResponsesStreamEncoder(StreamEncoder):
    def __init__(self, request: Request) -> None:
        self._model = request.model
        self._id = new_id("resp")
        self._created_at = int(time.time())
        self._sequence = 0
        self._started = False
        self._ended = False
        self._usage = Usage()
        self._items: dict[int, _OutputItem] = {}  # the latest item of each canonical block index
        self._opened: list[_OutputItem] = []  # every item opened, in output_index order
        self._done_items: list[tuple[int, JSON]] = []  # (output_index, full item)

    def feed(self, event: StreamEvent) -> bytes:
        if self._ended:
            return b""
        out: list[bytes] = []
        if isinstance(event, MessageStart):
            if not self._started:  # the id must not change once response.created went out
                self._id = response_id(event.id)
            self._usage = self._usage.merge(event.usage)
            self._start(out)
            return b"".join(out)
        self._start(out)
        match event:
            case TextStart(index=index):
                self._open(out, index, "message")
            case TextDelta(index=index, text=text):
                item = self._item(out, index, "message")
                item.text += text
                self._emit(
                    out,
                    "response.output_text.delta",
                    item_id=item.item_id,
                    output_index=item.output_index,
                    content_index=0,
                    delta=text,
                    logprobs=[],
                )
            case ReasoningStart(
                index=index, id=id_, redacted=redacted, encrypted=encrypted, issuer=issuer
            ):
                if foreign(issuer, NAME):
                    carry = ReasoningPart(
                        id=id_, redacted=redacted, encrypted=encrypted, issuer=issuer
                    )
                    self._open(out, index, "reasoning").carry = carry
                else:
                    self._open(out, index, "reasoning", reasoning_id=id_, encrypted=encrypted)
            case ReasoningDelta(index=index, text=text, signature=signature, encrypted=encrypted):
                item = self._item(out, index, "reasoning")
                if item.carry is not None:
                    if signature:
                        item.carry.signature = (item.carry.signature or "") + signature
                    if encrypted:
                        item.carry.encrypted = encrypted
                elif encrypted:
                    item.encrypted = encrypted
                if text:
                    self._reasoning_text(out, item, text)
            case ToolCallStart(index=index, id=id_, name=name):
                self._open(out, index, "function_call", call_id=id_, name=name)
            case ToolArgsDelta(index=index, delta=delta):
                item = self._item(out, index, "function_call")
                item.text += delta
                self._emit(
                    out,
                    "response.function_call_arguments.delta",
                    item_id=item.item_id,
                    output_index=item.output_index,
                    delta=delta,
                )
            case BlockEnd(index=index):
                if index in self._items:
                    self._close(out, self._items[index])
            case UsageUpdate(usage=usage):
                self._usage = self._usage.merge(usage)
            case MessageEnd(finish_reason=reason, usage=usage):
                self._usage = self._usage.merge(usage)
                self._finish(out, reason)
            case StreamError(error=error):
                self._fail(out, error)
        return b"".join(out)

    def _emit(self, out: list[bytes], kind: str, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        out.append(frame(orjson.dumps(payload), kind))

    def _response(self, status: str, output: list[JSON], **extra: Any) -> JSON:
        usage = self._usage if status != "in_progress" else None
        return response_object(
            self._id, self._model, self._created_at, status, output, usage, **extra
        )

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        self._emit(out, "response.created", response=self._response("in_progress", []))
        self._emit(out, "response.in_progress", response=self._response("in_progress", []))

    def _item(self, out: list[bytes], index: int, kind: str) -> _OutputItem:
        """The open item for a block, opened implicitly if its start event never came."""
        item = self._items.get(index)
        if item is None or item.done:
            item = self._open(out, index, kind)
        return item

    def _open(
        self,
        out: list[bytes],
        index: int,
        kind: str,
        *,
        reasoning_id: str | None = None,
        encrypted: str | None = None,
        call_id: str = "",
        name: str = "",
    ) -> _OutputItem:
        previous = self._items.get(index)
        if previous is not None and not previous.done:
            self._close(out, previous)
        output_index = len(self._opened)
        if kind == "message":
            item = _OutputItem(kind, output_index, new_id("msg"))
            added = message_item(item.item_id, "", status="in_progress")
            added["content"] = []
        elif kind == "reasoning":
            item = _OutputItem(kind, output_index, reasoning_item_id(reasoning_id))
            item.encrypted = encrypted
            added = reasoning_item(item.item_id, "", encrypted)
        else:
            item = _OutputItem(
                kind, output_index, new_id("fc"), call_id=call_id or new_id("call"), name=name
            )
            added = function_call_item(item.item_id, item.call_id, name, "", "in_progress")
        self._items[index] = item
        self._opened.append(item)
        self._emit(out, "response.output_item.added", output_index=output_index, item=added)
        if kind == "message":
            self._emit(
                out,
                "response.content_part.added",
                item_id=item.item_id,
                output_index=output_index,
                content_index=0,
                part=output_text_part(""),
            )
        return item

    def _reasoning_text(self, out: list[bytes], item: _OutputItem, text: str) -> None:
        ids = {"item_id": item.item_id, "output_index": item.output_index, "summary_index": 0}
        if not item.summary_open:
            item.summary_open = True
            part = {"type": "summary_text", "text": ""}
            self._emit(out, "response.reasoning_summary_part.added", **ids, part=part)
        item.text += text
        self._emit(out, "response.reasoning_summary_text.delta", **ids, delta=text)

    def _close(self, out: list[bytes], item: _OutputItem) -> None:
        if item.done:
            return
        item.done = True
        ids = {"item_id": item.item_id, "output_index": item.output_index}
        if item.kind == "message":
            self._emit(
                out,
                "response.output_text.done",
                **ids,
                content_index=0,
                text=item.text,
                logprobs=[],
            )
            part = output_text_part(item.text)
            self._emit(out, "response.content_part.done", **ids, content_index=0, part=part)
            full = message_item(item.item_id, item.text)
        elif item.kind == "reasoning":
            if item.summary_open:
                summary = {"type": "summary_text", "text": item.text}
                self._emit(
                    out,
                    "response.reasoning_summary_text.done",
                    **ids,
                    summary_index=0,
                    text=item.text,
                )
                self._emit(
                    out,
                    "response.reasoning_summary_part.done",
                    **ids,
                    summary_index=0,
                    part=summary,
                )
            if item.carry is not None:
                item.encrypted = wrap_part(item.carry)
            full = reasoning_item(item.item_id, item.text, item.encrypted)
        else:
            arguments = item.text or "{}"
            self._emit(
                out,
                "response.function_call_arguments.done",
                **ids,
                arguments=arguments,
                name=item.name,
            )
            full = function_call_item(item.item_id, item.call_id, item.name, arguments)
        self._done_items.append((item.output_index, full))
        self._emit(out, "response.output_item.done", output_index=item.output_index, item=full)

    def _close_all(self, out: list[bytes]) -> None:
        for item in list(self._opened):
            self._close(out, item)

    def _output(self) -> list[JSON]:
        return [full for _, full in sorted(self._done_items, key=lambda pair: pair[0])]

    def _finish(self, out: list[bytes], reason: FinishReason) -> None:
        self._close_all(out)
        self._ended = True
        status, incomplete = terminal_state(reason)
        if status == "failed":  # a MessageEnd(ERROR) is still a failure for the client
            self._fail(out, ProxyError(ErrorKind.UPSTREAM, "upstream reported an error"))
            return
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        response = self._response(status, self._output(), incomplete_details=incomplete)
        self._emit(out, kind, response=response)

    def _fail(self, out: list[bytes], error: ProxyError) -> None:
        """response.failed (what the API sends when generation fails): Codex reads error.code and
        error.message from it; the openai SDK yields it as a ResponseFailedEvent and its stream
        helper's get_final_response() raises since no response.completed follows."""
        self._ended = True
        response = self._response("failed", self._output(), error=failed_error(error))
        self._emit(out, "response.failed", response=response)


# ---------------------------------------------------------------------------------------------
# decoder: Responses SSE → canonical


@dataclass(slots=True)
class _Block:
    index: int  # canonical block index
    kind: str  # "text" | "tool" | "reasoning"
    started: bool = False
    ended: bool = False
    seen: str = ""  # text / arguments / summary received through deltas
    summary_index: int = 0
    encrypted_sent: bool = False


@dataclass(slots=True)
class _DecoderState:
    blocks: dict[int, _Block] = field(default_factory=dict)  # by output_index
    next_index: int = 0
    started: bool = False
    saw_tool_call: bool = False


class ResponsesStreamDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.finished = False
        self._state = _DecoderState()

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self.finished or not event.data or event.data.strip() == "[DONE]":
            return []
        try:
            data = loads_upstream(event.data, "upstream stream event")
        except orjson.JSONDecodeError:
            return self._error(ProxyError(ErrorKind.UPSTREAM, "upstream sent malformed JSON"))
        except ProxyError as too_deep:
            return self._error(too_deep)
        if not isinstance(data, dict):
            return self._error(ProxyError(ErrorKind.UPSTREAM, "upstream sent a non-object event"))
        kind = data.get("type") or event.event or ""
        out: list[StreamEvent] = []
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._message_start(out, data.get("response"))
        elif kind == "error":
            # Seen both flat ({code, message}) and nested ({error: {...}}).
            nested = data.get("error")
            return self._error(
                error_from_wire(nested if isinstance(nested, dict) else data, ErrorKind.UPSTREAM)
            )
        elif kind == "response.failed":
            response = data.get("response")
            error = response.get("error") if isinstance(response, dict) else None
            return self._error(error_from_wire(error, ErrorKind.UPSTREAM))
        elif kind in ("response.completed", "response.incomplete", "response.done"):
            self._finish(out, data.get("response"))
        else:
            self._message_start(out, None)
            self._content_event(out, kind, data)
        return out

    def close(self) -> list[StreamEvent]:
        if self.finished:
            return []
        out: list[StreamEvent] = []
        self._close_blocks(out)
        self.finished = True
        message = "upstream stream ended early (no response.completed)"
        out.append(StreamError(ProxyError(ErrorKind.UPSTREAM, message)))
        return out

    def _error(self, error: ProxyError) -> list[StreamEvent]:
        self.finished = True
        return [StreamError(error)]

    def _message_start(self, out: list[StreamEvent], response: Any) -> None:
        if self._state.started:
            return
        self._state.started = True
        response = response if isinstance(response, dict) else {}
        out.append(
            MessageStart(
                id=str(response.get("id") or ""),
                model=str(response.get("model") or ""),
                usage=parse_usage(response.get("usage")),
            )
        )

    def _block(self, output_index: Any, kind: str) -> _Block:
        key = output_index if isinstance(output_index, int) else -1
        block = self._state.blocks.get(key)
        if block is None or block.ended:
            block = _Block(self._state.next_index, kind)
            self._state.next_index += 1
            self._state.blocks[key] = block
        return block

    def _content_event(self, out: list[StreamEvent], kind: str, data: JSON) -> None:
        output_index = data.get("output_index")
        delta = data.get("delta")
        delta = delta if isinstance(delta, str) else ""
        if kind == "response.output_item.added":
            self._item_added(out, output_index, data.get("item"))
        elif kind == "response.output_item.done":
            self._item_done(out, output_index, data.get("item"))
        elif kind in ("response.output_text.delta", "response.refusal.delta") and delta:
            block = self._block(output_index, "text")
            self._start_text(out, block)
            block.seen += delta
            out.append(TextDelta(block.index, delta))
        elif kind == "response.function_call_arguments.delta" and delta:
            block = self._block(output_index, "tool")
            if not block.started:  # no output_item.added: name unknown until done
                block.started = True
                item_id = str(data.get("item_id") or new_id("call"))
                out.append(ToolCallStart(block.index, id=item_id, name=""))
            block.seen += delta
            out.append(ToolArgsDelta(block.index, delta))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            block = self._block(output_index, "reasoning")
            self._start_reasoning(out, block, {})
            summary_index = data.get("summary_index")
            if isinstance(summary_index, int) and summary_index != block.summary_index:
                block.summary_index = summary_index
                if block.seen:  # separate summary parts like the joined non-stream text
                    block.seen += "\n\n"
                    out.append(ReasoningDelta(block.index, text="\n\n"))
            if delta:
                block.seen += delta
                out.append(ReasoningDelta(block.index, text=delta))

    def _start_text(self, out: list[StreamEvent], block: _Block) -> None:
        if not block.started:
            block.started = True
            out.append(TextStart(block.index))

    def _start_reasoning(self, out: list[StreamEvent], block: _Block, item: JSON) -> None:
        if block.started:
            return
        block.started = True
        encrypted = item.get("encrypted_content")
        encrypted = encrypted if isinstance(encrypted, str) and encrypted else None
        block.encrypted_sent = encrypted is not None
        item_id = item.get("id") if isinstance(item.get("id"), str) else None
        out.append(ReasoningStart(block.index, id=item_id, encrypted=encrypted, issuer=NAME))

    def _item_added(self, out: list[StreamEvent], output_index: Any, item: Any) -> None:
        if not isinstance(item, dict):
            return
        if item.get("type") == "function_call":
            block = self._block(output_index, "tool")
            self._state.saw_tool_call = True
            block.started = True
            call_id = str(item.get("call_id") or item.get("id") or new_id("call"))
            out.append(ToolCallStart(block.index, id=call_id, name=str(item.get("name") or "")))
        elif item.get("type") == "reasoning":
            self._start_reasoning(out, self._block(output_index, "reasoning"), item)
        elif item.get("type") == "message":
            self._block(output_index, "text")  # TextStart waits for the first text

    def _item_done(self, out: list[StreamEvent], output_index: Any, item: Any) -> None:
        """Emit whatever the deltas did not carry: minimal streams send only this event."""
        if not isinstance(item, dict):
            return
        kind = item.get("type")
        if kind == "message":
            block = self._block(output_index, "text")
            parts = [c for c in item.get("content") or [] if isinstance(c, dict)]
            text = "".join(str(c.get("text") or c.get("refusal") or "") for c in parts)
            rest = _missing(block.seen, text)
            if rest:
                self._start_text(out, block)
                out.append(TextDelta(block.index, rest))
        elif kind == "function_call":
            block = self._block(output_index, "tool")
            self._state.saw_tool_call = True
            if not block.started:
                block.started = True
                call_id = str(item.get("call_id") or item.get("id") or new_id("call"))
                out.append(ToolCallStart(block.index, id=call_id, name=str(item.get("name") or "")))
            arguments = item.get("arguments")
            rest = _missing(block.seen, arguments if isinstance(arguments, str) else "")
            if rest:
                out.append(ToolArgsDelta(block.index, rest))
        elif kind == "reasoning":
            block = self._block(output_index, "reasoning")
            self._start_reasoning(out, block, item)
            final = parse_reasoning_item(item)
            rest = _missing(block.seen, final.text)
            if rest:
                out.append(ReasoningDelta(block.index, text=rest))
            if final.encrypted and not block.encrypted_sent:
                out.append(ReasoningDelta(block.index, encrypted=final.encrypted))
        else:
            return
        if block.started:
            block.ended = True
            out.append(BlockEnd(block.index))

    def _close_blocks(self, out: list[StreamEvent]) -> None:
        for block in sorted(self._state.blocks.values(), key=lambda b: b.index):
            if block.started and not block.ended:
                block.ended = True
                out.append(BlockEnd(block.index))

    def _finish(self, out: list[StreamEvent], response: Any) -> None:
        response = response if isinstance(response, dict) else {}
        self._message_start(out, response)
        if not self._state.blocks and isinstance(response.get("output"), list):
            # Nothing was streamed item by item: the final response is the only copy.
            for position, item in enumerate(response["output"]):
                self._item_done(out, position, item)
        self._close_blocks(out)
        self.finished = True
        reason = finish_reason_of(response, self._state.saw_tool_call)
        out.append(MessageEnd(reason, parse_usage(response.get("usage"))))


def _missing(seen: str, final: str) -> str:
    """The part of ``final`` the deltas have not delivered yet ("" if they delivered it all)."""
    if final.startswith(seen):
        return final[len(seen) :]
    return ""
