"""Run the real cliproxy ASGI app with uvicorn on 127.0.0.1 (port 0) in a background thread."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from cliproxy.app import build_app
from cliproxy.config import default_config, parse_config_text
from cliproxy.config.schema import Config
from cliproxy.server.listener import server_config


class ProxyServer:
    def __init__(
        self,
        config: Config | str | None = None,
        config_path: Path | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        if isinstance(config, str):
            config = parse_config_text(config, "test-config.yaml")
        config = config or default_config()
        self._own_auth_dir: Path | None = None
        if "auth_dir" not in config.model_fields_set:
            # Never read the developer's real accounts (~/.cli-proxy-api) in a test.
            self._own_auth_dir = Path(tempfile.mkdtemp(prefix="auth-"))
            config = config.model_copy(update={"auth_dir": self._own_auth_dir})
        self.config = config
        self.config_path = config_path
        self.app = build_app(self.config, config_path)
        self._ssl = (ssl_certfile, ssl_keyfile)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.app.state.cliproxy

    @property
    def base_url(self) -> str:
        scheme = "https" if self._ssl[0] else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> ProxyServer:
        config = server_config(
            self.app,
            self.config,
            host="127.0.0.1",
            port=0,
            loop="asyncio",
            log_level="warning",
            ssl_certfile=self._ssl[0],
            ssl_keyfile=self._ssl[1],
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), daemon=True
        )  # type: ignore[union-attr]
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("proxy server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._own_auth_dir is not None:
            shutil.rmtree(self._own_auth_dir, ignore_errors=True)

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
