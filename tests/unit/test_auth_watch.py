"""The auth directory is watched: adding, editing and removing a file takes effect live."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest

from cliproxy.auth.store import AuthChange, AuthStore

WAIT = 10.0
CLAUDE = {"type": "claude", "access_token": "a1", "refresh_token": "r1", "email": "x@e.com"}


@pytest.fixture
async def watched(tmp_path: Path) -> AsyncIterator[tuple[AuthStore, list[AuthChange]]]:
    store = AuthStore(tmp_path / "auths")  # missing: watch() creates it
    changes: list[AuthChange] = []
    store.subscribe(changes.append)
    task = asyncio.create_task(store.watch(debounce_ms=50))
    await asyncio.sleep(0.3)  # let the OS watch be registered
    yield store, changes
    store.stop()
    await asyncio.wait_for(task, WAIT)


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), WAIT)


def replace_atomically(path: Path, content: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(content))
    os.replace(tmp, path)


async def test_add_edit_remove_take_effect(watched: tuple[AuthStore, list[AuthChange]]) -> None:
    store, changes = watched
    assert (store.auth_dir).is_dir()
    path = store.auth_dir / "claude-x.json"
    path.write_bytes(orjson.dumps(CLAUDE))
    await until(lambda: store.get("claude-x.json") is not None)
    replace_atomically(path, {**CLAUDE, "access_token": "a2"})
    await until(lambda: getattr(store.get("claude-x.json"), "access_token", "") == "a2")
    path.unlink()
    await until(lambda: store.get("claude-x.json") is None)
    kinds = [("add" if c.added else "change" if c.changed else "remove") for c in changes]
    assert kinds[0] == "add" and kinds[-1] == "remove" and "change" in kinds


async def test_broken_edit_is_reported_and_good_file_comes_back(
    watched: tuple[AuthStore, list[AuthChange]],
) -> None:
    store, _ = watched
    path = store.auth_dir / "claude-x.json"
    path.write_bytes(orjson.dumps(CLAUDE))
    await until(lambda: store.get("claude-x.json") is not None)
    path.write_bytes(b'{"type": "claude", "access_token": ')
    await until(lambda: any("last good version" in w.reason for w in store.warnings()))
    # The last good version keeps serving; the broken file is reported, not skipped.
    assert store.errors() == ()
    assert getattr(store.get("claude-x.json"), "access_token", "") == "a1"
    assert path.read_bytes() == b'{"type": "claude", "access_token": '  # never rewritten
    replace_atomically(path, {**CLAUDE, "access_token": "a2"})
    await until(lambda: getattr(store.get("claude-x.json"), "access_token", "") == "a2")
    assert not [w for w in store.warnings() if "last good" in w.reason] and not store.errors()


async def test_own_writes_do_not_trigger_a_reload(
    watched: tuple[AuthStore, list[AuthChange]],
) -> None:
    store, changes = watched
    path = store.auth_dir / "claude-x.json"
    path.write_bytes(orjson.dumps(CLAUDE))
    await until(lambda: store.get("claude-x.json") is not None)
    count = len(changes)
    store.save("claude-x.json", {**CLAUDE, "access_token": "saved"})
    assert len(changes) == count + 1  # the save itself announces the change
    await asyncio.sleep(0.5)  # the watcher sees the rename but the content is already known
    assert len(changes) == count + 1


async def test_logs_and_other_files_in_the_directory_never_wake_a_rescan(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "auths")
    scans: list[AuthChange] = []
    real_load = store.load

    def counting_load() -> AuthChange:
        change = real_load()
        scans.append(change)
        return change

    store.load = counting_load  # type: ignore[method-assign]
    task = asyncio.create_task(store.watch(debounce_ms=50))
    try:
        await asyncio.sleep(0.3)
        assert len(scans) == 1  # the first load
        log_file = store.auth_dir / "main.log"
        for n in range(10):
            with log_file.open("a") as handle:
                handle.write(f"line {n}\n")
            await asyncio.sleep(0.05)
        (store.auth_dir / "notes.txt").write_text("mine")
        (store.auth_dir / ".claude-x.json.abcd1234.tmp").write_bytes(b"{")
        await asyncio.sleep(0.6)
        assert len(scans) == 1
        (store.auth_dir / "claude-x.json").write_bytes(orjson.dumps(CLAUDE))
        await until(lambda: store.get("claude-x.json") is not None)
    finally:
        store.stop()
        await asyncio.wait_for(task, WAIT)
