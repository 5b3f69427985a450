"""Shared by every test: log files (the main log, request and error logs) go to a temporary
directory, never to ./logs in the working tree."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _log_dir_outside_the_tree() -> Iterator[None]:
    if os.environ.get("WRITABLE_PATH"):
        yield
        return
    directory = tempfile.mkdtemp(prefix="cliproxy-writable-")
    os.environ["WRITABLE_PATH"] = directory
    try:
        yield
    finally:
        os.environ.pop("WRITABLE_PATH", None)
        shutil.rmtree(directory, ignore_errors=True)
