"""`cliproxy login` end to end against the OAuth simulator: the browser callback flow, the
pasted callback (in-process through CliRunner and as a real subprocess), the auth files it
writes, and `cliproxy accounts`."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cliproxy.auth import login as login_module
from cliproxy.auth.flows import oauth_flow
from cliproxy.auth.login import run_login
from cliproxy.auth.oauth import OAuthError, authorize_url, new_pkce
from cliproxy.auth.store import AuthStore
from cliproxy.cli_auth import auth_app
from tests.simulators.oauth_sim import (  # noqa: F401 (pytest fixtures)
    OAuthSim,
    browse,
    callback_location,
    oauth_sim_fixture,
    oauth_sim_server_fixture,
)


class BrowserUI:
    """A LoginUI whose "browser" loads the authorize URL with httpx (following the redirect
    to the loopback callback), as a user approving the login would."""

    def __init__(self, paste: str | None = None) -> None:
        self.urls: list[str] = []
        self.messages: list[str] = []
        self.paste = paste
        self.callback_status: int | None = None

    def info(self, message: str) -> None:
        self.messages.append(message)

    def show_url(self, url: str, *, paste: bool) -> None:
        self.urls.append(url)

    def prompt(self, message: str) -> str:
        if self.paste is None:
            return callback_location(self.urls[-1])
        return self.paste

    def open_browser(self, url: str) -> bool:
        self.callback_status = browse(url).status_code
        return True


def read_file(path: Path) -> dict[str, Any]:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return orjson.loads(path.read_bytes())


def assert_soon(moment: str, seconds: float) -> None:
    expiry = datetime.fromisoformat(moment)
    now = datetime.now(UTC)
    assert now + timedelta(seconds=seconds - 30) < expiry < now + timedelta(seconds=seconds + 30)


@pytest.mark.parametrize("paste", [False, True])
async def test_codex_login(tmp_path: Path, oauth_sim: OAuthSim, paste: bool) -> None:
    flows = oauth_sim.flows()
    ui = BrowserUI()
    store = AuthStore(tmp_path / "auths")
    result = await run_login(
        "codex", store, ui, flow=flows["codex"], no_browser=paste, port=0 if not paste else 1455
    )
    assert ui.callback_status == (None if paste else 200)
    path = tmp_path / "auths" / "codex-coder@example.com.json"
    assert result.record.path == path and result.identity.plan == "pro"
    data = read_file(path)
    assert data["type"] == "codex" and data["email"] == "coder@example.com"
    assert data["account_id"] == "acct-1234"
    assert oauth_sim.access_token_valid(data["access_token"])
    assert data["refresh_token"].startswith("rt-codex-")
    assert data["id_token"].count(".") == 2
    assert_soon(data["expired"], 3600)
    assert set(data) == {
        "type", "id_token", "access_token", "refresh_token", "account_id", "email", "expired",
        "last_refresh",
    }  # fmt: skip
    exchange = oauth_sim.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["content_type"] == "application/x-www-form-urlencoded"
    assert store.get(path.name) is not None
    assert stat.S_IMODE((tmp_path / "auths").stat().st_mode) == 0o700


async def test_claude_login_with_callback(tmp_path: Path, oauth_sim: OAuthSim) -> None:
    ui = BrowserUI()
    result = await run_login(
        "claude", AuthStore(tmp_path), ui, flow=oauth_sim.flows()["claude"], port=0
    )
    data = read_file(tmp_path / "claude-claude.user@example.com.json")
    assert result.record.email == "claude.user@example.com"
    assert data["type"] == "claude"
    assert data["account_uuid"] == "acc-uuid-1" and data["organization_name"] == "Sim Org"
    assert oauth_sim.access_token_valid(data["access_token"])
    assert oauth_sim.token_requests[-1]["content_type"] == "application/json"
    assert oauth_sim.token_requests[-1]["state"]  # Anthropic wants the state in the exchange


async def test_claude_login_with_pasted_code_and_state(
    tmp_path: Path, oauth_sim: OAuthSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = oauth_sim.flows()["claude"]
    monkeypatch.setattr(login_module, "new_state", lambda: "fixed-state")
    ui = BrowserUI()
    # What Anthropic's page shows in paste mode: code#state.
    ui.prompt = lambda message: _code_hash_state(callback_location(ui.urls[-1]))  # type: ignore[method-assign]
    await run_login("claude", AuthStore(tmp_path), ui, flow=flow, no_browser=True)
    assert read_file(tmp_path / "claude-claude.user@example.com.json")["type"] == "claude"


def _code_hash_state(location: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(location).query)
    return f"{query['code'][0]}#{query['state'][0]}"


async def test_gemini_login_discovers_project_by_onboarding(
    tmp_path: Path, oauth_sim: OAuthSim
) -> None:
    ui = BrowserUI()
    result = await run_login(
        "gemini",
        AuthStore(tmp_path),
        ui,
        flow=oauth_sim.flows()["gemini"],
        port=0,
        onboard_poll_interval=0,
    )
    assert oauth_sim.onboard_calls == 2  # a long-running operation polled until done
    path = tmp_path / "gem.user@example.com-sim-project-42.json"
    assert result.record.path == path and result.record.project_id == "sim-project-42"
    data = read_file(path)
    assert data["type"] == "gemini" and data["project_id"] == "sim-project-42"
    assert data["email"] == "gem.user@example.com" and data["auto"] is True
    token = data["token"]
    assert oauth_sim.access_token_valid(token["access_token"])
    assert token["refresh_token"].startswith("rt-gemini-")
    assert token["client_secret"] and token["token_type"] == "Bearer"
    assert_soon(token["expiry"], 3600)
    assert oauth_sim.token_requests[-1]["client_secret"] == token["client_secret"]


async def test_gemini_login_with_existing_or_given_project(
    tmp_path: Path, oauth_sim: OAuthSim
) -> None:
    oauth_sim.existing_project = "already-there"
    flow = oauth_sim.flows()["gemini"]
    first = await run_login("gemini", AuthStore(tmp_path), BrowserUI(), flow=flow, port=0)
    assert first.record.project_id == "already-there" and oauth_sim.onboard_calls == 0
    given = await run_login(
        "gemini", AuthStore(tmp_path), BrowserUI(), flow=flow, port=0, project="mine"
    )
    assert given.record.id == "gem.user@example.com-mine.json"
    assert read_file(given.record.path)["auto"] is False


async def test_gemini_tier_needing_own_project_says_so(tmp_path: Path, oauth_sim: OAuthSim) -> None:
    oauth_sim.user_project_tier = True
    with pytest.raises(OAuthError, match="--project"):
        await run_login(
            "gemini", AuthStore(tmp_path), BrowserUI(), flow=oauth_sim.flows()["gemini"], port=0
        )
    assert list(tmp_path.iterdir()) == []


async def test_relogin_keeps_the_users_own_fields(tmp_path: Path, oauth_sim: OAuthSim) -> None:
    path = tmp_path / "claude-claude.user@example.com.json"
    path.write_bytes(orjson.dumps({"type": "claude", "prefix": "team", "x-note": "mine"}))
    result = await run_login(
        "claude", AuthStore(tmp_path), BrowserUI(), flow=oauth_sim.flows()["claude"], port=0
    )
    assert result.replaced
    data = read_file(path)
    assert data["prefix"] == "team" and data["x-note"] == "mine" and data["access_token"]


async def test_pasted_url_with_wrong_state_writes_nothing(
    tmp_path: Path, oauth_sim: OAuthSim
) -> None:
    ui = BrowserUI(paste="http://localhost:1455/auth/callback?code=abc&state=forged")
    with pytest.raises(OAuthError, match="state does not match"):
        await run_login(
            "codex", AuthStore(tmp_path), ui, flow=oauth_sim.flows()["codex"], no_browser=True
        )
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


# ----- through the CLI -------------------------------------------------------------------------

FIXED_PKCE = new_pkce()


def cli_env(sim: OAuthSim) -> dict[str, str]:
    return {**sim.env(), "COLUMNS": "250", "CLIPROXY_CONFIG": ""}


@pytest.mark.parametrize("provider", ["codex", "claude", "gemini"])
def test_cli_login_with_pasted_url_via_cli_runner(
    tmp_path: Path, oauth_sim: OAuthSim, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    # CliRunner's stdin is fixed before the run, so state and PKCE are pinned to pre-compute
    # the callback URL a browser would land on.
    oauth_sim.existing_project = "proj-cli"
    monkeypatch.setattr(login_module, "new_state", lambda: "cli-state")
    monkeypatch.setattr(login_module, "new_pkce", lambda: FIXED_PKCE)
    flow = oauth_flow(provider, env=oauth_sim.env())
    location = callback_location(authorize_url(flow, flow.redirect_uri(), "cli-state", FIXED_PKCE))
    runner = CliRunner()
    result = runner.invoke(
        auth_app,
        ["login", provider, "--no-browser", "--auth-dir", str(tmp_path)],
        input=location + "\n",
        env=cli_env(oauth_sim),
    )
    assert result.exit_code == 0, result.output
    assert "Open this URL" in result.output and "Logged in as" in result.output
    (written,) = tmp_path.iterdir()
    assert written.name in result.output.replace("\n", "")
    assert read_file(written)["type"] == provider

    listing = runner.invoke(
        auth_app, ["accounts", "--auth-dir", str(tmp_path)], env=cli_env(oauth_sim)
    )
    assert listing.exit_code == 0, listing.output
    assert (
        provider in listing.output and "active" in listing.output and "in 59 min" in listing.output
    )


def test_cli_login_busy_port(tmp_path: Path, oauth_sim: OAuthSim) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = CliRunner().invoke(
            auth_app,
            ["login", "codex", "--port", str(port), "--auth-dir", str(tmp_path)],
            env=cli_env(oauth_sim),
        )
    assert result.exit_code == 1
    assert f"port {port} is already in use" in result.output
    assert "--no-browser" in result.output


def test_cli_login_unknown_provider(tmp_path: Path) -> None:
    result = CliRunner().invoke(auth_app, ["login", "qwen", "--auth-dir", str(tmp_path)])
    assert result.exit_code == 2 and "Unknown provider" in result.output


def test_cli_accounts_lists_states_and_errors(tmp_path: Path, oauth_sim: OAuthSim) -> None:
    good = oauth_sim.auth_file("claude", expires_in=7200)
    (tmp_path / "claude-a.json").write_bytes(orjson.dumps(good))
    (tmp_path / "codex-b.json").write_bytes(
        orjson.dumps({**oauth_sim.auth_file("codex", expires_in=-600), "disabled": True})
    )
    stale = {**oauth_sim.auth_file("codex", expires_in=-600), "refresh_token": ""}
    (tmp_path / "codex-c.json").write_bytes(orjson.dumps(stale))
    (tmp_path / "broken.json").write_bytes(b"{oops")
    result = CliRunner().invoke(
        auth_app, ["accounts", "--auth-dir", str(tmp_path)], env=cli_env(oauth_sim)
    )
    assert result.exit_code == 1  # a broken file is worth a non-zero status
    out = result.output
    assert "claude.user@example.com" in out and "in 2.0 h" in out
    assert "disabled" in out and "expired 10 min ago" in out
    assert "needs login" in out and "no refresh token" in out
    assert "broken.json: not valid JSON" in out
    assert (tmp_path / "broken.json").read_bytes() == b"{oops"


# ----- as a real subprocess --------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cliproxy.cli_auth", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )


def test_subprocess_login_pasting_the_callback_url(tmp_path: Path, oauth_sim: OAuthSim) -> None:
    proc = _cli(["login", "codex", "--no-browser", "--auth-dir", str(tmp_path)], cli_env(oauth_sim))
    assert proc.stdout is not None and proc.stdin is not None
    lines: list[str] = []
    timer = threading.Timer(20, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("http://127.0.0.1"):
                proc.stdin.write(callback_location(line.strip()) + "\n")
                proc.stdin.flush()
                break
        output = "".join(lines) + proc.stdout.read()
        assert proc.wait() == 0, output
    finally:
        timer.cancel()
    assert "Logged in as coder@example.com" in output
    assert read_file(tmp_path / "codex-coder@example.com.json")["account_id"] == "acct-1234"


def test_subprocess_login_through_the_browser_callback(tmp_path: Path, oauth_sim: OAuthSim) -> None:
    # webbrowser runs $BROWSER with the URL; this one "approves" by following the redirect.
    browser = tmp_path / "fake-browser"
    browser.write_text(
        f"#!{sys.executable}\nimport sys, httpx\n"
        "httpx.get(sys.argv[1], follow_redirects=True, timeout=10).raise_for_status()\n"
    )
    browser.chmod(0o755)
    with socket.socket() as probe:  # a free port for the callback (the default may be taken)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**cli_env(oauth_sim), "BROWSER": str(browser)}
    auth_dir = tmp_path / "auths"
    proc = _cli(["login", "claude", "--port", str(port), "--auth-dir", str(auth_dir)], env)
    try:
        output, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    assert f"Waiting for the login callback on http://localhost:{port}/callback" in output
    assert read_file(auth_dir / "claude-claude.user@example.com.json")["email"] == (
        "claude.user@example.com"
    )
