"""Per-provider OAuth data: endpoints, client ids, scopes, callback port and path.

The machinery in oauth.py is shared; a provider is only this data (plus how its identity is
read, in identity.py). Every endpoint can be overridden through an environment variable so
tests, and users behind unusual networks, can point the flows elsewhere:

    CLIPROXY_{CODEX,CLAUDE,GEMINI}_AUTHORIZE_URL   authorize page
    CLIPROXY_{CODEX,CLAUDE,GEMINI}_TOKEN_URL       token endpoint (login and refresh)
    CLIPROXY_GEMINI_USERINFO_URL                   Google userinfo (the account email)
    CLIPROXY_CODE_ASSIST_BASE_URL                  Code Assist API (project discovery)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

CODE_ASSIST_BASE_URL = "https://cloudcode-pa.googleapis.com"


@dataclass(frozen=True, slots=True)
class OAuthFlow:
    provider: str  # the auth file `type`
    display_name: str
    authorize_url: str
    token_url: str
    client_id: str
    scopes: tuple[str, ...]
    callback_port: int
    callback_path: str
    token_body: Literal["form", "json"]
    client_secret: str = ""  # Google's installed-app secret is public by design
    extra_authorize_params: tuple[tuple[str, str], ...] = ()
    # The state travels in the token request too (Anthropic wants it).
    send_state_in_exchange: bool = False
    # Refresh grants exactly as the vendor's CLI sends them: body encoding, fields in its order
    # (a field with no value is left out) and extra fixed fields.
    refresh_body: Literal["form", "json"] = "form"
    refresh_fields: tuple[str, ...] = ("grant_type", "client_id", "refresh_token", "client_secret")
    refresh_extra: tuple[tuple[str, str], ...] = ()
    refresh_content_type: str = ""  # "" = the encoding's plain media type
    userinfo_url: str = ""
    code_assist_base_url: str = ""

    def redirect_uri(self, port: int | None = None) -> str:
        return f"http://localhost:{port or self.callback_port}{self.callback_path}"


_GOOGLE_SCOPE = "https://www.googleapis.com/auth/"

_DEFAULTS: dict[str, OAuthFlow] = {
    "codex": OAuthFlow(
        provider="codex",
        display_name="Codex (ChatGPT)",
        authorize_url="https://auth.openai.com/oauth/authorize",
        token_url="https://auth.openai.com/oauth/token",
        client_id="app_EMoamEEZ73f0CkXaXp7hrann",
        scopes=("openid", "email", "profile", "offline_access"),
        callback_port=1455,
        callback_path="/auth/callback",
        token_body="form",
        extra_authorize_params=(
            ("id_token_add_organizations", "true"),
            ("codex_cli_simplified_flow", "true"),
        ),
        # codex 0.169: JSON, no scope, and the reason it refreshes.
        refresh_body="json",
        refresh_fields=("client_id", "grant_type", "refresh_reason", "refresh_token"),
        refresh_extra=(("refresh_reason", "proactive_expiry"),),
    ),
    "claude": OAuthFlow(
        provider="claude",
        display_name="Claude",
        authorize_url="https://claude.ai/oauth/authorize",
        token_url="https://platform.claude.com/v1/oauth/token",
        client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e",
        scopes=(
            "user:profile",
            "user:inference",
            "user:sessions:claude_code",
            "user:mcp_servers",
            "user:file_upload",
        ),
        callback_port=54545,
        callback_path="/callback",
        token_body="json",
        extra_authorize_params=(("code", "true"),),
        send_state_in_exchange=True,
        # Claude Code 2.1.331: JSON with the scopes it holds.
        refresh_body="json",
        refresh_fields=("grant_type", "refresh_token", "client_id", "scope"),
        refresh_extra=(
            (
                "scope",
                "user:profile user:inference user:sessions:claude_code user:mcp_servers "
                "user:file_upload user:plugins",
            ),
        ),
    ),
    "gemini": OAuthFlow(
        provider="gemini",
        display_name="Gemini (Google account)",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        client_id="681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
        client_secret="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",
        scopes=(
            _GOOGLE_SCOPE + "cloud-platform",
            _GOOGLE_SCOPE + "userinfo.email",
            _GOOGLE_SCOPE + "userinfo.profile",
        ),
        callback_port=8085,
        callback_path="/oauth2callback",
        token_body="form",
        extra_authorize_params=(("access_type", "offline"), ("prompt", "consent")),
        # google-auth-library as Gemini CLI 0.61 uses it.
        refresh_fields=("refresh_token", "client_id", "client_secret", "grant_type"),
        refresh_content_type="application/x-www-form-urlencoded;charset=UTF-8",
        userinfo_url="https://www.googleapis.com/oauth2/v1/userinfo?alt=json",
        code_assist_base_url=CODE_ASSIST_BASE_URL,
    ),
}

PROVIDERS = tuple(_DEFAULTS)


def oauth_flow(provider: str, env: Mapping[str, str] | None = None) -> OAuthFlow:
    """The flow for an auth file type, with any environment overrides applied.
    Raises KeyError for a provider without a login flow."""
    flow = _DEFAULTS[provider]
    source = os.environ if env is None else env
    prefix = f"CLIPROXY_{provider.upper()}_"
    overrides: dict[str, Any] = {}
    for key, attr in (("AUTHORIZE_URL", "authorize_url"), ("TOKEN_URL", "token_url")):
        if value := source.get(prefix + key, "").strip():
            overrides[attr] = value
    if provider == "gemini":
        if value := source.get("CLIPROXY_GEMINI_USERINFO_URL", "").strip():
            overrides["userinfo_url"] = value
        if value := source.get("CLIPROXY_CODE_ASSIST_BASE_URL", "").strip():
            overrides["code_assist_base_url"] = value.rstrip("/")
    return replace(flow, **overrides) if overrides else flow


def default_flows(env: Mapping[str, str] | None = None) -> dict[str, OAuthFlow]:
    return {name: oauth_flow(name, env) for name in PROVIDERS}
