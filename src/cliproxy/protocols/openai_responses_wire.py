"""OpenAI Responses wire helpers: ids, usage, output items, the response object and errors.

Shared by the protocol facade (``openai_responses``) and its stream module
(``openai_responses_stream``); kept apart so the stream module need not import the facade.
"""

from __future__ import annotations

import re
import time
from typing import Any

from cliproxy.model import ErrorKind, FinishReason, ProxyError, ReasoningPart, Usage
from cliproxy.model.ids import random_hex
from cliproxy.protocols.openai_chat_wire import ERROR_TYPES
from cliproxy.protocols.openai_responses_request import NAME
from cliproxy.protocols.signatures import carried_part

JSON = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_hex(32)}"


def response_id(canonical_id: str) -> str:
    """Responses ids start with resp_; keep an upstream id recognisable inside ours."""
    if canonical_id.startswith("resp_"):
        return canonical_id
    return f"resp_{canonical_id}" if canonical_id else new_id("resp")


# ---------------------------------------------------------------------------------------------
# usage


def render_usage(usage: Usage) -> JSON:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_creation_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def parse_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    inputs = raw.get("input_tokens_details") or {}
    outputs = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        cached_tokens=_int(inputs.get("cached_tokens")) if isinstance(inputs, dict) else 0,
        cache_creation_tokens=(
            _int(inputs.get("cache_write_tokens")) if isinstance(inputs, dict) else 0
        ),
        reasoning_tokens=_int(outputs.get("reasoning_tokens")) if isinstance(outputs, dict) else 0,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# ---------------------------------------------------------------------------------------------
# output items and the response object


def message_item(item_id: str, text: str, status: str = "completed") -> JSON:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [output_text_part(text)],
    }


def output_text_part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> JSON:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(item_id: str, text: str, encrypted: str | None) -> JSON:
    item: JSON = {
        "type": "reasoning",
        "id": item_id,
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if encrypted:
        item["encrypted_content"] = encrypted
    return item


def reasoning_item_id(part_id: str | None) -> str:
    return part_id if part_id and part_id.startswith("rs_") else new_id("rs")


def terminal_state(reason: FinishReason) -> tuple[str, JSON | None]:
    """The response status and incomplete_details for a canonical finish reason."""
    if reason is FinishReason.LENGTH:
        return "incomplete", {"reason": "max_output_tokens"}
    if reason is FinishReason.CONTENT_FILTER:
        return "incomplete", {"reason": "content_filter"}
    if reason is FinishReason.ERROR:
        return "failed", None
    return "completed", None


def response_object(
    resp_id: str,
    model: str,
    created_at: int,
    status: str,
    output: list[JSON],
    usage: Usage | None,
    *,
    incomplete_details: JSON | None = None,
    error: JSON | None = None,
) -> JSON:
    """A full Response object, with every field the openai SDK's Response type requires."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": render_usage(usage) if usage is not None else None,
        "user": None,
        "metadata": {},
    }


def parse_reasoning_item(item: JSON) -> ReasoningPart:
    texts = [s.get("text") for s in item.get("summary") or [] if isinstance(s, dict)]
    if not any(texts):  # open-weight models report raw reasoning as content instead
        texts = [c.get("text") for c in item.get("content") or [] if isinstance(c, dict)]
    encrypted = item.get("encrypted_content")
    text = "\n\n".join(t for t in texts if isinstance(t, str) and t)
    carried = carried_part(encrypted, text)
    if carried is not None:
        return carried
    return ReasoningPart(
        text=text,
        encrypted=encrypted if isinstance(encrypted, str) and encrypted else None,
        issuer=NAME,
        id=item.get("id") if isinstance(item.get("id"), str) else None,
    )


def finish_reason_of(body: JSON, saw_tool_call: bool) -> FinishReason:
    details = body.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if body.get("status") == "incomplete" or reason:
        if reason == "content_filter":
            return FinishReason.CONTENT_FILTER
        return FinishReason.LENGTH
    return FinishReason.TOOL_CALLS if saw_tool_call else FinishReason.STOP


# ---------------------------------------------------------------------------------------------
# errors


# Codes Codex CLI reacts to in response.failed (retry delay, context-window handling).
_FAILED_CODES = {
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
    ErrorKind.TOO_LARGE: "context_length_exceeded",
    ErrorKind.OVERLOADED: "server_is_overloaded",
    ErrorKind.INVALID_REQUEST: "invalid_prompt",
}

_CODE_KINDS = {
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.RATE_LIMIT,
    "context_length_exceeded": ErrorKind.TOO_LARGE,
    "server_is_overloaded": ErrorKind.OVERLOADED,
    "slow_down": ErrorKind.OVERLOADED,
    "invalid_prompt": ErrorKind.INVALID_REQUEST,
}

_RETRY_IN = re.compile(r"try again in\s+([0-9.]+)\s*(ms|s)\b", re.IGNORECASE)


def failed_error(error: ProxyError) -> JSON:
    """response.error for a response.failed event. Codex reads the retry delay from the
    "Please try again in Ns" wording, so a known retry hint is spelled out that way."""
    message = error.message
    if error.retry_after is not None and not _RETRY_IN.search(message):
        message = f"{message} Please try again in {error.retry_after:g}s."
    return {"code": _FAILED_CODES.get(error.kind, "server_error"), "message": message}


def error_from_wire(raw: Any, default: ErrorKind, status: int | None = None) -> ProxyError:
    """A ProxyError from an {message, code, type, param} object (error bodies and events)."""
    if not isinstance(raw, dict):
        return ProxyError(default, "upstream reported an error", status=status)
    message = raw.get("message")
    message = message if isinstance(message, str) and message else "upstream reported an error"
    code = raw.get("code")
    kind = _CODE_KINDS.get(code, default) if isinstance(code, str) else default
    retry = _RETRY_IN.search(message)
    retry_after = None
    if retry is not None:
        retry_after = float(retry.group(1)) / (1000 if retry.group(2).lower() == "ms" else 1)
    # The ChatGPT Codex backend's usage_limit_reached carries the reset time explicitly.
    resets_in = raw.get("resets_in_seconds")
    resets_at = raw.get("resets_at")
    if isinstance(resets_in, int | float) and not isinstance(resets_in, bool):
        retry_after = float(resets_in)
    elif isinstance(resets_at, int | float) and not isinstance(resets_at, bool):
        retry_after = max(0.0, float(resets_at) - time.time())
    if raw.get("type") == "usage_limit_reached":
        kind = ErrorKind.RATE_LIMIT
    param = raw.get("param") if isinstance(raw.get("param"), str) else None
    return ProxyError(kind, message, status=status, param=param, retry_after=retry_after)


def error_body(error: ProxyError) -> JSON:
    """The error body of a non-streaming reply, as the openai SDK reads it."""
    code = _FAILED_CODES.get(error.kind) if error.kind is not ErrorKind.INVALID_REQUEST else None
    code = error.code or code
    return {
        "error": {
            "message": error.message,
            "type": ERROR_TYPES[error.kind],
            "param": error.param,
            "code": code,
        }
    }
