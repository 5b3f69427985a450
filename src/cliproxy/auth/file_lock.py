"""Locks that hold across processes, for files several workers (`workers: N`) change.

Each lock is an advisory `flock` on a dot-file beside the file it guards (`.<name>.lock`): the
auth store and the config watcher skip dot-files, so a lock file never looks like a change.
A lock file that cannot be made (a read-only directory) means no lock; whatever write follows
fails in that directory with its own, clearer error.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

POLL_SECONDS = 0.05


def lock_path(path: Path, purpose: str = "") -> Path:
    suffix = f".{purpose}" if purpose else ""
    return path.with_name(f".{path.name}{suffix}.lock")


def _open(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None


@contextlib.contextmanager
def exclusive(path: Path, purpose: str = "") -> Iterator[None]:
    """Hold ``path``'s lock, waiting as long as another process holds it (blocking: for code
    that runs in a thread)."""
    descriptor = _open(lock_path(path, purpose))
    if descriptor is None:
        yield
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


@contextlib.asynccontextmanager
async def exclusive_async(path: Path, purpose: str = "") -> AsyncIterator[None]:
    """The same on the event loop: tries again every 50 ms rather than blocking, so that a
    caller can be cancelled while it waits."""
    descriptor = _open(lock_path(path, purpose))
    if descriptor is None:
        yield
        return
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(descriptor)
