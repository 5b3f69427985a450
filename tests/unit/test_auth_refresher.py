"""Token refresh against the OAuth simulator: ahead of expiry, after a 401, single-flight,
rotation saved before use, permanent vs transient failures, the background pass."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from cliproxy.auth import files as auth_files
from cliproxy.auth.records import AccountState, AuthRecord
from cliproxy.auth.refresher import AccountNeedsLogin, Refresher, RefreshFailed
from cliproxy.auth.store import AuthStore
from tests.simulators.oauth_sim import (  # noqa: F401 (pytest fixtures)
    OAuthSim,
    oauth_sim_fixture,
    oauth_sim_server_fixture,
)


@pytest.fixture
async def refresher(tmp_path: Path, oauth_sim: OAuthSim) -> AsyncIterator[Refresher]:
    store = AuthStore(tmp_path)
    refresher = Refresher(store, flows=oauth_sim.flows(), lead_time=300, retry_delay=60)
    yield refresher
    await refresher.close()


def add_account(
    refresher: Refresher, sim: OAuthSim, style: str, *, expires_in: float, **extra: Any
) -> AuthRecord:
    name = f"{style}-{sim.emails[style]}.json"
    raw = {**sim.auth_file(style, expires_in=expires_in), **extra}
    (refresher.store.auth_dir / name).write_bytes(orjson.dumps(raw))
    refresher.store.load()
    record = refresher.store.get(name)
    assert record is not None
    return record


def on_disk(record: AuthRecord) -> dict[str, Any]:
    return orjson.loads(record.path.read_bytes())


@pytest.mark.parametrize("style", ["codex", "claude", "gemini"])
async def test_expiring_token_is_refreshed_before_use(
    refresher: Refresher, oauth_sim: OAuthSim, style: str
) -> None:
    record = add_account(refresher, oauth_sim, style, expires_in=60, prefix="keep-me")
    fresh = await refresher.ensure_fresh(record)
    assert fresh.access_token != record.access_token
    assert oauth_sim.access_token_valid(fresh.access_token)
    assert oauth_sim.refresh_calls == 1
    assert fresh.expires_at is not None
    assert fresh.expires_at > datetime.now(UTC) + timedelta(minutes=50)
    disk = on_disk(record)
    assert disk["prefix"] == "keep-me"  # untouched fields survive
    stored_access = disk["token"]["access_token"] if style == "gemini" else disk["access_token"]
    assert stored_access == fresh.access_token
    request = oauth_sim.token_requests[-1]
    assert request["grant_type"] == "refresh_token"
    assert request["content_type"] == REFRESH_WIRE[style][0]
    # Still fresh: no second call.
    assert (await refresher.ensure_fresh(fresh)).access_token == fresh.access_token
    assert oauth_sim.refresh_calls == 1


REFRESH_WIRE = {
    # (content type, fields in order, user-agent prefix, identity headers) as each CLI sends.
    "codex": (
        "application/json",
        ["client_id", "grant_type", "refresh_reason", "refresh_token"],
        "codex_exec/0.169.0 (",
        {"originator": "codex_exec"},
    ),
    "claude": (
        "application/json",
        ["grant_type", "refresh_token", "client_id", "scope"],
        "axios/",
        {},
    ),
    "gemini": (
        "application/x-www-form-urlencoded;charset=UTF-8",
        ["refresh_token", "client_id", "client_secret", "grant_type"],
        "google-api-nodejs-client/",
        {"x-goog-api-client": "gl-node/20.20.2"},
    ),
}


@pytest.mark.parametrize("style", ["codex", "claude", "gemini"])
async def test_refresh_requests_look_like_the_vendors_cli(
    refresher: Refresher, oauth_sim: OAuthSim, style: str
) -> None:
    record = add_account(refresher, oauth_sim, style, expires_in=60)
    await refresher.ensure_fresh(record)
    content_type, fields, agent, identity = REFRESH_WIRE[style]
    sent = oauth_sim.token_requests[-1]
    assert sent["content_type"] == content_type
    assert [k for k in sent if k not in ("content_type", "_user_agent")] == fields
    assert sent["_user_agent"].startswith(agent)
    assert "aiohttp" not in sent["_user_agent"] and "Python" not in sent["_user_agent"]
    headers = oauth_sim.token_headers[-1]
    for name, value in identity.items():
        assert headers[name] == value
    if style == "codex":
        assert sent["refresh_reason"] == "proactive_expiry"
    if style == "claude":
        assert "user:plugins" in sent["scope"].split()


async def test_token_far_from_expiry_is_not_refreshed(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    record = add_account(refresher, oauth_sim, "claude", expires_in=3600)
    assert await refresher.ensure_fresh(record.id) == record
    assert oauth_sim.refresh_calls == 0


async def test_concurrent_callers_share_one_refresh(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    record = add_account(refresher, oauth_sim, "codex", expires_in=10)
    oauth_sim.refresh_delay = 0.2
    results = await asyncio.gather(*(refresher.ensure_fresh(record) for _ in range(10)))
    assert oauth_sim.refresh_calls == 1
    assert len({r.access_token for r in results}) == 1
    assert results[0].access_token != record.access_token


async def test_401_gives_exactly_one_refresh(refresher: Refresher, oauth_sim: OAuthSim) -> None:
    record = add_account(refresher, oauth_sim, "claude", expires_in=3600)
    oauth_sim.refresh_delay = 0.1
    results = await asyncio.gather(*(refresher.refresh_after_401(record) for _ in range(5)))
    assert oauth_sim.refresh_calls == 1
    assert {r.access_token for r in results} == {results[0].access_token}
    # A late 401 for the old token: the token was already replaced, no second refresh.
    late = await refresher.refresh_after_401(record)
    assert late.access_token == results[0].access_token
    assert oauth_sim.refresh_calls == 1


async def test_rotated_refresh_token_is_on_disk_before_the_new_access_token_is_used(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    oauth_sim.rotate_refresh_tokens = True
    record = add_account(refresher, oauth_sim, "codex", expires_in=10)
    seen_on_disk: list[str] = []
    refresher.store.subscribe(lambda change: seen_on_disk.append(on_disk(record)["refresh_token"]))
    fresh = await refresher.ensure_fresh(record)
    assert fresh.refresh_token != record.refresh_token
    assert seen_on_disk == [fresh.refresh_token]  # already written when memory changed
    assert record.refresh_token in oauth_sim.revoked
    # The rotated token works for the next refresh.
    again = await refresher.refresh(record.id)
    assert again.access_token != fresh.access_token
    assert refresher.store.status(record).state is AccountState.ACTIVE


async def test_revoked_refresh_token_marks_needs_login(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    record = add_account(refresher, oauth_sim, "gemini", expires_in=10)
    oauth_sim.revoke(record.refresh_token)
    with pytest.raises(AccountNeedsLogin, match="invalid_grant"):
        await refresher.ensure_fresh(record)
    status = refresher.store.status(record)
    assert status.state is AccountState.NEEDS_LOGIN
    assert "invalid_grant" in status.reason and "cliproxy login gemini" in status.reason
    # Marked: later callers fail fast without hammering the token endpoint.
    with pytest.raises(AccountNeedsLogin):
        await refresher.ensure_fresh(record)
    assert oauth_sim.refresh_calls == 1
    saved = on_disk(record)
    assert saved["token"]["refresh_token"] == record.refresh_token  # tokens untouched
    # The mark is in the file too: `cliproxy accounts` (another process) and a restart see it.
    assert "invalid_grant" in saved["cliproxy_needs_login"]
    elsewhere = AuthStore(refresher.store.auth_dir)
    elsewhere.load()
    assert elsewhere.status(record.id).state is AccountState.NEEDS_LOGIN


async def test_transient_failure_is_retried_later_without_marking(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    record = add_account(refresher, oauth_sim, "claude", expires_in=-5)  # already expired
    oauth_sim.fail_token_with.append(503)
    with pytest.raises(RefreshFailed, match="503"):
        await refresher.ensure_fresh(record)
    assert refresher.store.status(record).state is AccountState.ACTIVE
    refresher._retry_at.clear()  # the retry delay has passed
    fresh = await refresher.ensure_fresh(record)
    assert fresh.access_token != record.access_token
    assert oauth_sim.refresh_calls == 2


async def test_early_refresh_failure_keeps_the_still_valid_token(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    record = add_account(refresher, oauth_sim, "codex", expires_in=120)
    oauth_sim.fail_token_with.append(502)
    assert (await refresher.ensure_fresh(record)).access_token == record.access_token
    # Backing off: the next call does not hit the endpoint again.
    assert (await refresher.ensure_fresh(record)).access_token == record.access_token
    assert oauth_sim.refresh_calls == 1


async def test_unreachable_token_endpoint_is_transient(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    record = add_account(refresher, oauth_sim, "claude", expires_in=-5)
    flows = dict(refresher.flows)
    from dataclasses import replace

    flows["claude"] = replace(flows["claude"], token_url="http://127.0.0.1:9/oauth/token")
    refresher.flows = flows
    with pytest.raises(RefreshFailed, match="cannot reach"):
        await refresher.ensure_fresh(record)
    assert refresher.store.status(record).state is AccountState.ACTIVE


async def test_refresh_that_cannot_be_saved_keeps_tokens_in_memory(
    refresher: Refresher,
    oauth_sim: OAuthSim,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = add_account(refresher, oauth_sim, "claude", expires_in=10)
    before = record.path.read_bytes()

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(auth_files.tempfile, "mkstemp", denied)
    fresh = await refresher.ensure_fresh(record)
    assert oauth_sim.access_token_valid(fresh.access_token)
    assert record.path.read_bytes() == before
    assert "permission denied" in caplog.text and "kept in memory only" in caplog.text
    assert refresher.store.get(record.id) == fresh


async def test_background_pass_refreshes_due_accounts_including_cooling_ones(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    due = add_account(refresher, oauth_sim, "codex", expires_in=30)
    cooling = add_account(refresher, oauth_sim, "claude", expires_in=30)
    refresher.store.mark_cooling(cooling.id, datetime.now(UTC) + timedelta(hours=1))
    fine = add_account(refresher, oauth_sim, "gemini", expires_in=7200)
    for record in (due, cooling, fine):
        refresher.mark_used(record.id)
    refresher.interval = 0.05
    task = asyncio.create_task(refresher.run())
    try:
        async with asyncio.timeout(5):
            while oauth_sim.refresh_calls < 2:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
    finally:
        refresher.stop()
        await asyncio.wait_for(task, 5)
    store = refresher.store
    assert store.get(due.id) != due and store.get(cooling.id) != cooling
    assert store.get(fine.id) == fine
    assert oauth_sim.refresh_calls == 2  # fresh tokens are not refreshed again


async def test_idle_accounts_are_refreshed_on_use_not_in_the_background(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    idle = add_account(refresher, oauth_sim, "gemini", expires_in=30)
    assert await refresher.refresh_due() == 0
    assert oauth_sim.refresh_calls == 0
    fresh = await refresher.ensure_fresh(idle)  # about to be used: refreshed now
    assert oauth_sim.refresh_calls == 1 and fresh.access_token != idle.access_token
    assert refresher.used_lately(idle.id)
    refresher.recent_use_window = 0
    assert not refresher.used_lately(idle.id)


async def test_disabled_accounts_are_not_refreshed_in_background(
    refresher: Refresher, oauth_sim: OAuthSim
) -> None:
    add_account(refresher, oauth_sim, "codex", expires_in=30, disabled=True)
    assert await refresher.refresh_due() == 0
    assert oauth_sim.refresh_calls == 0


async def test_missing_refresh_token_needs_login(refresher: Refresher, oauth_sim: OAuthSim) -> None:
    record = add_account(refresher, oauth_sim, "claude", expires_in=-5, refresh_token="")
    with pytest.raises(AccountNeedsLogin, match="no refresh token"):
        await refresher.ensure_fresh(record)
    assert oauth_sim.refresh_calls == 0


def test_a_new_login_clears_the_needs_login_mark() -> None:
    from cliproxy.auth.flows import oauth_flow
    from cliproxy.auth.identity import NEEDS_LOGIN_FIELD, Identity, login_file

    existing = {
        "type": "claude",
        "email": "a@example.com",
        "prefix": "team",
        NEEDS_LOGIN_FIELD: "x",
    }
    raw = login_file(
        oauth_flow("claude", env={}),
        {"access_token": "at", "refresh_token": "rt", "expires_in": 3600},
        Identity(email="a@example.com"),
        existing=existing,
    )
    assert NEEDS_LOGIN_FIELD not in raw and raw["prefix"] == "team"


async def test_a_failing_pass_does_not_stop_the_refresh_loop(
    refresher: Refresher, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes = 0

    async def flaky_pass() -> int:
        nonlocal passes
        passes += 1
        if passes == 1:
            raise OSError(errno.ENOENT, "auth dir vanished")
        return 0

    monkeypatch.setattr(refresher, "refresh_due", flaky_pass)
    refresher.interval = 0.01
    loop = asyncio.create_task(refresher.run())
    for _ in range(200):
        if passes >= 3:
            break
        await asyncio.sleep(0.01)
    refresher.stop()
    await asyncio.wait_for(loop, 1)
    assert passes >= 3


@pytest.mark.parametrize("across_processes", [True, False])
async def test_two_workers_on_one_auth_dir_refresh_a_rotating_account_once(
    tmp_path: Path, oauth_sim: OAuthSim, across_processes: bool
) -> None:
    """Two refreshers with stores of their own over one directory stand for two workers
    (flock treats each open lock file as another holder, in one process as across two)."""
    oauth_sim.rotate_refresh_tokens = True
    oauth_sim.refresh_delay = 0.2  # both decide to refresh before either has written
    workers = [
        Refresher(AuthStore(tmp_path), flows=oauth_sim.flows(), across_processes=across_processes)
        for _ in range(2)
    ]
    try:
        record = add_account(workers[0], oauth_sim, "codex", expires_in=10)
        workers[1].store.load()
        first, second = await asyncio.gather(
            *(worker.ensure_fresh(record.id) for worker in workers), return_exceptions=True
        )
        if not across_processes:
            # What the lock prevents: the second refresh spends the token the first revoked.
            assert oauth_sim.refresh_calls == 2
            assert any(isinstance(result, AccountNeedsLogin) for result in (first, second))
            return
        assert oauth_sim.refresh_calls == 1
        assert isinstance(first, AuthRecord) and isinstance(second, AuthRecord)
        assert first.access_token == second.access_token != record.access_token
        assert on_disk(record)["refresh_token"] == first.refresh_token
        assert all(w.store.status(record.id).state is AccountState.ACTIVE for w in workers)
        # The lock file beside the account is no account to the store.
        assert workers[0].store.load().added == ()
        assert [r.id for r in workers[0].store.records()] == [record.id]
    finally:
        for worker in workers:
            await worker.close()
