"""aiohttp's sock_read timer, armed once per stall instead of once per read.

aiohttp's client protocol cancels its read-timeout timer and starts a new one on every read
from the socket: for a stream whose upstream writes one event every few milliseconds, that is
a timer made and dropped per event, several per cent of the proxy's CPU per streamed chunk.
This protocol notes when the last bytes came instead, and the one timer, when it fires early,
re-arms itself for what is left: the timeout still fires ``sock_read`` seconds after the last
bytes, as aiohttp's own does.

It is installed by replacing the protocol factory of an aiohttp connector (``install``); when
an aiohttp release changes that factory, the connector keeps aiohttp's own protocol.
"""

from __future__ import annotations

import functools
import logging
from typing import cast

import aiohttp
from aiohttp.client_proto import ResponseHandler

log = logging.getLogger(__name__)


class LazyReadTimeout(ResponseHandler):
    _last_read = 0.0

    def _reschedule_timeout(self) -> None:
        timeout = self._read_timeout
        if not timeout:
            self._drop_timeout()
            return
        self._last_read = now = self._loop.time()
        if self._read_timeout_handle is None:
            self._read_timeout_handle = self._loop.call_at(now + timeout, self._read_timer_fired)

    def _read_timer_fired(self) -> None:
        self._read_timeout_handle = None
        timeout = self._read_timeout
        if not timeout:
            return
        due = self._last_read + timeout
        if self._loop.time() < due:
            self._read_timeout_handle = self._loop.call_at(due, self._read_timer_fired)
            return
        self._on_read_timeout()


def install(connector: aiohttp.TCPConnector) -> None:
    """Make ``connector`` build LazyReadTimeout protocols, if its factory is the one known."""
    factory = getattr(connector, "_factory", None)
    if isinstance(factory, functools.partial) and factory.func is ResponseHandler:
        lazy = functools.partial(LazyReadTimeout, *factory.args, **factory.keywords)
        connector._factory = cast("functools.partial[ResponseHandler]", lazy)
    else:
        log.debug("aiohttp's connector has another protocol factory; its own read timer stays")
