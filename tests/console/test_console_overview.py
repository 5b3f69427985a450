"""The console in headless Chromium against a real cliproxy that served real requests: every page
with no console error and no failed call, the Overview charts and totals drawn from those
requests, hostile names shown as text, vendor quota, and screenshots of every page in light and
dark (and on a phone) to build/console-screenshots/."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from cliproxy.providers.vendor_reads import QuotaReading, QuotaWindow, VendorReads
from tests.console.browser import PAGES, expect, mgmt, open_page, row, sign_in
from tests.console.conftest import CLIENT_KEY, HOSTILE, HOSTILE_EMAIL, SCREENSHOTS
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, Reply
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim


def _ask(proxy: ProxyServer, model: str) -> httpx.Response:
    return httpx.post(
        f"{proxy.base_url}/v1/messages",
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


def _ledger_holds(proxy: ProxyServer, requests: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        buckets = mgmt(proxy, "GET", "/usage/summary").json()["buckets"]
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


def test_every_page_and_the_overview_charts(page: Any, proxy: ProxyServer, traffic: int) -> None:
    watch = sign_in(page, proxy)
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
        open_page(page, name)
    assert watch.take() == []


def test_hostile_names_are_text(page: Any, proxy: ProxyServer, traffic: int) -> None:
    watch = sign_in(page, proxy)
    page.wait_for_selector("#top-models")
    assert HOSTILE in page.text_content("#top-models")
    open_page(page, "accounts")
    assert HOSTILE_EMAIL in page.text_content("#auth-files")
    # Shown, never parsed: no element came from the data and nothing ran.
    assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
    assert page.evaluate("window.__pwned") is None
    assert watch.take() == []


def test_vendor_quota_near_its_limit(page: Any, proxy: ProxyServer) -> None:
    """A vendor reading (as the account watch stores it) shows on Accounts, and an account at
    91% of a window is listed as needing attention."""
    provider = proxy.state.account_providers["claude"]
    assert isinstance(provider, VendorReads)
    window = QuotaWindow("five_hour", 91.0, time.time() + 7200)
    provider.remember_quota("claude-second.json", QuotaReading((window,), time.time()))
    try:
        watch = sign_in(page, proxy)
        expect(page.locator("#attention")).to_contain_text("second@example.com")
        expect(page.locator("#attention")).to_contain_text("near its quota (91% used)")
        open_page(page, "accounts")
        quota = row(page, "claude-second.json").locator(".quota")
        expect(quota).to_contain_text(re.compile(r"five_hour 91%, resets in (1h 59m|2h 00m)"))
        assert watch.take() == []
    finally:
        provider._quotas.pop("claude-second.json", None)


def test_screenshots_light_and_dark(page: Any, proxy: ProxyServer, traffic: int) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(proxy.base_url + "/console/")
    page.wait_for_selector("#login")
    page.screenshot(path=str(SCREENSHOTS / "login-light.png"))
    watch = sign_in(page, proxy)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name in PAGES:
            open_page(page, name)
            page.wait_for_timeout(200)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{scheme}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    for name in PAGES:
        open_page(page, name)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-phone-dark.png"), full_page=True)
    assert watch.take() == []
    assert {p.name for p in SCREENSHOTS.glob("*-dark.png")} >= {f"{n}-dark.png" for n in PAGES}
