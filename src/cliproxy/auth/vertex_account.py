"""Vertex AI service accounts: importing the key file Google hands out, the auth file it becomes,
and the access tokens minted from it.

The auth file is the reference's layout, so files move between it and cliproxy unchanged:
``{"type": "vertex", "service_account": <the key JSON verbatim>, "project_id", "email"
(the client_email), "location" (default us-central1), "prefix"}``, named
``vertex-<project_id>.json``. cliproxy adds the minted ``access_token`` and its ``expired`` time
beside them, as it does for every kind, so a restart reuses a token that is still good.

A service account's private key is what renews its tokens, so it stands in the record's
``refresh_token`` slot: the store counts the account as usable, the refresher renews it ahead of
expiry, and the request-log redaction masks it, with no case of their own for Vertex.

Minting is google-auth's ``service_account.Credentials`` (a JWT signed with the key, sent as a
``jwt-bearer`` grant to the key's own ``token_uri``). google-auth is synchronous, so the grant
runs in a worker thread and never holds up the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from cliproxy.model import ProxyError, loads_limited

from .account_files import AccountFile, Identity, TokenFields, safe_name_part
from .flow_spec import OAuthFlow
from .oauth import TokenError
from .record_fields import RecordError, json_kind, opt_str

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
DEFAULT_LOCATION = "us-central1"
# The key file's fields a token grant needs, in the order a message names the first missing one.
_REQUIRED = ("project_id", "client_email", "private_key")


class ServiceAccountError(ValueError):
    """A file that is not a usable service-account key; the message names the field."""


def read_service_account(data: bytes | Mapping[str, Any], where: str = "file") -> dict[str, Any]:
    """The key file's JSON, checked: an object of ``type: service_account`` with a project,
    a client email and a PEM private key. Raises ServiceAccountError naming what is wrong."""
    if isinstance(data, bytes | bytearray):
        try:
            parsed = loads_limited(bytes(data), where)
        except orjson.JSONDecodeError as exc:
            raise ServiceAccountError(f"{where}: not valid JSON ({exc})") from None
        except ProxyError as exc:  # nested deeper than any key file
            raise ServiceAccountError(exc.message) from None
    else:
        parsed = dict(data)
    if not isinstance(parsed, dict):
        raise ServiceAccountError(f"{where}: expected a JSON object, got {json_kind(parsed)}")
    kind = parsed.get("type")
    if kind is not None and kind != "service_account":
        raise ServiceAccountError(
            f"{where}: type is {kind!r}, not a service-account key (type service_account)"
        )
    for name in _REQUIRED:
        value = parsed.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ServiceAccountError(f"{where}: {name} is missing or empty")
    if "PRIVATE KEY" not in parsed["private_key"]:
        raise ServiceAccountError(f"{where}: private_key is not a PEM private key")
    token_uri = parsed.get("token_uri", GOOGLE_TOKEN_URI)
    if not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://")):
        raise ServiceAccountError(f"{where}: token_uri must be an http(s) URL")
    return parsed


def vertex_file(
    account: Mapping[str, Any], *, location: str = "", prefix: str = ""
) -> tuple[str, dict[str, Any]]:
    """(file name, auth-file JSON) for a checked service-account key."""
    project = str(account["project_id"]).strip()
    raw = {
        "service_account": dict(account),
        "project_id": project,
        "email": str(account["client_email"]).strip(),
        "location": location.strip() or DEFAULT_LOCATION,
        "type": "vertex",
        "prefix": prefix.strip().strip("/"),
    }
    return f"vertex-{safe_name_part(project)}.json", raw


def _account_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    account = raw.get("service_account")
    if not isinstance(account, dict):
        raise RecordError("service_account: expected the service-account key object")
    try:
        return read_service_account(account, "service_account")
    except ServiceAccountError as exc:
        raise RecordError(str(exc)) from None


class VertexFile(AccountFile):
    """``type: vertex``: a service-account key, no OAuth tokens of its own."""

    def file_name(self, kind: str, email: str, project_id: str = "") -> str:
        return f"{kind}-{safe_name_part(project_id or email)}.json"

    def read(self, raw: Mapping[str, Any]) -> TokenFields:
        account = _account_of(raw)
        minted = super().read(raw)
        location = raw.get("location", "")
        if not isinstance(location, str):
            raise RecordError(f"location: expected a string, got {json_kind(location)}")
        return TokenFields(
            access_token=minted.access_token,
            refresh_token=account["private_key"],
            expires_at=minted.expires_at,
            project_id=opt_str(raw, "project_id") or account["project_id"],
        )

    def identity(self, tokens: Mapping[str, Any]) -> Identity:
        return Identity(email="")

    def listing_facts(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        location = raw.get("location")
        return {"location": location if isinstance(location, str) and location else None}


def _mint_blocking(account: Mapping[str, Any], proxy_url: str) -> dict[str, Any]:
    # Imported here: google-auth (and requests) are only loaded once a Vertex account is used.
    import google.auth.exceptions as google_errors
    import requests
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    try:
        credentials = service_account.Credentials.from_service_account_info(
            dict(account), scopes=[CLOUD_PLATFORM_SCOPE]
        )
    except (ValueError, KeyError) as exc:
        raise TokenError(f"the service-account key is unusable: {exc}", permanent=True) from None
    session = requests.Session()
    session.trust_env = False  # cliproxy's proxy settings decide, not the environment's
    if proxy_url and proxy_url not in ("direct", "none"):
        session.proxies = {"http": proxy_url, "https": proxy_url}
    try:
        credentials.refresh(Request(session))
    except google_errors.RefreshError as exc:
        # invalid_grant / unauthorized_client: a deleted key or account; 5xx are retryable.
        raise TokenError(
            f"the token endpoint refused the service account: {exc.args[0] if exc.args else exc}",
            permanent=not getattr(exc, "retryable", False),
        ) from None
    except google_errors.TransportError as exc:
        raise TokenError(
            f"the token endpoint could not be reached: {exc}", permanent=False
        ) from None
    finally:
        session.close()
    expiry = credentials.expiry  # naive UTC, as google-auth keeps it
    seconds = 3600.0
    if expiry is not None:
        seconds = (expiry.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
    return {"access_token": credentials.token, "expires_in": max(int(seconds), 0)}


async def mint_token(raw: Mapping[str, Any], proxy_url: str = "") -> dict[str, Any]:
    """A fresh access token for the auth file's service account, as a token reply
    (``access_token``, ``expires_in``). Raises TokenError like an OAuth refresh."""
    try:
        account = _account_of(raw)
    except RecordError as exc:
        raise TokenError(str(exc), permanent=True) from None
    return await asyncio.to_thread(_mint_blocking, account, proxy_url)


# The catalog wants every kind's OAuth data; a service account has no browser login, only the
# token grant it signs itself (the key's own token_uri wins over this one).
VERTEX_FLOW = OAuthFlow(
    provider="vertex",
    display_name="Vertex AI (service account)",
    authorize_url="",
    token_url=GOOGLE_TOKEN_URI,
    client_id="",
    scopes=(CLOUD_PLATFORM_SCOPE,),
    callback_port=0,
    callback_path="",
    token_body="form",
)
