"""Run the real cliproxy app on 127.0.0.1 (port 0) in a background thread, through the same
embedding API a program would use (cliproxy.embed.Proxy)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx

from cliproxy.config import default_config, parse_config_text
from cliproxy.config.schema import Config
from cliproxy.embed import Proxy


class ProxyServer(Proxy):
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
        # Tests never serve the config's own TLS settings unless they hand in a cert.
        tls = {"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile}
        super().__init__(config, config_path=config_path, port=0, **tls)

    def stop(self) -> None:
        super().stop()
        if self._own_auth_dir is not None:
            shutil.rmtree(self._own_auth_dir, ignore_errors=True)

    def __enter__(self) -> ProxyServer:
        self.start()
        return self


def management_client(server: Proxy, key: str) -> httpx.Client:
    """A client of the server's /v0/management with the management key set."""
    return httpx.Client(
        base_url=server.base_url + "/v0/management",
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )
