"""Per-provider knowledge of token replies and auth files: who the account is, how the file is
named, and which fields a login or a refresh writes (in CLIProxyAPI's layout)."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .flows import OAuthFlow
from .records import AuthRecord, codex_identity, format_time

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9@._+-]")


@dataclass(frozen=True, slots=True)
class Identity:
    email: str
    account_id: str = ""
    plan: str = ""
    organization: str = ""


# Written into an account's file when its refresh token is refused for good, so `cliproxy
# accounts` (another process) and a restarted proxy both see it; a new login removes it.
# CLIProxyAPI keeps unknown fields of auth files, so the file stays usable there.
NEEDS_LOGIN_FIELD = "cliproxy_needs_login"


def safe_name_part(text: str) -> str:
    """A piece of a file name: no separators or other surprises from a remote value."""
    return _UNSAFE_NAME.sub("_", text).strip(".") or "unknown"


def auth_file_name(provider: str, email: str, project_id: str = "") -> str:
    """CLIProxyAPI's naming: codex-<email>.json, claude-<email>.json, <email>-<project>.json."""
    if provider == "gemini":
        return f"{safe_name_part(email)}-{safe_name_part(project_id)}.json"
    return f"{provider}-{safe_name_part(email)}.json"


def _expiry(tokens: Mapping[str, Any], now: datetime) -> str:
    expires_in = tokens.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return format_time(now + timedelta(seconds=float(expires_in)))
    return ""


def identity_from_tokens(provider: str, tokens: Mapping[str, Any]) -> Identity:
    """The account as the token reply describes it (gemini: email comes from userinfo)."""
    if provider == "codex":
        email, account_id, plan = codex_identity(str(tokens.get("id_token") or ""))
        return Identity(email=email, account_id=account_id, plan=plan)
    if provider == "claude":
        account = tokens.get("account")
        account = account if isinstance(account, dict) else {}
        org = tokens.get("organization")
        org = org if isinstance(org, dict) else {}
        return Identity(
            email=str(account.get("email_address") or ""),
            account_id=str(account.get("uuid") or ""),
            organization=str(org.get("name") or ""),
        )
    return Identity(email="")


def login_file(
    flow: OAuthFlow,
    tokens: Mapping[str, Any],
    identity: Identity,
    *,
    project_id: str = "",
    project_auto: bool = False,
    existing: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The auth file written after a login. Fields of an existing file for the same account
    (prefix, priority, disabled, unknown ones) are kept; the login's own fields are replaced."""
    moment = now or datetime.now(UTC)
    raw: dict[str, Any] = copy.deepcopy(dict(existing or {}))
    raw.pop(NEEDS_LOGIN_FIELD, None)  # a new login is what it asked for
    access = str(tokens.get("access_token") or "")
    refresh = str(tokens.get("refresh_token") or "")
    if flow.provider == "gemini":
        token = _token_block(raw)
        token.update(
            {
                "access_token": access,
                "token_type": str(tokens.get("token_type") or "Bearer"),
                "refresh_token": refresh or token.get("refresh_token", ""),
                "expiry": _expiry(tokens, moment),
                "client_id": flow.client_id,
                "client_secret": flow.client_secret,
                "scopes": list(flow.scopes),
                "token_uri": flow.token_url,
            }
        )
        raw.update(
            {
                "type": "gemini",
                "token": token,
                "project_id": project_id,
                "email": identity.email,
                "auto": project_auto,
                "checked": False,
            }
        )
        return raw
    raw.update(
        {
            "type": flow.provider,
            "access_token": access,
            "refresh_token": refresh,
            "email": identity.email,
            "expired": _expiry(tokens, moment),
            "last_refresh": format_time(moment),
        }
    )
    if id_token := tokens.get("id_token"):
        raw["id_token"] = id_token
    if flow.provider == "codex":
        raw["account_id"] = identity.account_id
    elif flow.provider == "claude":
        org = tokens.get("organization")
        org = org if isinstance(org, dict) else {}
        for key, value in (
            ("account_uuid", identity.account_id),
            ("organization_uuid", str(org.get("uuid") or "")),
            ("organization_name", identity.organization),
        ):
            if value:
                raw[key] = value
    return raw


def refreshed_file(
    record: AuthRecord, tokens: Mapping[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """The record's file after a refresh: new access token and expiry, the rotated refresh
    token when the endpoint sent one, and nothing else changed."""
    moment = now or datetime.now(UTC)
    raw: dict[str, Any] = copy.deepcopy(dict(record.raw))
    access = str(tokens["access_token"])
    rotated = tokens.get("refresh_token")
    if record.type == "gemini":
        token = _token_block(raw)
        token["access_token"] = access
        token["expiry"] = _expiry(tokens, moment)
        if isinstance(rotated, str) and rotated:
            token["refresh_token"] = rotated
        raw["token"] = token
        return raw
    raw["access_token"] = access
    raw["expired"] = _expiry(tokens, moment)
    raw["last_refresh"] = format_time(moment)
    if isinstance(rotated, str) and rotated:
        raw["refresh_token"] = rotated
    if record.type == "codex" and isinstance(tokens.get("id_token"), str):
        raw["id_token"] = tokens["id_token"]
        email, account_id, _ = codex_identity(tokens["id_token"])
        if account_id:
            raw["account_id"] = account_id
        if email:
            raw["email"] = email
    return raw


def _token_block(raw: dict[str, Any]) -> dict[str, Any]:
    token = raw.get("token")
    return token if isinstance(token, dict) else {}
