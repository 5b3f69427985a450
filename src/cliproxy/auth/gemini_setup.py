"""After a Google login: the account email (userinfo) and the Google Cloud project that Code
Assist bills (loadCodeAssist, then onboardUser when the account has none yet)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from .oauth import OAuthError

_METADATA = {
    "ideType": "IDE_UNSPECIFIED",
    "platform": "PLATFORM_UNSPECIFIED",
    "pluginType": "GEMINI",
}
_TIMEOUT = aiohttp.ClientTimeout(total=60)


async def fetch_email(session: aiohttp.ClientSession, userinfo_url: str, access_token: str) -> str:
    data = await _call(session, "GET", userinfo_url, access_token, None, "userinfo")
    email = data.get("email")
    if not isinstance(email, str) or not email:
        raise OAuthError("Google's userinfo answer has no email address")
    return email


async def discover_project(
    session: aiohttp.ClientSession,
    base_url: str,
    access_token: str,
    *,
    poll_interval: float = 2.0,
    max_polls: int = 30,
    progress: Callable[[str], None] = lambda _: None,
) -> str:
    """The project Code Assist assigns to this account, onboarding it when needed."""
    base = base_url.rstrip("/")
    loaded = await _call(
        session,
        "POST",
        f"{base}/v1internal:loadCodeAssist",
        access_token,
        {"metadata": _METADATA},
        "loadCodeAssist",
    )
    existing = _project_id(loaded.get("cloudaicompanionProject"))
    if existing and loaded.get("currentTier"):
        return existing
    tier = _default_tier(loaded)
    if tier.get("userDefinedCloudaicompanionProject") and not existing:
        raise OAuthError(
            "this account's Code Assist tier needs a Google Cloud project of your own; "
            "run the login again with --project YOUR_PROJECT_ID"
        )
    body: dict[str, Any] = {"tierId": tier.get("id") or "free-tier", "metadata": _METADATA}
    if existing:
        body["cloudaicompanionProject"] = existing
    progress("Setting up Gemini Code Assist for this account (onboarding)...")
    for attempt in range(max_polls):
        # onboardUser is a long-running operation; calling it again reports its progress.
        operation = await _call(
            session, "POST", f"{base}/v1internal:onboardUser", access_token, body, "onboardUser"
        )
        if operation.get("done"):
            response = operation.get("response")
            response = response if isinstance(response, dict) else {}
            project = _project_id(response.get("cloudaicompanionProject")) or existing
            if not project:
                raise OAuthError(
                    "onboarding finished without a project; run the login again with --project"
                )
            return project
        if attempt + 1 < max_polls:
            await asyncio.sleep(poll_interval)
    raise OAuthError("Code Assist onboarding did not finish in time; try again later")


def _project_id(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return ""


def _default_tier(loaded: dict[str, Any]) -> dict[str, Any]:
    tiers = loaded.get("allowedTiers")
    if isinstance(tiers, list):
        for tier in tiers:
            if isinstance(tier, dict) and tier.get("isDefault"):
                return tier
    return {"id": "legacy-tier"}


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    access_token: str,
    body: dict[str, Any] | None,
    what: str,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = orjson.dumps(body)
    try:
        async with session.request(
            method, url, headers=headers, data=data, timeout=_TIMEOUT
        ) as response:
            payload = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OAuthError(f"{what} failed: cannot reach {url}: {exc.__class__.__name__}") from None
    if status != 200:
        snippet = payload[:300].decode("utf-8", "replace")
        raise OAuthError(f"{what} answered {status}: {snippet}")
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise OAuthError(f"{what} answered with something that is not JSON") from None
    if not isinstance(parsed, dict):
        raise OAuthError(f"{what} answered with unexpected JSON")
    return parsed
