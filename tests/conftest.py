"""Shared by every test: what the proxy writes beside the user (the default auth-dir
~/.cli-proxy-api with its usage ledger and saved cooldowns; the main, request and error logs)
goes to temporary directories, never to the developer's home or to ./logs in the working tree.
Servers started as subprocesses inherit both."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _writes_outside_home_and_tree() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in ("HOME", "WRITABLE_PATH")}
    home = tempfile.mkdtemp(prefix="cliproxy-home-")
    os.environ["HOME"] = home
    writable = None
    if not saved["WRITABLE_PATH"]:
        writable = tempfile.mkdtemp(prefix="cliproxy-writable-")
        os.environ["WRITABLE_PATH"] = writable
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for directory in (home, writable):
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
