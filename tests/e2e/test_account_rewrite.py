"""An account file rewritten in place (truncated, then written) keeps serving: while the file
is broken the last good version is used and the management listing says the file is broken;
the finished file then takes effect."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.proxy_server import ProxyServer
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim

MODEL = "claude-sonnet-4-5"
MANAGEMENT_KEY = "rewrite-mgmt-key"
NAME = "claude-rewrite.json"


def account(sim: ClaudeOAuthSim, token: str) -> dict[str, Any]:
    return {
        "type": "claude",
        "access_token": token,
        "refresh_token": "rt-rewrite",
        "email": "rewrite@example.com",
        "expired": "2099-01-01T00:00:00Z",  # never due for a refresh in this test
        "base_url": sim.base_url,
    }


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir()
    with ClaudeOAuthSim() as sim:
        path = auth_dir / NAME
        path.write_text(json.dumps(account(sim, "token-one")))
        path.chmod(0o600)
        config = f'auth-dir: "{auth_dir}"\nremote-management:\n  secret-key: "{MANAGEMENT_KEY}"\n'
        with ProxyServer(config) as proxy:
            yield {"proxy": proxy, "sim": sim, "path": path}


def ask(proxy: ProxyServer) -> httpx.Response:
    return httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


def kept_warning(proxy: ProxyServer) -> bool:
    return any("last good version" in w.reason for w in proxy.state.auth_store.warnings())


def noticed(proxy: ProxyServer) -> bool:
    """The store has read the broken file (whatever it then made of it)."""
    store = proxy.state.auth_store
    return bool(store.errors() or store.warnings())


def listed(proxy: ProxyServer) -> list[dict[str, Any]]:
    reply = httpx.get(
        proxy.base_url + "/v0/management/auth-files",
        headers={"authorization": f"Bearer {MANAGEMENT_KEY}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    files: list[dict[str, Any]] = reply.json()["files"]
    return files


def test_a_file_being_rewritten_keeps_serving_then_its_new_version_applies(
    world: dict[str, Any],
) -> None:
    proxy: ProxyServer = world["proxy"]
    sim: ClaudeOAuthSim = world["sim"]
    path: Path = world["path"]
    assert ask(proxy).status_code == 200
    assert sim.last_request.headers["authorization"] == "Bearer token-one"

    full = json.dumps(account(sim, "token-two"))
    for broken in ("", full[: len(full) // 2]):  # truncated, then half written
        with path.open("w") as handle:  # in place, as `>` in a shell or a naive tool writes
            handle.write(broken)
        wait_for(lambda: noticed(proxy), "the watcher to see the broken file")
        for _ in range(5):
            reply = ask(proxy)
            assert reply.status_code == 200, reply.text
            assert sim.last_request.headers["authorization"] == "Bearer token-one"
            time.sleep(0.1)
        assert kept_warning(proxy) and proxy.state.auth_store.errors() == ()

    (entry,) = listed(proxy)  # one entry: the account, with the file's problem as its message
    assert entry["name"] == NAME and entry["status"] == "active"
    assert "not valid JSON" in entry["status_message"]
    assert "last good version" in entry["status_message"]

    with path.open("w") as handle:
        handle.write(full)

    def uses_new_token() -> bool:
        return ask(proxy).status_code == 200 and (
            sim.last_request.headers["authorization"] == "Bearer token-two"
        )

    wait_for(uses_new_token, "the rewritten file's token to be used")
    assert not kept_warning(proxy)
    (entry,) = listed(proxy)
    assert entry["status_message"] == ""
