"""What the console's browser tests share: the page's problem watch and the steps every test
takes (sign in, open a page, find an account's row)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.console.conftest import MGMT
from tests.proxy_server import ProxyServer

# Waits use locators and `expect`: the page's CSP refuses the eval that wait_for_function needs.
expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[dev]')"
).expect

# The pages every test of the shared server opens. Configuration is not among them: that server
# has no config file, so the page's GET /config.yaml answers 404 there (by design: the page then
# says so); test_console_config.py drives it, with and without a file.
PAGES = ("overview", "usage", "accounts", "add-account", "providers", "client-keys", "logs")


def mgmt(proxy: ProxyServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method,
        f"{proxy.base_url}/v0/management{path}",
        headers={"authorization": f"Bearer {MGMT}"},
        timeout=10,
        **kwargs,
    )


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

    def take_refusals(self) -> list[str]:
        """The problems seen, less the API's 422 refusals (which a test provoked) and the
        console line Chromium logs for each of them."""
        return [
            p
            for p in self.take()
            if not p.startswith("HTTP 422: ")
            and "status of 422" not in p  # "Failed to load resource: ... 422 (Unprocessable...)"
        ]


def sign_in(page: Any, proxy: ProxyServer, path: str = "/management.html") -> Watch:
    watch = Watch(page)
    page.goto(proxy.base_url + path)
    page.fill("#management-key", MGMT)
    page.click("#sign-in")
    page.wait_for_selector("#nav:not([hidden])")
    return watch


def open_page(page: Any, name: str) -> None:
    page.click(f'#nav a[data-page="{name}"]')
    page.wait_for_selector(f'main[data-page="{name}"]')


def row(page: Any, name: str) -> Any:
    return page.locator(f'#auth-files tr[data-name="{name}"]')


def confirm(page: Any, accept: bool = True) -> None:
    """Answer the console's confirmation dialog."""
    page.wait_for_selector("dialog#confirm[open]")
    page.click("#confirm-ok" if accept else "#confirm-cancel")
    page.wait_for_selector("dialog#confirm:not([open])", state="attached")
