"""Antigravity logins end to end against the simulated Google OAuth and Code Assist control
plane: the browser callback on the loopback port, `cliproxy login antigravity` with a pasted
callback, and the management API's /antigravity-auth-url with a pasted callback URL, after
which the new account serves a request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from cliproxy.auth import login as login_module
from cliproxy.auth.flows import oauth_flow
from cliproxy.auth.login import run_login
from cliproxy.auth.oauth import OAuthError, authorize_url, new_pkce
from cliproxy.auth.store import AuthStore
from cliproxy.cli_auth import auth_app
from cliproxy.config import load_config
from tests.e2e.test_login import BrowserUI, read_file
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.antigravity_sim import FLOW, AntigravitySim
from tests.simulators.oauth_sim import callback_location

ACCOUNT = "antigravity-agy.user@example.com.json"
KEY = "agy-login-key"
FIELDS = {
    "type", "access_token", "refresh_token", "expires_in", "timestamp", "expired",
    "project_id", "email",
}  # fmt: skip


@pytest.fixture(scope="module")
def _sim_server() -> Iterator[AntigravitySim]:
    with AntigravitySim() as sim:
        yield sim


@pytest.fixture
def sim(_sim_server: AntigravitySim) -> AntigravitySim:
    _sim_server.reset()
    return _sim_server


async def test_browser_login_onboards_and_writes_the_reference_file(
    tmp_path: Path, sim: AntigravitySim
) -> None:
    ui = BrowserUI()
    flow = oauth_flow("antigravity", env=sim.env())
    result = await run_login(
        "antigravity", AuthStore(tmp_path), ui, flow=flow, port=0, onboard_poll_interval=0
    )
    assert ui.callback_status == 200
    query = {k: v[0] for k, v in parse_qs(urlsplit(ui.urls[-1]).query).items()}
    assert query["client_id"] == FLOW.client_id and query["prompt"] == "consent"
    assert set(query["scope"].split()) == set(FLOW.scopes)
    assert sim.onboard_calls == 2  # a long-running operation, polled until done
    data = read_file(tmp_path / ACCOUNT)
    assert set(data) >= FIELDS
    assert data["type"] == "antigravity" and data["email"] == "agy.user@example.com"
    assert data["project_id"] == "agy-project-7" == result.record.project_id
    assert data["expires_in"] == 3600 and abs(data["timestamp"] / 1000 - time.time()) < 60
    assert data["refresh_token"].startswith("1//agy-")
    load, *onboard = sim.control_calls
    assert load.json == {"metadata": {"ideType": "ANTIGRAVITY"}}
    assert load.headers["user-agent"] == "antigravity/hub/2.9.1 darwin/arm64"
    assert onboard[0].json["metadata"]["ide_version"] == "2.9.1"
    assert onboard[0].json["tier_id"] == "free-tier"
    assert onboard[0].headers["user-agent"].endswith(" google-api-nodejs-client/10.3.0")


async def test_an_existing_project_needs_no_onboarding(tmp_path: Path, sim: AntigravitySim) -> None:
    sim.existing_project = "agy-existing"
    flow = oauth_flow("antigravity", env=sim.env())
    await run_login("antigravity", AuthStore(tmp_path), BrowserUI(), flow=flow, port=0)
    assert read_file(tmp_path / ACCOUNT)["project_id"] == "agy-existing"
    assert sim.onboard_calls == 0


async def test_a_refused_login_writes_nothing(tmp_path: Path, sim: AntigravitySim) -> None:
    flow = oauth_flow("antigravity", env=sim.env())
    ui = BrowserUI(paste="http://localhost:51121/oauth-callback?error=access_denied&state=x")
    with pytest.raises(OAuthError, match="access_denied"):
        await run_login("antigravity", AuthStore(tmp_path), ui, flow=flow, no_browser=True)
    assert not list(tmp_path.iterdir())


def test_cli_login_with_the_pasted_callback(
    tmp_path: Path, sim: AntigravitySim, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkce = new_pkce()
    monkeypatch.setattr(login_module, "new_state", lambda: "agy-state")
    monkeypatch.setattr(login_module, "new_pkce", lambda: pkce)
    flow = oauth_flow("antigravity", env=sim.env())
    assert flow.redirect_uri() == "http://localhost:51121/oauth-callback"
    location = callback_location(authorize_url(flow, flow.redirect_uri(), "agy-state", pkce))
    env = {**sim.env(), "COLUMNS": "250", "CLIPROXY_CONFIG": ""}
    runner = CliRunner()
    result = runner.invoke(
        auth_app,
        ["login", "antigravity", "--no-browser", "--auth-dir", str(tmp_path)],
        input=location + "\n",
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "Antigravity" in result.output and "project agy-project-7" in result.output
    assert read_file(tmp_path / ACCOUNT)["type"] == "antigravity"
    listing = runner.invoke(auth_app, ["accounts", "--auth-dir", str(tmp_path)], env=env)
    assert listing.exit_code == 0 and "antigravity" in listing.output


# ----- from the management API ------------------------------------------------------------------


@pytest.fixture
def proxy(
    tmp_path: Path, sim: AntigravitySim, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProxyServer]:
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(f'auth-dir: "{auth_dir}"\nremote-management:\n  secret-key: "{KEY}"\n')
    server = ProxyServer(load_config(path), config_path=path).start()
    try:
        yield server
    finally:
        server.stop()


def _wait_for_login(api: httpx.Client, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        status: dict[str, Any] = api.get("/get-auth-status", params={"state": state}).json()
        if status["status"] != "wait" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_management_login_with_a_pasted_callback_then_the_account_serves(
    proxy: ProxyServer, sim: AntigravitySim
) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=proxy.base_url + "/v0/management", headers=headers) as api:
        started = api.get("/antigravity-auth-url")
        assert started.status_code == 200, started.text
        body = started.json()
        query = {k: v[0] for k, v in parse_qs(urlsplit(body["url"]).query).items()}
        assert query["redirect_uri"] == "http://localhost:51121/oauth-callback"
        location = callback_location(body["url"])
        pasted = httpx.post(
            proxy.base_url + "/v0/management/oauth-callback",
            json={"provider": "anti-gravity", "redirect_url": location},
        )
        assert pasted.status_code == 200, pasted.text
        assert _wait_for_login(api, body["state"]) == {"status": "ok"}
        names = [f["name"] for f in api.get("/auth-files").json()["files"]]
        assert names == [ACCOUNT]
    data = orjson.loads((proxy.config.auth_dir / ACCOUNT).read_bytes())
    assert data["project_id"] == "agy-project-7"

    sim.queue(Reply.text("hello from the new Antigravity account"))
    chat = {"model": "gemini-3-flash", "messages": [{"role": "user", "content": "hi"}]}
    served = httpx.post(proxy.base_url + "/v1/chat/completions", json=chat, timeout=10)
    assert served.status_code == 200, served.text
    assert "new Antigravity account" in served.json()["choices"][0]["message"]["content"]
    assert sim.last_request.headers["authorization"] == f"Bearer {data['access_token']}"


def test_the_public_callback_route_finishes_the_login(
    proxy: ProxyServer, sim: AntigravitySim
) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=proxy.base_url + "/v0/management", headers=headers) as api:
        body = api.get("/antigravity-auth-url").json()
        query = urlsplit(callback_location(body["url"])).query
        page = httpx.get(f"{proxy.base_url}/antigravity/callback?{query}", timeout=40)
        assert page.status_code == 200 and "successful" in page.text
        assert _wait_for_login(api, body["state"]) == {"status": "ok"}
    assert (proxy.config.auth_dir / ACCOUNT).exists()
