"""Legacy OpenAI completions (POST /v1/completions): one ``prompt`` in, ``choices[].text`` out.

Served to old clients only; no upstream speaks it, so replies are decoded by converting them to
the Chat shape and reusing the Chat module.
"""

from __future__ import annotations

import time

import orjson

from cliproxy.model import (
    FinishReason,
    Message,
    MessageEnd,
    MessageStart,
    ProxyError,
    Request,
    StreamError,
    StreamEvent,
    TextDelta,
    TextPart,
    Usage,
    UsageUpdate,
    invalid,
    loads_upstream,
)
from cliproxy.model import Response as CanonicalResponse
from cliproxy.protocols import openai_chat, openai_chat_wire
from cliproxy.protocols.base import JSON, StreamDecoder, StreamEncoder, WireProtocol
from cliproxy.protocols.fields import expect_object, expect_str
from cliproxy.protocols.openai_chat_request import parse_common
from cliproxy.protocols.openai_chat_stream import DONE, ChatStreamDecoder
from cliproxy.protocols.sse import SSEEvent, frame

NAME = "openai_completions"
ID_PREFIX = "cmpl-"

_HANDLED = frozenset(
    {
        "model",
        "prompt",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "stream",
        "stream_options",
        "user",
        "metadata",
    }
)


def _finish(reason: FinishReason) -> str:
    # Legacy completions know stop, length and content_filter only.
    wire = openai_chat_wire.finish_to_wire(reason, has_tool_calls=False)
    return "stop" if wire == "tool_calls" else wire


def _prompt(raw: object) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
        return raw[0]
    if isinstance(raw, list):
        raise invalid("prompt: only a single prompt string is supported", "prompt")
    raise invalid("prompt: expected a string", "prompt")


def _to_chat_chunk(data: JSON) -> JSON:
    """A completions reply or chunk in Chat shape (text → message/delta content)."""
    converted = dict(data)
    choices = []
    for choice in data.get("choices") or []:
        if isinstance(choice, dict):
            text = choice.get("text")
            choices.append(
                {
                    "index": choice.get("index", 0),
                    "message": {"role": "assistant", "content": text},
                    "delta": {"content": text},
                    "finish_reason": choice.get("finish_reason"),
                }
            )
    converted["choices"] = choices
    return converted


class CompletionsStreamDecoder(ChatStreamDecoder):
    """Completions chunks rewritten to Chat chunks, then decoded as Chat."""

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        data = event.data.strip()
        if data and data != "[DONE]":
            try:
                chunk = loads_upstream(data, "upstream stream chunk")
            except (orjson.JSONDecodeError, ProxyError):
                chunk = None  # the Chat decoder reports it
            if isinstance(chunk, dict) and not chunk.get("error"):
                event = SSEEvent(event.event, orjson.dumps(_to_chat_chunk(chunk)).decode())
        return super().feed(event)


class CompletionsStreamEncoder(StreamEncoder):
    """Text pieces as ``text_completion`` chunks; reasoning and tool calls have no form here."""

    def __init__(self, request: Request) -> None:
        self._model = request.model
        self._include_usage = request.include_usage
        self._id = ""
        self._created = int(time.time())
        self._usage = Usage()
        self._done = False

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        match event:
            case MessageStart(id=id_, usage=usage):
                self._id = self._id or openai_chat_wire.wire_id(id_, ID_PREFIX)
                self._usage = self._usage.merge(usage)
            case TextDelta(text=text) if text:
                return self._chunk([self._choice(text, None)])
            case UsageUpdate(usage=usage):
                self._usage = self._usage.merge(usage)
            case MessageEnd(finish_reason=reason, usage=usage):
                self._done = True
                self._usage = self._usage.merge(usage)
                out = self._chunk([self._choice("", _finish(reason))])
                if self._include_usage:
                    out += self._chunk([], openai_chat_wire.usage_to_wire(self._usage))
                return out + DONE
            case StreamError(error=error):
                self._done = True
                return frame(orjson.dumps(openai_chat_wire.error_body(error)))
        return b""

    @staticmethod
    def _choice(text: str, finish: str | None) -> JSON:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    def _chunk(self, choices: list[JSON], usage: JSON | None = None) -> bytes:
        self._id = self._id or openai_chat_wire.new_id(ID_PREFIX)
        chunk: JSON = {
            "id": self._id,
            "object": "text_completion",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return frame(orjson.dumps(chunk))


class OpenAICompletions(WireProtocol):
    name = NAME

    def parse_request(self, body: JSON) -> Request:
        body = expect_object(body, "body")
        model = expect_str(body.get("model"), "model")
        request = Request(
            model=model, messages=[Message("user", [TextPart(_prompt(body.get("prompt")))])]
        )
        parse_common(body, request)
        extras = {key: value for key, value in body.items() if key not in _HANDLED}
        if extras:
            request.extras[NAME] = extras
        return request

    def render_request(self, request: Request) -> JSON:
        texts = [request.system_text()] + [message.text() for message in request.messages]
        body: JSON = {"model": request.model, "prompt": "\n\n".join(t for t in texts if t)}
        for key in ("max_tokens", "temperature", "top_p", "seed", "presence_penalty",
                    "frequency_penalty", "user"):  # fmt: skip
            value = getattr(request, key)
            if value is not None:
                body[key] = value
        if request.stop:
            body["stop"] = request.stop
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        for key, value in request.extras.get(NAME, {}).items():
            body.setdefault(key, value)
        return body

    def reply_usage(self, body: JSON) -> Usage:
        return openai_chat_wire.usage_from_wire(body.get("usage"))

    def parse_response(self, body: JSON) -> CanonicalResponse:
        if isinstance(body, dict) and not body.get("error"):
            body = _to_chat_chunk(body)
        return openai_chat.parse_response(body)

    def render_response(self, response: CanonicalResponse) -> JSON:
        return {
            "id": openai_chat_wire.wire_id(response.id, ID_PREFIX),
            "object": "text_completion",
            "created": response.created or int(time.time()),
            "model": response.model,
            "choices": [
                {
                    "text": response.text(),
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": _finish(response.finish_reason),
                }
            ],
            "usage": openai_chat_wire.usage_to_wire(response.usage),
        }

    def stream_decoder(self) -> StreamDecoder:
        return CompletionsStreamDecoder()

    def stream_encoder(self, request: Request) -> StreamEncoder:
        return CompletionsStreamEncoder(request)

    def render_error(self, error: ProxyError) -> JSON:
        return openai_chat_wire.error_body(error)

    def parse_error(self, status: int, body: bytes) -> ProxyError:
        return openai_chat.parse_error(status, body)


PROTOCOL = OpenAICompletions()
