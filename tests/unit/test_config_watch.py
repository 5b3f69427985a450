"""Hot reload: edits are picked up, bad edits are reported and the last good config stays."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cliproxy.config import Config, ConfigError, ConfigWatcher, diff_keys, load_config
from cliproxy.config.load import parse_config_text

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
    old = parse_config_text("api-keys: [a]\nport: 1\nws-auth: false\n", "c")
    new = parse_config_text(
        "api-keys: [a, b]\nport: 1\nws-auth: true\n"
        "openai-compatibility:\n  - {name: x, base-url: 'http://h'}\n",
        "c",
    )
    # demo flips because a provider appeared; extras such as ws-auth are compared too.
    assert diff_keys(old, new) == ["api-keys", "openai-compatibility", "demo", "ws-auth"]
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
