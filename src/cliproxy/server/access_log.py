"""One line per request when ``debug`` is on, with secrets in the query string redacted.

uvicorn's own access log prints the query string whole, so a Gemini-style ``?key=`` client
key would land in the log in full; it stays off and this line takes its place.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("cliproxy.access")

# Query parameters that carry credentials in the protocols we serve (Gemini's `key`) or in
# OAuth redirects (`code`, `state`) and tokens in general.
_SECRET_PARAMS = re.compile(
    r"(?i)(^|&)((?:key|api[-_]?key|access[-_]?token|token|code|state|secret|password)=)[^&]*"
)


def redacted_query(query: str) -> str:
    return _SECRET_PARAMS.sub(r"\1\2<redacted>", query)


class _SocketLineRedactor(logging.Filter):
    """uvicorn writes its own line for each WebSocket upgrade ('"WebSocket /path?query"
    [accepted]') with the query string whole, so a `?key=` client key would reach the log:
    the same redaction as the access line."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(record.msg, str)
            and record.msg.startswith('%s - "WebSocket %s"')
            and isinstance(args, tuple)
            and len(args) >= 2
        ):
            path, sep, query = str(args[1]).partition("?")
            if sep:
                record.args = (args[0], f"{path}?{redacted_query(query)}", *args[2:])
        return True


def redact_socket_lines() -> None:
    """Install the redaction on uvicorn's logger (once per process)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _SocketLineRedactor) for f in logger.filters):
        logger.addFilter(_SocketLineRedactor())


class AccessLog:
    """Plain ASGI middleware, outermost, so refusals by every other layer are logged too."""

    def __init__(self, app: ASGIApp, enabled: Callable[[], bool]) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.enabled():
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101  # the line is written when the socket closes
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{redacted_query(query)}" if query else "")
            log.info(
                '%s - "%s %s HTTP/%s" %s %.1f ms',
                f"{client[0]}:{client[1]}" if client else "-",
                scope.get("method", "GET"),  # a WebSocket upgrade is a GET
                target,
                scope.get("http_version", "1.1"),
                status or "-",
                (perf_counter() - started) * 1000,
            )
