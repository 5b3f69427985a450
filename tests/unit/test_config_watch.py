"""Hot reload: edits are picked up, bad edits are reported and the last good config stays."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest
from watchfiles import Change

from cliproxy.config import Config, ConfigError, ConfigWatcher, diff_keys, load_config
from cliproxy.config.load import parse_config_text
from cliproxy.config.watch import names_that_matter

WAIT = 10.0


class Recorder:
    def __init__(self) -> None:
        self.configs: list[Config] = []
        self.errors: list[ConfigError] = []
        self.changed = asyncio.Event()
        self.failed = asyncio.Event()

    async def on_change(self, cfg: Config) -> None:
        self.configs.append(cfg)
        self.changed.set()

    def on_error(self, error: ConfigError) -> None:
        self.errors.append(error)
        self.failed.set()


def replace_atomically(path: Path, text: str) -> None:
    # What editors and config tools do: write a sibling file, then rename it over the original.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


async def start(path: Path, recorder: Recorder) -> tuple[ConfigWatcher, asyncio.Task[None]]:
    watcher = ConfigWatcher(
        path, recorder.on_change, recorder.on_error, current=load_config(path), debounce_ms=50
    )
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.3)  # let the OS watch be registered before the test edits the file
    return watcher, task


async def finish(watcher: ConfigWatcher, task: asyncio.Task[None]) -> None:
    watcher.stop()
    await asyncio.wait_for(task, WAIT)


async def test_edit_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\napi-keys: [a]\n")
    recorder = Recorder()
    watcher, task = await start(path, recorder)
    try:
        path.write_text("port: 8317\napi-keys: [a, b]\n")
        await asyncio.wait_for(recorder.changed.wait(), WAIT)
        assert recorder.configs[-1].api_keys == ["a", "b"]
        assert watcher.current is recorder.configs[-1]

        recorder.changed.clear()
        replace_atomically(path, "port: 9000\napi-keys: [a, b]\n")
        await asyncio.wait_for(recorder.changed.wait(), WAIT)
        assert recorder.configs[-1].port == 9000
        assert recorder.errors == []
    finally:
        await finish(watcher, task)


async def test_invalid_edit_reports_and_keeps_last_good(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\n")
    recorder = Recorder()
    watcher, task = await start(path, recorder)
    good = watcher.current
    try:
        replace_atomically(path, "port: 8317\nrouting:\n  strategy: rand\n")
        await asyncio.wait_for(recorder.failed.wait(), WAIT)
        problem = recorder.errors[0].problems[0]
        assert (problem.line, problem.key_path) == (3, "routing.strategy")
        assert recorder.configs == []
        assert watcher.current is good

        replace_atomically(path, "port: 8400\n")
        await asyncio.wait_for(recorder.changed.wait(), WAIT)
        assert recorder.configs[-1].port == 8400
    finally:
        await finish(watcher, task)


async def test_other_files_in_the_directory_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\n")
    recorder = Recorder()
    watcher, task = await start(path, recorder)
    try:
        (tmp_path / "other.yaml").write_text("port: nonsense\n")
        await asyncio.sleep(0.6)
        assert recorder.configs == [] and recorder.errors == []
    finally:
        await finish(watcher, task)


async def test_reload_skips_unchanged_content_and_survives_callback_errors(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\n")
    calls: list[int] = []

    def broken_on_change(cfg: Config) -> None:
        calls.append(cfg.port)
        raise RuntimeError("boom")

    watcher = ConfigWatcher(path, broken_on_change, lambda error: None)
    assert await watcher.reload() is None  # content is what the watcher started with
    path.write_text("port: 8318\n")
    cfg = await watcher.reload()
    assert cfg is not None and calls == [8318]
    assert await watcher.reload() is None


async def test_deleted_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\n")
    errors: list[ConfigError] = []
    watcher = ConfigWatcher(path, lambda cfg: None, errors.append)
    path.unlink()
    assert await watcher.reload() is None
    assert "config file not found" in str(errors[0])


async def test_stop_before_start_returns_promptly(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("")
    watcher = ConfigWatcher(path, lambda cfg: None, lambda error: None)
    watcher.stop()
    await asyncio.wait_for(watcher.run(), WAIT)


def test_diff_keys() -> None:
    old = parse_config_text("api-keys: [a]\nport: 1\ncommercial-mode: false\n", "c")
    new = parse_config_text(
        "api-keys: [a, b]\nport: 1\ncommercial-mode: true\n"
        "openai-compatibility:\n  - {name: x, base-url: 'http://h'}\n",
        "c",
    )
    # demo flips because a provider appeared; extras such as commercial-mode are compared too.
    assert diff_keys(old, new) == ["api-keys", "openai-compatibility", "demo", "commercial-mode"]
    assert diff_keys(old, old) == []


async def test_symlink_swap_is_picked_up(tmp_path: Path) -> None:
    # Kubernetes ConfigMap volumes update by re-pointing a `..data` symlink; no event names the file.
    first = tmp_path / "..v1"
    first.mkdir()
    (first / "config.yaml").write_text("port: 1000\n")
    (tmp_path / "..data").symlink_to("..v1")
    path = tmp_path / "config.yaml"
    path.symlink_to("..data/config.yaml")
    recorder = Recorder()
    watcher, task = await start(path, recorder)
    try:
        second = tmp_path / "..v2"
        second.mkdir()
        (second / "config.yaml").write_text("port: 2000\n")
        (tmp_path / "..data_tmp").symlink_to("..v2")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        await asyncio.wait_for(recorder.changed.wait(), WAIT)
        assert recorder.configs[-1].port == 2000
    finally:
        await finish(watcher, task)


@pytest.mark.parametrize("force_polling", [False, True], ids=["events", "polling"])
async def test_a_log_file_beside_the_config_never_wakes_the_watcher(
    tmp_path: Path, force_polling: bool
) -> None:
    # The debug log written beside config.yaml: every line written is a change in the watched
    # directory, and a watcher that logs about it ("1 change detected") feeds itself forever.
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\n")
    log_file = tmp_path / "main.log"
    handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    recorder = Recorder()
    watcher = ConfigWatcher(
        path,
        recorder.on_change,
        recorder.on_error,
        current=load_config(path),
        debounce_ms=50,
        force_polling=force_polling,
    )
    reloads: list[float] = []
    real_reload = watcher.reload

    async def counting_reload() -> Config | None:
        reloads.append(time.monotonic())
        return await real_reload()

    watcher.reload = counting_reload  # type: ignore[method-assign]
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.sleep(0.4)
        for n in range(10):
            with log_file.open("a") as handle:
                handle.write(f"request {n} served\n")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.8)
        size = log_file.stat().st_size
        await asyncio.sleep(0.8)
        assert log_file.stat().st_size == size, log_file.read_text()[-400:]  # no loop
        assert reloads == []
        assert "change" not in log_file.read_text()  # neither watchfiles nor we said a word

        path.write_text("port: 8318\n")  # an edit in place
        await asyncio.wait_for(recorder.changed.wait(), WAIT)
        assert recorder.configs[-1].port == 8318

        recorder.changed.clear()
        replace_atomically(path, "port: 8319\n")  # saved by rename, as editors do
        await asyncio.wait_for(recorder.changed.wait(), WAIT)
        assert recorder.configs[-1].port == 8319
        assert recorder.errors == []
    finally:
        await finish(watcher, task)
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def test_only_the_config_and_the_links_on_its_way_matter(tmp_path: Path) -> None:
    (tmp_path / "..2024_01").mkdir()
    (tmp_path / "..2024_01" / "config.yaml").write_text("port: 1\n")
    (tmp_path / "..data").symlink_to("..2024_01")
    path = tmp_path / "config.yaml"
    path.symlink_to("..data/config.yaml")
    assert names_that_matter(path) == {"config.yaml", "..data", "..2024_01"}
    plain = tmp_path / "plain" / "config.yaml"
    plain.parent.mkdir()
    plain.write_text("")
    assert names_that_matter(plain) == {"config.yaml"}
    watcher = ConfigWatcher(plain, lambda cfg: None, lambda error: None)
    assert watcher.wants(Change.added, str(plain.parent / "config.yaml"))
    for other in ("main.log", ".config.yaml.abcd1234.tmp", "config.yaml.bak", "other.yaml"):
        assert not watcher.wants(Change.modified, str(plain.parent / other)), other
