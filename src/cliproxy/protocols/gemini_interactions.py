"""Gemini Interactions (POST /v1beta/interactions), a client protocol: requests parse into the
canonical model (gemini_interactions_request.py); replies render as an Interaction resource
and streams as its server-sent events.

Reply: ``{"id", "status", "model", "created", "updated", "steps": [...], "usage"}`` where the
steps are ``thought`` (summary and signature), ``model_output`` (text contents) and
``function_call`` (``id``, ``name``, ``arguments`` as an object); a reply that asks for a tool
has status ``requires_action``. Stream: SSE ``data:`` frames keyed by ``event_type``:
``interaction.created``, then per step ``step.start`` / ``step.delta`` (``text``,
``thought_summary``, ``thought_signature``, ``arguments_delta``) / ``step.stop``, then
``interaction.completed`` with the usage, then ``data: [DONE]``. An error mid-stream is an
``error`` event and no [DONE], so a cut stream never looks complete.

No upstream speaks this protocol here: its upstream-side methods refuse clearly. Errors use
Google's JSON error shape, as the rest of the Gemini API does.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
)
from cliproxy.model import Response as CanonicalResponse
from cliproxy.protocols import gemini_errors, gemini_interactions_request
from cliproxy.protocols.base import JSON, StreamDecoder, StreamEncoder, WireProtocol
from cliproxy.protocols.openai_chat_wire import new_id, wire_id
from cliproxy.protocols.sse import frame

NAME = gemini_interactions_request.NAME
ID_PREFIX = "interaction-"
DONE = b"data: [DONE]\n\n"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(reason: FinishReason) -> str:
    if reason is FinishReason.TOOL_CALLS:
        return "requires_action"
    if reason is FinishReason.LENGTH:
        return "incomplete"
    if reason is FinishReason.ERROR:
        return "failed"
    return "completed"


def usage_to_wire(usage: Usage) -> JSON:
    return {
        "total_input_tokens": usage.input_tokens,
        "total_output_tokens": usage.output_tokens,
        "total_cached_tokens": usage.cached_tokens,
        "total_thought_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
    }


def _arguments(text: str) -> JSON:
    try:
        parsed = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def render_response(response: CanonicalResponse) -> JSON:
    steps: list[JSON] = []
    for part in response.content:
        if isinstance(part, ReasoningPart) and not part.redacted:
            thought: JSON = {"type": "thought"}
            if part.text:
                thought["summary"] = [{"type": "text", "text": part.text}]
            if part.signature:
                thought["signature"] = part.signature
            steps.append(thought)
        elif isinstance(part, TextPart):
            if steps and steps[-1]["type"] == "model_output":
                steps[-1]["content"].append({"type": "text", "text": part.text})
            else:
                steps.append(
                    {"type": "model_output", "content": [{"type": "text", "text": part.text}]}
                )
        elif isinstance(part, ToolCallPart):
            steps.append(
                {
                    "type": "function_call",
                    "id": part.id,
                    "name": part.name,
                    "arguments": _arguments(part.arguments),
                }
            )
    stamp = _now()
    return {
        "id": wire_id(response.id, ID_PREFIX),
        "status": _status(response.finish_reason),
        "model": response.model,
        "created": stamp,
        "updated": stamp,
        "steps": steps,
        "output_text": response.text(),
        "usage": usage_to_wire(response.usage),
    }


class InteractionsStreamEncoder(StreamEncoder):
    """Canonical events → Interactions SSE. Each canonical block becomes one step, numbered in
    the order the blocks start."""

    def __init__(self, request: Request) -> None:
        self._model = request.model
        self._id = ""
        self._steps: dict[int, int] = {}  # canonical block index -> step index
        self._usage = Usage()
        self._done = False

    def _event(self, event_type: str, **fields: object) -> bytes:
        return frame(orjson.dumps({"event_type": event_type, **fields}))

    def _interaction(self, status: str) -> JSON:
        found: JSON = {"id": self._id, "status": status, "model": self._model}
        if status != "in_progress":
            found["usage"] = usage_to_wire(self._usage)
        return found

    def _start(self, block: int, step: JSON) -> bytes:
        self._steps[block] = index = len(self._steps)
        return self._event("step.start", index=index, step=step)

    def _delta(self, block: int, delta: JSON) -> bytes:
        index = self._steps.get(block)
        return b"" if index is None else self._event("step.delta", index=index, delta=delta)

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        match event:
            case MessageStart(id=id_, usage=usage):
                self._usage = self._usage.merge(usage)
                if self._id:
                    return b""
                self._id = wire_id(id_, ID_PREFIX) if id_ else new_id(ID_PREFIX)
                return self._event(
                    "interaction.created", interaction=self._interaction("in_progress")
                )
            case TextStart(index=block):
                return self._start(block, {"type": "model_output", "content": []})
            case TextDelta(index=block, text=text) if text:
                if block not in self._steps:
                    out = self._start(block, {"type": "model_output", "content": []})
                    return out + self._delta(block, {"type": "text", "text": text})
                return self._delta(block, {"type": "text", "text": text})
            case ReasoningStart(index=block, redacted=False):
                return self._start(block, {"type": "thought"})
            case ReasoningDelta(index=block, text=text, signature=signature):
                out = b""
                if text:
                    content = {"type": "text", "text": text}
                    out += self._delta(block, {"type": "thought_summary", "content": content})
                if signature:
                    out += self._delta(block, {"type": "thought_signature", "signature": signature})
                return out
            case ToolCallStart(index=block, id=call_id, name=name):
                step = {"type": "function_call", "id": call_id, "name": name, "arguments": {}}
                return self._start(block, step)
            case ToolArgsDelta(index=block, delta=piece) if piece:
                return self._delta(block, {"type": "arguments_delta", "arguments": piece})
            case BlockEnd(index=block) if block in self._steps:
                return self._event("step.stop", index=self._steps[block])
            case UsageUpdate(usage=usage):
                self._usage = self._usage.merge(usage)
            case MessageEnd(finish_reason=reason, usage=usage):
                self._done = True
                self._usage = self._usage.merge(usage)
                self._id = self._id or new_id(ID_PREFIX)
                completed = self._interaction(_status(reason))
                return self._event("interaction.completed", interaction=completed) + DONE
            case StreamError(error=error):
                self._done = True
                code = str(gemini_errors.render_error(error)["error"].get("status", ""))
                return self._event("error", error={"code": code, "message": error.message})
        return b""


def _no_upstream() -> ProxyError:
    return ProxyError(ErrorKind.UPSTREAM, "no upstream speaks Gemini Interactions here")


class GeminiInteractions(WireProtocol):
    name = NAME

    def parse_request(self, body: JSON) -> Request:
        return gemini_interactions_request.parse_request(body)

    def render_request(self, request: Request) -> JSON:
        raise _no_upstream()

    def parse_response(self, body: JSON) -> CanonicalResponse:
        raise _no_upstream()

    def render_response(self, response: CanonicalResponse) -> JSON:
        return render_response(response)

    def stream_decoder(self) -> StreamDecoder:
        raise _no_upstream()

    def stream_encoder(self, request: Request) -> StreamEncoder:
        return InteractionsStreamEncoder(request)

    def render_error(self, error: ProxyError) -> JSON:
        return gemini_errors.render_error(error)

    def parse_error(self, status: int, body: bytes) -> ProxyError:
        return gemini_errors.parse_error(status, body)


PROTOCOL = GeminiInteractions()
