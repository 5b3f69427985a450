"""A real cliproxy with a management key, an API-key upstream and an OAuth account on
simulators, plus headless Chromium driven by Playwright (skipped, saying why, when neither
/usr/bin/chromium nor the playwright package is there; `make test` installs both)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cliproxy.auth.identity import NEEDS_LOGIN_FIELD
from cliproxy.config import load_config
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim

MGMT = "console-management-key"
CLIENT_KEY = "sk-console-client-0001"
# client-keys: one with every limit, one with no limits and a hostile name.
LIMITED_KEY = "sk-console-limited-0002"
LIMITED_NAME = "team-limited"
OPEN_KEY = "sk-console-open-0003"
ACCOUNT_TOKEN = "console-account-token"
HOSTILE = "<script>window.__pwned=1</script>"
HOSTILE_EMAIL = '<img src=x onerror="window.__pwned=2">@example.com'
CHROMIUM = os.environ.get("CLIPROXY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "console-screenshots"

CONFIG = """
auth-dir: {auth_dir}
api-keys: [{client_key}]
client-keys:
  - key: {limited_key}
    name: {limited_name}
    allowed-models: [sonnet, 'claude-*']
    requests-per-minute: 30
    tokens-per-day: 1000
    max-budget-usd-per-month: 5
    max-concurrent-requests: 2
  - key: {open_key}
    name: '{hostile}'
request-retry: 0
max-retry-interval: 0
remote-management:
  secret-key: {mgmt}
claude-api-key:
  - api-key: up-claude-key-123456
    base-url: {claude}
    models: [{{name: claude-sonnet-4-5, alias: sonnet}}, {{name: claude-haiku-4-5, alias: '{hostile}'}}]
"""


def account_file(email: str, base_url: str) -> dict[str, Any]:
    return {
        "type": "claude",
        "access_token": ACCOUNT_TOKEN,
        "refresh_token": "rt",
        "email": email,
        "expired": "2099-01-01T00:00:00Z",
        "base_url": base_url,
    }


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[AnthropicSim, ClaudeOAuthSim]]:
    with AnthropicSim() as claude, ClaudeOAuthSim(api_keys={ACCOUNT_TOKEN}) as account:
        yield claude, account


@pytest.fixture(scope="module")
def auth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-auth")


@pytest.fixture(scope="module")
def proxy(sims: tuple[AnthropicSim, ClaudeOAuthSim], auth_dir: Path) -> Iterator[ProxyServer]:
    claude, account = sims
    (auth_dir / "claude-hostile.json").write_text(
        json.dumps(account_file(HOSTILE_EMAIL, account.base_url))
    )
    (auth_dir / "claude-second.json").write_text(
        json.dumps(account_file("second@example.com", account.base_url))
    )
    stale = account_file("stale@example.com", account.base_url)
    stale[NEEDS_LOGIN_FIELD] = "the refresh token was revoked"
    (auth_dir / "claude-stale.json").write_text(json.dumps(stale))
    text = CONFIG.format(
        auth_dir=auth_dir,
        client_key=CLIENT_KEY,
        limited_key=LIMITED_KEY,
        limited_name=LIMITED_NAME,
        open_key=OPEN_KEY,
        mgmt=MGMT,
        claude=claude.base_url,
        hostile=HOSTILE,
    )
    with ProxyServer(text) as server:
        yield server


def writable_server(directory: Path, text: str) -> ProxyServer:
    """A server on `text` written to `directory`/config.yaml, so the management API's writes
    (the editing pages) have a file to change. Use it as a context manager."""
    path = directory / "config.yaml"
    path.write_text(text)
    return ProxyServer(load_config(path), config_path=path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(
            f"no Chromium at {CHROMIUM}: the console's browser tests need Debian's chromium "
            "package (`make test` installs it when run as root; or apt-get install chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing (pip install -e '.[dev]')")
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, proxy: ProxyServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()
