"""Each kind's OAuth flow (from its catalog entry), with the environment's overrides.

Every endpoint can be overridden through an environment variable so tests, and users behind
unusual networks, can point the flows elsewhere (<KIND> is the auth-file type, upper-cased):

    CLIPROXY_<KIND>_AUTHORIZE_URL    authorize page
    CLIPROXY_<KIND>_TOKEN_URL        token endpoint (login and refresh)
    CLIPROXY_<KIND>_USERINFO_URL     userinfo (the account email), for flows that have one
    CLIPROXY_CODE_ASSIST_BASE_URL    Code Assist API (project discovery), for flows that use it
    CLIPROXY_<KIND>_CODE_ASSIST_BASE_URL   the same for one kind only (wins over the above)
    CLIPROXY_<KIND>_DEVICE_URL       device-authorization endpoint (device-code flows)
    CLIPROXY_<KIND>_ISSUER           OIDC issuer whose discovery names the endpoints (xai)
    CLIPROXY_<KIND>_POLL_INTERVAL    seconds between device-code polls, and the slow_down step
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .catalog import catalog

# OAuthFlow is re-exported: callers have always imported it from here.
from .flow_spec import OAuthFlow

__all__ = ["OAuthFlow", "default_flows", "login_providers", "oauth_flow"]


def login_providers() -> tuple[str, ...]:
    """The auth-file types `cliproxy login` can log in to in a browser (kinds that mint their
    own tokens are imported instead)."""
    return tuple(entry.kind for entry in catalog().entries if entry.mint_token is None)


def oauth_flow(provider: str, env: Mapping[str, str] | None = None) -> OAuthFlow:
    """The flow for an auth file type, with any environment overrides applied.
    Raises KeyError for a provider without a login flow."""
    flow = catalog().entry(provider).flow
    source = os.environ if env is None else env
    prefix = f"CLIPROXY_{provider.upper()}_"
    overrides: dict[str, Any] = {}
    for key, attr in (("AUTHORIZE_URL", "authorize_url"), ("TOKEN_URL", "token_url")):
        if value := source.get(prefix + key, "").strip():
            overrides[attr] = value
    # Only flows that use these endpoints take their overrides.
    if flow.userinfo_url and (value := source.get(prefix + "USERINFO_URL", "").strip()):
        overrides["userinfo_url"] = value
    if flow.device:
        overrides.update(_device_overrides(flow, source, prefix))
    code_assist = (
        source.get(prefix + "CODE_ASSIST_BASE_URL", "").strip()
        or source.get("CLIPROXY_CODE_ASSIST_BASE_URL", "").strip()
    )
    if flow.code_assist_base_url and code_assist:
        overrides["code_assist_base_url"] = code_assist.rstrip("/")
    return replace(flow, **overrides) if overrides else flow


def _device_overrides(flow: OAuthFlow, source: Mapping[str, str], prefix: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if value := source.get(prefix + "DEVICE_URL", "").strip():
        overrides["device_authorization_url"] = value
    if flow.issuer and (value := source.get(prefix + "ISSUER", "").strip()):
        overrides["issuer"] = value.rstrip("/")
    if value := source.get(prefix + "POLL_INTERVAL", "").strip():
        try:
            seconds = float(value)
        except ValueError:
            seconds = 0.0  # a test knob: a bad value keeps the vendor's interval
        if seconds > 0:
            overrides["poll_interval"] = overrides["slow_down_step"] = seconds
            overrides["poll_override"] = True
    return overrides


def default_flows(env: Mapping[str, str] | None = None) -> dict[str, OAuthFlow]:
    return {name: oauth_flow(name, env) for name in login_providers()}
