"""OpenAI Chat Completions streams: ``data: {chunk}`` lines ending in ``data: [DONE]``."""

from __future__ import annotations

import time
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
from cliproxy.protocols.base import JSON, StreamDecoder, StreamEncoder
from cliproxy.protocols.openai_chat_wire import (
    error_body,
    error_from_wire,
    finish_from_wire,
    finish_to_wire,
    new_id,
    usage_from_wire,
    usage_to_wire,
    wire_id,
)
from cliproxy.protocols.sse import SSEEvent, frame

DONE = frame("[DONE]")


class ChatStreamDecoder(StreamDecoder):
    """Chat chunks → canonical events.

    Chat has no block boundaries: a block is open from its first delta until a delta of another
    kind (text, reasoning, another tool call) arrives, and the rest close at the end. The reply
    ends at ``[DONE]``, or at EOF when a finish_reason was seen (many servers omit ``[DONE]``).
    """

    def __init__(self) -> None:
        self.finished = False
        self._failed = False
        self._started = False
        self._next_index = 0
        self._open: int | None = None  # the one block taking deltas now
        self._open_kind = ""
        self._tools: dict[Any, int] = {}  # wire tool-call key → canonical block index
        self._tool_ids: dict[int, str] = {}  # canonical block index → tool-call id
        self._finish: FinishReason | None = None
        self._usage = Usage()

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self.finished or self._failed:
            return []
        data = event.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            return self._end()
        try:
            chunk = loads_upstream(data, "upstream stream chunk")
        except orjson.JSONDecodeError:
            return self._fail(
                ProxyError(ErrorKind.UPSTREAM, f"upstream sent bad JSON: {data[:200]}")
            )
        except ProxyError as error:
            return self._fail(error)
        if not isinstance(chunk, dict):
            return self._fail(ProxyError(ErrorKind.UPSTREAM, "upstream chunk is not an object"))
        if chunk.get("error") or event.event == "error":
            return self._fail(error_from_wire(chunk.get("error") or chunk, None))
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(
                MessageStart(
                    id=str(chunk.get("id") or new_id()), model=str(chunk.get("model") or "")
                )
            )
        if chunk.get("usage"):
            self._usage = self._usage.merge(usage_from_wire(chunk["usage"]))
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                # One choice is served (n=1); a stray index belongs to no reply of ours.
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, out)
        return out

    def passes(self, raw: bytes) -> bool:
        # The chunk of nearly every token: one data line, one choice whose delta is more
        # content for the text block already open, no finish, usage or error. Anything else,
        # or anything odd about it, goes through feed (which also words the errors).
        if (
            self._open_kind != "text"
            or self.finished
            or self._failed
            or not raw.startswith(b"data: {")
            or not raw.endswith(b"\n\n")
            or raw.count(b"\n") != 2
            or b"\r" in raw
        ):
            return False
        try:
            chunk = loads_upstream(raw[6:-2], "upstream stream chunk")
        except (orjson.JSONDecodeError, ProxyError):
            return False
        if not isinstance(chunk, dict) or chunk.get("error") or chunk.get("usage"):
            return False
        choices = chunk.get("choices")
        if not isinstance(choices, list) or len(choices) != 1:
            return False
        choice = choices[0]
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            return False
        if choice.get("finish_reason"):
            return False
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return False
        for key, value in delta.items():
            if key == "content":
                if value is not None and not isinstance(value, str):
                    return False
            elif key != "role" and value:
                return False  # reasoning, a refusal, tool calls, audio...
        return True

    def close(self) -> list[StreamEvent]:
        if self.finished or self._failed:
            return []
        if self._finish is not None:
            return self._end()
        self._failed = True
        out = self._close_blocks()
        out.append(
            StreamError(
                ProxyError(
                    ErrorKind.UPSTREAM,
                    "upstream stream ended early (no finish_reason and no [DONE])",
                )
            )
        )
        return out

    def _choice(self, choice: JSON, out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                index = self._block("reasoning", out)
                out.append(ReasoningDelta(index, text=reasoning))
            # A refusal is text the user should see; Chat marks it only by field name.
            content = delta.get("content") or delta.get("refusal")
            if isinstance(content, str) and content:
                index = self._block("text", out)
                out.append(TextDelta(index, content))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for position, call in enumerate(calls):
                    if isinstance(call, dict):
                        self._tool_delta(call, position, out)
        if choice.get("finish_reason"):
            self._finish = finish_from_wire(choice["finish_reason"])

    def _tool_delta(self, call: JSON, position: int, out: list[StreamEvent]) -> None:
        call_id = call.get("id") if isinstance(call.get("id"), str) else ""
        key: Any = call.get("index")
        if not isinstance(key, int):  # servers that omit the index: go by id, else continue
            key = call_id or (next(reversed(self._tools)) if self._tools else position)
        raw_function = call.get("function")
        function: JSON = raw_function if isinstance(raw_function, dict) else {}
        index = self._tools.get(key)
        # A different id under a known index is a new call from a server that reuses index 0.
        if index is None or (call_id and call_id != self._tool_ids[index]):
            index = self._start_block("tool", out)
            self._tools[key] = index
            self._tool_ids[index] = call_id or new_id("call_")
            out.append(
                ToolCallStart(index, id=self._tool_ids[index], name=str(function.get("name") or ""))
            )
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments:
            # A piece for a call already ended (interleaved calls, rarely seen) is still passed
            # on under its own index; accumulators and encoders tolerate that.
            out.append(ToolArgsDelta(index, arguments))

    def _block(self, kind: str, out: list[StreamEvent]) -> int:
        if self._open is not None and self._open_kind == kind:
            return self._open
        index = self._start_block(kind, out)
        out.append(TextStart(index) if kind == "text" else ReasoningStart(index))
        return index

    def _start_block(self, kind: str, out: list[StreamEvent]) -> int:
        # Blocks run one after another: a new block ends the previous one.
        out.extend(self._close_blocks())
        index = self._next_index
        self._next_index += 1
        self._open, self._open_kind = index, kind
        return index

    def _close_blocks(self) -> list[StreamEvent]:
        ends: list[StreamEvent] = [] if self._open is None else [BlockEnd(self._open)]
        self._open, self._open_kind = None, ""
        return ends

    def _end(self) -> list[StreamEvent]:
        self.finished = True
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(MessageStart(id=new_id(), model=""))
        out.extend(self._close_blocks())
        finish = self._finish or FinishReason.STOP
        if finish is FinishReason.STOP and bool(self._tools):
            finish = FinishReason.TOOL_CALLS
        out.append(MessageEnd(finish, self._usage))
        return out

    def _fail(self, error: ProxyError) -> list[StreamEvent]:
        self._failed = True
        out = self._close_blocks()
        out.append(StreamError(error))
        return out


class ChatStreamEncoder(StreamEncoder):
    """Canonical events → Chat chunks, the way api.openai.com sends them: a first chunk with the
    role, content pieces, tool calls numbered by their ordinal, a finish chunk, a usage chunk
    (``choices: []``) when the client asked for ``include_usage``, then ``[DONE]``."""

    def __init__(self, request: Request) -> None:
        self._model = request.model
        self._include_usage = request.include_usage
        self._id = ""
        self._created = int(time.time())
        self._began = False
        self._done = False
        self._tools: dict[int, int] = {}  # canonical block index → tool-call ordinal
        self._usage = Usage()

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        match event:
            case MessageStart(id=id_, usage=usage):
                self._usage = self._usage.merge(usage)
                if not self._began:
                    self._id = wire_id(id_)
                return self._begin()
            case TextDelta(text=text) if text:
                return self._begin() + self._delta({"content": text})
            case ReasoningDelta(text=text) if text:
                return self._begin() + self._delta({"reasoning_content": text})
            case ToolCallStart(index=index, id=id_, name=name):
                return self._begin() + self._tool_start(index, id_, name)
            case ToolArgsDelta(index=index, delta=piece):
                out = self._begin()
                if index not in self._tools:
                    out += self._tool_start(index, new_id("call_"), "")
                if piece:
                    call = {"index": self._tools[index], "function": {"arguments": piece}}
                    out += self._delta({"tool_calls": [call]})
                return out
            case UsageUpdate(usage=usage):
                self._usage = self._usage.merge(usage)
                return b""
            case MessageEnd(finish_reason=reason, usage=usage):
                self._usage = self._usage.merge(usage)
                return self._finish(reason)
            case StreamError(error=error):
                self._done = True
                # The openai SDK raises APIError on a data line whose object has "error".
                return frame(orjson.dumps(error_body(error)))
        return b""

    def _begin(self) -> bytes:
        if self._began:
            return b""
        self._began = True
        self._id = self._id or new_id()
        return self._delta({"role": "assistant", "content": ""})

    def _tool_start(self, index: int, call_id: str, name: str) -> bytes:
        ordinal = self._tools.setdefault(index, len(self._tools))
        call = {
            "index": ordinal,
            "id": call_id or new_id("call_"),
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return self._delta({"tool_calls": [call]})

    def _finish(self, reason: FinishReason) -> bytes:
        out = self._begin()
        self._done = True
        finish = finish_to_wire(reason, bool(self._tools))
        out += self._chunk([{"index": 0, "delta": {}, "finish_reason": finish, "logprobs": None}])
        if self._include_usage:
            out += self._chunk([], usage=usage_to_wire(self._usage))
        return out + DONE

    def _delta(self, delta: JSON) -> bytes:
        return self._chunk([{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}])

    def _chunk(self, choices: list[JSON], usage: JSON | None = None) -> bytes:
        chunk: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return frame(orjson.dumps(chunk))
