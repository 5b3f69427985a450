"""Token replies and auth files: who the account is, how the file is named, and which fields a
login or a refresh writes (in CLIProxyAPI's layout). Each kind's file format (account_files.py),
found through the catalog, knows the particulars; this module keeps what all of them share."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Identity and safe_name_part are re-exported: login code and tests import them from here.
from .account_files import Identity, safe_name_part
from .catalog import catalog
from .flow_spec import OAuthFlow
from .records import AuthRecord

__all__ = [
    "NEEDS_LOGIN_FIELD",
    "Identity",
    "auth_file_name",
    "identity_from_tokens",
    "login_file",
    "refreshed_file",
    "safe_name_part",
]

# Written into an account's file when its refresh token is refused for good, so `cliproxy
# accounts` (another process) and a restarted proxy both see it; a new login removes it.
# CLIProxyAPI keeps unknown fields of auth files, so the file stays usable there.
NEEDS_LOGIN_FIELD = "cliproxy_needs_login"


def auth_file_name(provider: str, email: str, project_id: str = "") -> str:
    """CLIProxyAPI's naming: codex-<email>.json, claude-<email>.json, <email>-<project>.json."""
    return catalog().entry(provider).file.file_name(provider, email, project_id)


def identity_from_tokens(provider: str, tokens: Mapping[str, Any]) -> Identity:
    """The account as the token reply describes it (gemini: email comes from userinfo)."""
    return catalog().entry(provider).file.identity(tokens)


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
    catalog().entry(flow.provider).file.login(
        raw,
        flow,
        tokens,
        identity,
        project_id=project_id,
        project_auto=project_auto,
        moment=moment,
    )
    return raw


def refreshed_file(
    record: AuthRecord, tokens: Mapping[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """The record's file after a refresh: new access token and expiry, the rotated refresh
    token when the endpoint sent one, and nothing else changed."""
    moment = now or datetime.now(UTC)
    raw: dict[str, Any] = copy.deepcopy(dict(record.raw))
    catalog().entry(record.type).file.refreshed(raw, tokens, moment)
    return raw
