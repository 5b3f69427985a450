"""Auth files as typed values: one JSON file per subscription account, in CLIProxyAPI's formats.

A record is parsed from the file's raw dict and keeps that dict, so writing a record back
changes only the fields we touched: fields we do not know (other tools', newer versions') are
preserved as they were.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from cliproxy.providers.base import Credential

# Auth file `type`s cliproxy can use; CLIProxyAPI knows more (antigravity, qwen, kimi, ...).
SUPPORTED_TYPES = ("codex", "claude", "gemini")
OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"


class RecordError(ValueError):
    """Why a file is not a usable auth record; the message names the field."""


class AccountState(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    NEEDS_LOGIN = "needs_login"
    COOLING = "cooling"


@dataclass(frozen=True, slots=True)
class AccountStatus:
    state: AccountState
    reason: str = ""  # why it needs login; for an active account, a caveat (its file is broken)
    cooling_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuthRecord:
    """One account. ``id`` is the file name, unique within the auth directory."""

    id: str
    path: Path
    type: str
    email: str
    access_token: str
    refresh_token: str
    expires_at: datetime | None
    account_id: str = ""  # codex: ChatGPT account id
    project_id: str = ""  # gemini: Google Cloud project
    disabled: bool = False
    prefix: str = ""
    proxy_url: str = ""
    priority: int | None = None
    weight: int | None = None
    excluded_models: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def account_facts(self) -> dict[str, str]:
        facts = {"email": self.email, "type": self.type}
        if self.account_id:
            facts["account_id"] = self.account_id
        if self.project_id:
            facts["project_id"] = self.project_id
        if self.raw.get(PLAN_LIMITS_ONLY) is True:
            facts[PLAN_LIMITS_ONLY] = "true"
        return facts

    def credential(self, base_url: str, headers: Mapping[str, str] | None = None) -> Credential:
        """The routing credential for this account: the access token as its secret."""
        return Credential(
            id=self.id,
            secret=self.access_token,
            base_url=base_url,
            proxy_url=self.proxy_url or None,
            headers=dict(headers or {}),
            account=self.account_facts(),
        )

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        """True when the token is missing or expires within ``seconds``; False if unknown."""
        if not self.access_token:
            return True
        if self.expires_at is None:
            return False
        moment = now or datetime.now(UTC)
        return (self.expires_at - moment).total_seconds() < seconds


# An account-file switch (claude accounts): never send a request that would draw from the
# subscription's extra usage (the config's claude-plan-limits-only, for one account).
PLAN_LIMITS_ONLY = "claude-plan-limits-only"


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


def codex_identity(id_token: str) -> tuple[str, str, str]:
    """(email, chatgpt_account_id, chatgpt_plan_type) from a Codex id_token."""
    claims = jwt_claims(id_token)
    auth = claims.get(OPENAI_AUTH_CLAIM)
    auth = auth if isinstance(auth, dict) else {}
    return (
        _str_or_empty(claims.get("email")),
        _str_or_empty(auth.get("chatgpt_account_id")),
        _str_or_empty(auth.get("chatgpt_plan_type")),
    )


def _str_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ----- parsing ------------------------------------------------------------------------------


def parse_record_bytes(path: Path, data: bytes) -> AuthRecord:
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON: {exc}") from None
    return parse_record(path, raw)


def parse_record(path: Path, raw: Any) -> AuthRecord:
    """Validate a file's dict; raises RecordError naming the first problem."""
    if not isinstance(raw, dict):
        raise RecordError(f"expected a JSON object, got {_kind(raw)}")
    kind = raw.get("type")
    if kind is None:
        raise RecordError("missing field 'type'")
    if not isinstance(kind, str):
        raise RecordError(f"type: expected a string, got {_kind(kind)}")
    if kind not in SUPPORTED_TYPES:
        raise RecordError(
            f"type {kind!r} is not supported (cliproxy reads {', '.join(SUPPORTED_TYPES)})"
        )
    common = _common_fields(raw)
    if kind == "gemini":
        token = raw.get("token", {})
        if token is None:
            token = {}
        if not isinstance(token, dict):
            raise RecordError(f"token: expected an object, got {_kind(token)}")
        access = _opt_str(token, "access_token", "token.")
        refresh = _opt_str(token, "refresh_token", "token.")
        expires = _opt_time(token, "expiry", "token.")
        facts: dict[str, Any] = {"project_id": _opt_str(raw, "project_id")}
    else:
        access = _opt_str(raw, "access_token")
        refresh = _opt_str(raw, "refresh_token")
        expires = _opt_time(raw, "expired")
        facts = {}
        if kind == "codex":
            account_id = _opt_str(raw, "account_id")
            id_token = _opt_str(raw, "id_token")
            if not account_id and id_token:
                account_id = codex_identity(id_token)[1]
            facts["account_id"] = account_id
    email = _opt_str(raw, "email")
    return AuthRecord(
        id=path.name,
        path=path,
        type=kind,
        email=email,
        access_token=access,
        refresh_token=refresh,
        expires_at=expires,
        raw=raw,
        **facts,
        **common,
    )


def _common_fields(raw: dict[str, Any]) -> dict[str, Any]:
    disabled = raw.get("disabled", False)
    if disabled is None:
        disabled = False
    if not isinstance(disabled, bool):
        raise RecordError(f"disabled: expected true or false, got {_kind(disabled)}")
    excluded = raw.get("excluded_models") or []
    if not isinstance(excluded, list) or not all(isinstance(m, str) for m in excluded):
        raise RecordError("excluded_models: expected a list of strings")
    aliases = raw.get("model_aliases")
    if aliases is not None and not isinstance(aliases, dict | list):
        raise RecordError(f"model_aliases: expected an object or a list, got {_kind(aliases)}")
    return {
        "disabled": disabled,
        "prefix": _opt_str(raw, "prefix"),
        "proxy_url": _opt_str(raw, "proxy_url"),
        "priority": _opt_int(raw, "priority"),
        "weight": _opt_int(raw, "weight"),
        "excluded_models": tuple(excluded),
    }


def _opt_str(source: Mapping[str, Any], key: str, where: str = "") -> str:
    value = source.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{where}{key}: expected a string, got {_kind(value)}")
    return value


def _opt_int(source: Mapping[str, Any], key: str) -> int | None:
    value = source.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise RecordError(f"{key}: expected a whole number, got {_kind(value)}")
    if not -(2**63) <= value < 2**63:  # 1e300 is whole, but JSON writers refuse it back
        raise RecordError(f"{key}: {value} is out of range")
    return int(value)


def _opt_time(source: Mapping[str, Any], key: str, where: str = "") -> datetime | None:
    text = _opt_str(source, key, where)
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise RecordError(f"{where}{key}: {text!r} is not an RFC 3339 time") from None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
