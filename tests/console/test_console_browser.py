"""The console in headless Chromium against a real cliproxy: login (a wrong key first), every
page with no console error and no failed call, the Overview charts drawn from requests made
through the proxy, each Accounts action checked in the API, hostile names shown as text, and
screenshots of every page in light and dark to build/console-screenshots/."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cliproxy.providers.vendor_reads import QuotaReading, QuotaWindow, VendorReads
from tests.console.conftest import (
    CLIENT_KEY,
    HOSTILE,
    HOSTILE_EMAIL,
    MGMT,
    SCREENSHOTS,
    account_file,
)
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, Reply
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim

expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[dev]')"
).expect

PAGES = ("overview", "accounts")


def _ask(proxy: ProxyServer, model: str) -> httpx.Response:
    return httpx.post(
        f"{proxy.base_url}/v1/messages",
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


def _mgmt(proxy: ProxyServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method,
        f"{proxy.base_url}/v0/management{path}",
        headers={"authorization": f"Bearer {MGMT}"},
        timeout=10,
        **kwargs,
    )


def _ledger_holds(proxy: ProxyServer, requests: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        buckets = _mgmt(proxy, "GET", "/usage/summary").json()["buckets"]
        if sum(b["requests"] for b in buckets) >= requests:
            return
        time.sleep(0.1)
    raise AssertionError("the ledger did not record the requests")


@pytest.fixture(scope="module")
def traffic(proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim]) -> int:
    """Real requests through the proxy: four to `sonnet`, one to the hostile alias, one that
    fails upstream."""
    claude, _ = sims
    claude.queue(*(Reply.text("hello from the simulator") for _ in range(5)))
    claude.queue(Reply.error(500, "upstream broke"))
    for model in ("sonnet", "sonnet", "sonnet", "sonnet", HOSTILE):
        assert _ask(proxy, model).status_code == 200
    assert _ask(proxy, "sonnet").status_code >= 500
    _ledger_holds(proxy, 6)
    return 6


class Watch:
    """What went wrong in the page: console errors, uncaught exceptions, failed requests and
    HTTP errors."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def take(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems


@pytest.fixture
def page(browser: Any, proxy: ProxyServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def _sign_in(page: Any, proxy: ProxyServer, path: str = "/management.html") -> Watch:
    watch = Watch(page)
    page.goto(proxy.base_url + path)
    page.fill("#management-key", MGMT)
    page.click("#sign-in")
    page.wait_for_selector("#nav:not([hidden])")
    return watch


def _open(page: Any, name: str) -> None:
    page.click(f'#nav a[data-page="{name}"]')
    page.wait_for_selector(f'main[data-page="{name}"]')


def test_login_wrong_key_then_right_key(page: Any, proxy: ProxyServer) -> None:
    watch = Watch(page)
    page.goto(proxy.base_url + "/console/")
    page.fill("#management-key", "not-the-key")
    page.click("#sign-in")
    # (Waits use locators: the page's CSP refuses the eval that wait_for_function needs.)
    expect(page.locator("#login-message")).to_have_text("invalid management key")
    assert not page.is_visible("#nav")
    problems = watch.take()
    # The wrong key's 401 is the only error the browser saw.
    assert all("401" in p for p in problems), problems
    page.fill("#management-key", MGMT)
    page.click("#sign-in")
    page.wait_for_selector('main[data-page="overview"]')
    assert page.evaluate("sessionStorage.getItem('cliproxy.management-key')") == MGMT
    assert MGMT not in page.url
    assert watch.take() == []


def test_lockout_shows_its_countdown(page: Any) -> None:
    """Five wrong keys ban the address (the API's rule); the form then shows the API's message
    and counts down. Its own server, so the ban touches no other test."""
    with ProxyServer(f"remote-management: {{secret-key: {MGMT}}}") as own:
        page.goto(own.base_url + "/console/")
        for _ in range(5):
            page.fill("#management-key", "wrong")
            page.click("#sign-in")
            expect(page.locator("#login-message")).to_have_text("invalid management key")
            expect(page.locator("#sign-in")).to_be_enabled()
        page.fill("#management-key", MGMT)  # even the right key: the address is banned
        page.click("#sign-in")
        message = page.locator("#login-message")
        expect(message).to_contain_text("IP banned due to too many failed attempts")
        countdown = message.locator(".countdown")
        expect(countdown).to_have_text(re.compile(r"^(29m|30m)"))
        first = countdown.text_content()
        expect(countdown).not_to_have_text(first or "", timeout=5_000)
        expect(page.locator("#sign-in")).to_be_disabled()


def test_management_off_says_how_to_turn_it_on(page: Any) -> None:
    with ProxyServer() as own:
        watch = Watch(page)
        page.goto(own.base_url + "/management.html")
        off = page.locator("#management-off")
        expect(off).to_contain_text("remote-management: {secret-key:")
        assert not page.is_visible("#management-key")
        assert watch.take() == []


def test_every_page_and_the_overview_charts(page: Any, proxy: ProxyServer, traffic: int) -> None:
    watch = _sign_in(page, proxy)
    page.wait_for_selector('main[data-page="overview"]')
    # The totals and the charts come from the requests made above.
    assert page.text_content("#totals .stat:nth-child(1) .stat-value") == str(traffic)
    assert page.text_content("#totals .stat:nth-child(2) .stat-value") == "1"
    for chart in ("chart-requests", "chart-tokens", "chart-cost"):
        drawn = page.evaluate(
            """id => { const c = document.getElementById(id); const chart = window.Chart.getChart(c);
                 return { width: c.width, points: chart.data.datasets.flatMap(d => d.data)
                          .reduce((a, b) => a + b, 0) }; }""",
            chart,
        )
        assert drawn["width"] > 0, chart
        assert drawn["points"] > 0, chart
    requests = page.evaluate(
        """() => window.Chart.getChart(document.getElementById('chart-requests'))
                 .data.datasets.filter(d => d.label !== 'errors')
                 .flatMap(d => d.data).reduce((a, b) => a + b, 0)"""
    )
    assert requests == traffic
    assert "sonnet" in page.text_content("#top-models")
    attention = page.text_content("#attention") or ""
    assert "stale@example.com" in attention and "needs login" in attention
    assert "second@example.com" not in attention
    assert CLIENT_KEY[:4] in page.text_content("#top-keys")
    page.click("#range-7d")
    page.wait_for_selector('#range-7d[aria-pressed="true"]')
    assert page.text_content("#totals .stat:nth-child(1) .stat-value") == str(traffic)
    page.click("#range-24h")
    page.wait_for_selector('#range-24h[aria-pressed="true"]')
    for name in PAGES:
        _open(page, name)
    assert watch.take() == []


def test_hostile_names_are_text(page: Any, proxy: ProxyServer, traffic: int) -> None:
    watch = _sign_in(page, proxy)
    page.wait_for_selector("#top-models")
    assert HOSTILE in page.text_content("#top-models")
    _open(page, "accounts")
    assert HOSTILE_EMAIL in page.text_content("#auth-files")
    # Shown, never parsed: no element came from the data and nothing ran.
    assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
    assert page.evaluate("window.__pwned") is None
    assert watch.take() == []


def _row(page: Any, name: str) -> Any:
    return page.locator(f'#auth-files tr[data-name="{name}"]')


def test_disable_and_enable_an_account(page: Any, proxy: ProxyServer) -> None:
    watch = _sign_in(page, proxy, "/console/#/accounts")
    page.wait_for_selector('main[data-page="accounts"]')
    _row(page, "claude-second.json").locator('[data-action="toggle"]').click()
    page.wait_for_selector('#auth-files tr[data-name="claude-second.json"] .badge:text("disabled")')
    listed = _mgmt(proxy, "GET", "/auth-files", params={"name": "claude-second.json"}).json()
    assert listed["files"][0]["disabled"] is True
    _row(page, "claude-second.json").locator('[data-action="toggle"]:text("Enable")').click()
    page.wait_for_selector('#auth-files tr[data-name="claude-second.json"] .badge:text("active")')
    listed = _mgmt(proxy, "GET", "/auth-files", params={"name": "claude-second.json"}).json()
    assert listed["files"][0]["disabled"] is False
    assert watch.take() == []


def test_reset_a_cooldown(page: Any, proxy: ProxyServer) -> None:
    proxy.state.cooldowns.cool(
        "claude-second.json", "claude-sonnet-4-5", time.time() + 600, "rate-limit"
    )
    watch = _sign_in(page, proxy, "/console/#/accounts")
    row = _row(page, "claude-second.json")
    countdown = row.locator(".countdown")
    first = countdown.text_content()
    assert first is not None and first.startswith(("9m", "10m"))
    expect(countdown).not_to_have_text(first, timeout=5_000)  # it counts down live
    row.locator('[data-action="reset"]').click()
    page.wait_for_selector('.toast:text("cooldown ended for claude-sonnet-4-5")')
    page.wait_for_selector(
        '#auth-files tr[data-name="claude-second.json"] .cooldowns', state="detached"
    )
    assert proxy.state.cooldowns.available_at("claude-second.json", "claude-sonnet-4-5") is None
    assert watch.take() == []


def test_upload_two_files_one_bad(
    page: Any, proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim], tmp_path: Path
) -> None:
    good = tmp_path / "claude-uploaded.json"
    good.write_text(json.dumps(account_file("uploaded@example.com", sims[1].base_url)))
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    watch = _sign_in(page, proxy, "/console/#/accounts")
    page.wait_for_selector("#upload-input", state="attached")
    page.set_input_files("#upload-input", [str(good), str(bad)])
    page.wait_for_selector("#upload-results li[data-file='broken.json']")
    assert page.text_content("#upload-results li[data-file='claude-uploaded.json']").endswith(
        "uploaded"
    )
    bad_result = page.text_content("#upload-results li[data-file='broken.json']")
    assert bad_result is not None and "uploaded" not in bad_result
    page.wait_for_selector('#auth-files tr[data-name="claude-uploaded.json"]')
    names = [f["name"] for f in _mgmt(proxy, "GET", "/auth-files").json()["files"]]
    assert "claude-uploaded.json" in names and "broken.json" not in names
    # The 207 of a partial upload is the answer's success shape, not a failure.
    assert [p for p in watch.take() if "207" not in p] == []


def test_upload_by_drag_and_drop(
    page: Any, proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim]
) -> None:
    watch = _sign_in(page, proxy, "/console/#/accounts")
    page.wait_for_selector("#upload")
    content = json.dumps(account_file("dropped@example.com", sims[1].base_url))
    dropped = page.evaluate_handle(
        """content => { const data = new DataTransfer();
             data.items.add(new File([content], "claude-dropped.json", {type: "application/json"}));
             return data; }""",
        content,
    )
    page.dispatch_event("#upload", "drop", {"dataTransfer": dropped})
    expect(page.locator("#upload-results li[data-file='claude-dropped.json']")).to_have_text(
        "claude-dropped.json: uploaded"
    )
    page.wait_for_selector('#auth-files tr[data-name="claude-dropped.json"]')
    assert watch.take() == []


def test_keyboard_only(page: Any, proxy: ProxyServer) -> None:
    """Sign in, move between pages and cancel a deletion with the keyboard alone."""
    watch = Watch(page)
    page.goto(proxy.base_url + "/console/")
    page.wait_for_selector("#management-key:focus")
    page.keyboard.type(MGMT)
    page.keyboard.press("Enter")
    page.wait_for_selector('main[data-page="overview"]')
    page.focus('#nav a[data-page="overview"]')
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.page") == "accounts"
    page.keyboard.press("Enter")
    page.wait_for_selector('main[data-page="accounts"]')
    page.focus('#auth-files tr[data-name="claude-second.json"] [data-action="delete"]')
    page.keyboard.press("Enter")
    expect(page.locator("#confirm")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"
    page.keyboard.press("Escape")
    expect(page.locator("#confirm")).to_be_hidden()
    assert _row(page, "claude-second.json").count() == 1
    assert watch.take() == []


def test_delete_with_confirmation(
    page: Any, proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim], auth_dir: Path
) -> None:
    (auth_dir / "claude-doomed.json").write_text(
        json.dumps(account_file("doomed@example.com", sims[1].base_url))
    )
    proxy.state.auth_store.load()
    watch = _sign_in(page, proxy, "/console/#/accounts")
    row = _row(page, "claude-doomed.json")
    row.locator('[data-action="delete"]').click()
    page.click("#confirm-cancel")
    assert row.count() == 1
    row.locator('[data-action="delete"]').click()
    assert "claude-doomed.json" in (page.text_content("#confirm-text") or "")
    page.click("#confirm-ok")
    page.wait_for_selector('#auth-files tr[data-name="claude-doomed.json"]', state="detached")
    assert not (auth_dir / "claude-doomed.json").exists()
    assert watch.take() == []


def test_vendor_quota_near_its_limit(page: Any, proxy: ProxyServer) -> None:
    """A vendor reading (as the account watch stores it) shows on Accounts, and an account at
    91% of a window is listed as needing attention."""
    provider = proxy.state.account_providers["claude"]
    assert isinstance(provider, VendorReads)
    window = QuotaWindow("five_hour", 91.0, time.time() + 7200)
    provider.remember_quota("claude-second.json", QuotaReading((window,), time.time()))
    try:
        watch = _sign_in(page, proxy)
        expect(page.locator("#attention")).to_contain_text("second@example.com")
        expect(page.locator("#attention")).to_contain_text("near its quota (91% used)")
        _open(page, "accounts")
        quota = _row(page, "claude-second.json").locator(".quota")
        expect(quota).to_contain_text(re.compile(r"five_hour 91%, resets in (1h 59m|2h 00m)"))
        assert watch.take() == []
    finally:
        provider._quotas.pop("claude-second.json", None)


def test_screenshots_light_and_dark(page: Any, proxy: ProxyServer, traffic: int) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(proxy.base_url + "/console/")
    page.wait_for_selector("#login")
    page.screenshot(path=str(SCREENSHOTS / "login-light.png"))
    watch = _sign_in(page, proxy)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name in PAGES:
            _open(page, name)
            page.wait_for_timeout(200)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{scheme}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    for name in PAGES:
        _open(page, name)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-phone-dark.png"), full_page=True)
    assert watch.take() == []
    assert {p.name for p in SCREENSHOTS.glob("*-dark.png")} >= {f"{n}-dark.png" for n in PAGES}
