"""Editing client keys on the Client keys page in headless Chromium, against a server with a
real config file: a bad limit is shown by its field and nothing is written; a good key is
added, its generated key shown once and accepted by the proxy within its allowed models; an
edit changes only what it changes; a name already listed is refused before anything is sent;
deletion after a confirmation; screenshots to build/console-screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.console.browser import confirm, expect, mgmt, sign_in
from tests.console.conftest import (
    CLIENT_KEY,
    HOSTILE,
    LIMITED_KEY,
    LIMITED_NAME,
    MGMT,
    SCREENSHOTS,
    writable_server,
)
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, Reply
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim

CONFIG = """\
auth-dir: {auth_dir}
api-keys: [{client_key}]
client-keys:
  # a key with every limit
  - key: {limited_key}
    name: {limited_name}
    allowed-models: [sonnet]
    requests-per-minute: 30
    max-budget-usd-per-month: 5
  - key: sk-console-open-0003
    name: '{hostile}'
request-retry: 0
max-retry-interval: 0
remote-management:
  secret-key: {mgmt}
claude-api-key:
  - api-key: up-claude-key-123456
    base-url: {claude}
    models: [{{name: claude-sonnet-4-5, alias: sonnet}}, {{name: claude-haiku-4-5, alias: haiku}}]
"""


@pytest.fixture(scope="module")
def proxy(
    sims: tuple[AnthropicSim, ClaudeOAuthSim], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyServer]:
    claude, _ = sims
    directory = tmp_path_factory.mktemp("console-client-keys")
    (directory / "auths").mkdir()
    text = CONFIG.format(
        auth_dir=directory / "auths",
        client_key=CLIENT_KEY,
        limited_key=LIMITED_KEY,
        limited_name=LIMITED_NAME,
        hostile=HOSTILE,
        mgmt=MGMT,
        claude=claude.base_url,
    )
    with writable_server(directory, text) as server:
        yield server


def _keys(proxy: ProxyServer) -> list[dict[str, Any]]:
    reply = mgmt(proxy, "GET", "/client-keys")
    assert reply.status_code == 200, reply.text
    keys: list[dict[str, Any]] = reply.json()["client-keys"]
    return keys


def _file(proxy: ProxyServer) -> bytes:
    assert proxy.config_path is not None
    return proxy.config_path.read_bytes()


def _ask(proxy: ProxyServer, key: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{proxy.base_url}/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


def _open(page: Any, proxy: ProxyServer) -> Any:
    watch = sign_in(page, proxy, "/console/#/client-keys")
    page.wait_for_selector('main[data-page="client-keys"]')
    return watch


def _row(page: Any, name: str) -> Any:
    return page.locator(f'#client-keys tr[data-name="{name}"]')


def test_add_with_a_bad_limit_then_a_good_one(
    page: Any, proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim]
) -> None:
    claude, _ = sims
    before_file, before = _file(proxy), _keys(proxy)
    watch = _open(page, proxy)
    page.click("#add-client-key")
    form = page.locator("#client-key-form")
    form.locator('[data-field="name"] input').fill("team-new")
    form.locator('[data-field="requests-per-minute"] input').fill("0")
    form.locator('[data-field="max-budget-usd-per-month"] input').fill("-1")
    form.locator('[data-action="save"]').click()
    expect(form.locator('[data-field="requests-per-minute"] .field-error')).to_have_text(
        "must be at least 1, or left out for no limit (got 0)"
    )
    expect(form.locator('[data-field="max-budget-usd-per-month"] .field-error')).to_have_text(
        "must be 0 or more, or left out for no limit (got -1.0)"
    )
    expect(form.locator('[data-field="requests-per-minute"] input')).to_have_attribute(
        "aria-invalid", "true"
    )
    assert _keys(proxy) == before and _file(proxy) == before_file
    page.screenshot(path=str(_shots() / "client-keys-refused-light.png"), full_page=True)

    # A name that is listed already (ignoring case): refused before anything is sent.
    form.locator('[data-field="name"] input').fill(LIMITED_NAME.upper())
    form.locator('[data-action="save"]').click()
    expect(form.locator('[data-field="name"] .field-error')).to_contain_text("listed already")

    form.locator('[data-field="name"] input').fill("team-new")
    form.locator('[data-field="requests-per-minute"] input').fill("10")
    form.locator('[data-field="max-budget-usd-per-month"] input').fill("2.5")
    form.locator('[data-action="restrict"]').check()
    form.locator('[data-field="allowed-models"] textarea').fill("haiku\n")
    form.locator('[data-action="save"]').click()
    page.wait_for_selector('.toast:text("team-new added")')
    generated = page.locator('#generated-keys li[data-name="team-new"] .generated-key')
    key = generated.text_content() or ""
    assert key.startswith("sk-") and len(key) > 30

    added = [k for k in _keys(proxy) if k["name"] == "team-new"]
    assert added == [
        {
            "name": "team-new",
            "key": added[0]["key"],
            "allowed-models": ["haiku"],
            "requests-per-minute": 10,
            "max-budget-usd-per-month": 2.5,
        }
    ]
    assert "…" in added[0]["key"] and key not in added[0]["key"]
    row = _row(page, "team-new")
    expect(row.locator("td.mono")).to_have_text(added[0]["key"])
    expect(row.locator("td.models")).to_have_text("haiku")

    # The new key is accepted at once, within its models.
    claude.queue(Reply.text("hello team-new"))
    assert _ask(proxy, key, "haiku").status_code == 200
    assert claude.last_request.json["model"] == "claude-haiku-4-5"
    assert _ask(proxy, key, "sonnet").status_code == 403
    page.screenshot(path=str(_shots() / "client-keys-added-light.png"), full_page=True)
    assert watch.take_refusals() == []


def test_edit_changes_only_what_it_changes(page: Any, proxy: ProxyServer) -> None:
    watch = _open(page, proxy)
    _row(page, LIMITED_NAME).locator('[data-action="edit"]').click()
    form = page.locator(f'#client-key-form[data-name="{LIMITED_NAME}"]')
    rpm = form.locator('[data-field="requests-per-minute"] input')
    expect(rpm).to_have_value("30")
    assert "null" not in (page.text_content("main") or "")
    expect(form.locator('[data-field="allowed-models"] textarea')).to_have_value("sonnet")
    expect(form.locator('[data-field="key"] input[type="text"]')).to_have_value("")  # never the key
    rpm.fill("-5")
    form.locator('[data-action="save"]').click()
    expect(form.locator('[data-field="requests-per-minute"] .field-error')).to_contain_text(
        "must be at least 1"
    )
    assert _keys(proxy)[0]["requests-per-minute"] == 30

    rpm.fill("60")
    form.locator('[data-field="max-budget-usd-per-month"] input').fill("")
    form.locator('[data-field="tokens-per-day"] input').fill("5000")
    form.locator('[data-action="save"]').click()
    page.wait_for_selector(f'.toast:text("{LIMITED_NAME} saved")')
    entry = _keys(proxy)[0]
    assert entry["requests-per-minute"] == 60 and entry["tokens-per-day"] == 5000
    assert "max-budget-usd-per-month" not in entry and entry["allowed-models"] == ["sonnet"]
    # The key itself is the same: the proxy still takes it.
    assert _ask(proxy, LIMITED_KEY, "sonnet").status_code == 200
    text = _file(proxy).decode()
    assert "# a key with every limit" in text and LIMITED_KEY in text
    expect(_row(page, LIMITED_NAME)).to_contain_text("5,000")
    # The hostile name is a row's text and the form's value, never markup.
    _row(page, HOSTILE).locator('[data-action="edit"]').click()
    expect(page.locator('#client-key-form [data-field="name"] input')).to_have_value(HOSTILE)
    assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
    assert page.evaluate("window.__pwned") is None
    assert watch.take_refusals() == []


def test_rotate_then_delete_with_confirmation(page: Any, proxy: ProxyServer) -> None:
    reply = mgmt(proxy, "PATCH", "/client-keys", json={"name": "short-lived", "value": {}})
    old_key = reply.json()["generated-keys"][0]["key"]
    watch = _open(page, proxy)
    _row(page, "short-lived").locator('[data-action="edit"]').click()
    form = page.locator('#client-key-form[data-name="short-lived"]')
    form.locator('[data-action="rotate"]').check()
    form.locator('[data-action="save"]').click()
    page.wait_for_selector('.toast:text("short-lived saved")')
    new_key = page.locator('#generated-keys li[data-name="short-lived"] .generated-key')
    rotated = new_key.text_content() or ""
    assert rotated.startswith("sk-") and rotated != old_key
    assert _ask(proxy, old_key, "sonnet").status_code == 401

    _row(page, "short-lived").locator('[data-action="delete"]').click()
    expect(page.locator("#confirm-text")).to_contain_text("short-lived")
    confirm(page, accept=False)
    assert any(k["name"] == "short-lived" for k in _keys(proxy))
    _row(page, "short-lived").locator('[data-action="delete"]').click()
    confirm(page)
    page.wait_for_selector('.toast:text("short-lived deleted")')
    assert not any(k["name"] == "short-lived" for k in _keys(proxy))
    expect(_row(page, "short-lived")).to_have_count(0)
    assert _ask(proxy, rotated, "sonnet").status_code == 401
    assert watch.take() == []


def _shots() -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
