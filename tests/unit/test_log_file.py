"""logging-to-file: logs/main.log in the reference's line layout, rotated within
logs-max-total-size-mb, secrets masked, switched on and off by the config."""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cliproxy.config import parse_config_text
from cliproxy.config.schema import Config
from cliproxy.management.log_file import (
    FileLogging,
    SharedRotatingFileHandler,
    log_dir,
    rotation,
)

CLIENT_KEY = "client-secret-key-0123456789"
UPSTREAM_KEY = "sk-ant-upstream-secret-abcdefgh"
LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[-{8}\] \[(\w+)\] \[[\w.]+:\d+\] ")

log = logging.getLogger("cliproxy.test_log_file")


def _config(tmp_path: Path, extra: str = "") -> Config:
    return parse_config_text(
        f"auth-dir: {tmp_path / 'auth'}\n"
        f"api-keys: [{CLIENT_KEY}]\n"
        "proxy-url: http://user:proxy-password-123@127.0.0.1:3128\n"
        "claude-api-key:\n"
        f"  - api-key: {UPSTREAM_KEY}\n" + extra,
        "t.yaml",
    )


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FileLogging]:
    monkeypatch.setenv("WRITABLE_PATH", str(tmp_path / "writable"))
    logger = logging.getLogger("cliproxy")
    level = logger.level
    logger.setLevel(logging.INFO)
    handler = FileLogging()
    yield handler
    handler.stop()
    logger.setLevel(level)


def test_off_by_default_and_on_when_asked(tmp_path: Path, files: FileLogging) -> None:
    assert files.configure(_config(tmp_path)) is None
    path = files.configure(_config(tmp_path, "logging-to-file: true\n"))
    assert path == tmp_path / "writable" / "logs" / "main.log"
    log.info("hello from the test")
    log.warning("a warning")
    files.handler.flush()  # type: ignore[union-attr]
    lines = path.read_text().splitlines()
    assert lines[-2].endswith("hello from the test") and LINE.match(lines[-2])
    assert LINE.match(lines[-1]).group(1) == "warning"  # type: ignore[union-attr]
    # Switched off by a reload: no more lines.
    assert files.configure(_config(tmp_path)) is None
    log.info("not written")
    assert "not written" not in path.read_text()


def test_secrets_are_masked_in_messages_and_tracebacks(tmp_path: Path, files: FileLogging) -> None:
    path = files.configure(_config(tmp_path, "logging-to-file: true\n"))
    assert path is not None
    log.info("client presented %s", CLIENT_KEY)
    log.info("upstream key %s via http://user:proxy-password-123@127.0.0.1:3128", UPSTREAM_KEY)
    log.info("header Authorization: Bearer some-account-access-token-xyz")
    log.info("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2ln here")
    log.info("google ya29.a0AfH6SMBx-secret-token and 1//0gRefreshTokenSecret")
    try:
        raise ValueError(f"bad key {CLIENT_KEY}")
    except ValueError:
        log.exception("failed")
    files.handler.flush()  # type: ignore[union-attr]
    text = path.read_text()
    for secret in (
        CLIENT_KEY,
        UPSTREAM_KEY,
        "proxy-password-123",
        "some-account-access-token-xyz",
        "c2lnbmF0dXJlc2ln",
        "a0AfH6SMBx-secret-token",
        "0gRefreshTokenSecret",
    ):
        assert secret not in text, secret
    assert f"{CLIENT_KEY[:4]}…{CLIENT_KEY[-4:]}" in text  # recognisable, not usable
    assert "Traceback" in text


def test_rotation_keeps_the_files_within_the_cap(tmp_path: Path, files: FileLogging) -> None:
    path = files.configure(_config(tmp_path, "logging-to-file: true\nlogs-max-total-size-mb: 1\n"))
    assert path is not None
    filler = "x" * 1000
    for index in range(3000):  # about 3 MB of lines
        log.info("line %d %s", index, filler)
    files.handler.flush()  # type: ignore[union-attr]
    written = sorted(path.parent.glob("main.log*"))
    assert [p.name for p in written] == ["main.log", "main.log.1"]
    assert sum(p.stat().st_size for p in written) <= 1024 * 1024
    assert "line 2999" in path.read_text()


def test_rotation_sizes() -> None:
    assert rotation(0) == (10 * 1024 * 1024, 1000)
    assert rotation(100) == (10 * 1024 * 1024, 9)
    per_file, kept = rotation(1)
    assert per_file * (kept + 1) <= 1024 * 1024
    # A negative cap is CLIProxyAPI's "0".
    assert parse_config_text("logs-max-total-size-mb: -3\n", "t.yaml").logs_max_total_size_mb == 0


def test_the_directory_follows_cliproxyapi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path)
    monkeypatch.setenv("WRITABLE_PATH", str(tmp_path / "w"))
    assert log_dir(config) == tmp_path / "w" / "logs"
    monkeypatch.delenv("WRITABLE_PATH")
    monkeypatch.chdir(tmp_path)
    assert log_dir(config) == tmp_path / "logs"
    monkeypatch.setattr("os.access", lambda *_: False)
    assert log_dir(config) == tmp_path / "auth" / "logs"


def test_an_unwritable_directory_is_reported_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file-in-the-way"
    blocker.write_text("")
    monkeypatch.setenv("WRITABLE_PATH", str(blocker))
    handler = FileLogging()
    with caplog.at_level(logging.ERROR):
        assert handler.configure(_config(tmp_path, "logging-to-file: true\n")) is None
    assert any("cannot write" in r.getMessage() for r in caplog.records)


def _write_lines(handler: logging.Handler, tag: str, count: int) -> None:
    logger = logging.Logger(f"worker-{tag}")
    logger.addHandler(handler)
    for n in range(count):
        logger.warning("%s line %04d %s", tag, n, "x" * 40)


@pytest.mark.parametrize("shared", [True, False])
def test_workers_writing_one_file_rotate_it_together(tmp_path: Path, shared: bool) -> None:
    """Three forked processes share the handler made before the fork, as serve's workers do:
    with the shared handler every line lands once, in files within the size limit."""
    path = tmp_path / "main.log"
    limit, lines = 2000, 300
    handler: logging.handlers.RotatingFileHandler = (
        SharedRotatingFileHandler(path, limit, 500)
        if shared
        else logging.handlers.RotatingFileHandler(path, maxBytes=limit, backupCount=500)
    )
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_lines, args=(handler, tag, lines)) for tag in "abc"]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(30)
        assert writer.exitcode == 0
    handler.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("main.log")]
    written = [line for p in files for line in p.read_text().splitlines()]
    longest = max(len(line) + 1 for line in written)
    # Rotated files are full: a rotation happens only when the file in use is.
    short = [p.name for p in files if p.name != "main.log" and p.stat().st_size < limit - longest]
    if not shared:  # what the shared handler is for: each process rotating on its own count
        assert short
        return
    assert short == []
    assert all(p.stat().st_size <= limit for p in files)
    for tag in "abc":  # each process's lines, every one of them, once
        numbers = [line.split(" line ")[1][:4] for line in written if line.startswith(tag)]
        assert sorted(numbers) == [f"{n:04d}" for n in range(lines)]
