"""Auth files for the management API, apart from HTTP: safe names, the listing, and writes.

Every write goes through the AuthStore (atomic, mode 0600, subscribers told), so routing is
rebuilt at once: a disabled or deleted account stops serving before the reply is sent. Edits
are read-modify-write of the file's own dict after a rescan, so fields we do not know (other
tools', newer versions') and edits made on disk a moment ago survive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cliproxy.auth.catalog import catalog
from cliproxy.auth.files import AuthWriteError
from cliproxy.auth.records import (
    AccountState,
    AuthRecord,
    RecordError,
    format_time,
    parse_record_bytes,
)
from cliproxy.state import AppState
from cliproxy.usage.request_counts import counts_of

MAX_FILE_BYTES = 1024 * 1024  # an auth file is a few KB; anything near this is not one


class ManagementError(Exception):
    """A refusal with its HTTP status; ``extra`` joins the ``{"error": ...}`` body."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


# ----- names ----------------------------------------------------------------------------------


# 255 bytes is the file-name limit; the atomic write's temp file (".<name>.<8 random>.tmp",
# auth/files.py) needs 14 more, so a longer name could only fail at write time (a 500).
MAX_NAME_BYTES = 255 - 14


def check_name(name: object) -> str:
    """A bare ``*.json`` file name inside the auth directory, else 400. Refuses anything that
    could reach outside it: separators of either OS, drive letters, dot-names, control bytes."""
    if not isinstance(name, str) or not name:
        raise ManagementError(400, "name: a file name is required")
    if any(ch in name for ch in "/\\:") or any(ord(ch) < 0x20 for ch in name):
        raise ManagementError(400, f"name: {name!r} must be a bare file name")
    if name.startswith(".") or len(name.encode()) > MAX_NAME_BYTES:
        raise ManagementError(400, f"name: {name!r} is not an allowed file name")
    if not name.endswith(".json"):
        raise ManagementError(400, f"name: {name!r} must end in .json")
    return name


def auth_index(kind: str, path: Path) -> str:
    """Stable 16-hex id of a file credential: SHA-256 of ``<type>:<absolute path>``, first 8
    bytes (the reference's derivation, so tools that store it keep working)."""
    seed = f"{kind}:{path.expanduser().absolute()}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def visible_files(auth_dir: Path) -> list[Path]:
    """The files the store reads: ``*.json``, not hidden, regular."""
    try:
        children = sorted(auth_dir.iterdir())
    except OSError:
        return []
    return [
        p for p in children if p.suffix == ".json" and not p.name.startswith(".") and p.is_file()
    ]


def existing_path(state: AppState, name: object) -> Path:
    """The path of an auth file that exists, else 400 (bad name) or 404."""
    path = state.auth_store.auth_dir / check_name(name)
    if not path.is_file():
        raise ManagementError(404, f"auth file {path.name} not found")
    return path


def usable_record(state: AppState, name: object) -> AuthRecord:
    """The current record of a file after a rescan (so edits made on disk are seen), else
    404 (no file) or 409 (a file the store could not use)."""
    path = existing_path(state, name)
    store = state.auth_store
    store.load()
    record = store.get(path.name)
    if record is None:
        reason = next((p.reason for p in store.errors() if p.name == path.name), "unreadable")
        raise ManagementError(409, f"auth file {path.name} is not usable: {reason}")
    return record


# ----- listing --------------------------------------------------------------------------------


def list_entries(
    state: AppState, *, name: str | None = None, index: str | None = None
) -> list[dict[str, Any]]:
    """Every auth file (unusable ones too, with their reason), sorted by name ignoring case."""
    store = state.auth_store
    store.load()  # see files written a moment ago, before the watcher's debounce
    entries = [describe_record(state, record) for record in store.records()]
    entries += [describe_broken(state, p.name, p.path, p.reason) for p in store.errors()]
    if name is not None:
        entries = [e for e in entries if e["name"] == name]
    if index is not None:
        entries = [e for e in entries if e["auth_index"] == index]
    return sorted(entries, key=lambda e: str(e["name"]).lower())


def describe_record(state: AppState, record: AuthRecord) -> dict[str, Any]:
    store = state.auth_store
    status = store.status(record)
    raw = record.raw
    message = status.reason
    if status.state is AccountState.COOLING and status.cooling_until is not None:
        message = f"cooling down until {format_time(status.cooling_until)}"
    entry: dict[str, Any] = {
        "id": record.id,
        "auth_index": auth_index(record.type, record.path),
        "name": record.id,
        "type": record.type,
        "provider": record.type,
        "label": record.email or record.id,
        # The reference's vocabulary; `state` keeps ours (needs_login / cooling are distinct).
        "status": _REFERENCE_STATUS[status.state],
        "state": status.state.value,
        "status_message": message,
        "disabled": record.disabled,
        "unavailable": status.state is AccountState.COOLING,
        "needs_login": status.state is AccountState.NEEDS_LOGIN,
        "runtime_only": False,
        "source": "file",
        "email": record.email,
        "account": record.email,
        "account_type": "oauth",
        "project_id": record.project_id,
        "account_id": record.account_id,
        "expiry": format_time(record.expires_at) if record.expires_at else None,
        "last_refresh": _opt(raw, "last_refresh", str),
        "next_retry_after": _next_retry(state, record.id),
        "prefix": record.prefix,
        "proxy_url": record.proxy_url,
        "priority": record.priority,
        "weight": record.weight,
        "excluded_models": list(record.excluded_models),
        "note": _opt(raw, "note", str),
        "headers": _opt(raw, "headers", dict),
        "websockets": _opt(raw, "websockets", bool),
        "disable_cooling": _opt(raw, "disable_cooling", bool),
        "request_retry": _opt(raw, "request_retry", int),
        **_disk_facts(record.path),
        **_counts(state, record.id),
    }
    entry.update(catalog().entry(record.type).file.listing_facts(raw))
    return entry


def describe_broken(state: AppState, name: str, path: Path, reason: str) -> dict[str, Any]:
    """A file the store skipped: listed so the operator sees it and why, never served."""
    kind = _declared_type(path)
    return {
        "id": name,
        "auth_index": auth_index(kind or "file", path),
        "name": name,
        "type": kind,
        "provider": kind,
        "label": name,
        "status": "error",
        "state": "invalid",
        "status_message": reason,
        "disabled": False,
        "unavailable": True,
        "needs_login": False,
        "runtime_only": False,
        "source": "file",
        **_disk_facts(path),
        **_counts(state, name),
    }


_REFERENCE_STATUS = {
    AccountState.ACTIVE: "active",
    AccountState.COOLING: "active",  # with unavailable: true, as the reference shows it
    AccountState.DISABLED: "disabled",
    AccountState.NEEDS_LOGIN: "error",
}


def _opt(raw: Mapping[str, Any], key: str, kind: type) -> Any:
    value = raw.get(key)
    if kind is int and isinstance(value, bool):
        return None
    return value if isinstance(value, kind) else None


def _next_retry(state: AppState, credential_id: str) -> str | None:
    ends = [c.until for c in state.cooldowns.snapshot() if c.credential_id == credential_id]
    return format_time(datetime.fromtimestamp(max(ends), UTC)) if ends else None


def _disk_facts(path: Path) -> dict[str, Any]:
    try:
        info = path.stat()
    except OSError:
        return {"path": str(path), "size": None, "modtime": None, "updated_at": None}
    modtime = format_time(datetime.fromtimestamp(info.st_mtime, UTC))
    return {"path": str(path), "size": info.st_size, "modtime": modtime, "updated_at": modtime}


def _counts(state: AppState, credential_id: str) -> dict[str, Any]:
    counts = counts_of(state)
    success, failed = counts.totals(credential_id)
    return {"success": success, "failed": failed, "recent_requests": counts.recent(credential_id)}


def _declared_type(path: Path) -> str:
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return ""
    kind = raw.get("type") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) else ""


# ----- writes ---------------------------------------------------------------------------------


def validate_upload(state: AppState, name: object, data: bytes) -> dict[str, Any]:
    """The file's dict when ``data`` is a usable auth file named ``name``; else 400/413/422."""
    checked = check_name(name)
    if len(data) > MAX_FILE_BYTES:
        raise ManagementError(413, f"{checked}: larger than {MAX_FILE_BYTES} bytes")
    try:
        record = parse_record_bytes(state.auth_store.auth_dir / checked, data)
    except RecordError as exc:
        raise ManagementError(422, f"{checked}: {exc}") from None
    return dict(record.raw)


def write_file(state: AppState, name: str, raw: Mapping[str, Any]) -> AuthRecord:
    """Write (create or replace) one auth file and route with it at once."""
    try:
        return state.auth_store.create(check_name(name), raw).record
    except RecordError as exc:
        raise ManagementError(422, f"{name}: {exc}") from None
    except AuthWriteError as exc:
        raise ManagementError(500, str(exc)) from None


def delete_files(state: AppState, names: Iterable[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Delete each named file: (deleted names, [{name, error, status}] for the rest). Every
    name is checked before anything is deleted, so a hostile name refuses the whole batch."""
    checked = [check_name(name) for name in names]
    auth_dir = state.auth_store.auth_dir
    deleted: list[str] = []
    failed: list[dict[str, Any]] = []
    for name in dict.fromkeys(checked):
        path = auth_dir / name
        if not path.is_file():
            failed.append({"name": name, "error": "not found", "status": 404})
            continue
        try:
            path.unlink()
        except OSError as exc:
            failed.append({"name": name, "error": exc.strerror or str(exc), "status": 500})
            continue
        deleted.append(name)
    _forget(state, deleted)
    return deleted, failed


def delete_all(state: AppState) -> int:
    deleted: list[str] = []
    for path in visible_files(state.auth_store.auth_dir):
        try:
            path.unlink()
        except OSError:
            continue
        deleted.append(path.name)
    _forget(state, deleted)
    return len(deleted)


def _forget(state: AppState, names: list[str]) -> None:
    # Rescan now rather than wait for the watcher: the accounts leave routing before we reply.
    state.auth_store.load()
    for name in names:
        state.cooldowns.clear(name)
        counts_of(state).forget(name)


def set_disabled(state: AppState, name: object, disabled: bool) -> AuthRecord:
    record = usable_record(state, name)
    return write_file(state, record.id, {**record.raw, "disabled": disabled})
