"""The Client keys page in headless Chromium: both `client-keys` entries with their masked key,
models and limits ("no limit" where there is none), today's use from real requests made with
one key, the share of its token and budget limits, a hostile key name shown as text, the plain
`api-keys` count, and screenshots with that use (light, dark, phone) to
build/console-screenshots/ (test_console_overview shoots every page too, with no client-key
use)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.console.browser import expect, mgmt, open_page, sign_in
from tests.console.conftest import HOSTILE, LIMITED_KEY, LIMITED_NAME, SCREENSHOTS
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, Reply
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim

REQUESTS = 2


def _summary(proxy: ProxyServer) -> dict[str, Any]:
    reply = mgmt(proxy, "GET", "/usage/summary", params={"group-by": "api-key", "bucket": "day"})
    used: dict[str, Any] = {"requests": 0, "tokens": 0, "cost": 0.0}
    for b in reply.json()["buckets"]:
        if b["group"] == LIMITED_NAME:
            used["requests"] += b["requests"]
            used["tokens"] += b["input_tokens"] + b["output_tokens"]
            used["cost"] += b["cost_usd"] or 0
    return used


@pytest.fixture(scope="module")
def traffic(proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim]) -> dict[str, Any]:
    """Two requests through the proxy with the limited key; what the ledger recorded."""
    claude, _ = sims
    claude.queue(*(Reply.text("hello from the simulator") for _ in range(REQUESTS)))
    for _ in range(REQUESTS):
        reply = httpx.post(
            f"{proxy.base_url}/v1/messages",
            headers={"x-api-key": LIMITED_KEY, "anthropic-version": "2023-06-01"},
            json={
                "model": "sonnet",
                "max_tokens": 32,
                "messages": [{"role": "user", "content": "hi"}],
            },
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        used = _summary(proxy)
        if used["requests"] >= REQUESTS:
            return used
        time.sleep(0.1)
    raise AssertionError("the ledger did not record the requests")


def test_keys_limits_and_use(page: Any, proxy: ProxyServer, traffic: dict[str, Any]) -> None:
    assert traffic["requests"] == REQUESTS and traffic["tokens"] > 0 and traffic["cost"] > 0
    watch = sign_in(page, proxy)
    open_page(page, "client-keys")
    rows = page.locator("#client-keys tbody tr")
    expect(rows).to_have_count(2)
    limited = page.locator(f'#client-keys tr[data-name="{LIMITED_NAME}"]')
    expect(limited.locator("td.name")).to_have_text(LIMITED_NAME)
    masked = limited.locator("td.mono").text_content() or ""
    assert "…" in masked and LIMITED_KEY not in masked
    expect(limited.locator("td.models")).to_contain_text("claude-*")
    for value in ("30", "2", "1,000", "$5.00"):
        expect(limited).to_contain_text(value)
    expect(limited.locator("td.used-requests")).to_have_text(str(REQUESTS))
    expect(limited.locator("td.used-tokens")).to_contain_text(str(traffic["tokens"]))
    share = 100 * traffic["tokens"] / 1000
    assert 0.1 <= share < 10
    expect(limited.locator("td.used-tokens .share")).to_have_text(f"{share:.1f}% of limit")
    expect(limited.locator("td.used-cost")).not_to_have_text("$0")
    assert 100 * traffic["cost"] / 5 < 0.1
    expect(limited.locator("td.used-month .share")).to_have_text("<0.1% of limit")

    # The hostile name is a row's text, and its key has no limits at all.
    hostile = rows.filter(has_text=HOSTILE)
    expect(hostile).to_have_count(1)
    expect(hostile.locator("td.name")).to_have_text(HOSTILE)
    expect(hostile.locator("td.models")).to_have_text("all models")
    expect(hostile.locator("text=no limit")).to_have_count(4)
    expect(hostile.locator("td.used-requests")).to_have_text("0")
    expect(hostile.locator(".share")).to_have_count(0)
    assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
    assert page.evaluate("window.__pwned") is None

    expect(page.locator("#plain-keys")).to_contain_text("1 plain key in api-keys")
    assert watch.take() == []


def test_screenshots(page: Any, proxy: ProxyServer, traffic: dict[str, Any]) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watch = sign_in(page, proxy)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        open_page(page, "client-keys")
        page.wait_for_selector("#client-keys")
        page.screenshot(
            path=str(SCREENSHOTS / f"client-keys-with-use-{scheme}.png"), full_page=True
        )
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector('main[data-page="client-keys"]')
    page.screenshot(path=str(SCREENSHOTS / "client-keys-with-use-phone-dark.png"), full_page=True)
    assert watch.take() == []
