"""Auth-file formats of the device-code kinds, as CLIProxyAPI writes them.

kimi: ``kimi-<unix ms>.json`` with access_token, refresh_token, token_type, scope, device_id,
expired. The token reply names no account, so there is no email; the device id (sent as
X-Msh-Device-Id on every call) is kept as the record's account id.

xai: ``xai-<email or sub>.json`` with access_token, refresh_token, id_token, token_type,
expires_in, expired, email, sub (both from the id_token's claims).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from .account_files import AccountFile, Identity, safe_name_part
from .record_fields import format_time, jwt_claims, opt_str, str_or_empty


def kimi_cli_device_id() -> str:
    """kimi-cli's stored device id (~/.kimi/device_id, or under $KIMI_SHARE_DIR), so the
    vendor sees the same device as the CLI on this machine; "" when there is none."""
    share = os.environ.get("KIMI_SHARE_DIR", "").strip()
    path = Path(share).expanduser() if share else Path.home() / ".kimi"
    try:
        text = (path / "device_id").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return text if 0 < len(text) <= 128 and text.isprintable() else ""


class KimiFile(AccountFile):
    needs_email = False

    def file_name(self, kind: str, email: str, project_id: str = "") -> str:
        return f"{kind}-{time.time_ns() // 1_000_000}.json"

    def new_device_id(self) -> str:
        return kimi_cli_device_id() or uuid.uuid4().hex

    def read_ids(self, raw: Mapping[str, Any]) -> dict[str, str]:
        return {"account_id": opt_str(raw, "device_id")}

    def login_extras(
        self, raw: dict[str, Any], tokens: Mapping[str, Any], identity: Identity, **_: Any
    ) -> None:
        if not raw.get("email"):
            raw.pop("email", None)  # Kimi names no account; the reference writes none
        raw["token_type"] = str_or_empty(tokens.get("token_type")) or "Bearer"
        raw["scope"] = str_or_empty(tokens.get("scope"))
        raw["device_id"] = identity.account_id

    def refreshed(self, raw: dict[str, Any], tokens: Mapping[str, Any], moment: datetime) -> None:
        super().refreshed(raw, tokens, moment)
        for key in ("token_type", "scope"):
            if isinstance(tokens.get(key), str) and tokens[key]:
                raw[key] = tokens[key]


class XaiFile(AccountFile):
    needs_email = False  # an account without an email claim is named by its sub

    def file_name(self, kind: str, email: str, project_id: str = "") -> str:
        return f"{kind}-{safe_name_part(email)}.json"

    def identity(self, tokens: Mapping[str, Any]) -> Identity:
        claims = jwt_claims(str_or_empty(tokens.get("id_token")))
        email = str_or_empty(claims.get("email")) or str_or_empty(tokens.get("email"))
        return Identity(email=email, account_id=str_or_empty(claims.get("sub")))

    def read_ids(self, raw: Mapping[str, Any]) -> dict[str, str]:
        return {"account_id": opt_str(raw, "sub")}

    def login_extras(
        self, raw: dict[str, Any], tokens: Mapping[str, Any], identity: Identity, **_: Any
    ) -> None:
        raw["token_type"] = str_or_empty(tokens.get("token_type")) or "Bearer"
        if isinstance(tokens.get("expires_in"), int | float):
            raw["expires_in"] = tokens["expires_in"]
        raw["sub"] = identity.account_id

    def refreshed(self, raw: dict[str, Any], tokens: Mapping[str, Any], moment: datetime) -> None:
        super().refreshed(raw, tokens, moment)
        if isinstance(tokens.get("id_token"), str) and tokens["id_token"]:
            raw["id_token"] = tokens["id_token"]
        if isinstance(tokens.get("expires_in"), int | float):
            raw["expires_in"] = tokens["expires_in"]
        raw["last_refresh"] = format_time(moment)
