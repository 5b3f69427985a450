"""Small shared pieces of the Anthropic Messages protocol: input checks, ids, content blocks.

Used by the request, response and stream halves of the protocol so that the wire shape of a block
(a tool_use ``input`` object, a thinking block, a message id) is decided in one place.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from cliproxy.model import (
    ErrorKind,
    FinishReason,
    ReasoningPart,
    ToolCallPart,
    Usage,
    loads_limited,
)
from cliproxy.model.ids import random_hex
from cliproxy.protocols.fields import expect_object
from cliproxy.protocols.signatures import carried_part, foreign, wrap_part

NAME = "anthropic"
JSON = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Input checks (the generic ones are in protocols.fields)


def optional_cache_control(block: JSON, path: str) -> JSON | None:
    value = block.get("cache_control")
    return None if value is None else expect_object(value, f"{path}.cache_control")


# ---------------------------------------------------------------------------------------------
# Ids


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def message_id(raw: str | None) -> str:
    """A ``msg_`` id: kept when it already is one, derived from a foreign id otherwise."""
    if raw and raw.startswith("msg_"):
        return raw
    cleaned = _ID_UNSAFE.sub("_", raw or "")
    return "msg_" + (cleaned or random_hex(24))


def tool_use_id(raw: str | None) -> str:
    """Anthropic only accepts ``[A-Za-z0-9_-]+`` tool ids; ids from other vendors are made safe
    (the same mapping is applied to tool_result ids, so calls and results still match)."""
    cleaned = _ID_UNSAFE.sub("_", raw or "")
    return cleaned or "toolu_" + random_hex(24)


# ---------------------------------------------------------------------------------------------
# Blocks shared by requests and responses


def tool_input(arguments: str, kind: ErrorKind = ErrorKind.INVALID_REQUEST) -> JSON:
    """The ``input`` object of a tool_use block from canonical arguments JSON text.

    Anthropic needs an object. Empty text means no arguments. Text that is not a JSON object
    (a model that produced broken JSON, or a bare array) is kept as ``{"_raw": text}`` rather than
    silently replaced by ``{}``, so the tool and the model both still see what was produced.
    Text nested past MAX_JSON_DEPTH is refused with a ProxyError of ``kind``: the client's
    (400) in a request, the upstream's (502) in a reply.
    """
    if not arguments.strip():
        return {}
    try:
        value = loads_limited(arguments, "tool call arguments", kind)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


def tool_use_block(part: ToolCallPart, kind: ErrorKind = ErrorKind.INVALID_REQUEST) -> JSON:
    """A tool_use block; ``kind`` as for tool_input (UPSTREAM when rendering a reply)."""
    return {
        "type": "tool_use",
        "id": tool_use_id(part.id),
        "name": part.name,
        "input": tool_input(part.arguments, kind),
    }


def reasoning_block(part: ReasoningPart, *, require_signature: bool) -> JSON | None:
    """thinking / redacted_thinking for ``part``. Upstream requests (``require_signature``) only
    carry blocks Anthropic signed itself: anything else would be rejected as an invalid
    signature, so it is dropped (never forged). Replies to a client carry another vendor's
    signature/blob wrapped in the signature field (see signatures.py), so it comes back with the
    client's next request and can be returned to its issuer."""
    if not require_signature and foreign(part.issuer, NAME):
        return {"type": "thinking", "thinking": part.text, "signature": wrap_part(part) or ""}
    if part.redacted:
        if part.encrypted and (part.issuer == NAME or not require_signature):
            return {"type": "redacted_thinking", "data": part.encrypted}
        return None
    if require_signature and (part.issuer != NAME or not part.signature):
        return None
    return {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}


def parse_reasoning_block(kind: str, text: str, value: str | None) -> ReasoningPart:
    """A thinking (``value`` = signature) or redacted_thinking (``value`` = data) block from a
    client or upstream. A wrapped value is another vendor's reasoning that rode through this
    protocol: it gets its issuer back; anything else is Anthropic's own."""
    carried = carried_part(value, text)
    if carried is not None:
        return carried
    if kind == "redacted_thinking":
        return ReasoningPart(encrypted=value or "", redacted=True, issuer=NAME)
    return ReasoningPart(text=text, signature=value or None, issuer=NAME)


# ---------------------------------------------------------------------------------------------
# Stop reasons, usage and error types

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "stop_sequence": FinishReason.STOP_SEQUENCE,
    "tool_use": FinishReason.TOOL_CALLS,
    "pause_turn": FinishReason.PAUSE,
    "refusal": FinishReason.REFUSAL,
}

_WIRE_STOP_REASONS: dict[FinishReason, str] = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.STOP_SEQUENCE: "stop_sequence",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.PAUSE: "pause_turn",
    FinishReason.REFUSAL: "refusal",
    FinishReason.CONTENT_FILTER: "refusal",
    FinishReason.ERROR: "end_turn",
}


def finish_reason(stop_reason: Any) -> FinishReason:
    return STOP_REASONS.get(stop_reason, FinishReason.STOP) if stop_reason else FinishReason.STOP


def stop_reason(reason: FinishReason, has_tool_calls: bool) -> str:
    # Some upstreams (Gemini) end a tool-calling turn with a plain STOP; Claude Code only runs the
    # tools when the stop reason says tool_use.
    if has_tool_calls and reason is FinishReason.STOP:
        return "tool_use"
    return _WIRE_STOP_REASONS[reason]


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_usage(raw: Any) -> Usage:
    """Anthropic usage → canonical: input_tokens there excludes cache reads and writes."""
    if not isinstance(raw, dict):
        return Usage()
    cached = _count(raw.get("cache_read_input_tokens"))
    created = _count(raw.get("cache_creation_input_tokens"))
    details = raw.get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=_count(raw.get("input_tokens")) + cached + created,
        output_tokens=_count(raw.get("output_tokens")),
        cached_tokens=cached,
        cache_creation_tokens=created,
        reasoning_tokens=thinking,
    )


def render_usage(usage: Usage) -> JSON:
    uncached = usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens
    wire: JSON = {
        "input_tokens": max(uncached, 0),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }
    if usage.reasoning_tokens:
        wire["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return wire


ERROR_TYPES: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.SERVER: "api_error",
    ErrorKind.UPSTREAM: "api_error",
    ErrorKind.OVERLOADED: "overloaded_error",
    ErrorKind.TIMEOUT: "timeout_error",
}

ERROR_KINDS: dict[str, ErrorKind] = {
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "billing_error": ErrorKind.PERMISSION,
    "not_found_error": ErrorKind.NOT_FOUND,
    "request_too_large": ErrorKind.TOO_LARGE,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "api_error": ErrorKind.SERVER,
    "overloaded_error": ErrorKind.OVERLOADED,
    "timeout_error": ErrorKind.TIMEOUT,
}


def error_body(kind: ErrorKind, message: str) -> JSON:
    return {"type": "error", "error": {"type": ERROR_TYPES[kind], "message": message}}
