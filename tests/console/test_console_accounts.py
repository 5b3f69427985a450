"""The Accounts page's actions in headless Chromium, each checked in the management API: disable
and enable, reset a cooldown (its live countdown first), upload two files with one bad, upload by
drag and drop, delete after a confirmation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.console.browser import expect, mgmt, row, sign_in
from tests.console.conftest import account_file
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim
from tests.simulators.oauth_sim import (  # noqa: F401 (pytest fixtures)
    OAuthSim,
    oauth_sim_fixture,
    oauth_sim_server_fixture,
)


def test_disable_and_enable_an_account(page: Any, proxy: ProxyServer) -> None:
    watch = sign_in(page, proxy, "/console/#/accounts")
    page.wait_for_selector('main[data-page="accounts"]')
    row(page, "claude-second.json").locator('[data-action="toggle"]').click()
    page.wait_for_selector('#auth-files tr[data-name="claude-second.json"] .badge:text("disabled")')
    listed = mgmt(proxy, "GET", "/auth-files", params={"name": "claude-second.json"}).json()
    assert listed["files"][0]["disabled"] is True
    row(page, "claude-second.json").locator('[data-action="toggle"]:text("Enable")').click()
    page.wait_for_selector('#auth-files tr[data-name="claude-second.json"] .badge:text("active")')
    listed = mgmt(proxy, "GET", "/auth-files", params={"name": "claude-second.json"}).json()
    assert listed["files"][0]["disabled"] is False
    assert watch.take() == []


def test_reset_a_cooldown(page: Any, proxy: ProxyServer) -> None:
    proxy.state.cooldowns.cool(
        "claude-second.json", "claude-sonnet-4-5", time.time() + 600, "rate-limit"
    )
    watch = sign_in(page, proxy, "/console/#/accounts")
    found = row(page, "claude-second.json")
    countdown = found.locator(".countdown")
    first = countdown.text_content()
    assert first is not None and first.startswith(("9m", "10m"))
    expect(countdown).not_to_have_text(first, timeout=5_000)  # it counts down live
    found.locator('[data-action="reset"]').click()
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
    watch = sign_in(page, proxy, "/console/#/accounts")
    page.wait_for_selector("#upload-input", state="attached")
    page.set_input_files("#upload-input", [str(good), str(bad)])
    page.wait_for_selector("#upload-results li[data-file='broken.json']")
    assert page.text_content("#upload-results li[data-file='claude-uploaded.json']").endswith(
        "uploaded"
    )
    bad_result = page.text_content("#upload-results li[data-file='broken.json']")
    assert bad_result is not None and "uploaded" not in bad_result
    page.wait_for_selector('#auth-files tr[data-name="claude-uploaded.json"]')
    names = [f["name"] for f in mgmt(proxy, "GET", "/auth-files").json()["files"]]
    assert "claude-uploaded.json" in names and "broken.json" not in names
    # The 207 of a partial upload is the answer's success shape, not a failure.
    assert [p for p in watch.take() if "207" not in p] == []


def test_upload_by_drag_and_drop(
    page: Any, proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim]
) -> None:
    watch = sign_in(page, proxy, "/console/#/accounts")
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


def test_delete_with_confirmation(
    page: Any, proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim], auth_dir: Path
) -> None:
    (auth_dir / "claude-doomed.json").write_text(
        json.dumps(account_file("doomed@example.com", sims[1].base_url))
    )
    proxy.state.auth_store.load()
    watch = sign_in(page, proxy, "/console/#/accounts")
    found = row(page, "claude-doomed.json")
    found.locator('[data-action="delete"]').click()
    page.click("#confirm-cancel")
    assert found.count() == 1
    found.locator('[data-action="delete"]').click()
    assert "claude-doomed.json" in (page.text_content("#confirm-text") or "")
    page.click("#confirm-ok")
    page.wait_for_selector('#auth-files tr[data-name="claude-doomed.json"]', state="detached")
    assert not (auth_dir / "claude-doomed.json").exists()
    assert watch.take() == []


def test_download_an_auth_file(page: Any, proxy: ProxyServer, auth_dir: Path) -> None:
    watch = sign_in(page, proxy, "/console/#/accounts")
    with page.expect_download() as started:
        row(page, "claude-second.json").locator('[data-action="download"]').click()
    download = started.value
    assert download.suggested_filename == "claude-second.json"
    saved = json.loads(Path(download.path()).read_text())
    assert saved == json.loads((auth_dir / "claude-second.json").read_text())
    assert watch.take() == []


def test_refresh_now_and_a_refused_refresh(
    page: Any, proxy: ProxyServer, auth_dir: Path, oauth_sim: OAuthSim
) -> None:
    """Refresh against the OAuth simulator: the new token is on disk; once the refresh token is
    revoked, the API's refusal is what the page shows."""
    flows = proxy.state.refresher.flows
    proxy.state.refresher.flows = oauth_sim.flows()
    try:
        old = oauth_sim.auth_file("claude", expires_in=3600)
        (auth_dir / "claude-fresh.json").write_text(json.dumps(old))
        proxy.state.auth_store.load()
        watch = sign_in(page, proxy, "/console/#/accounts")
        row(page, "claude-fresh.json").locator('[data-action="refresh"]').click()
        expect(page.locator(".toast").last).to_have_text("claude-fresh.json: token refreshed")
        disk = json.loads((auth_dir / "claude-fresh.json").read_text())
        assert disk["access_token"] != old["access_token"] and oauth_sim.refresh_calls == 1
        assert watch.take() == []

        oauth_sim.revoke(disk["refresh_token"])
        row(page, "claude-fresh.json").locator('[data-action="refresh"]').click()
        expect(page.locator(".toast.error")).to_contain_text("claude-fresh.json")
        refused = mgmt(proxy, "POST", "/auth-files/refresh", params={"name": "claude-fresh.json"})
        assert refused.status_code == 409
        assert page.text_content(".toast.error") == refused.json()["error"]
        assert [p for p in watch.take() if "409" not in p] == []
    finally:
        proxy.state.refresher.flows = flows
