"""Run an ASGI app with uvicorn on 127.0.0.1 (an OS-chosen port) in a background thread.

The server gets its own event loop, so it works the same from sync tests, async tests and from
inside another server under test. `stop()` first wakes every hung or slow handler (through the
`closing` event), so shutdown never waits on a scripted hang.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

# Set by a scripted response that ends its HTTP exchange on purpose (cut, hang). Uvicorn then
# logs "ASGI callable returned without completing response"; that log is the intended effect,
# not a failure, so it is dropped for the simulators' own requests only.
deliberate_abort: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sim_deliberate_abort", default=False
)


class _DropDeliberateAborts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not deliberate_abort.get()


logging.getLogger("uvicorn.error").addFilter(_DropDeliberateAborts())

_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0


class SimServer:
    """Owns the uvicorn thread. Subclasses provide `build_app()` and may set `base_path`."""

    base_path = ""

    def __init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._port = 0

    def build_app(self) -> ASGIApp:
        raise NotImplementedError

    # ----- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.build_app(),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sock, ready), name=f"{type(self).__name__}", daemon=True
        )
        self._thread.start()
        ready.wait(_START_TIMEOUT)
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.005)
        return self

    def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._closing = asyncio.Event()
            ready.set()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        asyncio.run(main())

    def stop(self) -> None:
        if self._thread is None or self._server is None:
            return
        if self._loop is not None and self._closing is not None:
            try:
                self._loop.call_soon_threadsafe(self._closing.set)
            except RuntimeError:  # the loop already ended
                pass
        self._server.should_exit = True
        self._thread.join(_STOP_TIMEOUT)
        self._thread = None
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def root_url(self) -> str:
        """http://127.0.0.1:PORT, without the API prefix."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """What an upstream's `base-url` setting would hold (root_url + base_path)."""
        return self.root_url + self.base_path

    @property
    def open_connections(self) -> int:
        """Client connections the server holds now (a hung request keeps its one open until
        the client goes away)."""
        return len(self._server.server_state.connections) if self._server is not None else 0

    @property
    def closing(self) -> asyncio.Event:
        """Set when the server is stopping; handlers that wait (hang, delay) watch it."""
        assert self._closing is not None, "server not started"
        return self._closing
