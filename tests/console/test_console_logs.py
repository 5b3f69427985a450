"""The Logs page in headless Chromium against a real cliproxy (a config file, so the request-log
switch can write it) with an OpenAI-compatible and a Claude simulator: new server log lines
appear while the page is open, a text filter and a level filter hide the others, pause stops
the updates and resume brings the missed lines; with request-log off the page says so and
gives the config line, and its switch turns it on; a request's redacted bodies are shown (no
client or upstream key in full); a request whose model failed upstream (429) and that its
fallback answered shows both attempts. Screenshots to build/console-screenshots/."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cliproxy.config import load_config
from tests.console.browser import expect, mgmt, open_page, sign_in
from tests.console.conftest import MGMT, SCREENSHOTS
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, OpenAIChatSim, Reply

CLIENT_KEY = "sk-logs-client-7a6b5c4d"
CHAT_KEY = "up-chat-key-9f8e7d6c5b"
CLAUDE_KEY = "up-claude-key-1a2b3c4d5e"
SECRETS = (CLIENT_KEY, CHAT_KEY, CLAUDE_KEY, MGMT)
POLLS = 3500  # ms: more than two of the page's polls

CONFIG = """
auth-dir: {auth_dir}
api-keys: [{client_key}]
request-retry: 0
max-retry-interval: 0
request-log: false
remote-management:
  secret-key: {mgmt}
openai-compatibility:
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: {chat_key}}}]
    models: [{{name: up-flaky, alias: flaky}}]
claude-api-key:
  - api-key: {claude_key}
    base-url: {claude}
    models: [{{name: claude-sonnet-4-5, alias: sonnet}}]
model-fallbacks:
  flaky: [sonnet]
"""

log = logging.getLogger("cliproxy.tests.console")


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[OpenAIChatSim, AnthropicSim]]:  # type: ignore[override]
    with OpenAIChatSim() as chat, AnthropicSim() as claude:
        yield chat, claude


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-logs") / "config.yaml"


@pytest.fixture(scope="module")
def proxy(  # type: ignore[override]
    sims: tuple[OpenAIChatSim, AnthropicSim],
    config_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyServer]:
    chat, claude = sims
    config_path.write_text(
        CONFIG.format(
            auth_dir=tmp_path_factory.mktemp("console-logs-auth"),
            client_key=CLIENT_KEY,
            mgmt=MGMT,
            chat=chat.base_url,
            chat_key=CHAT_KEY,
            claude=claude.base_url,
            claude_key=CLAUDE_KEY,
        )
    )
    with pytest.MonkeyPatch.context() as env:
        # Request log files go under this module's temporary directory, not ./logs.
        env.setenv("WRITABLE_PATH", str(config_path.parent))
        with ProxyServer(load_config(config_path), config_path=config_path) as server:
            yield server


@pytest.fixture(autouse=True)
def fresh(proxy: ProxyServer, sims: tuple[OpenAIChatSim, AnthropicSim]) -> None:
    for sim in sims:
        sim.reset()
    proxy.state.cooldowns.clear()


def _chat(proxy: ProxyServer, model: str, content: str = "hello") -> httpx.Response:
    return httpx.post(
        f"{proxy.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        json={"model": model, "messages": [{"role": "user", "content": content}]},
        timeout=30,
    )


def _request_log(proxy: ProxyServer, on: bool) -> None:
    reply = mgmt(proxy, "PUT", "/request-log", json={"value": on})
    assert reply.status_code == 200, reply.text


def _masked(secret: str) -> str:
    return f"{secret[:4]}…{secret[-4:]}"


def test_server_log_live_filter_and_pause(
    page: Any, proxy: ProxyServer, sims: tuple[OpenAIChatSim, AnthropicSim]
) -> None:
    chat, _ = sims
    tag = f"console-{uuid.uuid4().hex[:8]}"
    watch = sign_in(page, proxy)
    open_page(page, "logs")
    lines = page.locator("#log-lines")
    expect(page.locator("#log-status")).to_contain_text("Live")

    # Lines logged while the page is open show up without a reload: one of the test's own,
    # and the warning the server logs for a request whose upstream failed (with its id).
    log.warning("%s first line", tag)
    expect(lines).to_contain_text(f"{tag} first line")
    chat.queue(Reply.error(503, "sim overloaded"))
    assert _chat(proxy, "flaky").status_code == 200  # its fallback answered
    served = lines.locator("li", has_text="answered 503: sim overloaded")
    expect(served).to_have_count(1)
    href = served.locator("a.request").get_attribute("href") or ""
    assert re.fullmatch(r"#/logs/requests/[0-9a-f]{8}", href), href
    expect(served.locator("a.request")).to_have_text(href[-8:])
    expect(served.locator(".level")).to_have_text("warning")

    # A text filter hides every other line.
    log.warning("%s second line", tag)
    expect(lines).to_contain_text(f"{tag} second line")
    page.fill("#log-filter", tag)
    visible = lines.locator("li:visible")
    expect(visible).to_have_count(2)
    for text in visible.all_text_contents():
        assert tag in text
    expect(served).to_be_hidden()
    expect(page.locator("#log-count")).to_contain_text("2 of ")
    # Errors only: the two warnings go, a new error line comes (filtered as it arrives).
    page.select_option("#log-level", "error")
    expect(visible).to_have_count(0)
    log.error("%s an error", tag)
    expect(visible).to_have_count(1)
    expect(visible).to_contain_text(f"{tag} an error")
    expect(visible.locator(".level")).to_have_text("error")
    page.select_option("#log-level", "")
    page.fill("#log-filter", "")
    expect(served).to_be_visible()

    # Pause: nothing new is fetched (the page makes no /logs call); resume brings it in.
    page.click("#log-pause")
    expect(page.locator("#log-pause")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#log-status")).to_contain_text("Paused")
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if "/v0/management/logs" in r.url else None)
    log.warning("%s while paused", tag)
    page.wait_for_timeout(POLLS)
    expect(lines).not_to_contain_text(f"{tag} while paused")
    assert calls == []
    page.click("#log-pause")
    expect(page.locator("#log-pause")).to_have_attribute("aria-pressed", "false")
    expect(lines).to_contain_text(f"{tag} while paused")
    assert len(calls) >= 1
    # Leaving the page stops the polling.
    open_page(page, "overview")
    calls.clear()
    page.wait_for_timeout(POLLS)
    assert calls == []
    assert watch.take() == []


def test_request_log_off_then_on_with_redacted_bodies(
    page: Any, proxy: ProxyServer, sims: tuple[OpenAIChatSim, AnthropicSim], config_path: Path
) -> None:
    _, claude = sims
    _request_log(proxy, False)
    # With request-log off only a failed request gets a file.
    claude.queue(Reply.error(400, "the simulator refuses this"))
    assert _chat(proxy, "sonnet").status_code == 400
    watch = sign_in(page, proxy)
    page.goto(f"{proxy.base_url}/management.html#/logs/requests")
    off = page.locator("#request-log-off")
    expect(off).to_contain_text("Request logging is off")
    expect(off.locator("pre")).to_have_text("request-log: true")
    failed = page.locator("#request-logs tbody tr").first
    expect(failed.locator("td.status")).to_have_text("400")

    page.click("#request-log-enable")
    expect(page.locator("#request-log-on")).to_contain_text("Request logging is on")
    expect(off).to_have_count(0)
    assert "request-log: true" in config_path.read_text()
    assert mgmt(proxy, "GET", "/request-log").json() == {"request-log": True}

    claude.queue(Reply.text(f"you said {CLIENT_KEY}"))
    reply = _chat(proxy, "sonnet", f"my keys are {CLIENT_KEY} and {CLAUDE_KEY}")
    assert reply.status_code == 200
    listed = mgmt(proxy, "GET", "/request-logs").json()["files"]
    newest = listed[0]
    assert newest["status"] == 200 and newest["error"] is False
    page.click("#requests-refresh")
    row = page.locator(f'#request-logs tr[data-id="{newest["id"]}"]')
    expect(row.locator("td.status")).to_have_text("200")
    expect(row.locator("td.model")).to_have_text("sonnet")
    row.locator("a.request-link").click()
    expect(page.locator("#request-summary")).to_contain_text(f"Request {newest['id']}")
    request = page.locator("#section-request")
    expect(request.locator("pre.body")).to_contain_text("my keys are")
    expect(request.locator("pre.body")).to_contain_text(_masked(CLIENT_KEY))
    expect(request.locator("pre.body")).to_contain_text(_masked(CLAUDE_KEY))
    expect(request).to_contain_text(f"Bearer {_masked(CLIENT_KEY)}")
    expect(page.locator("#section-response pre.body")).to_contain_text("you said")
    page.locator("#section-upstream-request-1 summary").click()
    upstream = page.locator("#section-upstream-request-1")
    expect(upstream).to_contain_text(_masked(CLAUDE_KEY))  # the x-api-key sent upstream
    expect(page.locator("#request-attempts tbody tr")).to_have_count(1)
    content = page.content()
    for secret in SECRETS:
        assert secret not in content

    with page.expect_download() as info:
        page.click("#request-download")
    path = info.value.path()
    assert path is not None and info.value.suggested_filename.endswith(f"-{newest['id']}.log")
    text = Path(path).read_text()
    assert "=== SUMMARY ===" in text and all(secret not in text for secret in SECRETS)
    assert watch.take() == []


def test_a_fallback_shows_both_attempts(
    page: Any, proxy: ProxyServer, sims: tuple[OpenAIChatSim, AnthropicSim]
) -> None:
    chat, claude = sims
    _request_log(proxy, True)
    chat.queue(Reply.error(429, "rate limited by the simulator"))
    claude.queue(Reply.text("sonnet stepped in"))
    reply = _chat(proxy, "flaky")
    assert reply.status_code == 200 and reply.headers["x-cliproxy-model"] == "sonnet"
    newest = mgmt(proxy, "GET", "/request-logs").json()["files"][0]
    assert (newest["model"], newest["served_model"], newest["fell_back"]) == (
        "flaky",
        "sonnet",
        True,
    )

    watch = sign_in(page, proxy)
    page.goto(f"{proxy.base_url}/management.html#/logs/requests")
    row = page.locator(f'#request-logs tr[data-id="{newest["id"]}"]')
    expect(row.locator("td.model")).to_contain_text("flaky → sonnet")
    expect(row.locator("td.model .badge")).to_have_text("fallback")
    expect(row.locator("td.attempts")).to_have_text("2")
    row.locator("a.request-link").click()
    expect(page.locator("#served-model")).to_have_text("sonnet")
    attempts = page.locator("#request-attempts tbody tr")
    expect(attempts).to_have_count(2)
    first, second = attempts.nth(0), attempts.nth(1)
    expect(first).to_have_attribute("data-result", "failed")
    expect(first.locator("td.model")).to_have_text("flaky")
    expect(first).to_contain_text("429")
    expect(first.locator("td.why")).to_contain_text("rate limited by the simulator")
    expect(first.locator("td.account")).to_contain_text(_masked(CHAT_KEY))
    expect(second).to_have_attribute("data-result", "answered")
    expect(second.locator("td.model")).to_have_text("sonnet fallback")
    expect(second.locator("td.account")).to_contain_text(_masked(CLAUDE_KEY))
    expect(second).to_contain_text("claude-sonnet-4-5")
    expect(page.locator("#attempt-chain")).to_have_text(
        "flaky failed (429) → sonnet answered · fell back from flaky to sonnet"
    )
    titles = page.locator("details.section > summary .section-title").all_text_contents()
    assert titles == [
        "REQUEST",
        "UPSTREAM REQUEST 1",
        "UPSTREAM RESPONSE 1",
        "UPSTREAM REQUEST 2",
        "UPSTREAM RESPONSE 2",
        "RESPONSE",
    ]
    content = page.content()
    for secret in SECRETS:
        assert secret not in content
    # The request id in the server log's lines leads to the same page.
    page.goto(f"{proxy.base_url}/management.html#/logs")
    link = page.locator(f'#log-lines a.request[href="#/logs/requests/{newest["id"]}"]').first
    link.click()
    expect(page.locator("#request-attempts tbody tr")).to_have_count(2)
    page.goto(f"{proxy.base_url}/management.html#/logs/requests/00000000")
    expect(page.locator("#request-missing")).to_contain_text("No log for request 00000000")
    problems = watch.take()  # the missing log's 404, as the browser reports it
    assert problems and all("404" in p for p in problems), problems


def test_screenshots(
    page: Any, proxy: ProxyServer, sims: tuple[OpenAIChatSim, AnthropicSim]
) -> None:
    chat, claude = sims
    _request_log(proxy, True)
    chat.queue(Reply.error(429, "rate limited by the simulator"))
    claude.queue(Reply.text("sonnet stepped in"))
    assert _chat(proxy, "flaky").status_code == 200
    newest = mgmt(proxy, "GET", "/request-logs").json()["files"][0]["id"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watch = sign_in(page, proxy)
    shots = {
        "logs-server": ("#/logs", "#log-lines li"),
        "logs-requests": ("#/logs/requests", "#request-logs tbody tr[data-id]"),
        "logs-request-fallback": (f"#/logs/requests/{newest}", "#request-attempts tbody tr"),
    }
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, (where, ready) in shots.items():
            page.goto(f"{proxy.base_url}/management.html{where}")
            page.wait_for_selector(ready)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{scheme}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    for name, (where, ready) in shots.items():
        page.goto(f"{proxy.base_url}/management.html{where}")
        page.wait_for_selector(ready)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-phone-dark.png"), full_page=True)
    _request_log(proxy, False)
    page.goto(f"{proxy.base_url}/management.html#/logs/requests")
    page.wait_for_selector("#request-log-off")
    page.screenshot(path=str(SCREENSHOTS / "logs-request-log-off-phone-dark.png"), full_page=True)
    assert watch.take() == []
