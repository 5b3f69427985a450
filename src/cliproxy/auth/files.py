"""Atomic, private file writes: the one writer for auth files, config.yaml and the state files
kept beside them.

A file is replaced, never edited in place: the new content goes to a temporary file in the same
directory (same filesystem, so the rename is atomic), is flushed to disk, and is renamed over
the old one. A crash leaves either the old file or the new one, never half of each, plus at
worst the temporary file, which `remove_stale_temp_files` clears at the next start. Mode 0600
because these files hold live credentials.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

FILE_MODE = 0o600
DIR_MODE = 0o700
TEMP_SUFFIX = ".tmp"  # not ".json": the store ignores half-written files
# A temporary file older than this was left by a write that died: ours take milliseconds, so
# one this old cannot belong to a write still running in another process.
STALE_TEMP_SECONDS = 10 * 60
# What tempfile.mkstemp adds between our prefix and suffix: eight of [a-z0-9_].
_TEMP_RANDOM = r"[a-z0-9_]{8}"

log = logging.getLogger(__name__)


class AuthWriteError(Exception):
    """A file could not be written; the message says which and why, in plain words."""


def dump_record(raw: Mapping[str, Any]) -> bytes:
    return orjson.dumps(raw, option=orjson.OPT_INDENT_2) + b"\n"


def ensure_dir(path: Path) -> None:
    """Create the auth directory (private) if it is missing."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise AuthWriteError(f"cannot create auth directory {path}: {_why(exc)}") from exc


def write_atomic(path: Path, data: bytes, *, keep_mode: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600. Raises AuthWriteError.

    ``keep_mode`` (config.yaml): the file keeps its current mode (0600 when new), and a symlink
    (a mounted ConfigMap, a dotfiles repo) is followed so the link itself survives."""
    if keep_mode:
        path = path.resolve()
    mode = FILE_MODE
    if keep_mode:
        with contextlib.suppress(FileNotFoundError):
            mode = path.stat().st_mode & 0o7777
    directory = path.parent
    try:
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise AuthWriteError(f"cannot write {path}: {_why(exc)}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise AuthWriteError(f"cannot write {path}: {_why(exc)}") from exc
    _fsync_dir(directory)


def temp_name_pattern(name: str | None = None) -> re.Pattern[str]:
    """The names write_atomic gives its temporary files: `.<name>.<random>.tmp`, for one
    target `name` or (None) for any."""
    target = re.escape(name) if name is not None else r".+"
    return re.compile(rf"\.{target}\.{_TEMP_RANDOM}{re.escape(TEMP_SUFFIX)}")


def remove_stale_temp_files(
    directory: Path,
    name: str | None = None,
    *,
    older_than: float = STALE_TEMP_SECONDS,
    now: float | None = None,
) -> list[Path]:
    """Delete the temporary files an interrupted atomic write (a killed process, a full disk)
    left in `directory`: regular files named as ours (for target `name`, or any) and not
    modified for `older_than` seconds. Returns what was removed; each removal is logged."""
    pattern = temp_name_pattern(name)
    moment = time.time() if now is None else now
    try:
        children = list(directory.iterdir())
    except OSError:
        return []  # no directory yet, or unreadable: the caller reports that in its own words
    removed: list[Path] = []
    for path in sorted(children):
        if pattern.fullmatch(path.name) is None:
            continue
        try:
            info = path.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or moment - info.st_mtime < older_than:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # another process cleaned it first
        except OSError as exc:
            log.warning("cannot remove stale temporary file %s: %s", path, _why(exc))
            continue
        log.info("removed %s, left behind by an interrupted write", path)
        removed.append(path)
    return removed


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def loose_permissions(mode: int) -> str | None:
    """A warning when other users may read a token file, else None."""
    if mode & 0o077:
        return (
            f"readable by other users (mode {stat.S_IMODE(mode):04o}); "
            f"run chmod 600 on it to keep its tokens private"
        )
    return None


def _why(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (is the auth directory read-only or owned by another user?)"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)


def describe_os_error(exc: OSError) -> str:
    return _why(exc)
