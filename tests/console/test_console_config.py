"""The Configuration page in headless Chromium, against a real cliproxy started from a config
file: the file in the YAML editor, a value changed with the keyboard, the diff the server's
check leads to, the save, and the change applied (GET /config and the file on disk); a broken
YAML (bad indentation) and a semantically bad value (a negative port) refused with the
server's message and line, the line marked in the editor, the file unchanged; a server without
a config file saying so; no CSP violation anywhere. Screenshots (light, dark, phone, the diff,
the refusals) go to build/console-screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cliproxy.config import load_config, parse_config_text
from cliproxy.management.security import hash_secret
from tests.console.browser import Watch, expect, mgmt, open_page, sign_in
from tests.console.conftest import CLIENT_KEY, MGMT, SCREENSHOTS
from tests.proxy_server import ProxyServer

# The secret is stored hashed already, so the server never rewrites the file on its own while
# a test holds it in the editor.
CONFIG = """\
# cliproxy console test config
port: 8317  # not used: the test server listens on a free port
auth-dir: {auth_dir}
remote-management:
  secret-key: '{secret}'
api-keys: [{client_key}]

# how often a failed request is tried again
request-retry: 1
routing:
  strategy: round-robin
debug: false
"""

# Every CSP violation the page reports (the console errors catch them too, this names them).
CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("console-config")
    (folder / "auths").mkdir()
    path = folder / "config.yaml"
    path.write_text(
        CONFIG.format(auth_dir=folder / "auths", secret=hash_secret(MGMT), client_key=CLIENT_KEY)
    )
    return path


@pytest.fixture(scope="module")
def proxy(config_path: Path) -> Iterator[ProxyServer]:
    with ProxyServer(load_config(config_path), config_path=config_path) as server:
        yield server


@pytest.fixture
def original(config_path: Path, proxy: ProxyServer) -> Iterator[str]:
    """The file as the test starts; put back (through the API, so it applies) after it."""
    text = config_path.read_text()
    yield text
    if config_path.read_text() != text:
        assert mgmt(proxy, "PUT", "/config.yaml", content=text).status_code == 200


@pytest.fixture
def page(browser: Any, proxy: ProxyServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(CSP_WATCH)
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    assert opened.evaluate("window.__csp") == []
    context.close()


def open_config(page: Any, proxy: ProxyServer) -> Watch:
    watch = sign_in(page, proxy)
    open_page(page, "config")
    page.wait_for_selector("#config-editor .CodeMirror")
    return watch


def editor_text(page: Any) -> str:
    text: str = page.evaluate(
        "document.querySelector('#config-editor .CodeMirror').CodeMirror.getValue()"
    )
    return text


def code_line(page: Any, text: str) -> Any:
    return page.locator("#config-editor .CodeMirror-line", has_text=text)


def put_cursor_at_end_of(page: Any, text: str) -> None:
    code_line(page, text).click()
    page.keyboard.press("End")


def refusals_only(watch: Watch, status: int, path: str) -> list[str]:
    """What went wrong besides the expected refusal (its HTTP status and the console line
    Chromium logs for it)."""
    expected = (f"HTTP {status}: POST", f"status of {status}")
    return [
        p
        for p in watch.take()
        if not (p.startswith(expected[0]) and path in p) and expected[1] not in p
    ]


def test_the_file_is_in_the_editor(page: Any, proxy: ProxyServer, config_path: Path) -> None:
    watch = open_config(page, proxy)
    assert editor_text(page) == config_path.read_text()
    expect(page.locator("#config-state")).to_have_text("12 lines, no changes")
    expect(page.locator("#config-review")).to_be_disabled()
    # Highlighted as YAML: keys, comments and numbers have their own token classes.
    expect(page.locator("#config-editor .cm-atom").first).to_be_visible()
    expect(page.locator("#config-editor .cm-comment").first).to_contain_text("cliproxy console")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(SCREENSHOTS / f"config-{scheme}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "config-phone-dark.png"), full_page=True)
    assert watch.take() == []
    # The watch sees violations: a style attribute set by a script is one (and then reset).
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    expect(page.locator("#config-state")).to_be_visible()
    violations = page.evaluate("window.__csp.splice(0)")
    assert violations and violations[0].startswith("style-src")
    watch.take()  # Chromium's console line for it, when it writes one


def test_change_review_diff_save_applied(
    page: Any, proxy: ProxyServer, config_path: Path, original: str
) -> None:
    watch = open_config(page, proxy)
    assert mgmt(proxy, "GET", "/config").json()["request-retry"] == 1
    put_cursor_at_end_of(page, "request-retry: 1")
    page.keyboard.press("Backspace")
    page.keyboard.type("4")
    expect(page.locator("#config-state")).to_have_text("edited, not saved")
    # Reviewing asks the server; nothing is written yet.
    page.click("#config-review")
    panel = page.locator("#config-review-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("h2")).to_have_text("Review: the server accepts this config")
    expect(page.locator("#config-diff-summary")).to_have_text("1 line added, 1 line removed.")
    removed = page.locator("#config-diff tr.del")
    added = page.locator("#config-diff tr.add")
    expect(removed).to_have_count(1)
    expect(added).to_have_count(1)
    expect(removed.locator("td.code")).to_have_text("request-retry: 1")
    expect(added.locator("td.code")).to_have_text("request-retry: 4")
    expect(added.locator("td.ln").nth(1)).to_have_text("9")  # its line in the new file
    expect(page.locator("#config-diff tr.ctx").first).to_be_visible()  # context around it
    assert config_path.read_text() == original
    assert mgmt(proxy, "GET", "/config").json()["request-retry"] == 1
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(SCREENSHOTS / f"config-review-diff-{scheme}.png"), full_page=True)

    page.click("#config-save")
    expect(page.locator("#config-state")).to_contain_text("saved at")
    expect(page.locator("#config-review-panel")).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text("config.yaml saved and applied")
    assert mgmt(proxy, "GET", "/config").json()["request-retry"] == 4
    assert mgmt(proxy, "GET", "/request-retry").json() == {"request-retry": 4}
    on_disk = config_path.read_text()
    assert on_disk == original.replace("request-retry: 1", "request-retry: 4")
    assert "# how often a failed request is tried again" in on_disk
    assert proxy.state.runtime.config.request_retry == 4
    expect(page.locator("#config-review")).to_be_disabled()
    page.screenshot(path=str(SCREENSHOTS / "config-saved-dark.png"), full_page=True)
    assert watch.take() == []


def test_broken_yaml_is_refused_with_its_line(
    page: Any, proxy: ProxyServer, config_path: Path, original: str
) -> None:
    watch = open_config(page, proxy)
    put_cursor_at_end_of(page, "strategy: round-robin")
    # insert_text, not Enter: the editor would indent the new line like the one above.
    page.keyboard.insert_text("\n      bad: indentation")
    assert "  strategy: round-robin\n      bad: indentation\n" in editor_text(page)
    page.click("#config-review")
    problems = page.locator("#config-problems")
    expect(problems).to_be_visible()
    expect(problems.locator("h2")).to_have_text("Not valid YAML: the server refused it")
    expect(problems.locator(".server-message")).to_have_text(
        "YAML syntax: mapping values are not allowed here (line 12, column 10)"
    )
    expect(problems.locator("button.line-link")).to_have_text("Line 12")
    expect(page.locator("#config-review-panel")).to_be_hidden()
    # The editor marks that line and has its cursor there.
    marked = page.locator("#config-editor .CodeMirror-code > div:has(.cm-problem-line)")
    expect(marked).to_have_count(1)
    line_12 = page.locator("#config-editor .CodeMirror-code > div").nth(11)
    expect(line_12).to_contain_text("bad: indentation")
    expect(line_12.locator(".gutter-mark.error")).to_have_count(1)
    expect(marked).to_contain_text("bad: indentation")
    cursor = page.evaluate(
        "document.querySelector('#config-editor .CodeMirror').CodeMirror.getCursor()"
    )
    assert (cursor["line"], cursor["ch"]) == (11, 9)  # 0-based: line 12, column 10
    assert config_path.read_text() == original
    page.screenshot(path=str(SCREENSHOTS / "config-refused-yaml-light.png"), full_page=True)
    # The line button jumps back there after the cursor moved away.
    page.keyboard.press("Control+Home")
    problems.locator("button.line-link").click()
    cursor = page.evaluate(
        "document.querySelector('#config-editor .CodeMirror').CodeMirror.getCursor()"
    )
    assert cursor["line"] == 11
    assert refusals_only(watch, 400, "/config.yaml/validate") == []


def test_a_negative_port_is_refused_with_its_message(
    page: Any, proxy: ProxyServer, config_path: Path, original: str
) -> None:
    watch = open_config(page, proxy)
    put_cursor_at_end_of(page, "port: 8317")
    page.keyboard.press("Home")
    for _ in range(len("port: ")):
        page.keyboard.press("ArrowRight")
    for _ in range(len("8317")):
        page.keyboard.press("Shift+ArrowRight")
    page.keyboard.type("-5")
    assert editor_text(page).splitlines()[1].startswith("port: -5  #")
    page.click("#config-review")
    problems = page.locator("#config-problems")
    expect(problems.locator("h2")).to_have_text("Not a valid config: the server refused it")
    server_says = mgmt(proxy, "POST", "/config.yaml/validate", content=editor_text(page)).json()
    assert server_says["error"] == "invalid_config" and server_says["line"] == 2
    expect(problems.locator(".server-message")).to_have_text(server_says["message"])
    expect(problems.locator(".server-message")).to_contain_text(
        re.compile(r"^port: .+ \(line 2\)$")
    )
    expect(problems.locator("button.line-link")).to_have_text("Line 2")
    marked = page.locator("#config-editor .CodeMirror-code > div:has(.cm-problem-line)")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text("port: -5")
    assert config_path.read_text() == original
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(SCREENSHOTS / "config-refused-port-dark.png"), full_page=True)

    # Fixed, the next review clears the marks and offers the save again.
    page.keyboard.press("Control+z")
    expect(page.locator("#config-review")).to_be_disabled()  # back to the file as it is
    put_cursor_at_end_of(page, "debug: false")
    for _ in range(len("false")):
        page.keyboard.press("Backspace")
    page.keyboard.type("true")
    page.click("#config-review")
    expect(page.locator("#config-review-panel")).to_be_visible()
    expect(page.locator("#config-problems")).to_be_hidden()
    expect(
        page.locator("#config-editor .CodeMirror-code > div:has(.cm-problem-line)")
    ).to_have_count(0)
    assert refusals_only(watch, 422, "/config.yaml/validate") == []


def test_edits_survive_another_page_and_discard(
    page: Any, proxy: ProxyServer, config_path: Path, original: str
) -> None:
    watch = open_config(page, proxy)
    put_cursor_at_end_of(page, "debug: false")
    page.keyboard.type("  # edited")
    open_page(page, "overview")
    open_page(page, "config")
    page.wait_for_selector("#config-editor .CodeMirror")
    assert "debug: false  # edited" in editor_text(page)
    expect(page.locator("#config-state")).to_have_text("edited, not saved")
    page.click("#config-discard")
    expect(page.locator("#config-state")).to_have_text("12 lines, no changes")
    assert editor_text(page) == original == config_path.read_text()
    assert watch.take() == []


def test_a_file_changed_on_disk_meanwhile_is_diffed_as_it_is_now(
    page: Any, proxy: ProxyServer, config_path: Path, original: str
) -> None:
    watch = open_config(page, proxy)
    changed = original.replace("debug: false", "debug: true")
    assert mgmt(proxy, "PUT", "/config.yaml", content=changed).status_code == 200
    put_cursor_at_end_of(page, "request-retry: 1")
    page.keyboard.press("Backspace")
    page.keyboard.type("2")
    page.click("#config-review")
    expect(page.locator("#config-changed-on-disk")).to_be_visible()
    # Saving would put debug back to false: the diff says so.
    expect(page.locator("#config-diff tr.del td.code")).to_have_text(
        ["request-retry: 1", "debug: true"]
    )
    expect(page.locator("#config-diff tr.add td.code")).to_have_text(
        ["request-retry: 2", "debug: false"]
    )
    assert watch.take() == []


def test_management_off_is_announced(
    page: Any, proxy: ProxyServer, config_path: Path, original: str
) -> None:
    watch = open_config(page, proxy)
    put_cursor_at_end_of(page, "secret-key:")
    page.keyboard.press("Home")
    page.keyboard.press("Shift+End")
    page.keyboard.press("Backspace")
    page.keyboard.type("allow-remote: false")
    page.click("#config-review")
    expect(page.locator("#config-management-off")).to_be_visible()
    expect(page.locator("#config-key-changes")).to_have_count(0)  # removed, not changed
    expect(page.locator("#config-save")).to_have_text("Save and turn management off")
    page.screenshot(
        path=str(SCREENSHOTS / "config-review-management-off-light.png"), full_page=True
    )
    assert config_path.read_text() == original
    assert watch.take() == []


def test_a_new_key_is_saved_hashed_and_asked_for(
    page: Any, proxy: ProxyServer, config_path: Path, original: str
) -> None:
    """A plaintext secret-key typed in is stored as its hash; the page then asks for the new
    key, which opens the API (and the old one no longer does)."""
    watch = open_config(page, proxy)
    new_key = "console-second-key"
    put_cursor_at_end_of(page, "secret-key:")
    page.keyboard.press("Home")
    page.keyboard.press("Shift+End")
    page.keyboard.type(f"  secret-key: {new_key}")
    page.click("#config-review")
    expect(page.locator("#config-key-changes")).to_be_visible()
    expect(page.locator("#config-management-off")).to_have_count(0)
    page.click("#config-save")
    expect(page.locator("#login-message")).to_have_text(
        "Saved. The management key changed: sign in with the new key."
    )
    on_disk = config_path.read_text()
    assert new_key not in on_disk and "secret-key: $2b$" in on_disk
    url = proxy.base_url + "/v0/management/config.yaml"
    assert httpx.get(url, headers={"authorization": f"Bearer {MGMT}"}).status_code == 401
    # Put the first key back (the `original` fixture signs in with it).
    restored = httpx.put(url, headers={"authorization": f"Bearer {new_key}"}, content=original)
    assert restored.status_code == 200
    # The failed GET with the old key is the only problem.
    assert [p for p in watch.take() if "401" not in p] == []


@pytest.fixture(scope="module")
def fileless() -> Iterator[ProxyServer]:
    config = parse_config_text(f"remote-management: {{secret-key: {MGMT}}}\n", "in-code")
    with ProxyServer(config) as server:
        yield server


def test_without_a_config_file_the_page_says_so(browser: Any, fileless: ProxyServer) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        watch = sign_in(page, fileless)
        open_page(page, "config")
        card = page.locator("#config-no-file")
        expect(card.locator("h2")).to_have_text("No config file")
        expect(card).to_contain_text("started without a config file")
        expect(card).to_contain_text("embedded default settings")
        expect(card).to_contain_text("cliproxy serve --config /path/to/config.yaml")
        expect(card.locator(".server-message")).to_contain_text("runs without a config file")
        expect(page.locator("#config-editor")).to_have_count(0)
        page.screenshot(path=str(SCREENSHOTS / "config-no-file-light.png"), full_page=True)
        left = [
            p
            for p in watch.take()
            if not (p.startswith("HTTP 404: GET") and "/config.yaml" in p)
            and "status of 404" not in p
        ]
        assert left == []
        assert page.evaluate("window.__csp") == []
    finally:
        context.close()
