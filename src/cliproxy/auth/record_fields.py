"""Reading the fields of an auth file's raw dict, shared by the records and every kind's file
format: typed look-ups whose errors name the field, RFC 3339 times as Go writes them, and
unverified JWT claims. Below both records.py and account_files.py, so neither imports the other's
internals."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson


class RecordError(ValueError):
    """Why a file is not a usable auth record; the message names the field."""


# ----- time ---------------------------------------------------------------------------------


def parse_time(value: str) -> datetime:
    """RFC 3339 as Go writes it (``Z`` or an offset, up to nanoseconds) to an aware datetime."""
    text = value.strip()
    if not text:
        raise ValueError("empty time")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)  # 0001-01-01T00:00:00+14:00 has no UTC form: format_time fails
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None
    return parsed


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``: what Go's time.RFC3339 writes and parses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----- JWT ----------------------------------------------------------------------------------


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: we only read identity facts the issuer sent us over
    TLS, never make trust decisions from it. Returns {} when it is not a readable JWT."""
    parts = token.split(".")
    if len(parts) < 2:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def str_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ----- typed look-ups -----------------------------------------------------------------------


def opt_str(source: Mapping[str, Any], key: str, where: str = "") -> str:
    value = source.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{where}{key}: expected a string, got {json_kind(value)}")
    return value


def opt_time(source: Mapping[str, Any], key: str, where: str = "") -> datetime | None:
    text = opt_str(source, key, where)
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise RecordError(f"{where}{key}: {text!r} is not an RFC 3339 time") from None


def json_kind(value: Any) -> str:
    """What a JSON value is, in words for an error message."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
