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
    await until(lambda: bool(store.errors()))
    assert store.get("claude-x.json") is None
    assert path.read_bytes() == b'{"type": "claude", "access_token": '  # never rewritten
    replace_atomically(path, CLAUDE)
    await until(lambda: store.get("claude-x.json") is not None and not store.errors())


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
