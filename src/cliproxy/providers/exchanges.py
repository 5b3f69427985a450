"""What the request log records of one client request while it runs: its id, and every upstream
exchange sent for it (server/request_log.py sets both; docs/logs.md).

Both are context variables, so the code that sends (``UpstreamClient.send``) and reads error
replies (server/upstream_errors.py) need not be handed anything: while no request is being
recorded ``EXCHANGES.get()`` is None and they do nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

from cliproxy.providers.base import UpstreamRequest

# The 8 hex characters naming the request (its log file and its main-log lines).
REQUEST_ID: ContextVar[str | None] = ContextVar("cliproxy_request_id", default=None)


class Exchange:
    """One request cliproxy sent upstream, and what came back (or why nothing did)."""

    __slots__ = (
        "body",
        "error",
        "error_body",
        "headers",
        "method",
        "reply_headers",
        "status",
        "url",
    )

    def __init__(self, request: UpstreamRequest) -> None:
        self.method = request.method
        self.url = request.url
        self.headers = list(request.headers.items())
        self.body = request.body
        self.status = 0  # no reply (yet)
        self.reply_headers: list[tuple[str, str]] = []
        self.error = ""  # the transport's failure, when no reply came
        self.error_body: bytes | None = None  # an error reply's body, once read

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        self.status = status
        self.reply_headers = list(headers.items())


# The current request's exchanges, or None when it is not being recorded.
EXCHANGES: ContextVar[list[Exchange] | None] = ContextVar("cliproxy_exchanges", default=None)


def opened(request: UpstreamRequest) -> Exchange | None:
    """A new exchange on the current request's record, or None when nothing records."""
    book = EXCHANGES.get()
    if book is None:
        return None
    exchange = Exchange(request)
    book.append(exchange)
    return exchange


def note_error_body(raw: bytes) -> None:
    """The body of the error reply just read belongs to the latest exchange."""
    book = EXCHANGES.get()
    if book:
        book[-1].error_body = raw
