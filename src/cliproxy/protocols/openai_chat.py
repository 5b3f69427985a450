"""OpenAI Chat Completions (POST /v1/chat/completions): the protocol, complete replies, errors.

Requests are parsed and rendered in ``openai_chat_request``, streams in ``openai_chat_stream``;
the wire helpers shared with those and the legacy completions module (ids, finish reasons,
usage, error bodies) live in ``openai_chat_wire``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from cliproxy.model import (
    ErrorKind,
    FinishReason,
    Part,
    ProxyError,
    ReasoningPart,
    Request,
    TextPart,
    ToolCallPart,
    Usage,
    loads_upstream,
)
from cliproxy.model import Response as CanonicalResponse
from cliproxy.protocols.base import JSON, StreamDecoder, StreamEncoder, WireProtocol
from cliproxy.protocols.openai_chat_request import NAME, parse_request, render_request
from cliproxy.protocols.openai_chat_stream import ChatStreamDecoder, ChatStreamEncoder
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

# --- responses -----------------------------------------------------------------------------


def parse_response(body: JSON) -> CanonicalResponse:
    if not isinstance(body, dict):
        raise ProxyError(ErrorKind.UPSTREAM, "upstream reply is not a JSON object")
    if body.get("error"):
        raise error_from_wire(body["error"], None)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProxyError(ErrorKind.UPSTREAM, "upstream reply has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ProxyError(ErrorKind.UPSTREAM, "upstream reply: choices[0].message is missing")
    content: list[Part] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append(ReasoningPart(text=reasoning, issuer=NAME))
    text = message.get("content")
    if isinstance(text, list):  # a few servers answer with parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        content.append(TextPart(text))
    finish = finish_from_wire(choices[0].get("finish_reason"))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append(TextPart(refusal))
        finish = FinishReason.REFUSAL
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments if arguments is not None else {}).decode()
        content.append(
            ToolCallPart(
                id=str(call.get("id") or f"call_{i}"),
                name=str(function.get("name") or ""),
                arguments=arguments or "{}",
            )
        )
    if finish is FinishReason.STOP and any(isinstance(p, ToolCallPart) for p in content):
        finish = FinishReason.TOOL_CALLS
    created = body.get("created")
    return CanonicalResponse(
        id=str(body.get("id") or new_id()),
        model=str(body.get("model") or ""),
        content=content,
        finish_reason=finish,
        usage=usage_from_wire(body.get("usage")),
        created=created if isinstance(created, int) else 0,
    )


def render_response(response: CanonicalResponse) -> JSON:
    text = "".join(p.text for p in response.content if isinstance(p, TextPart))
    reasoning = "".join(p.text for p in response.content if isinstance(p, ReasoningPart))
    calls = [p for p in response.content if isinstance(p, ToolCallPart)]
    message: JSON = {"role": "assistant", "content": text if text or not calls else None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments or "{}"},
            }
            for call in calls
        ]
    message["refusal"] = None
    return {
        "id": wire_id(response.id),
        "object": "chat.completion",
        "created": response.created or int(time.time()),
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_to_wire(response.finish_reason, bool(calls)),
                "logprobs": None,
            }
        ],
        "usage": usage_to_wire(response.usage),
    }


def parse_error(status: int, body: bytes) -> ProxyError:
    try:
        data = loads_upstream(body, "upstream error") if body else None
    except (orjson.JSONDecodeError, ProxyError):  # too deep to read: reported as text
        data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    error: Any = None
    if isinstance(data, dict):
        error = data.get("error") or data.get("detail") or data.get("message")
    if error is None:
        text = body.decode("utf-8", errors="replace").strip()[:500]
        error = text or f"upstream returned HTTP {status}"
    result = error_from_wire(error, status)
    if not result.message:
        result.message = f"upstream returned HTTP {status}"
    return result


# The chunk an upstream adds for stream_options.include_usage: no choices, only the usage.
_USAGE_ONLY_CHUNK = re.compile(rb'"choices"\s*:\s*\[\s*\]')


def _usage_only(raw: bytes) -> bool:
    return b'"usage"' in raw and _USAGE_ONLY_CHUNK.search(raw) is not None


class OpenAIChat(WireProtocol):
    name = NAME

    def ask_stream_usage(self, body: JSON) -> Callable[[bytes], bool] | None:
        """A Chat stream reports usage only when asked (stream_options.include_usage); a
        client that did not ask still has its tokens counted, and does not see the extra
        chunk (some clients read ``choices[0]`` of every chunk)."""
        options = body.get("stream_options")
        if body.get("stream") is not True or (
            isinstance(options, dict) and options.get("include_usage") is True
        ):
            return None
        if options is not None and not isinstance(options, dict):
            return None  # the upstream answers for a malformed field
        body["stream_options"] = {**(options or {}), "include_usage": True}
        return _usage_only

    def parse_request(self, body: JSON) -> Request:
        return parse_request(body)

    def render_request(self, request: Request) -> JSON:
        return render_request(request)

    def parse_response(self, body: JSON) -> CanonicalResponse:
        return parse_response(body)

    def reply_usage(self, body: JSON) -> Usage:
        return usage_from_wire(body.get("usage"))

    def render_response(self, response: CanonicalResponse) -> JSON:
        return render_response(response)

    def stream_decoder(self) -> StreamDecoder:
        return ChatStreamDecoder()

    def stream_encoder(self, request: Request) -> StreamEncoder:
        return ChatStreamEncoder(request)

    def render_error(self, error: ProxyError) -> JSON:
        return error_body(error)

    def parse_error(self, status: int, body: bytes) -> ProxyError:
        return parse_error(status, body)


PROTOCOL = OpenAIChat()
