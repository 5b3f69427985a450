"""What the vendors say about each account: model lists replace the built-in tables in
/v1/models, quota windows are read only for accounts in use, show in the management quota view,
and end a cooldown as soon as the vendor's window has reset."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.waiting import wait_until as _wait
from tests.proxy_server import ProxyServer
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim
from tests.simulators.codex_backend_sim import CodexBackendSim, usage_limit_reply

FAR = "2099-01-01T00:00:00Z"
SECRET = "mgmt-secret"


@pytest.fixture
def codex() -> Iterator[CodexBackendSim]:
    with CodexBackendSim(
        api_keys={"codex-at"}, models=["gpt-5.5", "gpt-6.2-codex", "gpt-7-preview"]
    ) as sim:
        yield sim


@pytest.fixture
def claude() -> Iterator[ClaudeOAuthSim]:
    with ClaudeOAuthSim(api_keys={"claude-at"}, models=["claude-opus-5", "claude-new-6"]) as sim:
        yield sim


def _proxy(tmp_path: Path, codex: CodexBackendSim, claude: ClaudeOAuthSim) -> ProxyServer:
    accounts = {
        "codex-a.json": {
            "type": "codex",
            "access_token": "codex-at",
            "refresh_token": "rt",
            "account_id": "acct-1",
            "email": "c@example.com",
            "expired": FAR,
            "base_url": codex.base_url,
        },
        "claude-a.json": {
            "type": "claude",
            "access_token": "claude-at",
            "refresh_token": "rt",
            "email": "c@example.com",
            "expired": FAR,
            "base_url": claude.base_url,
        },
    }
    for name, raw in accounts.items():
        (tmp_path / name).write_text(json.dumps(raw))
    config = f"""
auth-dir: {tmp_path}
quota-refresh-seconds: 1
request-retry: 0
remote-management:
  secret-key: {SECRET}
"""
    return ProxyServer(config)


def _listed(proxy: ProxyServer) -> set[str]:
    return {m["id"] for m in httpx.get(proxy.base_url + "/v1/models").json()["data"]}


def test_model_lists_come_from_the_vendors(
    tmp_path: Path, codex: CodexBackendSim, claude: ClaudeOAuthSim
) -> None:
    codex.models.append("gpt-9-future")  # above cliproxy's client version: hidden by the backend
    from tests.simulators import codex_backend_sim

    codex_backend_sim.MIN_CLIENT_VERSION["gpt-9-future"] = "9.0.0"
    try:
        with _proxy(tmp_path, codex, claude) as proxy:
            want = {"gpt-5.5", "gpt-6.2-codex", "gpt-7-preview", "claude-opus-5", "claude-new-6"}
            assert _wait(lambda: want <= _listed(proxy)), _listed(proxy)
            listed = _listed(proxy)
            assert "gpt-9-future" not in listed
            # The built-in tables no longer speak for these accounts.
            assert "claude-haiku-4-5" not in listed and "gpt-6.1-mini" not in listed
            models_read = [r for r in codex.reads if r.path.endswith("/codex/models")]
            assert models_read[0].query["client_version"] == "0.169.0"
            assert models_read[0].headers["chatgpt-account-id"] == "acct-1"
    finally:
        del codex_backend_sim.MIN_CLIENT_VERSION["gpt-9-future"]


def test_quota_is_read_only_for_accounts_in_use_and_shown(
    tmp_path: Path, codex: CodexBackendSim, claude: ClaudeOAuthSim
) -> None:
    with _proxy(tmp_path, codex, claude) as proxy:
        time.sleep(2.5)  # several passes of the watch
        assert not [r for r in codex.reads if r.path.endswith("/wham/usage")]
        assert not [r for r in claude.reads if r.path.endswith("/oauth/usage")]
        chat = {"model": "claude-opus-5", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(proxy.base_url + "/v1/chat/completions", json=chat).status_code == 200
        assert _wait(lambda: any(r.path == "/api/oauth/usage" for r in claude.reads))
        usage_read = next(r for r in claude.reads if r.path == "/api/oauth/usage")
        assert usage_read.headers["anthropic-beta"] == "oauth-2025-04-20"
        view = httpx.get(
            proxy.base_url + "/v0/management/quota",
            headers={"authorization": f"Bearer {SECRET}"},
        ).json()
        entry = next(a for a in view["accounts"] if a["name"] == "claude-a.json")
        windows = {w["name"]: w for w in entry["vendor_quota"]["windows"]}
        assert windows["five_hour"]["used_percent"] == 20.0
        assert windows["five_hour"]["resets_at"] > time.time()
        # Never more often than the interval: a handful of reads in a few seconds, not dozens.
        time.sleep(2.0)
        assert len([r for r in claude.reads if r.path == "/api/oauth/usage"]) <= 4


def test_a_cooldown_ends_when_the_vendor_shows_the_window_reset(
    tmp_path: Path, codex: CodexBackendSim, claude: ClaudeOAuthSim
) -> None:
    chat = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
    with _proxy(tmp_path, codex, claude) as proxy:
        codex.usage_headers["x-codex-primary-used-percent"] = "100"
        codex.queue(usage_limit_reply(resets_in_seconds=3 * 3600))
        limited = httpx.post(proxy.base_url + "/v1/chat/completions", json=chat)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 3600
        time.sleep(2.5)  # the vendor still shows the window used up: the rest holds
        assert httpx.post(proxy.base_url + "/v1/chat/completions", json=chat).status_code == 429
        # The plan's window resets early (the vendor reset it, or the hint was too long).
        codex.usage_headers["x-codex-primary-used-percent"] = "3"

        def served() -> bool:
            reply = httpx.post(proxy.base_url + "/v1/chat/completions", json=chat)
            return reply.status_code == 200

        assert _wait(served, 6.0)


def test_cliproxy_accounts_shows_the_vendors_quota(
    tmp_path: Path, codex: CodexBackendSim, claude: ClaudeOAuthSim
) -> None:
    from typer.testing import CliRunner

    from cliproxy.cli_auth import auth_app

    _proxy(tmp_path, codex, claude)  # writes the account files; the server is not started
    result = CliRunner().invoke(
        auth_app, ["accounts", "--auth-dir", str(tmp_path), "--quota"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "Vendor quota" in result.output
    assert "five_hour 20%" in result.output  # claude's /api/oauth/usage
    assert "five_hour 12%" in result.output  # codex's wham/usage (12.5 %)
    plain = CliRunner().invoke(auth_app, ["accounts", "--auth-dir", str(tmp_path)])
    assert "Vendor quota" not in plain.output  # no network unless asked
