"""Embedding cliproxy in another program: the small API docs/library.md describes.

    from cliproxy import embed
    from cliproxy.config import parse_config_text

    proxy = embed.Proxy(parse_config_text("demo: true\\n", "inline"), port=0).start()
    print(proxy.base_url)            # http://127.0.0.1:<port>
    proxy.subscribe(print)           # every AttemptOutcome and RequestOutcome
    ...
    proxy.stop()

``build_app`` (cliproxy.app) is the ASGI application for hosts that run their own server;
``Proxy`` runs it with cliproxy's own server settings (server_config: header and body deadlines,
connection limit) on a background thread, for scripts and tests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from cliproxy.app import build_app
from cliproxy.config.schema import Config
from cliproxy.server.listener import server_config
from cliproxy.state import AppState

__all__ = ["Proxy", "build_app"]

START_TIMEOUT = 10.0


class _EveryEvent:
    """A plain function as an observer of both event kinds."""

    def __init__(self, function: Callable[[Any], object]) -> None:
        self.function = function

    def on_attempt(self, event: Any) -> None:
        self.function(event)

    def on_request(self, event: Any) -> None:
        self.function(event)

    def __repr__(self) -> str:
        return f"observer {getattr(self.function, '__qualname__', self.function)!r}"


class Proxy:
    """One cliproxy server on a background thread. ``port=0`` picks a free port."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        **server_options: Any,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.app: Starlette = build_app(config, config_path)
        self._host = host
        self._port = config.port if port is None else port
        self._options = server_options
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.cliproxy
        return state

    @property
    def base_url(self) -> str:
        tls = self._options.get("ssl_certfile", self.config.tls.enable)
        scheme = "https" if tls else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self.port}"

    def subscribe(self, observer: object) -> object:
        """Have ``observer`` see every outcome event (cliproxy.usage.events): an object with
        ``on_attempt`` and/or ``on_request`` hooks (a QueuedObserver for slow ones), or a plain
        function, which gets both kinds. Returns what was subscribed (for unsubscribe)."""
        hub = self.state.observers
        if callable(observer) and not any(
            hasattr(observer, hook) for hook in ("on_attempt", "on_request", "on_refresh")
        ):
            observer = _EveryEvent(observer)
        hub.subscribe(observer)
        return observer

    def unsubscribe(self, observer: object) -> None:
        self.state.observers.unsubscribe(observer)

    def start(self) -> Proxy:
        settings = {"log_level": "warning", "loop": "asyncio", **self._options}
        config = server_config(self.app, self.config, host=self._host, port=self._port, **settings)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve()), name="cliproxy", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("cliproxy did not start (see its log)")
            time.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
