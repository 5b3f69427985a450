"""The console's login in headless Chromium: a wrong key shows the API's message, a lockout its
countdown, management off says how to turn it on, and all of it works from the keyboard."""

from __future__ import annotations

import re
from typing import Any

from tests.console.browser import Watch, expect, row
from tests.console.conftest import MGMT, SCREENSHOTS
from tests.proxy_server import ProxyServer


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
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "login-locked-out-light.png"))


def test_management_off_says_how_to_turn_it_on(page: Any) -> None:
    with ProxyServer() as own:
        watch = Watch(page)
        page.goto(own.base_url + "/management.html")
        off = page.locator("#management-off")
        expect(off).to_contain_text("remote-management: {secret-key:")
        assert not page.is_visible("#management-key")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "management-off-light.png"))
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
    assert page.evaluate("document.activeElement.dataset.page") == "usage"
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
    assert row(page, "claude-second.json").count() == 1
    assert watch.take() == []


def test_remote_client_is_told_how_to_allow_it(page: Any) -> None:
    config = f"remote-management: {{secret-key: {MGMT}, trusted-proxies: [127.0.0.1/32]}}"
    with ProxyServer(config) as own:
        page.set_extra_http_headers({"x-forwarded-for": "203.0.113.9"})
        watch = Watch(page)
        page.goto(own.base_url + "/console/")
        refused = page.locator("#management-refused")
        expect(refused).to_contain_text("remote management disabled")
        expect(refused).to_contain_text("allow-remote: true")
        assert watch.take() == []
