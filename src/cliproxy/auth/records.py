"""Auth files as typed values: one JSON file per subscription account, in CLIProxyAPI's formats.

A record is parsed from the file's raw dict and keeps that dict, so writing a record back
changes only the fields we touched: fields we do not know (other tools', newer versions') are
preserved as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from cliproxy.providers.base import Credential

from .catalog import catalog
from .record_fields import RecordError, json_kind, opt_str

# Re-exported: the records' callers read and write times through this module.
from .record_fields import format_time as format_time
from .record_fields import parse_time as parse_time


def supported_types() -> tuple[str, ...]:
    """Auth file `type`s cliproxy can use: the catalog's kinds. CLIProxyAPI knows more
    (antigravity, qwen, ...)."""
    return catalog().kinds()


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
        location = self.raw.get("location")  # vertex: the region its requests go to
        if isinstance(location, str) and location:
            facts["location"] = location
        if self.raw.get(PLAN_LIMITS_ONLY) is True:
            facts[PLAN_LIMITS_ONLY] = "true"
        if self.raw.get(USING_API) is True:
            facts[USING_API] = "true"
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
# An account-file switch (xai accounts): call the public API (api.x.ai) with the account's
# token instead of the Grok CLI's chat backend.
USING_API = "using_api"


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
        raise RecordError(f"expected a JSON object, got {json_kind(raw)}")
    kind = raw.get("type")
    if kind is None:
        raise RecordError("missing field 'type'")
    if not isinstance(kind, str):
        raise RecordError(f"type: expected a string, got {json_kind(kind)}")
    if catalog().get(kind) is None:
        raise RecordError(
            f"type {kind!r} is not supported (cliproxy reads {', '.join(supported_types())})"
        )
    common = _common_fields(raw)
    tokens = catalog().entry(kind).file.read(raw)
    email = opt_str(raw, "email")
    return AuthRecord(
        id=path.name,
        path=path,
        type=kind,
        email=email,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
        account_id=tokens.account_id,
        project_id=tokens.project_id,
        raw=raw,
        **common,
    )


def _common_fields(raw: dict[str, Any]) -> dict[str, Any]:
    disabled = raw.get("disabled", False)
    if disabled is None:
        disabled = False
    if not isinstance(disabled, bool):
        raise RecordError(f"disabled: expected true or false, got {json_kind(disabled)}")
    excluded = raw.get("excluded_models") or []
    if not isinstance(excluded, list) or not all(isinstance(m, str) for m in excluded):
        raise RecordError("excluded_models: expected a list of strings")
    aliases = raw.get("model_aliases")
    if aliases is not None and not isinstance(aliases, dict | list):
        raise RecordError(f"model_aliases: expected an object or a list, got {json_kind(aliases)}")
    return {
        "disabled": disabled,
        "prefix": opt_str(raw, "prefix"),
        "proxy_url": opt_str(raw, "proxy_url"),
        "priority": _opt_int(raw, "priority"),
        "weight": _opt_int(raw, "weight"),
        "excluded_models": tuple(excluded),
    }


def _opt_int(source: Mapping[str, Any], key: str) -> int | None:
    value = source.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise RecordError(f"{key}: expected a whole number, got {json_kind(value)}")
    if not -(2**63) <= value < 2**63:  # 1e300 is whole, but JSON writers refuse it back
        raise RecordError(f"{key}: {value} is out of range")
    return int(value)
