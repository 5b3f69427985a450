"""OpenAI Chat Completions wire helpers: ids, finish reasons, usage and error bodies.

Shared by the protocol facade (``openai_chat``), its stream module (``openai_chat_stream``) and
the legacy completions module; kept apart so the stream module need not import the facade.
"""

from __future__ import annotations

import re
from typing import Any

from cliproxy.model import ErrorKind, FinishReason, ProxyError, Usage, kind_for_status
from cliproxy.model.ids import random_alnum
from cliproxy.protocols.base import JSON

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

# OpenAI's error `type` per kind, shared by Chat and Responses.
ERROR_TYPES = {
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
    return prefix + random_alnum(24)


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
    err_type = ERROR_TYPES.get(kind, "server_error")
    code = _ERROR_CODES.get(kind)
    if kind is ErrorKind.NOT_FOUND and error.param != "model":
        code = "not_found"  # an unknown route is not an unknown model
    if error.code:
        code = error.code  # set by the proxy itself; no guessing from the message
    elif kind is ErrorKind.RATE_LIMIT and "quota" in error.message.lower():
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
