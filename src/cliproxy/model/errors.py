"""One error type for everything a client may be told, whatever protocol it speaks.

Each wire protocol renders a ProxyError in its own error JSON (see ``Protocol.render_error``);
the ``kind`` decides the vendor error type/status string, ``status`` the HTTP status.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID_REQUEST = "invalid_request"  # 400
    AUTHENTICATION = "authentication"  # 401
    PERMISSION = "permission"  # 403
    NOT_FOUND = "not_found"  # 404
    TOO_LARGE = "request_too_large"  # 413
    RATE_LIMIT = "rate_limit"  # 429
    SERVER = "server"  # 500
    UPSTREAM = "upstream"  # 502: the upstream sent something unusable or hung up
    OVERLOADED = "overloaded"  # 503 / 529
    TIMEOUT = "timeout"  # 504


DEFAULT_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.SERVER: 500,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.OVERLOADED: 503,
    ErrorKind.TIMEOUT: 504,
}


def kind_for_status(status: int) -> ErrorKind:
    """The error kind an upstream HTTP status most likely means."""
    if status == 400 or status == 422:
        return ErrorKind.INVALID_REQUEST
    if status == 401:
        return ErrorKind.AUTHENTICATION
    if status == 403:
        return ErrorKind.PERMISSION
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 413:
        return ErrorKind.TOO_LARGE
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if status == 504:
        return ErrorKind.TIMEOUT
    if 400 <= status < 500:
        return ErrorKind.INVALID_REQUEST
    return ErrorKind.UPSTREAM if status in (502,) else ErrorKind.SERVER


class ProxyError(Exception):
    """An error to report to the client. ``param`` names the offending request field, if any."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status if status is not None else DEFAULT_STATUS[kind]
        self.param = param
        self.retry_after = retry_after
        # A machine-readable code for the OpenAI shapes (e.g. "model_not_allowed") where the
        # kind's own code would not say enough.
        self.code = code

    def __repr__(self) -> str:
        return f"ProxyError({self.kind.value}, {self.status}, {self.message!r})"


def invalid(message: str, param: str | None = None) -> ProxyError:
    """Shorthand for a 400 about the client's request; protocol parsers raise this."""
    return ProxyError(ErrorKind.INVALID_REQUEST, message, param=param)
