"""Auth-file formats, one per layout CLIProxyAPI writes: which fields hold the tokens, how the
file is named, who the account is, and what a login or a refresh writes.

The generic code (records.py reading, identity.py writing) asks the account's kind for its
format through the catalog instead of testing the type name. ``AccountFile`` is the common
layout (tokens at the top level, "<type>-<email>.json"); a kind whose files differ subclasses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .flow_spec import OAuthFlow
from .record_fields import (
    RecordError,
    format_time,
    json_kind,
    jwt_claims,
    opt_str,
    opt_time,
    str_or_empty,
)

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9@._+-]")
OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"


@dataclass(frozen=True, slots=True)
class Identity:
    email: str
    account_id: str = ""
    plan: str = ""
    organization: str = ""


@dataclass(frozen=True, slots=True)
class TokenFields:
    """What a file holds beyond the fields every auth file shares."""

    access_token: str
    refresh_token: str
    expires_at: datetime | None
    account_id: str = ""
    project_id: str = ""


def safe_name_part(text: str) -> str:
    """A piece of a file name: no separators or other surprises from a remote value."""
    return _UNSAFE_NAME.sub("_", text).strip(".") or "unknown"


def expiry(tokens: Mapping[str, Any], now: datetime) -> str:
    expires_in = tokens.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return format_time(now + timedelta(seconds=float(expires_in)))
    return ""


class AccountFile:
    """The common layout: tokens and "expired" at the top level, named <type>-<email>.json."""

    # Where the expiry sits: False at the top level ("expired"), True inside "token".
    expiry_in_token = False
    # A login that cannot say which account it is fails (False: the vendor names none).
    needs_email = True

    def new_device_id(self) -> str:
        """The device id a device-code login presents ("" for kinds that send none)."""
        return ""

    def file_name(self, kind: str, email: str, project_id: str = "") -> str:
        return f"{kind}-{safe_name_part(email)}.json"

    def read(self, raw: Mapping[str, Any]) -> TokenFields:
        """The token fields; raises RecordError naming a malformed one."""
        return TokenFields(
            access_token=opt_str(raw, "access_token"),
            refresh_token=opt_str(raw, "refresh_token"),
            expires_at=opt_time(raw, "expired"),
            **self.read_ids(raw),
        )

    def read_ids(self, raw: Mapping[str, Any]) -> dict[str, str]:
        """The kind's ``account_id`` and ``project_id``, where its files keep them."""
        return {}

    def identity(self, tokens: Mapping[str, Any]) -> Identity:
        """The account as the token reply describes it ("" when it does not say)."""
        return Identity(email="")

    def login(
        self,
        raw: dict[str, Any],
        flow: OAuthFlow,
        tokens: Mapping[str, Any],
        identity: Identity,
        *,
        project_id: str,
        project_auto: bool,
        moment: datetime,
    ) -> None:
        """Write a login's own fields into ``raw`` (which keeps everything else)."""
        raw.update(
            {
                "type": flow.provider,
                "access_token": str(tokens.get("access_token") or ""),
                "refresh_token": str(tokens.get("refresh_token") or ""),
                "email": identity.email,
                "expired": expiry(tokens, moment),
                "last_refresh": format_time(moment),
            }
        )
        if id_token := tokens.get("id_token"):
            raw["id_token"] = id_token
        self.login_extras(raw, tokens, identity, project_id=project_id, moment=moment)

    def login_extras(
        self,
        raw: dict[str, Any],
        tokens: Mapping[str, Any],
        identity: Identity,
        *,
        project_id: str,
        moment: datetime,
    ) -> None:
        """The kind's own fields a login writes besides the common ones."""

    def refreshed(self, raw: dict[str, Any], tokens: Mapping[str, Any], moment: datetime) -> None:
        """Write a refresh's fields into ``raw``: the new access token and expiry, and the
        rotated refresh token when the endpoint sent one."""
        raw["access_token"] = str(tokens["access_token"])
        raw["expired"] = expiry(tokens, moment)
        raw["last_refresh"] = format_time(moment)
        rotated = tokens.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            raw["refresh_token"] = rotated

    def listing_facts(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Extra fields the management API lists for such an account."""
        return {}


def codex_identity(id_token: str) -> tuple[str, str, str]:
    """(email, chatgpt_account_id, chatgpt_plan_type) from a Codex id_token."""
    claims = jwt_claims(id_token)
    auth = claims.get(OPENAI_AUTH_CLAIM)
    auth = auth if isinstance(auth, dict) else {}
    return (
        str_or_empty(claims.get("email")),
        str_or_empty(auth.get("chatgpt_account_id")),
        str_or_empty(auth.get("chatgpt_plan_type")),
    )


class CodexFile(AccountFile):
    """ChatGPT accounts: the id_token (a JWT) names the account and its plan."""

    def read_ids(self, raw: Mapping[str, Any]) -> dict[str, str]:
        account_id = opt_str(raw, "account_id")
        id_token = opt_str(raw, "id_token")
        if not account_id and id_token:
            account_id = codex_identity(id_token)[1]
        return {"account_id": account_id}

    def identity(self, tokens: Mapping[str, Any]) -> Identity:
        email, account_id, plan = codex_identity(str(tokens.get("id_token") or ""))
        return Identity(email=email, account_id=account_id, plan=plan)

    def login_extras(
        self, raw: dict[str, Any], tokens: Mapping[str, Any], identity: Identity, **_: Any
    ) -> None:
        raw["account_id"] = identity.account_id

    def refreshed(self, raw: dict[str, Any], tokens: Mapping[str, Any], moment: datetime) -> None:
        super().refreshed(raw, tokens, moment)
        if isinstance(tokens.get("id_token"), str):
            raw["id_token"] = tokens["id_token"]
            email, account_id, _ = codex_identity(tokens["id_token"])
            if account_id:
                raw["account_id"] = account_id
            if email:
                raw["email"] = email

    def listing_facts(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {"id_token": _codex_token_facts(raw)}


def _codex_token_facts(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    token = raw.get("id_token")
    if not isinstance(token, str) or not token:
        return None
    _, account_id, plan = codex_identity(token)
    auth = jwt_claims(token).get(OPENAI_AUTH_CLAIM)
    auth = auth if isinstance(auth, dict) else {}
    return {
        "chatgpt_account_id": account_id or None,
        "plan_type": plan or None,
        "chatgpt_subscription_active_start": auth.get("chatgpt_subscription_active_start"),
        "chatgpt_subscription_active_until": auth.get("chatgpt_subscription_active_until"),
    }


class ClaudeFile(AccountFile):
    """Claude accounts: the token reply carries the account and its organization."""

    def identity(self, tokens: Mapping[str, Any]) -> Identity:
        account = tokens.get("account")
        account = account if isinstance(account, dict) else {}
        org = tokens.get("organization")
        org = org if isinstance(org, dict) else {}
        return Identity(
            email=str(account.get("email_address") or ""),
            account_id=str(account.get("uuid") or ""),
            organization=str(org.get("name") or ""),
        )

    def login_extras(
        self, raw: dict[str, Any], tokens: Mapping[str, Any], identity: Identity, **_: Any
    ) -> None:
        org = tokens.get("organization")
        org = org if isinstance(org, dict) else {}
        for key, value in (
            ("account_uuid", identity.account_id),
            ("organization_uuid", str(org.get("uuid") or "")),
            ("organization_name", identity.organization),
        ):
            if value:
                raw[key] = value


class GoogleTokenFile(AccountFile):
    """Gemini CLI accounts: google-auth's token object under "token", a Cloud project beside
    it, named <email>-<project>.json (the email comes from userinfo, not the token reply)."""

    expiry_in_token = True

    def file_name(self, kind: str, email: str, project_id: str = "") -> str:
        return f"{safe_name_part(email)}-{safe_name_part(project_id)}.json"

    def read(self, raw: Mapping[str, Any]) -> TokenFields:
        token = raw.get("token", {})
        if token is None:
            token = {}
        if not isinstance(token, dict):
            raise RecordError(f"token: expected an object, got {json_kind(token)}")
        return TokenFields(
            access_token=opt_str(token, "access_token", "token."),
            refresh_token=opt_str(token, "refresh_token", "token."),
            expires_at=opt_time(token, "expiry", "token."),
            project_id=opt_str(raw, "project_id"),
        )

    def login(
        self,
        raw: dict[str, Any],
        flow: OAuthFlow,
        tokens: Mapping[str, Any],
        identity: Identity,
        *,
        project_id: str,
        project_auto: bool,
        moment: datetime,
    ) -> None:
        token = token_block(raw)
        refresh = str(tokens.get("refresh_token") or "")
        token.update(
            {
                "access_token": str(tokens.get("access_token") or ""),
                "token_type": str(tokens.get("token_type") or "Bearer"),
                "refresh_token": refresh or token.get("refresh_token", ""),
                "expiry": expiry(tokens, moment),
                "client_id": flow.client_id,
                "client_secret": flow.client_secret,
                "scopes": list(flow.scopes),
                "token_uri": flow.token_url,
            }
        )
        raw.update(
            {
                "type": flow.provider,
                "token": token,
                "project_id": project_id,
                "email": identity.email,
                "auto": project_auto,
                "checked": False,
            }
        )

    def refreshed(self, raw: dict[str, Any], tokens: Mapping[str, Any], moment: datetime) -> None:
        token = token_block(raw)
        token["access_token"] = str(tokens["access_token"])
        token["expiry"] = expiry(tokens, moment)
        rotated = tokens.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            token["refresh_token"] = rotated
        raw["token"] = token


def token_block(raw: dict[str, Any]) -> dict[str, Any]:
    token = raw.get("token")
    return token if isinstance(token, dict) else {}


class AntigravityFile(AccountFile):
    """Antigravity accounts: the common layout plus the Code Assist project and the token's
    lifetime as the reference writes it (``expires_in`` seconds, ``timestamp`` in ms)."""

    def read_ids(self, raw: Mapping[str, Any]) -> dict[str, str]:
        return {"project_id": opt_str(raw, "project_id")}

    def login_extras(
        self,
        raw: dict[str, Any],
        tokens: Mapping[str, Any],
        identity: Identity,
        *,
        project_id: str,
        moment: datetime,
    ) -> None:
        raw["project_id"] = project_id
        _lifetime(raw, tokens, moment)

    def refreshed(self, raw: dict[str, Any], tokens: Mapping[str, Any], moment: datetime) -> None:
        super().refreshed(raw, tokens, moment)
        _lifetime(raw, tokens, moment)


def _lifetime(raw: dict[str, Any], tokens: Mapping[str, Any], moment: datetime) -> None:
    expires_in = tokens.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        raw["expires_in"] = int(expires_in)
    raw["timestamp"] = int(moment.timestamp() * 1000)
