"""Temporary files that a killed atomic write left behind (beside config.yaml, in the auth
dir) are removed when the server starts; a fresh one may belong to a write in progress in
another process, and files not named as ours are never touched."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from cliproxy.config import load_config
from tests.management.conftest import write_config
from tests.proxy_server import ProxyServer

HOUR = 3600.0


def leave(path: Path, text: str = "half a write", age: float = HOUR) -> Path:
    path.write_text(text)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_server_start_removes_stale_temp_files_beside_the_config_and_in_the_auth_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    caplog.set_level(logging.INFO)
    config_file = write_config(tmp_path)
    auth_dir = tmp_path / "auths"
    stale_config = leave(tmp_path / ".config.yaml.x7k2m9qa.tmp", "secret-key: plain")
    stale_auth = leave(auth_dir / ".codex-a.json.p0o9i8u7.tmp", '{"access_token": "at"')
    in_progress = leave(tmp_path / ".config.yaml.b3n4m5v6.tmp", age=5)
    not_ours = [
        leave(tmp_path / name)
        for name in (".other.yaml.x7k2m9qa.tmp", ".config.yaml.tmp", "config.yaml.x7k2m9qa.tmp")
    ]
    with ProxyServer(load_config(config_file), config_path=config_file):
        assert not stale_config.exists()
        assert not stale_auth.exists()
        assert in_progress.exists()
        assert all(path.exists() for path in not_ours)
        assert config_file.exists()
    removed = [r.getMessage() for r in caplog.records if "interrupted write" in r.getMessage()]
    assert len(removed) == 2
    assert any(str(stale_config) in line for line in removed)
    assert any(str(stale_auth) in line for line in removed)
