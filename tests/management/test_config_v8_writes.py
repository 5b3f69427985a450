"""Management writes to a config.yaml in the reference system's v8 layout keep it v8: a setting
goes to its v8 path (never a legacy twin the v8 path would shadow), a key the file lacks goes
where the v8 layout keeps it, provider lists stay api-keys groups, comments stay, and the
plaintext secret under management: is hashed at start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from cliproxy.config import load_config
from tests.management.conftest import KEY
from tests.proxy_server import ProxyServer

V8_TEXT = """\
# a CLIProxyAPI v8 config
config-version: 8
server:
  port: 8317  # not used by the test server
management:
  secret-key: "{key}"
access:
  api-keys: [client-key-1]
routing:
  strategy: round-robin
  retry:
    request-retry: 1  # the v8 path
oauth:
  auth-dir: "{auth_dir}"
api-keys:
  claude:
    - base-url: http://127.0.0.1:9/claude
      keys: [sk-ant-1, sk-ant-2]
# end of file
"""


@pytest.fixture
def v8_file(tmp_path: Path) -> Path:
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(V8_TEXT.format(key=KEY, auth_dir=auth_dir))
    return path


@pytest.fixture
def api(v8_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    with ProxyServer(load_config(v8_file), config_path=v8_file) as server:
        headers = {"authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=server.base_url + "/v0/management", headers=headers) as c:
            yield c


def on_disk(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def test_a_setting_is_written_to_its_v8_path_and_applied(api: httpx.Client, v8_file: Path) -> None:
    assert api.put("/request-retry", json={"value": 4}).status_code == 200
    data = on_disk(v8_file)
    assert data["routing"]["retry"]["request-retry"] == 4
    assert "request-retry" not in data  # no legacy twin for the v8 path to shadow
    assert api.get("/request-retry").json()["request-retry"] == 4
    text = v8_file.read_text()
    assert "# a CLIProxyAPI v8 config" in text and "# end of file" in text
    assert data["config-version"] == 8


def test_a_key_the_file_lacks_goes_where_the_v8_layout_keeps_it(
    api: httpx.Client, v8_file: Path
) -> None:
    assert api.put("/debug", json={"value": True}).status_code == 200
    data = on_disk(v8_file)
    assert data["observability"]["logs"]["debug"] is True and "debug" not in data
    assert load_config(v8_file).debug is True


def test_provider_lists_stay_groups(api: httpx.Client, v8_file: Path) -> None:
    listed = api.get("/claude-api-key").json()["claude-api-key"]
    assert [entry["api-key"] for entry in listed] == ["sk-ant-1", "sk-ant-2"]
    assert api.delete("/claude-api-key", params={"index": 0}).status_code == 200
    data = on_disk(v8_file)
    assert "claude-api-key" not in data
    assert [g["keys"] for g in data["api-keys"]["claude"]] == [["sk-ant-2"]]
    assert [k.api_key for k in load_config(v8_file).claude_api_key] == ["sk-ant-2"]


def test_the_secret_under_management_is_hashed_at_start(api: httpx.Client, v8_file: Path) -> None:
    secret = on_disk(v8_file)["management"]["secret-key"]
    assert secret != KEY and secret.startswith("$2")
    assert "remote-management" not in on_disk(v8_file)
