"""A real server on 127.0.0.1 with a config file in tmp_path and the management key set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cliproxy.config import load_config
from cliproxy.management import ManagementMount
from tests.proxy_server import ProxyServer

KEY = "mgmt-secret-1"

CONFIG_TEXT = """\
# cliproxy test config
port: 8317  # not used by the test server

remote-management:
  secret-key: "{key}"  # hashed on first start

# client keys
api-keys:
  - client-key-1  # the first key
  - client-key-2

# upstream keys
claude-api-key:
  - api-key: sk-ant-1
    base-url: http://127.0.0.1:9/claude  # nothing listens on port 9
  - api-key: sk-ant-2

# how requests are spread
routing:
  strategy: round-robin

debug: false
auth-dir: "{auth_dir}"
# end of file
"""


def write_config(tmp_path: Path, key: str = KEY) -> Path:
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_TEXT.format(key=key, auth_dir=auth_dir))
    path.chmod(0o640)
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def proxy(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    with ProxyServer(load_config(config_file), config_path=config_file) as server:
        yield server


@pytest.fixture
def api(proxy: ProxyServer) -> Iterator[httpx.Client]:
    """A client of /v0/management with the key set."""
    with httpx.Client(
        base_url=proxy.base_url + "/v0/management",
        headers={"authorization": f"Bearer {KEY}"},
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def v8(proxy: ProxyServer) -> Iterator[httpx.Client]:
    """A client of /v8/management with the key set (as the reference console's: the key as
    a bearer token)."""
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(
        base_url=proxy.base_url + "/v8/management", headers=headers, timeout=10
    ) as client:
        yield client


def management_mount(app: object, prefix: str = "/v0/management") -> ManagementMount:
    """The mount of one management tree (/v0/management, or /v8/management)."""
    for route in app.routes:  # type: ignore[attr-defined]
        if isinstance(route, ManagementMount) and route.path == prefix:
            return route
    raise AssertionError(f"no management mount at {prefix}")


def assert_comments_kept(text: str) -> None:
    """The comment blocks of CONFIG_TEXT are still there, each right above its key."""
    lines = text.splitlines()
    assert lines[0] == "# cliproxy test config"
    for comment, key in (
        ("# client keys", "api-keys:"),
        ("# upstream keys", "claude-api-key:"),
        ("# how requests are spread", "routing:"),
    ):
        if key.rstrip(":") + ":" not in text:
            continue  # the edit removed the key itself
        position = lines.index(comment)
        assert lines[position + 1].startswith(key), f"{comment!r} no longer above {key!r}:\n{text}"
    assert "# end of file" in lines[-1]
    assert "# not used by the test server" in text
