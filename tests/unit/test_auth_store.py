"""Auth files in CLIProxyAPI's formats: loading, round trips, bad files, atomic 0600 writes."""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from cliproxy.auth import files as auth_files
from cliproxy.auth.records import AccountState, parse_record
from cliproxy.auth.store import AuthStore

# Shapes as CLIProxyAPI writes them (Go's RFC 3339, with offsets and nanoseconds for Google).
CODEX = {
    "type": "codex",
    "id_token": "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImFAZXhhbXBsZS5jb20ifQ.",
    "access_token": "at-codex",
    "refresh_token": "rt-codex",
    "account_id": "acct-9",
    "email": "a@example.com",
    "expired": "2030-01-02T03:04:05+08:00",
    "last_refresh": "2029-12-31T10:00:00+08:00",
}
CLAUDE = {
    "type": "claude",
    "access_token": "at-claude",
    "refresh_token": "rt-claude",
    "email": "b@example.com",
    "expired": "2030-01-02T03:04:05Z",
    "last_refresh": "2029-12-31T10:00:00Z",
    "account_uuid": "u-1",
    "organization_uuid": "o-1",
    "organization_name": "Org",
}
GEMINI = {
    "type": "gemini",
    "token": {
        "access_token": "at-gem",
        "token_type": "Bearer",
        "refresh_token": "rt-gem",
        "expiry": "2030-01-02T03:04:05.123456789+02:00",
        "client_id": "cid",
        "client_secret": "secret",
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "token_uri": "https://oauth2.googleapis.com/token",
    },
    "project_id": "my-proj",
    "email": "c@example.com",
    "auto": False,
    "checked": True,
}


def write(directory: Path, name: str, content: Any, mode: int = 0o600) -> Path:
    path = directory / name
    path.write_bytes(content if isinstance(content, bytes) else orjson.dumps(content))
    path.chmod(mode)
    return path


def test_existing_cliproxyapi_files_load_unchanged(tmp_path: Path) -> None:
    write(tmp_path, "codex-a@example.com.json", CODEX)
    write(tmp_path, "claude-b@example.com.json", CLAUDE)
    write(tmp_path, "c@example.com-my-proj.json", GEMINI)
    store = AuthStore(tmp_path)
    change = store.load()
    assert len(change.added) == 3
    assert store.errors() == ()
    by_type = {r.type: r for r in store.records()}
    codex, claude, gemini = by_type["codex"], by_type["claude"], by_type["gemini"]
    assert (codex.email, codex.access_token, codex.refresh_token) == (
        "a@example.com",
        "at-codex",
        "rt-codex",
    )
    assert codex.account_id == "acct-9"
    assert codex.expires_at == datetime(2030, 1, 1, 19, 4, 5, tzinfo=UTC)
    assert claude.expires_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert gemini.access_token == "at-gem" and gemini.refresh_token == "rt-gem"
    assert gemini.project_id == "my-proj"
    assert gemini.expires_at == datetime(2030, 1, 2, 1, 4, 5, 123456, tzinfo=UTC)
    cred = gemini.credential("http://upstream")
    assert cred.secret == "at-gem" and cred.account["project_id"] == "my-proj"
    assert codex.credential("http://x").account["account_id"] == "acct-9"
    assert all(store.status(r).state is AccountState.ACTIVE for r in store.records())


def test_codex_account_id_falls_back_to_id_token_claims(tmp_path: Path) -> None:
    from tests.simulators.oauth_sim import unsigned_jwt

    claims = {"email": "x@e.com", "https://api.openai.com/auth": {"chatgpt_account_id": "jwt-acct"}}
    raw = {**CODEX, "id_token": unsigned_jwt(claims)}
    del raw["account_id"]
    assert parse_record(tmp_path / "f.json", raw).account_id == "jwt-acct"


def test_save_round_trip_keeps_unknown_fields_and_writes_0600(tmp_path: Path) -> None:
    original = {**CLAUDE, "future_field": {"nested": [1, 2]}, "prefix": "team", "priority": 3}
    write(tmp_path, "claude-b.json", original, mode=0o644)
    store = AuthStore(tmp_path)
    store.load()
    record = store.get("claude-b.json")
    assert record is not None and record.prefix == "team" and record.priority == 3
    result = store.save(record.id, {**record.raw, "access_token": "new"})
    assert result.error is None
    on_disk = orjson.loads((tmp_path / "claude-b.json").read_bytes())
    assert on_disk == {**original, "access_token": "new"}
    assert list(on_disk) == list(original)  # field order kept too
    assert stat.S_IMODE((tmp_path / "claude-b.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claude-b.json"]  # no temp left


def test_disabled_account_is_listed_as_disabled(tmp_path: Path) -> None:
    write(tmp_path, "claude.json", {**CLAUDE, "disabled": True})
    store = AuthStore(tmp_path)
    store.load()
    assert store.status("claude.json").state is AccountState.DISABLED


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, got a list"),
        ({"access_token": "x"}, "missing field 'type'"),
        ({"type": "qwen"}, "type 'qwen' is not supported"),
        ({**CLAUDE, "access_token": 12}, "access_token: expected a string, got a number"),
        ({**CLAUDE, "expired": "tomorrow"}, "expired: 'tomorrow' is not an RFC 3339 time"),
        ({**CLAUDE, "disabled": "yes"}, "disabled: expected true or false"),
        ({**GEMINI, "token": "abc"}, "token: expected an object"),
        ({**GEMINI, "token": {"access_token": []}}, "token.access_token: expected a string"),
        ({**CLAUDE, "priority": "high"}, "priority: expected a whole number"),
    ],
)
def test_malformed_file_is_reported_and_left_alone(
    tmp_path: Path, content: Any, reason: str
) -> None:
    bad = write(tmp_path, "bad.json", content)
    before = bad.read_bytes()
    write(tmp_path, "good.json", CLAUDE)
    store = AuthStore(tmp_path)
    store.load()
    assert [r.id for r in store.records()] == ["good.json"]
    (problem,) = store.errors()
    assert problem.name == "bad.json"
    assert reason in problem.reason
    assert bad.read_bytes() == before


def test_non_json_and_temp_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", b"hello")
    write(tmp_path, ".claude.json.abc.tmp", CLAUDE)
    (tmp_path / "sub.json").mkdir()
    store = AuthStore(tmp_path)
    store.load()
    assert store.records() == () and store.errors() == ()


def test_loose_permissions_are_warned_about_but_loaded(tmp_path: Path) -> None:
    write(tmp_path, "claude.json", CLAUDE, mode=0o644)
    store = AuthStore(tmp_path)
    store.load()
    assert store.get("claude.json") is not None
    (warning,) = store.warnings()
    assert "readable by other users (mode 0644)" in warning.reason


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "claude.json", CLAUDE, mode=0o000)
    real_read = Path.read_bytes

    def denied(self: Path) -> bytes:
        # Tests may run as root, for whom mode 000 is no barrier; simulate what a user sees.
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    store = AuthStore(tmp_path)
    store.load()
    (problem,) = store.errors()
    assert problem.name == "claude.json" and "cannot read: permission denied" in problem.reason
    assert path.exists()


def test_failed_write_keeps_new_tokens_in_memory_and_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "claude.json", CLAUDE)
    before = path.read_bytes()
    store = AuthStore(tmp_path)
    store.load()

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(auth_files.tempfile, "mkstemp", read_only)
    result = store.save("claude.json", {**CLAUDE, "access_token": "fresh"})
    assert result.error is not None and "the file system is read-only" in result.error
    assert "claude.json" in result.error
    assert "kept in memory only" in caplog.text
    current = store.get("claude.json")
    assert current is not None and current.access_token == "fresh"
    assert path.read_bytes() == before
    store.load()  # an unchanged file on disk must not undo the in-memory tokens
    current = store.get("claude.json")
    assert current is not None and current.access_token == "fresh"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_gives_clear_error(tmp_path: Path) -> None:
    write(tmp_path, "claude.json", CLAUDE)
    store = AuthStore(tmp_path)
    store.load()
    tmp_path.chmod(0o500)
    try:
        result = store.save("claude.json", {**CLAUDE, "access_token": "fresh"})
    finally:
        tmp_path.chmod(0o700)
    assert result.error is not None and "permission denied" in result.error


def test_write_failure_midway_leaves_original_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "claude.json", CLAUDE)
    before = path.read_bytes()

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(auth_files.os, "replace", broken_replace)
    with pytest.raises(auth_files.AuthWriteError, match="no space left"):
        auth_files.write_atomic(path, b"{}")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["claude.json"]


def test_subscribers_hear_about_changes_and_a_failing_one_is_isolated(tmp_path: Path) -> None:
    store = AuthStore(tmp_path)
    seen: list[Any] = []

    def broken(change: Any) -> None:
        raise RuntimeError("boom")

    store.subscribe(broken)
    unsubscribe = store.subscribe(seen.append)
    write(tmp_path, "claude.json", CLAUDE)
    store.load()
    write(tmp_path, "claude.json", {**CLAUDE, "email": "new@example.com"})
    store.load()
    (tmp_path / "claude.json").unlink()
    store.load()
    assert [(c.added, c.changed, c.removed) for c in seen] == [
        (("claude.json",), (), ()),
        ((), ("claude.json",), ()),
        ((), (), ("claude.json",)),
    ]
    unsubscribe()
    write(tmp_path, "claude.json", CLAUDE)
    store.load()
    assert len(seen) == 3


def test_edited_file_clears_needs_login(tmp_path: Path) -> None:
    write(tmp_path, "claude.json", CLAUDE)
    store = AuthStore(tmp_path)
    store.load()
    store.mark_needs_login("claude.json", "refresh refused")
    assert store.status("claude.json").state is AccountState.NEEDS_LOGIN
    store.load()  # unchanged: still needs login
    assert store.status("claude.json").reason == "refresh refused"
    write(tmp_path, "claude.json", {**CLAUDE, "refresh_token": "new"})
    store.load()
    assert store.status("claude.json").state is AccountState.ACTIVE


def test_cooling_state(tmp_path: Path) -> None:
    write(tmp_path, "claude.json", CLAUDE)
    store = AuthStore(tmp_path)
    store.load()
    until = datetime(2100, 1, 1, tzinfo=UTC)
    store.mark_cooling("claude.json", until)
    status = store.status("claude.json")
    assert status.state is AccountState.COOLING and status.cooling_until == until
    store.mark_cooling("claude.json", None)
    assert store.status("claude.json").state is AccountState.ACTIVE


# ----- a file rewritten in place: the last good version serves meanwhile ----------------------


def test_a_broken_rewrite_keeps_the_last_good_version_until_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "claude.json", CLAUDE)
    store = AuthStore(tmp_path)
    seen: list[Any] = []
    store.subscribe(seen.append)
    store.load()
    good = store.get("claude.json")
    until = datetime(2100, 1, 1, tzinfo=UTC)
    store.mark_cooling("claude.json", until)
    caplog.clear()
    whole = orjson.dumps({**CLAUDE, "email": "new@example.com"})
    # What a tool writing in place leaves on the way: empty, half, a valid but wrong record.
    for broken in (b"", whole[: len(whole) // 2], orjson.dumps({"access_token": "x"})):
        path.write_bytes(broken)
        assert not store.load()  # nothing changed for routing
        store.load()  # rescans of the same bytes stay silent
        assert store.get("claude.json") is good
        assert store.errors() == ()
        (problem,) = store.warnings()
        assert problem.name == "claude.json" and "last good version" in problem.reason
        status = store.status("claude.json", now=datetime(2000, 1, 1, tzinfo=UTC))
        assert status.cooling_until == until  # a half-written file is no re-login
    assert "missing field 'type'" in store.warnings()[0].reason  # the newest problem
    after_cooling = datetime(2200, 1, 1, tzinfo=UTC)
    assert "last good version" in store.status("claude.json", now=after_cooling).reason
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "claude.json" in warnings[0].getMessage()
    assert path.read_bytes() == orjson.dumps({"access_token": "x"})  # never rewritten by us
    assert len(seen) == 1  # only the first load

    caplog.clear()
    path.write_bytes(whole)
    change = store.load()
    assert change.changed == ("claude.json",)
    current = store.get("claude.json")
    assert current is not None and current.email == "new@example.com"
    assert store.warnings() == () and store.errors() == ()
    assert store.status("claude.json", now=after_cooling).reason == ""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    # Deleting the file still removes the account, broken or not.
    path.write_bytes(b"{")
    store.load()
    assert store.get("claude.json") is not None
    path.unlink()
    assert store.load().removed == ("claude.json",)
    assert store.get("claude.json") is None and store.warnings() == ()


def test_a_rewrite_that_puts_back_the_same_content_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "claude.json", CLAUDE)
    store = AuthStore(tmp_path)
    store.load()
    store.mark_cooling("claude.json", datetime(2100, 1, 1, tzinfo=UTC))
    original = path.read_bytes()
    path.write_bytes(b"")
    store.load()
    path.write_bytes(original)
    assert not store.load()
    assert store.warnings() == ()
    assert store.status("claude.json").state is AccountState.COOLING


# ----- temporary files of interrupted writes ---------------------------------------------------


def age(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_first_load_removes_stale_temp_files_of_our_own_writes_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    write(tmp_path, "claude.json", CLAUDE)
    stale = age(write(tmp_path, ".claude.json.a1b2_c3d.tmp", CLAUDE), 3600)
    cooldowns = age(write(tmp_path, ".cliproxy-cooldowns.cds.zzzzzzzz.tmp", b"{}"), 3600)
    in_progress = write(tmp_path, ".codex.json.q9w8e7r6.tmp", b"{")  # another live writer
    kept = [
        age(write(tmp_path, name, b"x"), 3600)
        for name in (".claude.json.tmp", "claude.json.a1b2c3d4.tmp", ".notes.ABCDEFGH.tmp")
    ]
    (tmp_path / ".dir.json.abcdefgh.tmp").mkdir()
    age(tmp_path / ".dir.json.abcdefgh.tmp", 3600)
    store = AuthStore(tmp_path)
    store.load()
    assert not stale.exists() and not cooldowns.exists()
    assert in_progress.exists() and all(p.exists() for p in kept)
    assert (tmp_path / ".dir.json.abcdefgh.tmp").is_dir()
    assert str(stale) in caplog.text and "interrupted write" in caplog.text
    assert [r.id for r in store.records()] == ["claude.json"]
    later = age(write(tmp_path, ".claude.json.k2k2k2k2.tmp", b"{"), 3600)
    store.load()  # only the start cleans: a rescan is no moment to touch the directory
    assert later.exists()


def test_a_temp_file_name_pattern_matches_what_write_atomic_makes(tmp_path: Path) -> None:
    target = tmp_path / "claude.json"
    seen: list[str] = []
    real_replace = auth_files.os.replace

    def spy(src: Any, dst: Any) -> None:
        seen.append(Path(src).name)
        real_replace(src, dst)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth_files.os, "replace", spy)
        auth_files.write_atomic(target, b"{}")
    (name,) = seen
    assert auth_files.temp_name_pattern("claude.json").fullmatch(name)
    assert auth_files.temp_name_pattern().fullmatch(name)
    assert not auth_files.temp_name_pattern("codex.json").fullmatch(name)
