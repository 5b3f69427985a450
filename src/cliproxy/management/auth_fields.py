"""PATCH /auth-files/fields: the per-account settings an operator may edit in an auth file.

Only the settings the reference's console edits are accepted (prefix, proxy_url, headers,
priority, weight, note, websockets, using_api, disabled, disable_cooling, request_retry,
excluded_models) plus ``expired``, which the console sets in the past to force a token refresh.
Tokens, identity and the upstream address are not editable here: a management key should not be
enough to point an account's token at another host. ``null`` removes a setting. The legacy
kebab spellings are accepted and stored in snake_case; sending both spellings is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cliproxy.auth.catalog import catalog
from cliproxy.auth.records import AuthRecord, format_time, parse_time
from cliproxy.config.schema import check_proxy_url
from cliproxy.state import AppState

from .auth_files import ManagementError, usable_record, write_file

LEGACY_NAMES = {
    "proxy-url": "proxy_url",
    "disable-cooling": "disable_cooling",
    "excluded-models": "excluded_models",
    "request-retry": "request_retry",
}
NOT_FIELDS = ("name", "auth_index")  # say which file, not what to change


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ManagementError(422, f"{field}: expected a string")
    return value.strip()


def _prefix(field: str, value: Any) -> str:
    prefix = _text(field, value).strip("/")
    if "/" in prefix:
        raise ManagementError(422, f"{field}: must be a single path segment without '/'")
    return prefix


def _proxy(field: str, value: Any) -> str:
    try:
        return check_proxy_url(_text(field, value))
    except ValueError as exc:
        raise ManagementError(422, f"{field}: {exc}") from None


def _whole(field: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ManagementError(422, f"{field}: expected a whole number or null")
    if minimum is not None and value < minimum:
        raise ManagementError(422, f"{field}: must be {minimum} or more")
    if not -(2**63) <= value < 2**63:  # 1e300 is whole, but no JSON writer takes it back
        raise ManagementError(422, f"{field}: too large")
    return int(value)


def _flag(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ManagementError(422, f"{field}: expected true or false")
    return value


def _models(field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise ManagementError(422, f"{field}: expected a list of model names")
    return [m.strip().lower() for m in value if m.strip()]


def _expired(field: str, value: Any) -> str:
    try:
        return format_time(parse_time(_text(field, value)))
    except ValueError:
        raise ManagementError(422, f"{field}: expected an RFC 3339 time") from None


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "prefix": _prefix,
    "proxy_url": _proxy,
    "priority": _whole,
    "weight": lambda f, v: _whole(f, v, minimum=0),
    "request_retry": lambda f, v: _whole(f, v, minimum=0),
    "note": _text,
    "websockets": _flag,
    "disabled": _flag,
    "disable_cooling": _flag,
    # xAI accounts' "use the API instead of the Grok CLI backend" switch; the console sends it
    # for xai files only (providers/xai.py reads it).
    "using_api": _flag,
    "excluded_models": _models,
    "expired": _expired,
}
EDITABLE = (*_CHECKS, "headers")


def canonical_updates(body: Mapping[str, Any]) -> dict[str, Any]:
    """The requested edits under their snake_case names; 400/422 naming the bad field."""
    updates: dict[str, Any] = {}
    for key, value in body.items():
        if key in NOT_FIELDS:
            continue
        field = LEGACY_NAMES.get(key, key)
        if field not in EDITABLE:
            raise ManagementError(
                422, f"{key}: not an editable field (editable: {', '.join(EDITABLE)})"
            )
        if field in updates:
            raise ManagementError(400, f"{field}: sent both as {field} and as its legacy name")
        updates[field] = value
    if not updates:
        raise ManagementError(400, "no fields to update")
    return updates


def apply_updates(record: AuthRecord, updates: Mapping[str, Any]) -> dict[str, Any]:
    """The file's new dict: ``updates`` merged into what it holds, everything else kept."""
    raw = dict(record.raw)
    for field, value in updates.items():
        if field == "headers":
            raw["headers"] = _merge_headers(raw.get("headers"), value)
            if not raw["headers"]:
                del raw["headers"]
        elif field == "expired" and catalog().entry(record.type).file.expiry_in_token:
            # Some formats (Gemini's) keep the expiry inside their token object.
            token = raw.get("token")
            token = dict(token) if isinstance(token, dict) else {}
            token["expiry"] = None if value is None else _expired(field, value)
            if token["expiry"] is None:
                del token["expiry"]
            raw["token"] = token
        elif value is None:
            raw.pop(field, None)
        else:
            raw[field] = _CHECKS[field](field, value)
    return raw


def _merge_headers(current: Any, value: Any) -> dict[str, str]:
    """Merge a string map into the file's headers; an empty value (or null) removes one."""
    merged = dict(current) if isinstance(current, dict) else {}
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManagementError(422, "headers: expected an object of header names to strings")
    for name, text in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ManagementError(422, "headers: header names must be non-empty strings")
        if text is None or text == "":
            merged.pop(name.strip(), None)
        elif isinstance(text, str):
            merged[name.strip()] = text.strip()
        else:
            raise ManagementError(422, f"headers.{name}: expected a string")
    return merged


def patch_fields(state: AppState, body: Mapping[str, Any]) -> tuple[AuthRecord, list[str]]:
    """Apply a PATCH body to the named file; returns the new record and the fields changed."""
    updates = canonical_updates(body)
    record = usable_record(state, body.get("name"))
    return write_file(state, record.id, apply_updates(record, updates)), list(updates)
