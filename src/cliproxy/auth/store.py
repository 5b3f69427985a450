"""The account store: the auth directory's JSON files, loaded, watched and written back.

The store owns the in-memory view of every account (records plus their runtime state: needs
login, cooling down). A file that cannot be used is reported by name and reason and left
untouched on disk. A file that loaded before and then turns unusable (a tool rewriting it in
place is caught between truncate and write; a hand edit breaks it) keeps serving its last good
version, as a bad config edit keeps the last good config, and is reported as a warning until
it is fixed or deleted. Changes on disk (a login from another process, an edit, a deletion)
are picked up by `watch()` and announced to subscribers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watchfiles import Change, awatch

from cliproxy.config.watch import quiet_watchfiles_log

from .files import (
    AuthWriteError,
    describe_os_error,
    dump_record,
    ensure_dir,
    loose_permissions,
    remove_stale_temp_files,
)
from .files import write_atomic as _write_atomic
from .identity import NEEDS_LOGIN_FIELD
from .records import (
    AccountState,
    AccountStatus,
    AuthRecord,
    RecordError,
    parse_record,
    parse_record_bytes,
)

log = logging.getLogger(__name__)

# The entry a Kubernetes Secret volume swaps to update every file at once: its event names no
# account file, yet every account file has changed through it.
SECRET_DATA_LINK = "..data"


@dataclass(frozen=True, slots=True)
class AuthFileProblem:
    """A file that was skipped (error) or loaded with a caveat (warning)."""

    name: str
    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class AuthChange:
    """What one scan or write changed; ids are file names."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True, slots=True)
class SaveResult:
    record: AuthRecord
    error: str | None = None  # set when the file could not be written (kept in memory only)


Subscriber = Callable[[AuthChange], None]


@dataclass(slots=True)
class _Entry:
    fingerprint: bytes  # of the bytes last read from (or written to) the file
    record: AuthRecord | None = None  # in use: from those bytes, or the last good version
    error: str | None = None  # why those bytes are not usable
    warning: str | None = None
    # The bytes `record` was parsed from; differs from `fingerprint` while the file is broken
    # and a last good version is kept (None: the record exists in memory only).
    source: bytes | None = None

    @property
    def kept(self) -> bool:
        """Serving the last good version of a file that is unusable on disk now."""
        return self.record is not None and self.error is not None


@dataclass(slots=True)
class _Runtime:
    needs_login: str | None = None
    cooling_until: datetime | None = None


def _fingerprint(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class AuthStore:
    """Owns the accounts of one auth directory. Call load() (or run watch()) to read it."""

    def __init__(self, auth_dir: Path | str) -> None:
        self.auth_dir = Path(auth_dir).expanduser()
        self._entries: dict[str, _Entry] = {}
        self._runtime: dict[str, _Runtime] = {}
        self._subscribers: list[Subscriber] = []
        self._stop: asyncio.Event | None = None
        self._loaded = False

    # ----- reading ------------------------------------------------------------------------

    def records(self) -> tuple[AuthRecord, ...]:
        """Every usable record (disabled ones included), sorted by file name."""
        return tuple(e.record for _, e in sorted(self._entries.items()) if e.record is not None)

    def get(self, record_id: str) -> AuthRecord | None:
        entry = self._entries.get(record_id)
        return entry.record if entry is not None else None

    def errors(self) -> tuple[AuthFileProblem, ...]:
        """Files skipped: unusable, and no earlier version of them to fall back on."""
        return tuple(
            AuthFileProblem(name, self.auth_dir / name, e.error)
            for name, e in sorted(self._entries.items())
            if e.error is not None and e.record is None
        )

    def warnings(self) -> tuple[AuthFileProblem, ...]:
        """Files in use with a caveat: loose permissions, or broken on disk while their last
        good version serves (a warning, not an error: the account still works, and listings
        that show records and errors side by side would list it twice)."""
        problems: list[AuthFileProblem] = []
        for name, e in sorted(self._entries.items()):
            if e.kept:
                problems.append(AuthFileProblem(name, self.auth_dir / name, _kept_reason(e)))
            if e.warning is not None:
                problems.append(AuthFileProblem(name, self.auth_dir / name, e.warning))
        return tuple(problems)

    def status(self, record: AuthRecord | str, now: datetime | None = None) -> AccountStatus:
        record_id = record if isinstance(record, str) else record.id
        current = self.get(record_id)
        runtime = self._runtime.get(record_id, _Runtime())
        if current is not None and current.disabled:
            return AccountStatus(AccountState.DISABLED)
        if runtime.needs_login is not None:
            return AccountStatus(AccountState.NEEDS_LOGIN, reason=runtime.needs_login)
        persisted = current.raw.get(NEEDS_LOGIN_FIELD) if current is not None else None
        if isinstance(persisted, str) and persisted:
            return AccountStatus(AccountState.NEEDS_LOGIN, reason=persisted)
        if current is not None and not current.access_token and not current.refresh_token:
            return AccountStatus(AccountState.NEEDS_LOGIN, reason="the file holds no tokens")
        moment = now or datetime.now(UTC)
        if runtime.cooling_until is not None and runtime.cooling_until > moment:
            return AccountStatus(AccountState.COOLING, cooling_until=runtime.cooling_until)
        # The management listing shows this reason as the account's status message.
        entry = self._entries.get(record_id)
        caveat = _kept_reason(entry) if entry is not None and entry.kept else ""
        return AccountStatus(AccountState.ACTIVE, reason=caveat)

    # ----- runtime state (memory only; CLIProxyAPI's files have no such fields) -------------

    def mark_needs_login(self, record_id: str, reason: str) -> None:
        self._runtime.setdefault(record_id, _Runtime()).needs_login = reason
        log.error("account %s needs login: %s", record_id, reason)
        # Also in the file, so `cliproxy accounts` and a restart see it (save() keeps the rest
        # of the file as it was and tells subscribers, which takes the account out of routing).
        current = self.get(record_id)
        if current is not None and current.raw.get(NEEDS_LOGIN_FIELD) != reason:
            self.save(record_id, {**current.raw, NEEDS_LOGIN_FIELD: reason})

    def mark_cooling(self, record_id: str, until: datetime | None) -> None:
        """Set by routing when an upstream asks us to back off; None clears it."""
        self._runtime.setdefault(record_id, _Runtime()).cooling_until = until

    # ----- subscribers --------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(change)`` after every scan or save that changed something.
        Returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _notify(self, change: AuthChange) -> None:
        if not change:
            return
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception:
                log.exception("auth store subscriber failed")

    # ----- scanning -----------------------------------------------------------------------

    def load(self) -> AuthChange:
        """(Re)read the directory now. Unchanged files are not re-parsed. The first load also
        clears temporary files that interrupted writes left behind."""
        if not self._loaded:
            self._loaded = True
            remove_stale_temp_files(self.auth_dir)
        seen: set[str] = set()
        added: list[str] = []
        changed: list[str] = []
        for path in self._json_files():
            name = path.name
            seen.add(name)
            entry = self._read(path)
            old = self._entries.get(name)
            if old is not None and old.fingerprint == entry.fingerprint:
                old.warning = entry.warning
                continue
            if old is not None and self._keep_last_good(name, old, entry):
                continue
            self._entries[name] = entry
            if entry.error is not None:
                log.warning("skipping auth file %s: %s", name, entry.error)
            # An edited file is a fresh start: a re-login must clear "needs login".
            self._runtime.pop(name, None)
            if entry.record is None:
                if old is not None and old.record is not None:
                    changed.append(name)
            elif old is None or old.record is None:
                added.append(name)
            else:
                changed.append(name)
        removed = [name for name in self._entries if name not in seen]
        for name in removed:
            del self._entries[name]
            self._runtime.pop(name, None)
        change = AuthChange(tuple(added), tuple(changed), tuple(removed))
        self._notify(change)
        return change

    def _keep_last_good(self, name: str, old: _Entry, new: _Entry) -> bool:
        """Update `old` in place when `new` bytes change nothing in use; True when handled.

        Unusable bytes after a good version: the good version stays (its runtime state too:
        a half-written file is no re-login), with one warning for the episode however many
        broken states the file passes through. Usable bytes equal to the version in use (a
        rewrite that put back the same content): the episode ends without a change."""
        if old.record is None:
            return False
        if new.record is None:
            if old.error is None:
                log.warning(
                    "auth file %s is not usable now (%s); its last good version serves until "
                    "the file is fixed or removed",
                    name,
                    new.error,
                )
            old.fingerprint, old.error, old.warning = new.fingerprint, new.error, new.warning
            return True
        if old.error is not None:
            log.info("auth file %s is usable again", name)
            if new.fingerprint == old.source:
                old.fingerprint, old.error, old.warning = new.fingerprint, None, new.warning
                return True
        return False

    def _json_files(self) -> list[Path]:
        try:
            children = sorted(self.auth_dir.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.error("cannot list auth directory %s: %s", self.auth_dir, describe_os_error(exc))
            # Keep what we have rather than dropping every account over a transient error.
            return [self.auth_dir / name for name in self._entries]
        return [
            p
            for p in children
            if p.suffix == ".json" and not p.name.startswith(".") and p.is_file()
        ]

    def _read(self, path: Path) -> _Entry:
        try:
            data = path.read_bytes()
            mode = path.stat().st_mode
        except OSError as exc:
            reason = f"cannot read: {describe_os_error(exc)}"
            return _Entry(fingerprint=reason.encode(), error=reason)
        entry = _Entry(fingerprint=_fingerprint(data), warning=loose_permissions(mode))
        try:
            entry.record = parse_record_bytes(path, data)
        except RecordError as exc:
            entry.error = str(exc)
        else:
            entry.source = entry.fingerprint
        return entry

    # ----- writing ------------------------------------------------------------------------

    def save(self, record_id: str, raw: Mapping[str, Any]) -> SaveResult:
        """Write ``raw`` as the file of ``record_id`` (atomic, 0600), then use it in memory.

        The file is written first, so a rotated refresh token is on disk before its access
        token is handed out. When the write fails the new record is still used in memory (the
        tokens are valid; losing them would force a new login) and the error is returned and
        logged.
        """
        path = self.auth_dir / record_id
        record = parse_record(path, dict(raw))
        data = dump_record(record.raw)
        error: str | None = None
        try:
            _write_atomic(path, data)
        except AuthWriteError as exc:
            error = str(exc)
            log.error("%s; the new tokens are kept in memory only", error)
        old = self._entries.get(record_id)
        if error is None:
            written = _fingerprint(data)
            entry = _Entry(written, record=record, source=written)
        else:
            # The file on disk is as it was (broken, maybe): keep what a rescan compares with.
            entry = _Entry(
                old.fingerprint if old else b"",
                record=record,
                error=old.error if old else None,
                warning=old.warning if old else None,
            )
        self._entries[record_id] = entry
        was_known = old is not None and old.record is not None
        change = AuthChange(changed=(record_id,)) if was_known else AuthChange(added=(record_id,))
        self._notify(change)
        return SaveResult(record, error)

    def create(self, name: str, raw: Mapping[str, Any]) -> SaveResult:
        """Write a new (or replace an existing) account file. Raises AuthWriteError, since a
        login whose result cannot be stored has failed."""
        ensure_dir(self.auth_dir)
        path = self.auth_dir / name
        record = parse_record(path, dict(raw))
        _write_atomic(path, dump_record(record.raw))
        self._runtime.pop(name, None)
        return self.save_in_memory(record, _fingerprint(dump_record(record.raw)))

    def save_in_memory(self, record: AuthRecord, fingerprint: bytes) -> SaveResult:
        old = self._entries.get(record.id)
        self._entries[record.id] = _Entry(fingerprint, record=record, source=fingerprint)
        was_known = old is not None and old.record is not None
        self._notify(
            AuthChange(changed=(record.id,)) if was_known else AuthChange(added=(record.id,))
        )
        return SaveResult(record)

    # ----- watching -----------------------------------------------------------------------

    async def watch(self, *, debounce_ms: int = 200, force_polling: bool | None = None) -> None:
        """Rescan on every change to an account file until stop(). Never raises."""
        self._stop = asyncio.Event()
        try:
            ensure_dir(self.auth_dir)
        except AuthWriteError as exc:
            log.error("not watching auth directory: %s", exc)
            return
        self.load()
        quiet_watchfiles_log()
        try:
            async for _ in awatch(
                self.auth_dir,
                watch_filter=self._wants,
                stop_event=self._stop,
                debounce=debounce_ms,
                force_polling=force_polling,
                recursive=False,
            ):
                try:
                    self.load()
                except Exception:
                    log.exception("rescanning the auth directory failed")
        except Exception:
            log.exception("watching the auth directory %s stopped", self.auth_dir)

    def _wants(self, change: Change, path: str) -> bool:
        """The watch filter: only what load() reads can change an account, so logs, temporary
        files and notes in the directory (which may change all the time) never wake a rescan.
        The directory itself counts: when polling, a file renamed into place within the same
        second shows only as a change of the directory."""
        del change
        if os.path.normpath(path) == os.path.normpath(self.auth_dir):
            return True
        name = Path(path).name
        return (name.endswith(".json") and not name.startswith(".")) or name == SECRET_DATA_LINK

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()


def _kept_reason(entry: _Entry) -> str:
    return f"the file is not usable ({entry.error}); its last good version is in use"
