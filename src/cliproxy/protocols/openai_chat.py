"""OpenAI Chat Completions (POST /v1/chat/completions): the protocol, complete replies, errors.

Requests are parsed and rendered in ``openai_chat_request``, streams in ``openai_chat_stream``;
the wire helpers both share with the legacy completions module (ids, finish reasons, usage,
error bodies) are defined here.
"""

from __future__ import annotations

import re
import secrets
import time
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
    kind_for_status,
    loads_upstream,
)
from cliproxy.model import Response as CanonicalResponse
from cliproxy.protocols.base import JSON, StreamDecoder, StreamEncoder, WireProtocol
from cliproxy.protocols.openai_chat_request import NAME, parse_request, render_request

_FINISH_FROM_WIRE = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}

_FINISH_TO_WIRE = {
    FinishReason.STOP: "stop",
    FinishReason.STOP_SEQUENCE: "stop",
    FinishReason.PAUSE: "stop",
    FinishReason.REFUSAL: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.TOOL_CALLS: "tool_calls",
    FinishReason.CONTENT_FILTER: "content_filter",
    FinishReason.ERROR: "stop",
}

_ERROR_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.TOO_LARGE: "invalid_request_error",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.SERVER: "server_error",
    ErrorKind.UPSTREAM: "server_error",
    ErrorKind.OVERLOADED: "server_error",
    ErrorKind.TIMEOUT: "server_error",
}

_ERROR_CODES = {
    ErrorKind.AUTHENTICATION: "invalid_api_key",
    ErrorKind.NOT_FOUND: "model_not_found",
    ErrorKind.TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
    ErrorKind.UPSTREAM: "upstream_error",
    ErrorKind.OVERLOADED: "overloaded",
    ErrorKind.TIMEOUT: "timeout",
}

# Error "type"/"code" strings upstreams use, for errors that arrive without a telling status
# (inside a stream, or in a 200 body).
_KIND_FROM_TYPE = {
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "invalid_api_key": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "not_found_error": ErrorKind.NOT_FOUND,
    "model_not_found": ErrorKind.NOT_FOUND,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.RATE_LIMIT,
    "tokens": ErrorKind.RATE_LIMIT,
    "requests": ErrorKind.RATE_LIMIT,
    "server_error": ErrorKind.SERVER,
    "api_error": ErrorKind.SERVER,
    "overloaded_error": ErrorKind.OVERLOADED,
    "overloaded": ErrorKind.OVERLOADED,
    "timeout": ErrorKind.TIMEOUT,
}

_RETRY_IN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)


def new_id(prefix: str = "chatcmpl-") -> str:
    return prefix + secrets.token_urlsafe(18).replace("-", "").replace("_", "")[:24]


def wire_id(raw: str, prefix: str = "chatcmpl-") -> str:
    """The reply id as this protocol's clients expect it: with its usual prefix."""
    if not raw:
        return new_id(prefix)
    return raw if raw.startswith(prefix) else prefix + raw


def finish_from_wire(value: Any) -> FinishReason:
    return (
        _FINISH_FROM_WIRE.get(value, FinishReason.STOP)
        if isinstance(value, str)
        else (FinishReason.STOP)
    )


def finish_to_wire(reason: FinishReason, has_tool_calls: bool) -> str:
    # Agents loop on finish_reason == "tool_calls"; some upstreams (Gemini) say STOP there.
    if has_tool_calls and reason in (FinishReason.STOP, FinishReason.STOP_SEQUENCE):
        return "tool_calls"
    return _FINISH_TO_WIRE.get(reason, "stop")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_wire(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    return Usage(
        input_tokens=_count(raw.get("prompt_tokens")),
        output_tokens=_count(raw.get("completion_tokens")),
        cached_tokens=_count(
            prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
        ),
        reasoning_tokens=_count(
            completion_details.get("reasoning_tokens")
            if isinstance(completion_details, dict)
            else None
        ),
    )


def usage_to_wire(usage: Usage) -> JSON:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def error_body(error: ProxyError) -> JSON:
    kind = error.kind
    err_type = _ERROR_TYPES.get(kind, "server_error")
    code = _ERROR_CODES.get(kind)
    if kind is ErrorKind.NOT_FOUND and error.param != "model":
        code = "not_found"  # an unknown route is not an unknown model
    if kind is ErrorKind.RATE_LIMIT and "quota" in error.message.lower():
        err_type = code = "insufficient_quota"
    return {
        "error": {"message": error.message, "type": err_type, "param": error.param, "code": code}
    }


def error_from_wire(error: Any, status: int | None) -> ProxyError:
    """A ProxyError from an ``error`` value (object or string) with an optional HTTP status."""
    message = ""
    kind: ErrorKind | None = None
    param: str | None = None
    retry_after: float | None = None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        param = error.get("param") if isinstance(error.get("param"), str) else None
        for key in ("code", "type", "status"):
            value = error.get(key)
            if isinstance(value, str) and value.lower() in _KIND_FROM_TYPE:
                kind = _KIND_FROM_TYPE[value.lower()]
                break
            if isinstance(value, int) and 400 <= value < 600 and status is None:
                status = value
        if isinstance(error.get("retry_after"), int | float):
            retry_after = float(error["retry_after"])
    elif isinstance(error, str):
        message = error
    if status is not None:
        kind = kind_for_status(status)
    if kind is None:
        kind = ErrorKind.UPSTREAM
    match = _RETRY_IN.search(message)
    if retry_after is None and match:
        seconds = float(match.group(1))
        retry_after = seconds / 1000 if match.group(2).lower() == "ms" else seconds
    if not message:
        message = f"upstream error (HTTP {status})" if status else "upstream error"
    return ProxyError(
        kind,
        message,
        status=status,
        param=param,
        retry_after=retry_after,
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


class OpenAIChat(WireProtocol):
    name = NAME

    def parse_request(self, body: JSON) -> Request:
        return parse_request(body)

    def render_request(self, request: Request) -> JSON:
        return render_request(request)

    def parse_response(self, body: JSON) -> CanonicalResponse:
        return parse_response(body)

    def render_response(self, response: CanonicalResponse) -> JSON:
        return render_response(response)

    def stream_decoder(self) -> StreamDecoder:
        # Imported here: the stream module uses this module's wire helpers.
        from cliproxy.protocols.openai_chat_stream import ChatStreamDecoder

        return ChatStreamDecoder()

    def stream_encoder(self, request: Request) -> StreamEncoder:
        from cliproxy.protocols.openai_chat_stream import ChatStreamEncoder

        return ChatStreamEncoder(request)

    def render_error(self, error: ProxyError) -> JSON:
        return error_body(error)

    def parse_error(self, status: int, body: bytes) -> ProxyError:
        return parse_error(status, body)


PROTOCOL = OpenAIChat()
