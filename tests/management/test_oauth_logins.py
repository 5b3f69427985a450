"""Logins started from the browser, end to end: a real server, the OAuth simulator as the
vendors' authorize and token endpoints, and provider simulators that the new account must
then serve a request from."""

from __future__ import annotations

import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from cliproxy.auth.flows import oauth_flow
from cliproxy.config import load_config
from cliproxy.management.login_sessions import LoginSessions
from cliproxy.management.routes_oauth import CALLBACK_PATHS, login_sessions, redirect_params
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim
from tests.simulators.codex_backend_sim import CodexBackendSim
from tests.simulators.oauth_sim import (  # noqa: F401 (pytest fixtures)
    OAuthSim,
    browse,
    callback_location,
    oauth_sim_fixture,
    oauth_sim_server_fixture,
)

KEY = "login-test-key"
CODEX_FILE = "codex-coder@example.com.json"
CLAUDE_FILE = "claude-claude.user@example.com.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def codex_sim() -> Iterator[CodexBackendSim]:
    with CodexBackendSim() as sim:
        yield sim


@pytest.fixture(scope="module")
def claude_sim() -> Iterator[ClaudeOAuthSim]:
    with ClaudeOAuthSim() as sim:
        yield sim


def start_server(tmp_path: Path, extra: str = "", key: str = KEY) -> ProxyServer:
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    secret = f'remote-management:\n  secret-key: "{key}"\n' if key else ""
    path.write_text(f'auth-dir: "{auth_dir}"\n{secret}{extra}')
    return ProxyServer(load_config(path), config_path=path).start()


@pytest.fixture
def proxy(
    tmp_path: Path,
    oauth_sim: OAuthSim,
    codex_sim: CodexBackendSim,
    claude_sim: ClaudeOAuthSim,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ProxyServer]:
    # The flows read their endpoints when a login starts, the accounts their upstream when
    # the registry is rebuilt: both from the environment, as in the CLI login tests.
    for name, value in oauth_sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLIPROXY_CODEX_BASE_URL", codex_sim.base_url)
    monkeypatch.setenv("CLIPROXY_CLAUDE_BASE_URL", claude_sim.base_url)
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    codex_sim.reset()
    claude_sim.reset()
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clock(proxy: ProxyServer) -> Clock:
    fake = Clock()
    login_sessions(proxy.app).clock = fake
    return fake


@pytest.fixture
def api(proxy: ProxyServer, clock: Clock) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=proxy.base_url + "/v0/management",
        headers={"authorization": f"Bearer {KEY}"},
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def public(proxy: ProxyServer) -> Iterator[httpx.Client]:
    """A client without the management key (the browser, a remote paste)."""
    with httpx.Client(base_url=proxy.base_url, timeout=10) as client:
        yield client


def start_login(api: httpx.Client, path: str, **params: str) -> tuple[str, str]:
    reply = api.get(path, params=params)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok" and set(body) == {"status", "url", "state"}
    return body["url"], body["state"]


def status_of(api: httpx.Client, state: str) -> dict[str, Any]:
    reply = api.get("/get-auth-status", params={"state": state})
    assert reply.status_code == 200, reply.text
    status: dict[str, Any] = reply.json()
    return status


def wait_for(api: httpx.Client, state: str, seconds: float = 10) -> dict[str, Any]:
    """Poll as the management page does, until the login is no longer pending."""
    deadline = time.monotonic() + seconds
    while True:
        status = status_of(api, state)
        if status["status"] != "wait" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def read_account(proxy: ProxyServer, name: str) -> dict[str, Any]:
    path = proxy.config.auth_dir / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def ask(proxy: ProxyServer, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(proxy.base_url + "/v1/chat/completions", json=body, timeout=10)


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


# ----- the whole journey ----------------------------------------------------------------------


def test_codex_login_by_pasted_url_then_the_account_serves(
    proxy: ProxyServer,
    api: httpx.Client,
    public: httpx.Client,
    oauth_sim: OAuthSim,
    codex_sim: CodexBackendSim,
) -> None:
    url, state = start_login(api, "/codex-auth-url")
    params = query_of(url)
    # The vendor's fixed loopback redirect, as the Codex CLI sends it.
    assert params["redirect_uri"] == "http://localhost:1455/auth/callback"
    assert params["state"] == state and params["code_challenge_method"] == "S256"
    assert url.startswith(oauth_sim.root_url + "/oauth/authorize?")
    assert status_of(api, state) == {"status": "wait"}

    location = callback_location(url)  # the address the browser ends on, pasted by the user
    done = public.post(
        "/v0/management/oauth-callback", json={"provider": "codex", "redirect_url": location}
    )
    assert done.status_code == 200 and done.json() == {"status": "ok"}
    assert wait_for(api, state) == {"status": "ok"}

    account = read_account(proxy, CODEX_FILE)
    assert account["type"] == "codex" and account["account_id"] == "acct-1234"
    assert oauth_sim.access_token_valid(account["access_token"])
    assert oauth_sim.token_requests[-1]["redirect_uri"] == "http://localhost:1455/auth/callback"

    codex_sim.queue(Reply.text("hello from the new account"))
    served = ask(proxy, "gpt-5-codex")
    assert served.status_code == 200, served.text
    assert served.json()["choices"][0]["message"]["content"] == "hello from the new account"
    assert codex_sim.presented_key(codex_sim.last_request) == account["access_token"]

    listed = api.get("/auth-files").json()["files"]
    assert [entry["name"] for entry in listed] == [CODEX_FILE]


def test_claude_login_with_pasted_code_hash_state(
    proxy: ProxyServer,
    api: httpx.Client,
    public: httpx.Client,
    oauth_sim: OAuthSim,
    claude_sim: ClaudeOAuthSim,
) -> None:
    url, state = start_login(api, "/anthropic-auth-url")
    assert query_of(url)["redirect_uri"] == "http://localhost:54545/callback"
    location = query_of(callback_location(url))
    # What Anthropic's page shows in paste mode; the provider by its alias.
    pasted = f"{location['code']}#{location['state']}"
    done = public.post(
        "/v0/management/oauth-callback", json={"provider": "claude", "redirect_url": pasted}
    )
    assert done.status_code == 200, done.text
    assert wait_for(api, state) == {"status": "ok"}
    account = read_account(proxy, CLAUDE_FILE)
    assert account["type"] == "claude" and account["account_uuid"] == "acc-uuid-1"
    assert oauth_sim.token_requests[-1]["state"] == state  # Anthropic wants it in the exchange

    claude_sim.queue(Reply.text("claude answers"))
    served = ask(proxy, "claude-sonnet-4-5")
    assert served.status_code == 200, served.text
    assert served.json()["choices"][0]["message"]["content"] == "claude answers"
    assert claude_sim.presented_key(claude_sim.last_request) == account["access_token"]


def test_claude_alias_route_and_get_callback_with_code_and_state(
    proxy: ProxyServer, api: httpx.Client, public: httpx.Client
) -> None:
    url, state = start_login(api, "/claude-auth-url")
    location = query_of(callback_location(url))
    done = public.get(
        "/v0/management/oauth-callback",
        params={"provider": "anthropic", "code": location["code"], "state": state},
    )
    assert done.status_code == 200, done.text
    assert wait_for(api, state) == {"status": "ok"}
    assert read_account(proxy, CLAUDE_FILE)["email"] == "claude.user@example.com"


def test_gemini_login_discovers_the_project(
    proxy: ProxyServer, api: httpx.Client, public: httpx.Client, oauth_sim: OAuthSim
) -> None:
    oauth_sim.existing_project = "proj-from-api"
    url, state = start_login(api, "/gemini-cli-auth-url")
    assert query_of(url)["redirect_uri"] == "http://localhost:8085/oauth2callback"
    done = public.post(
        "/v0/management/oauth-callback",
        json={"provider": "gemini", "redirect_url": callback_location(url)},
    )
    assert done.status_code == 200, done.text
    assert wait_for(api, state) == {"status": "ok"}
    account = read_account(proxy, "gem.user@example.com-proj-from-api.json")
    assert account["type"] == "gemini" and account["project_id"] == "proj-from-api"

    # /gemini-auth-url is the same flow; project_id skips discovery.
    url, state = start_login(api, "/gemini-auth-url", project_id="mine")
    public.post("/v0/management/oauth-callback", json={"redirect_url": callback_location(url)})
    assert wait_for(api, state) == {"status": "ok"}
    assert read_account(proxy, "gem.user@example.com-mine.json")["auto"] is False


# ----- the provider callback routes ------------------------------------------------------------


def on_proxy(proxy: ProxyServer, location: str, path: str) -> str:
    """The vendor's loopback callback, redirected to the proxy's own callback route."""
    return f"{proxy.base_url}{path}?{urlsplit(location).query}"


def test_public_callback_route_finishes_the_login(
    proxy: ProxyServer, api: httpx.Client, public: httpx.Client
) -> None:
    url, state = start_login(api, "/codex-auth-url")
    page = public.get(on_proxy(proxy, callback_location(url), "/codex/callback"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Authentication successful" in page.text and CODEX_FILE in page.text
    assert wait_for(api, state) == {"status": "ok"}
    assert read_account(proxy, CODEX_FILE)["type"] == "codex"
    # The same callback again is a replay.
    again = public.get(on_proxy(proxy, callback_location(url), "/codex/callback"))
    assert again.status_code == 409 and "Authentication failed" in again.text


def test_public_callback_route_refuses_unknown_state_and_other_provider(
    proxy: ProxyServer, api: httpx.Client, public: httpx.Client
) -> None:
    unknown = public.get("/anthropic/callback", params={"code": "c", "state": "nobody-knows"})
    assert unknown.status_code == 404 and "Authentication failed" in unknown.text
    url, state = start_login(api, "/anthropic-auth-url")
    wrong = public.get(on_proxy(proxy, callback_location(url), "/codex/callback"))
    assert wrong.status_code == 400 and "does not match" in wrong.text
    assert status_of(api, state) == {"status": "wait"}  # the login is still open


def test_public_callback_route_shows_the_providers_refusal(
    proxy: ProxyServer, api: httpx.Client, public: httpx.Client
) -> None:
    _, state = start_login(api, "/codex-auth-url")
    page = public.get(
        "/codex/callback",
        params={"state": state, "error": "access_denied", "error_description": "user said no"},
    )
    assert page.status_code == 400 and "access_denied: user said no" in page.text
    status = wait_for(api, state)
    assert status["status"] == "error" and "access_denied" in status["error"]


def test_public_callback_route_needs_no_client_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    server = start_server(tmp_path, "api-keys:\n  - client-key-1\n")
    try:
        reply = httpx.get(server.base_url + "/codex/callback?code=c&state=unknown-state")
        assert reply.status_code == 404 and "Authentication failed" in reply.text
    finally:
        server.stop()


# ----- refusals ---------------------------------------------------------------------------------


def finish(public: httpx.Client, **body: str) -> httpx.Response:
    return public.post("/v0/management/oauth-callback", json=body)


def test_replayed_state_is_409(api: httpx.Client, public: httpx.Client) -> None:
    url, state = start_login(api, "/codex-auth-url")
    location = callback_location(url)
    assert finish(public, provider="codex", redirect_url=location).status_code == 200
    assert wait_for(api, state) == {"status": "ok"}
    replay = finish(public, provider="codex", redirect_url=location)
    assert replay.status_code == 409 and "already" in replay.json()["error"]


def test_expired_state_is_404(api: httpx.Client, public: httpx.Client, clock: Clock) -> None:
    url, state = start_login(api, "/codex-auth-url")
    location = callback_location(url)
    clock.now += 29 * 60
    assert status_of(api, state) == {"status": "wait"}
    clock.now += 2 * 60
    late = finish(public, provider="codex", redirect_url=location)
    assert late.status_code == 404 and late.json() == {"error": "unknown or expired state"}
    assert wait_for(api, state) == {"status": "error", "error": "unknown or expired state"}


def test_finished_login_is_reported_for_a_minute(
    api: httpx.Client, public: httpx.Client, clock: Clock
) -> None:
    url, state = start_login(api, "/codex-auth-url")
    finish(public, redirect_url=callback_location(url))
    assert wait_for(api, state) == {"status": "ok"}
    clock.now += 61
    assert wait_for(api, state)["status"] == "error"


def test_wrong_provider_is_400_and_the_login_stays_open(
    proxy: ProxyServer, api: httpx.Client, public: httpx.Client
) -> None:
    url, state = start_login(api, "/codex-auth-url")
    location = callback_location(url)
    wrong = finish(public, provider="anthropic", redirect_url=location)
    assert wrong.status_code == 400 and "does not match" in wrong.json()["error"]
    unknown = finish(public, provider="qwen", redirect_url=location)
    assert unknown.status_code == 400 and "unknown provider" in unknown.json()["error"]
    assert finish(public, provider="openai", redirect_url=location).status_code == 200
    assert wait_for(api, state) == {"status": "ok"}


@pytest.mark.parametrize("state", ["../../etc", "has space", "x" * 129, "semi;colon", "a..b"])
def test_malformed_state_is_400(api: httpx.Client, public: httpx.Client, state: str) -> None:
    refused = finish(public, provider="codex", code="abc", state=state)
    assert refused.status_code == 400 and refused.json() == {"error": "invalid state"}
    assert api.get("/get-auth-status", params={"state": state}).status_code == 400
    assert api.delete("/oauth-session", params={"state": state}).status_code == 400


def test_callback_payload_problems(api: httpx.Client, public: httpx.Client) -> None:
    _, state = start_login(api, "/codex-auth-url")
    assert finish(public, state=state).json() == {"error": "code or error is required"}
    assert public.post("/v0/management/oauth-callback", content=b"{oops").status_code == 400
    not_object = public.post("/v0/management/oauth-callback", json=["x"])
    assert not_object.status_code == 422
    typed = public.post("/v0/management/oauth-callback", json={"state": state, "code": 5})
    assert typed.status_code == 400 and typed.json() == {"error": "code: must be a string"}
    assert status_of(api, state) == {"status": "wait"}


def test_provider_error_ends_the_login(api: httpx.Client, public: httpx.Client) -> None:
    _, state = start_login(api, "/anthropic-auth-url")
    assert finish(public, state=state, error="access_denied").status_code == 200
    assert wait_for(api, state) == {
        "status": "error",
        "error": "the provider refused the login: access_denied",
    }
    again = finish(public, state=state, code="late")
    assert again.status_code == 409 and "access_denied" in again.json()["error"]


def test_failed_exchange_is_reported(
    proxy: ProxyServer, api: httpx.Client, public: httpx.Client
) -> None:
    _, state = start_login(api, "/codex-auth-url")
    assert finish(public, state=state, code="never-issued").status_code == 200
    status = wait_for(api, state)
    assert status["status"] == "error" and "invalid_grant" in status["error"]
    assert list(proxy.config.auth_dir.iterdir()) == []


def test_cancel(api: httpx.Client, public: httpx.Client) -> None:
    url, state = start_login(api, "/codex-auth-url")
    cancelled = api.delete("/oauth-session", params={"state": state})
    assert cancelled.json() == {"status": "ok", "cancelled": True}
    assert api.delete("/oauth-session", params={"state": state}).json()["cancelled"] is False
    assert finish(public, redirect_url=callback_location(url)).status_code == 404
    assert api.delete("/oauth-session").status_code == 400


def test_status_without_state_is_ok_as_in_the_reference(api: httpx.Client) -> None:
    assert api.get("/get-auth-status").json() == {"status": "ok"}


def test_starting_needs_the_key(public: httpx.Client) -> None:
    assert public.get("/v0/management/codex-auth-url").status_code == 401
    assert public.get("/v0/management/get-auth-status?state=abc").status_code == 401


def test_callback_is_absent_when_management_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    server = start_server(tmp_path, key="")
    try:
        reply = httpx.post(
            server.base_url + "/v0/management/oauth-callback",
            json={"state": "abc", "code": "x"},
        )
        assert reply.status_code == 404 and reply.content == b""
    finally:
        server.stop()


# ----- is_webui: the loopback listener ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def use_port(proxy: ProxyServer, port: int) -> None:
    """Flows whose fixed loopback port is `port` (the real ones may be taken on this host)."""
    sessions = login_sessions(proxy.app)
    sessions.flows = lambda name: replace(oauth_flow(name), callback_port=port)


def test_webui_listener_receives_the_redirect_and_closes(
    proxy: ProxyServer, api: httpx.Client
) -> None:
    port = free_port()
    use_port(proxy, port)
    url, state = start_login(api, "/codex-auth-url", is_webui="true")
    assert query_of(url)["redirect_uri"] == f"http://localhost:{port}/auth/callback"
    # A callback that is not this login's is refused and does not end it.
    stray = httpx.get(f"http://127.0.0.1:{port}/auth/callback?code=x&state=other", timeout=10)
    assert stray.status_code == 400
    page = browse(url)  # the browser follows the redirect to the listener
    assert page.status_code == 200 and "Authentication successful" in page.text
    assert wait_for(api, state) == {"status": "ok"}
    assert read_account(proxy, CODEX_FILE)["type"] == "codex"
    deadline = time.monotonic() + 5
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert port_is_free(port)


def test_webui_with_a_busy_port_still_starts(
    proxy: ProxyServer, api: httpx.Client, public: httpx.Client
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        use_port(proxy, blocker.getsockname()[1])
        url, state = start_login(api, "/anthropic-auth-url", is_webui="1")
    finish(public, redirect_url=callback_location(url))
    assert wait_for(api, state) == {"status": "ok"}


def test_webui_listener_stops_when_the_login_is_cancelled(
    proxy: ProxyServer, api: httpx.Client
) -> None:
    port = free_port()
    use_port(proxy, port)
    _, first = start_login(api, "/codex-auth-url", is_webui="true")
    assert not port_is_free(port)
    # A second login on the same port takes the listener over.
    _, second = start_login(api, "/codex-auth-url", is_webui="true")
    assert not port_is_free(port)
    assert api.delete("/oauth-session", params={"state": second}).json()["cancelled"] is True
    deadline = time.monotonic() + 5
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert port_is_free(port)
    assert status_of(api, first) == {"status": "wait"}  # still finishable by paste


# ----- pieces -----------------------------------------------------------------------------------


def test_redirect_params_reads_every_pasted_form() -> None:
    url = "http://localhost:1455/auth/callback?code=c1&state=s1"
    assert redirect_params(url) == {"code": "c1", "state": "s1"}
    assert redirect_params("'" + url + "'") == {"code": "c1", "state": "s1"}
    assert redirect_params("?code=c2&state=s2") == {"code": "c2", "state": "s2"}
    assert redirect_params("code=c3&error=denied") == {"code": "c3", "error": "denied"}
    assert redirect_params("c4#s4") == {"code": "c4", "state": "s4"}
    assert redirect_params("") == {}


def test_sessions_are_shared_per_app(proxy: ProxyServer) -> None:
    assert isinstance(login_sessions(proxy.app), LoginSessions)
    assert login_sessions(proxy.app) is login_sessions(proxy.app)
    assert {"/codex/callback", "/anthropic/callback", "/gemini-cli/callback"} <= CALLBACK_PATHS
