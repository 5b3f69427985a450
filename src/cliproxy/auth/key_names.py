"""Names for client keys: `api-key-names.json` beside the config file (the reference system's
/v8/management/access/api-key-names).

The file maps the SHA-256 (hex) of a full client key to a name, `{"names": {"<sha256>":
"Team"}}`, so a name can be given to a key without writing the key anywhere. The usage ledger,
the logs and the console show the name in place of the masked key (a `client-keys` entry's own
name wins). At most 128 characters a name and 10,000 names; an empty name removes one. The
file is written atomically, mode 0600; it is read at start and after each change made here,
and, when several processes serve (`workers: N`), whenever another of them changes it
(``follow``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from watchfiles import Change, awatch

from cliproxy.auth.files import write_atomic

log = logging.getLogger(__name__)

FILE_NAME = "api-key-names.json"
MAX_NAME = 128
MAX_NAMES = 10_000
_HASH = re.compile(r"[0-9a-f]{64}")


class KeyNamesError(ValueError):
    """A change that is refused; the message names the entry. ``status``: 400 past a limit,
    422 for a value of the wrong shape, 409 with nowhere to write."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyNames:
    """The names, by key hash. ``path`` None: no config file, so nowhere to keep them."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.names: dict[str, str] = {}

    def load(self) -> None:
        """Read the file (a missing one is no names; an unreadable one is logged and read as
        none, so a broken file never keeps the proxy from starting)."""
        if self.path is None:
            return
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("%s is not readable, client keys stay unnamed: %s", self.path, exc)
            return
        found = data.get("names") if isinstance(data, dict) else None
        if not isinstance(found, dict):
            log.warning('%s has no "names" object, client keys stay unnamed', self.path)
            return
        self.names = {
            digest.lower(): name.strip()
            for digest, name in found.items()
            if isinstance(digest, str)
            and _HASH.fullmatch(digest.lower())
            and isinstance(name, str)
            and name.strip()
        }

    async def follow(self) -> None:
        """Read the file again each time it changes on disk, until cancelled: the other
        workers of this server write it too. Never raises."""
        if self.path is None:
            return
        name = self.path.name

        def wanted(change: Change, path: str) -> bool:
            return Path(path).name == name

        try:
            async for _ in awatch(self.path.parent, watch_filter=wanted, recursive=False):
                self.load()
        except Exception:
            log.exception("watching %s stopped; key names change here only", self.path)

    def name_for(self, key: str) -> str:
        """The name given to ``key`` ("" when none)."""
        if not self.names or not key:
            return ""
        return self.names.get(key_hash(key), "")

    def merged(self, changes: Mapping[Any, Any], *, only_if_absent: bool = False) -> dict[str, str]:
        """The names after ``changes`` (hash -> name; an empty name removes it). Raises
        KeyNamesError naming the first entry refused."""
        names = dict(self.names)
        for digest, name in changes.items():
            if not isinstance(digest, str) or not _HASH.fullmatch(digest.strip().lower()):
                raise KeyNamesError(
                    f"names.{str(digest)[:70]}: not the SHA-256 of a key (64 hex digits)"
                )
            digest = digest.strip().lower()
            if not isinstance(name, str):
                raise KeyNamesError(f"names.{digest}: must be a string (an empty one removes it)")
            name = name.strip()
            if len(name) > MAX_NAME:
                raise KeyNamesError(
                    f"names.{digest}: at most {MAX_NAME} characters (got {len(name)})", 400
                )
            if only_if_absent and digest in names:
                continue
            if name:
                names[digest] = name
            else:
                names.pop(digest, None)
        if len(names) > MAX_NAMES:
            raise KeyNamesError(
                f"names: at most {MAX_NAMES} key names (this change makes {len(names)})", 400
            )
        return names

    def save(self, names: dict[str, str]) -> None:
        """Write ``names`` to the file (atomically, 0600), then use them. Raises
        AuthWriteError; OSError for a missing directory."""
        if self.path is None:
            raise KeyNamesError(
                "the server runs without a config file, so there is no place for "
                f"{FILE_NAME} (it is kept beside the config file)",
                409,
            )
        data = orjson.dumps({"names": dict(sorted(names.items()))}, option=orjson.OPT_INDENT_2)
        write_atomic(self.path, data + b"\n")
        self.names = names
