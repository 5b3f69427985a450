"""Gemini error bodies: ``{"error": {"code", "message", "status", "details"}}`` (google.rpc.Status
in its JSON form) ↔ ProxyError."""

from __future__ import annotations

import re
from typing import Any

import orjson

from cliproxy.model import ErrorKind, ProxyError, kind_for_status, loads_upstream

JSON = dict[str, Any]

_STATUS_BY_KIND = {
    ErrorKind.INVALID_REQUEST: "INVALID_ARGUMENT",
    ErrorKind.AUTHENTICATION: "UNAUTHENTICATED",
    ErrorKind.PERMISSION: "PERMISSION_DENIED",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.TOO_LARGE: "INVALID_ARGUMENT",
    ErrorKind.RATE_LIMIT: "RESOURCE_EXHAUSTED",
    ErrorKind.SERVER: "INTERNAL",
    ErrorKind.UPSTREAM: "INTERNAL",
    ErrorKind.OVERLOADED: "UNAVAILABLE",
    ErrorKind.TIMEOUT: "DEADLINE_EXCEEDED",
}
# For error objects without a numeric code (the status string is all we have).
_HTTP_BY_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def render_error(error: ProxyError) -> JSON:
    body: JSON = {
        "code": error.status,
        "message": error.message,
        "status": _STATUS_BY_KIND.get(error.kind, "INTERNAL"),
    }
    if error.retry_after is not None:
        # Gemini CLI and the SDKs read the retry delay from RetryInfo.
        delay = f"{error.retry_after:g}s"
        body["details"] = [{"@type": RETRY_INFO, "retryDelay": delay}]
    return {"error": body}


def _retry_delay(value: Any) -> float | None:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", value)
        return float(match.group(1)) if match else None
    if isinstance(value, dict):  # the proto Duration object form
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        if isinstance(seconds, int | float | str) and isinstance(nanos, int | float):
            try:
                return float(seconds) + float(nanos) / 1e9
            except ValueError:
                return None
    return None


def error_from_object(error: Any, http_status: int) -> ProxyError:
    """A ProxyError for one ``error`` object (from an error body or a mid-stream chunk).
    ``http_status`` is used when the object carries no code of its own, or 200 mid-stream."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = error.get("code")
    status_name = error.get("status")
    if isinstance(code, int) and 400 <= code < 600:
        status = code
    elif http_status >= 400:
        status = http_status
    else:
        status = _HTTP_BY_STATUS.get(str(status_name), 502)
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"upstream error {status} {status_name or ''}".strip()
    retry_after = None
    details = error.get("details")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
                retry_after = _retry_delay(detail.get("retryDelay"))
    return ProxyError(kind_for_status(status), message, status=status, retry_after=retry_after)


def parse_error(status: int, body: bytes) -> ProxyError:
    try:
        data = loads_upstream(body, "upstream error")
    except (orjson.JSONDecodeError, ProxyError):  # too deep to read: reported as text
        text = body.decode("utf-8", errors="replace").strip()
        return ProxyError(kind_for_status(status), text or f"upstream HTTP {status}", status=status)
    if isinstance(data, list) and data:  # streamGenerateContent without alt=sse wraps errors
        data = data[0]
    if isinstance(data, dict) and "error" in data:
        return error_from_object(data["error"], status)
    return ProxyError(kind_for_status(status), f"upstream HTTP {status}", status=status)
