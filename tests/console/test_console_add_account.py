"""The console's "Add an account" page in headless Chromium, against a real cliproxy whose login
flows point at the OAuth simulator: a Codex login finished by pasting the callback URL (the
authorize URL the page shows, opened in a plain HTTP client as the vendor's page would), a
Gemini login finished by the redirect reaching cliproxy's loopback listener, a pasted URL of
the wrong login showing the API's refusal, a failed exchange showing its error, cancelling, a
start the API refuses; and on the Accounts page, the sparkline of an account that served
requests. Screenshots go to build/console-screenshots/."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from cliproxy.auth.flows import OAuthFlow, oauth_flow
from cliproxy.management.login_sessions import LoginError
from cliproxy.management.routes_oauth import login_sessions
from tests.console.browser import expect, mgmt, open_page, row, sign_in
from tests.console.conftest import MGMT, SCREENSHOTS
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.codex_backend_sim import CodexBackendSim
from tests.simulators.device_fixtures import _kimi_server, kimi  # noqa: F401 (pytest fixtures)
from tests.simulators.kimi_sim import KimiSim
from tests.simulators.oauth_sim import (  # noqa: F401 (pytest fixtures)
    OAuthSim,
    browse,
    callback_location,
    oauth_sim_fixture,
    oauth_sim_server_fixture,
)

CODEX_FILE = "codex-coder@example.com.json"
CONFIG = """
auth-dir: {auth_dir}
request-retry: 0
max-retry-interval: 0
remote-management:
  secret-key: {mgmt}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def flows_on_free_ports(name: str) -> OAuthFlow:
    """The flows as configured (the simulator's endpoints, from the environment), each login
    listening on a free port instead of the vendor's fixed one (1455, 54545, 8085), which
    this host's own CLI logins and other tests may hold."""
    return replace(oauth_flow(name), callback_port=free_port())


@pytest.fixture(scope="module")
def codex_sim() -> Iterator[CodexBackendSim]:
    with CodexBackendSim() as sim:
        yield sim


@pytest.fixture(scope="module")
def proxy(
    _oauth_sim_server: OAuthSim,
    codex_sim: CodexBackendSim,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyServer]:
    """This module's own server (the package's conftest has one without login flows): the
    flows read their endpoints when a login starts and the accounts their upstream when the
    registry is rebuilt, both from the environment, as in tests/management/test_oauth_logins."""
    auth_dir = tmp_path_factory.mktemp("add-account-auth")
    with pytest.MonkeyPatch.context() as env:
        for name, value in _oauth_sim_server.env().items():
            env.setenv(name, value)
        env.setenv("CLIPROXY_CODEX_BASE_URL", codex_sim.base_url)
        env.delenv("MANAGEMENT_PASSWORD", raising=False)
        with ProxyServer(CONFIG.format(auth_dir=auth_dir, mgmt=MGMT)) as server:
            login_sessions(server.app).flows = flows_on_free_ports
            yield server


@pytest.fixture
def login_page(page: Any, proxy: ProxyServer, oauth_sim: OAuthSim) -> Any:
    """Signed in, on Add an account (the oauth_sim fixture starts each test afresh)."""
    page.watch = sign_in(page, proxy, "/console/#/add-account")
    page.wait_for_selector('main[data-page="add-account"]')
    return page


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def with_state(url: str, state: str) -> str:
    parts = urlsplit(url)
    query = {**query_of(url), "state": state}
    return urlunsplit(parts._replace(query=urlencode(query)))


def auth_status(proxy: ProxyServer, state: str) -> dict[str, Any]:
    reply = mgmt(proxy, "GET", "/get-auth-status", params={"state": state})
    assert reply.status_code == 200, reply.text
    status: dict[str, Any] = reply.json()
    return status


def start(page: Any, provider: str) -> tuple[str, str]:
    """Click the provider's sign-in button; the authorize URL and state the page shows."""
    page.click(f'button[data-start="{provider}"]')
    flow = page.locator("#login-flow")
    expect(flow).to_have_attribute("data-state", "waiting")
    expect(flow).to_have_attribute("data-provider", provider)
    url = page.get_attribute("#auth-open", "href")
    assert url and page.text_content("#auth-url") == url
    return url, query_of(url)["state"]


def account_names(proxy: ProxyServer) -> list[str]:
    return [entry["name"] for entry in mgmt(proxy, "GET", "/auth-files").json()["files"]]


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# ----- logging in -------------------------------------------------------------------------------


def test_codex_login_by_pasting_the_callback_url(
    login_page: Any, proxy: ProxyServer, oauth_sim: OAuthSim
) -> None:
    page = login_page
    # The logins this server offers, read from its OpenAPI document (aliases left out).
    offered = page.locator("button[data-start]").evaluate_all(
        "buttons => buttons.map(b => b.dataset.start)"
    )
    assert offered == ["codex", "anthropic", "gemini-cli", "antigravity", "kimi", "xai"]
    assert page.locator("#project-gemini-cli").count() == 1  # Gemini takes a project

    url, state = start(page, "codex")
    assert url.startswith(oauth_sim.root_url + "/oauth/authorize?")
    assert auth_status(proxy, state) == {"status": "wait"}
    redirect = urlsplit(query_of(url)["redirect_uri"])
    assert redirect.hostname == "localhost" and redirect.path == "/auth/callback"
    # The page names where the vendor sends the browser, so a remote user knows what to copy.
    assert f"localhost:{redirect.port}/auth/callback" in page.text_content("#callback-help")
    expect(page.locator("#login-badge")).to_have_text("waiting for you to sign in")
    shoot(page, "add-account-waiting")

    # The user approves in the vendor's page; the browser ends on the loopback callback,
    # which does not load on a remote machine: its address is what gets pasted.
    location = callback_location(url)
    assert query_of(location)["state"] == state
    page.fill("#callback-url", location)
    page.click("#callback-submit")
    expect(page.locator("#login-flow")).to_have_attribute("data-state", "done")
    expect(page.locator("#login-badge")).to_have_text("done")
    assert auth_status(proxy, state) == {"status": "ok"}
    assert CODEX_FILE in account_names(proxy)
    expect(page.locator("#login-account")).to_have_text(f"coder@example.com ({CODEX_FILE})")
    shoot(page, "add-account-done")

    page.click("#to-accounts")
    page.wait_for_selector('main[data-page="accounts"]')
    expect(row(page, CODEX_FILE)).to_contain_text("coder@example.com")
    assert page.watch.take() == []


def test_a_device_code_login_shows_the_code_and_finishes_by_itself(
    login_page: Any,
    proxy: ProxyServer,
    kimi: KimiSim,  # noqa: F811
) -> None:
    page = login_page
    kimi.auth.outcomes.extend(["pending", "pending"])
    page.click('button[data-start="kimi"]')
    flow = page.locator("#login-flow")
    expect(flow).to_have_attribute("data-provider", "kimi")
    # The code to type on the vendor's page, and its page; no callback URL to paste.
    expect(page.locator("#user-code")).to_have_text(kimi.auth.user_code)
    assert (page.get_attribute("#auth-open", "href") or "").startswith(kimi.auth.verification_uri)
    assert page.locator("#callback-url").count() == 0
    shoot(page, "add-account-device-code")
    expect(flow).to_have_attribute("data-state", "done", timeout=20_000)
    assert any(name.startswith("kimi-") for name in account_names(proxy))
    assert page.watch.take() == []


def test_gemini_login_finished_by_the_redirect(
    login_page: Any, proxy: ProxyServer, oauth_sim: OAuthSim
) -> None:
    """The browser runs on cliproxy's machine: the vendor's redirect reaches the listener the
    page asked for (is_webui), and the page sees the login end without any pasting."""
    page = login_page
    page.fill("#project-gemini-cli", "console-project")
    url, state = start(page, "gemini-cli")
    assert query_of(url)["redirect_uri"].endswith("/oauth2callback")
    landed = browse(url)  # the browser follows the redirect to localhost
    assert landed.status_code == 200 and "Authentication successful" in landed.text
    expect(page.locator("#login-flow")).to_have_attribute("data-state", "done")
    name = "gem.user@example.com-console-project.json"
    expect(page.locator("#login-account")).to_contain_text(name)
    assert auth_status(proxy, state) == {"status": "ok"}
    assert name in account_names(proxy)
    saved = json.loads((proxy.config.auth_dir / name).read_text())
    assert saved["type"] == "gemini" and saved["project_id"] == "console-project"
    assert page.watch.take() == []


def test_a_pasted_url_of_another_login_shows_the_apis_error(
    login_page: Any, proxy: ProxyServer
) -> None:
    page = login_page
    url, state = start(page, "anthropic")
    wrong = with_state(callback_location(url), "not-this-login")
    page.fill("#callback-url", wrong)
    page.click("#callback-submit")
    # The page shows the API's own answer to that URL, word for word.
    answer = httpx.post(
        proxy.base_url + "/v0/management/oauth-callback",
        json={"provider": "anthropic", "redirect_url": wrong},
        timeout=10,
    )
    assert answer.status_code == 404
    expect(page.locator("#callback-error")).to_have_text(answer.json()["error"])
    shoot(page, "add-account-wrong-url")
    # The login is still open, and can still be cancelled.
    expect(page.locator("#login-flow")).to_have_attribute("data-state", "waiting")
    assert auth_status(proxy, state) == {"status": "wait"}
    page.click("#cancel-login")
    expect(page.locator("#login-flow")).to_have_attribute("data-state", "cancelled")
    assert auth_status(proxy, state) == {"status": "error", "error": "unknown or expired state"}
    assert [p for p in page.watch.take() if "404" not in p] == []


def test_a_failed_exchange_shows_its_error(login_page: Any, proxy: ProxyServer) -> None:
    page = login_page
    url, state = start(page, "codex")
    # This login's state with a code the vendor never issued: accepted, then the token
    # exchange fails, and the page shows why.
    page.fill("#callback-url", with_state(callback_location(url), state).replace("code=", "code=x"))
    page.click("#callback-submit")
    expect(page.locator("#login-flow")).to_have_attribute("data-state", "failed")
    status = auth_status(proxy, state)
    assert status["status"] == "error" and "invalid_grant" in status["error"]
    expect(page.locator("#login-detail")).to_have_text(status["error"])
    expect(page.locator("#login-again")).to_be_visible()
    shoot(page, "add-account-failed")
    assert page.watch.take() == []


def test_a_start_the_api_refuses_shows_its_message(login_page: Any, proxy: ProxyServer) -> None:
    sessions = login_sessions(proxy.app)

    def refuse(name: str) -> OAuthFlow:
        raise LoginError(503, f"{name} logins are paused on this server")

    sessions.flows = refuse
    try:
        login_page.click('button[data-start="anthropic"]')
        expect(login_page.locator("#start-error")).to_have_text(
            "Claude: claude logins are paused on this server"
        )
        assert login_page.locator("#login-flow").count() == 0
    finally:
        sessions.flows = flows_on_free_ports
    assert [p for p in login_page.watch.take() if "503" not in p] == []


# ----- the Accounts page's sparklines -----------------------------------------------------------


def served(proxy: ProxyServer, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(proxy.base_url + "/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code == 200, reply.text


def ledger_counts(proxy: ProxyServer, auth_index: str, requests: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        summary = mgmt(proxy, "GET", "/usage/summary", params={"group-by": "account"}).json()
        mine = [b for b in summary["buckets"] if b["group"] == auth_index]
        if sum(b["requests"] for b in mine) >= requests or time.monotonic() > deadline:
            return mine
        time.sleep(0.1)


def test_the_sparkline_of_an_account_that_served_requests(
    page: Any, proxy: ProxyServer, oauth_sim: OAuthSim, codex_sim: CodexBackendSim
) -> None:
    # An account of its own (its prefix routes "spark/…" to it alone) serves three requests.
    account = {**oauth_sim.auth_file("codex"), "prefix": "spark"}
    (proxy.config.auth_dir / "codex-spark.json").write_text(json.dumps(account))
    proxy.state.auth_store.load()
    listed = mgmt(proxy, "GET", "/auth-files", params={"name": "codex-spark.json"}).json()
    auth_index = listed["files"][0]["auth_index"]
    codex_sim.queue(*(Reply.text("from the sparkline account") for _ in range(3)))
    for _ in range(3):
        served(proxy, "spark/gpt-5-codex")
    assert sum(b["requests"] for b in ledger_counts(proxy, auth_index, 3)) == 3

    summaries: list[str] = []
    page.on("request", lambda r: summaries.append(r.url) if "/usage/summary" in r.url else None)
    watch = sign_in(page, proxy, "/console/#/accounts")
    page.wait_for_selector('main[data-page="accounts"]')
    cell = row(page, "codex-spark.json").locator(".spark-cell")
    expect(cell).to_have_attribute("data-requests", "3")
    expect(cell.locator(".spark-total")).to_have_text("3")
    drawn = cell.locator("canvas").evaluate(
        """canvas => {
             const chart = window.Chart.getChart(canvas);
             const data = chart.data.datasets[0].data;
             const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
             let painted = 0;
             for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
             return { points: data.length, total: data.reduce((a, b) => a + b, 0),
                      last: data[data.length - 1], width: canvas.width, painted };
           }"""
    )
    assert drawn["points"] == 24 and drawn["total"] == 3 and drawn["last"] == 3
    assert drawn["width"] > 0 and drawn["painted"] > 50
    assert "3 requests in the last 24 hours" in (
        cell.locator("canvas").get_attribute("aria-label") or ""
    )
    # One summary call for every account, hourly and grouped by account.
    assert len(summaries) == 1
    sent = query_of(summaries[0])
    assert sent["group-by"] == "account" and sent["bucket"] == "hour"
    # An account that served nothing says so instead of drawing a flat line.
    if CODEX_FILE in account_names(proxy):
        expect(row(page, CODEX_FILE).locator(".spark-none")).to_have_text("no requests")
    shoot(page, "accounts-sparkline")
    page.emulate_media(color_scheme="dark")
    open_page(page, "overview")
    open_page(page, "accounts")
    expect(row(page, "codex-spark.json").locator(".spark-total")).to_have_text("3")
    shoot(page, "accounts-sparkline-dark")
    assert watch.take() == []


def test_screenshots_of_the_page(login_page: Any, proxy: ProxyServer) -> None:
    page = login_page
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(100)
        shoot(page, f"add-account-{scheme}")
    page.set_viewport_size({"width": 390, "height": 844})
    start(page, "codex")
    shoot(page, "add-account-phone-dark")
    page.click("#cancel-login")
    expect(page.locator("#login-flow")).to_have_attribute("data-state", "cancelled")
    assert page.watch.take() == []
    assert Path(SCREENSHOTS / "add-account-light.png").exists()
