"""After a Google login: the account email (userinfo) and the Google Cloud project that Code
Assist bills (loadCodeAssist, then onboardUser when the account has none yet). Gemini CLI and
Antigravity ask alike; each flow's ProjectSetup (auth/flow_spec.py) says how its IDE words it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson

from .flow_spec import ProjectSetup
from .oauth import OAuthError

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
    setup: ProjectSetup,
    headers: Mapping[str, str] | None = None,
    version: str = "",
    poll_interval: float = 2.0,
    max_polls: int = 30,
    progress: Callable[[str], None] = lambda _: None,
) -> str:
    """The project Code Assist assigns to this account, onboarding it when needed.
    ``headers``: the IDE's identity (user-agent); ``version``: its version, for metadata."""
    base = base_url.rstrip("/")
    extra = dict(headers or {})
    loaded = await _call(
        session,
        "POST",
        f"{base}/v1internal:loadCodeAssist",
        access_token,
        {"metadata": _filled(setup.load_metadata, version)},
        "loadCodeAssist",
        extra,
    )
    existing = next(
        (found for key in setup.project_fields if (found := _project_id(loaded.get(key)))), ""
    )
    if existing and (loaded.get("currentTier") or not setup.needs_current_tier):
        return existing
    tier = _default_tier(loaded, setup.fallback_tier)
    if tier.get("userDefinedCloudaicompanionProject") and not existing:
        raise OAuthError(
            f"this account's {setup.label} tier needs a Google Cloud project of your own; "
            "run the login again with --project YOUR_PROJECT_ID"
        )
    body: dict[str, Any] = {
        setup.tier_field: tier.get("id") or "free-tier",
        "metadata": _filled(setup.onboard_metadata, version),
    }
    if existing:
        body["cloudaicompanionProject"] = existing
    progress(f"Setting up {setup.label} for this account (onboarding)...")
    onboard_headers = dict(extra)
    if setup.user_agent_suffix and "user-agent" in onboard_headers:
        onboard_headers["user-agent"] += " " + setup.user_agent_suffix
    for attempt in range(max_polls):
        # onboardUser is a long-running operation; calling it again reports its progress.
        operation = await _call(
            session,
            "POST",
            f"{base}/v1internal:onboardUser",
            access_token,
            body,
            "onboardUser",
            onboard_headers,
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
    raise OAuthError(f"{setup.label} onboarding did not finish in time; try again later")


def _filled(metadata: Mapping[str, str], version: str) -> dict[str, str]:
    return {key: value.replace("{version}", version) for key, value in metadata.items()}


def _project_id(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return ""


def _default_tier(loaded: dict[str, Any], fallback: str) -> dict[str, Any]:
    tiers = loaded.get("allowedTiers")
    if isinstance(tiers, list):
        for tier in tiers:
            if isinstance(tier, dict) and tier.get("isDefault"):
                return tier
    return {"id": fallback}


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    access_token: str,
    body: dict[str, Any] | None,
    what: str,
    extra_headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    headers = {
        "Authorization": f"Bearer {access_token}",
        "Accept": "application/json",
        **(extra_headers or {}),
    }
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
