"""The Providers and keys page in headless Chromium, against a server with a real config file:
every list the management API has; keys masked, revealed only on request, kept when the form
leaves them alone; bad values (a base-url that is no URL, a negative weight, a model without
the alias its section needs) shown next to their field while the file stays byte-identical;
good edits applied (read back through the API, and a request routed by the alias the form
added); an addition; deletion after a confirmation; a `<script>` alias shown as text; the OAuth
channel maps; screenshots to build/console-screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cliproxy.management.routes_keys import SECTIONS
from tests.console.browser import confirm, expect, mgmt, open_page, sign_in
from tests.console.conftest import CLIENT_KEY, HOSTILE, MGMT, SCREENSHOTS, writable_server
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, Reply
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim

CLAUDE_KEY = "up-claude-key-123456"
SPARE_KEY = "up-claude-spare-7890"
LOCAL_KEY = "up-local-key-000111"
STATIC = Path(__file__).resolve().parents[2] / "src" / "cliproxy" / "console" / "static"

CONFIG = """\
auth-dir: {auth_dir}
api-keys: [{client_key}]
request-retry: 0
max-retry-interval: 0
remote-management:
  secret-key: {mgmt}
claude-api-key:
  # the entry the tests edit
  - api-key: {claude_key}
    base-url: {claude}
    models: [{{name: claude-sonnet-4-5, alias: sonnet}}]
  - api-key: {spare_key}
    base-url: {claude}
    prefix: spare
gemini-api-key:
  - api-key: up-gemini-key-abcdef
openai-compatibility:
  - name: local
    base-url: http://127.0.0.1:9/v1
    api-key-entries: [{{api-key: {local_key}}}]
    models: [{{name: llama3, alias: local-llama}}]
vertex-api-key:
  - api-key: up-vertex-key-000222
    base-url: https://vertex.example/v1
    models: [{{name: gemini-2.5-pro, alias: vpro}}]
"""


@pytest.fixture(scope="module")
def proxy(
    sims: tuple[AnthropicSim, ClaudeOAuthSim], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyServer]:
    claude, _ = sims
    directory = tmp_path_factory.mktemp("console-providers")
    (directory / "auths").mkdir()
    text = CONFIG.format(
        auth_dir=directory / "auths",
        client_key=CLIENT_KEY,
        mgmt=MGMT,
        claude_key=CLAUDE_KEY,
        spare_key=SPARE_KEY,
        local_key=LOCAL_KEY,
        claude=claude.base_url,
    )
    with writable_server(directory, text) as server:
        yield server


def _file(proxy: ProxyServer) -> bytes:
    assert proxy.config_path is not None
    return proxy.config_path.read_bytes()


def _list(proxy: ProxyServer, section: str) -> list[dict[str, Any]]:
    reply = mgmt(proxy, "GET", f"/{section}")
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, Any]] = reply.json()[section]
    return entries


def _card(page: Any, section: str) -> Any:
    return page.locator(f'section[data-section="{section}"]')


def _edit(page: Any, section: str, index: int) -> Any:
    _card(page, section).locator(f'tr[data-index="{index}"] [data-action="edit"]').click()
    form = page.locator(f'form[data-section="{section}"][data-index="{index}"]')
    expect(form).to_be_visible()
    return form


def _open(page: Any, proxy: ProxyServer) -> Any:
    watch = sign_in(page, proxy, "/console/#/providers")
    page.wait_for_selector('main[data-page="providers"]')
    return watch


def test_every_list_of_the_api_is_on_the_page(page: Any, proxy: ProxyServer) -> None:
    source = (STATIC / "js" / "providers.js").read_text()
    listed = re.findall(r'\{ key: "([a-z-]+)", title:', source)
    assert sorted(listed) == sorted(section.key for section in SECTIONS)
    watch = _open(page, proxy)
    for section in SECTIONS:
        expect(_card(page, section.key)).to_have_count(1)
    expect(_card(page, "claude-api-key").locator("tbody tr")).to_have_count(2)
    expect(_card(page, "openai-compatibility").locator('tr[data-name="local"]')).to_contain_text(
        "local-llama"
    )
    expect(page.locator('section[data-map="oauth-excluded-models"]')).to_have_count(1)
    expect(page.locator('section[data-map="oauth-model-alias"]')).to_have_count(1)
    assert watch.take() == []


def test_keys_are_masked_and_revealed_on_request(page: Any, proxy: ProxyServer) -> None:
    watch = _open(page, proxy)
    first = _card(page, "claude-api-key").locator('tr[data-index="0"] td.key')
    expect(first).to_have_text("up-c…3456")
    form = _edit(page, "claude-api-key", 0)
    key = form.locator('[data-field="api-key"] input')
    expect(key).to_have_value("")
    expect(key).to_have_attribute("placeholder", "unchanged (up-c…3456)")
    expect(key).to_have_attribute("type", "password")
    # No full key anywhere in the page until asked for.
    values = page.evaluate("[...document.querySelectorAll('input')].map(i => i.value).join(' ')")
    assert CLAUDE_KEY not in values and CLAUDE_KEY not in page.content()
    form.locator('[data-action="reveal"]').click()
    expect(key).to_have_value(CLAUDE_KEY)
    expect(key).to_have_attribute("type", "text")
    form.locator('[data-action="cancel"]').click()
    expect(form).to_have_count(0)
    assert watch.take() == []


def test_bad_values_are_shown_by_their_fields_and_nothing_is_written(
    page: Any, proxy: ProxyServer
) -> None:
    before_file, before = _file(proxy), _list(proxy, "claude-api-key")
    watch = _open(page, proxy)
    form = _edit(page, "claude-api-key", 0)
    form.locator('[data-field="base-url"] input').fill("not a url")
    form.locator('[data-field="weight"] input').fill("-3")
    form.locator('[data-action="save"]').click()
    base_error = form.locator('[data-field="base-url"] .field-error')
    expect(base_error).to_have_text("must be an http:// or https:// URL (got 'not a url')")
    expect(form.locator('[data-field="weight"] .field-error')).to_have_text(
        "must be 0 or more (got -3)"
    )
    expect(form.locator('[data-field="base-url"] input')).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".form-error")).to_be_hidden()
    assert _file(proxy) == before_file
    assert _list(proxy, "claude-api-key") == before

    # Fixing one leaves only the other's message.
    form.locator('[data-field="weight"] input').fill("2")
    form.locator('[data-action="save"]').click()
    expect(form.locator('[data-field="weight"] .field-error')).to_be_hidden()
    expect(base_error).to_be_visible()
    assert _file(proxy) == before_file
    page.screenshot(path=str(_shots() / "providers-refused-light.png"), full_page=True)
    problems = watch.take_refusals()
    assert problems == [], problems


def test_a_good_edit_is_applied_and_routed(
    page: Any, proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim]
) -> None:
    claude, _ = sims
    watch = _open(page, proxy)
    form = _edit(page, "claude-api-key", 0)
    form.locator('[data-action="add-models"]').click()
    row = form.locator('[data-rows="models"] .sub-row').nth(1)
    row.locator('input[data-column="name"]').fill("claude-haiku-4-5")
    row.locator('input[data-column="alias"]').fill("edited-alias")
    form.locator('[data-field="excluded-models"] textarea').fill("Claude-Opus-*\n")
    form.locator('[data-action="save"]').click()
    page.wait_for_selector('.toast:text("claude-api-key[0] saved")')
    expect(form).to_have_count(0)
    listed = _card(page, "claude-api-key").locator('tr[data-index="0"]')
    expect(listed.locator("td.models")).to_contain_text("claude-haiku-4-5 → edited-alias")
    expect(listed.locator("td.excluded")).to_have_text("claude-opus-*")

    entry = _list(proxy, "claude-api-key")[0]
    assert entry["api-key"] == CLAUDE_KEY  # the key the form never showed is kept
    assert entry["models"] == [
        {"name": "claude-sonnet-4-5", "alias": "sonnet"},
        {"name": "claude-haiku-4-5", "alias": "edited-alias"},
    ]
    assert entry["excluded-models"] == ["claude-opus-*"]
    text = _file(proxy).decode()
    assert "# the entry the tests edit" in text and "weight" not in text  # only what changed

    claude.queue(Reply.text("routed by the new alias"))
    reply = httpx.post(
        f"{proxy.base_url}/v1/messages",
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": "edited-alias",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        },
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert claude.last_request.json["model"] == "claude-haiku-4-5"
    assert claude.presented_key(claude.last_request) == CLAUDE_KEY
    assert watch.take() == []


def test_a_script_alias_is_text(page: Any, proxy: ProxyServer) -> None:
    watch = _open(page, proxy)
    form = _edit(page, "claude-api-key", 1)
    form.locator('[data-action="add-models"]').click()
    row = form.locator('[data-rows="models"] .sub-row').last
    row.locator('input[data-column="name"]').fill("claude-opus-4-1")
    row.locator('input[data-column="alias"]').fill(HOSTILE)
    form.locator('[data-action="save"]').click()
    page.wait_for_selector('.toast:text("claude-api-key[1] saved")')
    cell = _card(page, "claude-api-key").locator('tr[data-index="1"] td.models')
    expect(cell.locator(".alias")).to_have_text(HOSTILE)
    assert _list(proxy, "claude-api-key")[1]["models"] == [
        {"name": "claude-opus-4-1", "alias": HOSTILE}
    ]
    # Shown, never parsed: and in the form the next edit opens, it is an input's value.
    form = _edit(page, "claude-api-key", 1)
    expect(form.locator('input[data-column="alias"]')).to_have_value(HOSTILE)
    assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
    assert page.evaluate("window.__pwned") is None
    assert watch.take() == []


def test_add_then_delete_with_confirmation(page: Any, proxy: ProxyServer) -> None:
    watch = _open(page, proxy)
    card = _card(page, "gemini-api-key")
    card.locator('[data-action="add"]').click()
    form = page.locator('form[data-section="gemini-api-key"][data-index="new"]')
    # Neither key nor base-url: said by the key field before anything is sent.
    form.locator('[data-action="save"]').click()
    expect(form.locator('[data-field="api-key"] .field-error')).to_contain_text("is required")
    form.locator('[data-field="api-key"] input').fill("up-gemini-added-4242")
    form.locator('[data-field="base-url"] input').fill("ftp://gemini.example")
    form.locator('[data-action="save"]').click()
    expect(form.locator('[data-field="base-url"] .field-error')).to_contain_text(
        "must be an http:// or https:// URL"
    )
    assert len(_list(proxy, "gemini-api-key")) == 1
    form.locator('[data-field="base-url"] input').fill("https://gemini.example")
    form.locator('[data-field="prefix"] input').fill("added")
    form.locator('[data-action="save"]').click()
    page.wait_for_selector('.toast:text("gemini-api-key[1] added")')
    entries = _list(proxy, "gemini-api-key")
    assert [e["api-key"] for e in entries] == ["up-gemini-key-abcdef", "up-gemini-added-4242"]
    assert entries[1]["base-url"] == "https://gemini.example" and entries[1]["prefix"] == "added"
    expect(card.locator("tbody tr")).to_have_count(2)

    card.locator('tr[data-index="1"] [data-action="delete"]').click()
    expect(page.locator("#confirm-text")).to_contain_text("gemini-api-key[1] (key up-g…4242)")
    confirm(page, accept=False)
    assert len(_list(proxy, "gemini-api-key")) == 2
    card.locator('tr[data-index="1"] [data-action="delete"]').click()
    confirm(page)
    page.wait_for_selector('.toast:text("gemini-api-key[1] deleted")')
    assert [e["api-key"] for e in _list(proxy, "gemini-api-key")] == ["up-gemini-key-abcdef"]
    expect(card.locator("tbody tr")).to_have_count(1)
    assert watch.take_refusals() == []


def test_openai_compatibility_provider(page: Any, proxy: ProxyServer) -> None:
    before_file = _file(proxy)
    watch = _open(page, proxy)
    form = _edit(page, "openai-compatibility", 0)
    key_row = form.locator('[data-rows="api-key-entries"] .sub-row').first
    expect(key_row.locator('input[data-column="api-key"]')).to_have_value("")
    # Emptying the base-url would remove the provider (the API's PATCH rule): refused here.
    form.locator('[data-field="base-url"] input').fill("")
    form.locator('[data-action="save"]').click()
    expect(form.locator('[data-field="base-url"] .field-error')).to_contain_text("is required")
    # A bad proxy on a key entry: the API's message by that entry's row.
    form.locator('[data-field="base-url"] input').fill("http://127.0.0.1:9/v2")
    key_row.locator('input[data-column="proxy-url"]').fill("gopher://proxy.example")
    form.locator('[data-action="save"]').click()
    expect(key_row.locator(".field-error")).to_contain_text("must start with one of http://")
    assert _file(proxy) == before_file

    key_row.locator('input[data-column="proxy-url"]').fill("")
    form.locator('[data-action="add-api-key-entries"]').click()
    added = form.locator('[data-rows="api-key-entries"] .sub-row').nth(1)
    added.locator('input[data-column="api-key"]').fill("up-local-key-second")
    form.locator('[data-field="name"] input').fill("local-2")
    form.locator('[data-action="save"]').click()
    page.wait_for_selector('.toast:text("openai-compatibility[0] saved")')
    entry = _list(proxy, "openai-compatibility")[0]
    assert entry["name"] == "local-2" and entry["base-url"] == "http://127.0.0.1:9/v2"
    assert [k["api-key"] for k in entry["api-key-entries"]] == [LOCAL_KEY, "up-local-key-second"]
    assert entry["models"] == [{"name": "llama3", "alias": "local-llama"}]
    expect(_card(page, "openai-compatibility").locator('tr[data-name="local-2"]')).to_have_count(1)
    assert watch.take_refusals() == []


def test_a_route_refusal_lands_on_its_row(page: Any, proxy: ProxyServer) -> None:
    """vertex-api-key is checked by the route itself (not the config schema): its message
    names the model row, which the form marks."""
    before_file = _file(proxy)
    watch = _open(page, proxy)
    form = _edit(page, "vertex-api-key", 0)
    form.locator('[data-action="add-models"]').click()
    row = form.locator('[data-rows="models"] .sub-row').nth(1)
    row.locator('input[data-column="name"]').fill("gemini-2.5-flash")
    form.locator('[data-action="save"]').click()
    expect(row.locator(".field-error")).to_have_text("needs both name and alias")
    assert _file(proxy) == before_file
    row.locator('input[data-column="alias"]').fill("vflash")
    form.locator('[data-action="save"]').click()
    page.wait_for_selector('.toast:text("vertex-api-key[0] saved")')
    models = _list(proxy, "vertex-api-key")[0]["models"]
    assert models[-1] == {"name": "gemini-2.5-flash", "alias": "vflash"}
    assert watch.take_refusals() == []


def test_oauth_channel_maps(page: Any, proxy: ProxyServer) -> None:
    watch = _open(page, proxy)
    excluded = page.locator('section[data-map="oauth-excluded-models"]')
    excluded.locator('[data-action="add"]').click()
    form = excluded.locator("form")
    form.locator('[data-field="channel"] input').fill("codex")
    form.locator("textarea").fill("gpt-5*\nGPT-4o")
    form.locator('[data-action="save"]').click()
    page.wait_for_selector('.toast:text("oauth-excluded-models: codex saved")')
    got = mgmt(proxy, "GET", "/oauth-excluded-models").json()
    assert got == {"oauth-excluded-models": {"codex": ["gpt-5*", "gpt-4o"]}}

    aliases = page.locator('section[data-map="oauth-model-alias"]')
    aliases.locator('[data-action="add"]').click()
    form = aliases.locator("form")
    form.locator('[data-field="channel"] input').fill("claude")
    form.locator('[data-action="add-aliases"]').click()
    row = form.locator(".sub-row").first
    row.locator('input[data-column="alias"]').fill("opus")
    form.locator('[data-action="save"]').click()
    expect(row.locator(".field-error")).to_contain_text("is required")
    row.locator('input[data-column="name"]').fill("claude-opus-4-1")
    row.locator('input[data-column="fork"]').check()
    form.locator('[data-action="save"]').click()
    page.wait_for_selector('.toast:text("oauth-model-alias: claude saved")')
    got = mgmt(proxy, "GET", "/oauth-model-alias").json()["oauth-model-alias"]
    assert got == {"claude": [{"name": "claude-opus-4-1", "alias": "opus", "fork": True}]}

    excluded.locator('tr[data-channel="codex"] [data-action="delete"]').click()
    confirm(page)
    page.wait_for_selector('.toast:text("oauth-excluded-models: codex removed")')
    got = mgmt(proxy, "GET", "/oauth-excluded-models").json()
    assert got == {"oauth-excluded-models": {}}
    assert watch.take_refusals() == []


def _shots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def test_screenshots(page: Any, proxy: ProxyServer) -> None:
    watch = _open(page, proxy)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        open_page(page, "providers")
        page.screenshot(path=str(_shots() / f"providers-lists-{scheme}.png"), full_page=True)
        _edit(page, "claude-api-key", 0)
        page.screenshot(path=str(_shots() / f"providers-edit-{scheme}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector('main[data-page="providers"]')
    _edit(page, "openai-compatibility", 0)
    page.screenshot(path=str(_shots() / "providers-edit-phone-dark.png"), full_page=True)
    assert watch.take() == []
