"""Connections: how long a client may take over its request, and how many are served at once.

uvicorn closes idle keep-alive connections, but a client that sends its headers one byte at a
time, or a body that never ends, holds its socket for as long as it likes; a few hundred such
clients exhaust the process's file descriptors. So:

- ``header-read-timeout-seconds``: from the connection's first byte (or the end of the last
  response) to the end of the request headers; past it the connection is closed.
- ``body-read-timeout-seconds``: the whole body must arrive within this; past it the client
  gets 408 in its protocol's error shape.
- ``max-connections``: connections plus requests in flight; uvicorn answers 503 beyond it.
- ``keep-alive-timeout-seconds``: an idle connection between requests is closed after this.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cliproxy.config.schema import Config
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.server.access_log import redact_socket_lines

# The scope key under which the connection serving a request is found (for on_lost).
CONNECTION = "cliproxy.connection"


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose headers do not arrive in time.
    ``header_timeout`` is set on a subclass made per server (see ``protocol_class``).

    It also says when the connection goes: ``on_lost``, if set, is called from
    ``connection_lost``; each request's scope names its connection under ``CONNECTION`` (a weak reference). That
    lets CancelOnHangUp notice a hang-up without a task per request reading the connection."""

    header_timeout: float = 10.0
    on_lost: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_timer()  # a connection that never sends a byte is closed too

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A weak reference: the protocol holds the scope, so the scope holding the protocol
        # would be a reference cycle per connection (freed only by the garbage collector).
        self.scope[CONNECTION] = weakref.ref(self)  # type: ignore[literal-required]
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        # Only while no request of this connection is being served: an answer in progress
        # (a long stream) is not the client's slowness.
        if self.cycle is not None and not self.cycle.response_complete:
            return
        if not self.transport.is_closing():
            self.transport.close()


def protocol_class(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout}
    )


class BodyDeadline:
    """Plain ASGI middleware: the request body must arrive within ``body-read-timeout-seconds``
    of the route's first read (read per request, so a reload changes it)."""

    def __init__(self, app: ASGIApp, timeout_getter: Callable[[], float]) -> None:
        self.app = app
        self.timeout_getter = timeout_getter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, _BodyClock(receive, self.timeout_getter()).receive, send)


class _BodyClock:
    """One request's body deadline: one timer from the first read until the body is in, which
    cancels the route only while it waits in ``receive`` (an ``asyncio.timeout`` around each
    read cost a timer and a context per read, several per cent of a small call's CPU)."""

    __slots__ = (
        "body_done",
        "deadline",
        "expired",
        "fired",
        "inner",
        "receiving",
        "task",
        "timeout",
        "timer",
    )

    def __init__(self, inner: Receive, timeout: float) -> None:
        self.inner = inner
        self.timeout = timeout
        self.deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[Any] | None = None
        self.body_done = False
        self.receiving = False
        self.expired = False  # the deadline passed
        self.fired = False  # and cancelled a read waiting for the body

    async def receive(self) -> Message:
        if self.body_done:
            return await self.inner()
        if self.deadline is None:
            loop = asyncio.get_running_loop()
            self.deadline = loop.time() + self.timeout
            self.task = asyncio.current_task()
            self.timer = loop.call_at(self.deadline, self._expire)
        if self.expired:
            message = await self._late_read(self.deadline)
        else:
            self.receiving = True
            try:
                message = await self.inner()
            except asyncio.CancelledError:
                if self.fired and self.task is not None and self.task.uncancel() == 0:
                    raise self._too_late() from None
                raise
            finally:
                self.receiving = False
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
            if self.timer is not None:
                self.timer.cancel()
        return message

    def _expire(self) -> None:
        self.expired = True
        if self.receiving and self.task is not None:
            self.fired = True
            self.task.cancel()

    async def _late_read(self, deadline: float) -> Message:
        """A read after the deadline passed between reads: answered if the bytes are already
        here, refused if it would have to wait (as a timeout around the read would)."""
        try:
            async with asyncio.timeout_at(deadline):
                return await self.inner()
        except TimeoutError:
            raise self._too_late() from None

    def _too_late(self) -> ProxyError:
        return ProxyError(
            ErrorKind.TIMEOUT,
            f"the request body did not arrive within {self.timeout:g} s "
            "(body-read-timeout-seconds)",
            status=408,
        )


def server_config(app: ASGIApp, config: Config, **overrides: Any) -> uvicorn.Config:
    """The uvicorn settings every cliproxy server runs with (tests pass host, port, loop)."""
    redact_socket_lines()
    settings: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "http": protocol_class(config.header_read_timeout_seconds),
        # Our own access log (server/access_log.py) redacts keys in query strings; uvicorn's
        # prints them whole.
        "access_log": False,
        "log_level": "info",
        "timeout_keep_alive": config.keep_alive_timeout_seconds,
        # uvicorn refuses a request once the open connections, its own included, reach the
        # limit: one more, so that max-connections clients are all served.
        "limit_concurrency": config.max_connections + 1,
        # A Responses WebSocket frame carries a whole request body (server/responses_ws.py):
        # the same limit as an HTTP body; a larger frame is closed with 1009 (message too big).
        "ws_max_size": config.request_body_limit_bytes,
        "ssl_certfile": config.tls.cert if config.tls.enable else None,
        "ssl_keyfile": config.tls.key if config.tls.enable else None,
    }
    settings.update(overrides)
    return uvicorn.Config(app, **settings)
