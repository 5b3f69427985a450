"""The kinds cliproxy ships: codex (ChatGPT), claude, gemini (Gemini CLI / Code Assist) and
antigravity (Google's agent IDE), one entry each with everything that is particular to it. catalog.py reads this list once.

Adding a kind is its provider module(s) in providers/ plus one entry here (or, later, in a
third-party package through an entry-point group).
"""

from __future__ import annotations

from typing import Any

from cliproxy.config.schema import Config
from cliproxy.providers.antigravity import PROD_BASE_URL, AntigravityProvider
from cliproxy.providers.antigravity_wire import MODELS as ANTIGRAVITY_MODELS
from cliproxy.providers.api_keys import (
    ClaudeApiKeyProvider,
    CodexApiKeyProvider,
    GeminiApiKeyProvider,
)
from cliproxy.providers.base import Provider
from cliproxy.providers.claude import ClaudeOAuthProvider
from cliproxy.providers.client_profiles import (
    ANTIGRAVITY,
    CLAUDE,
    CODEX,
    GEMINI_CLI,
    HeaderDefaults,
)
from cliproxy.providers.codex import CodexProvider
from cliproxy.providers.gemini_cli import CODE_ASSIST_BASE_URL, GeminiCLIProvider
from cliproxy.providers.vertex import (
    GLOBAL_HOST,
    VERTEX_MODELS,
    VertexApiKeyProvider,
    VertexProvider,
)

from .account_files import AntigravityFile, ClaudeFile, CodexFile, GoogleTokenFile
from .flow_spec import OAuthFlow, ProjectSetup
from .kind_entry import ProviderEntry
from .vertex_account import VERTEX_FLOW, VertexFile, mint_token

_GOOGLE_SCOPE = "https://www.googleapis.com/auth/"


_GEMINI_METADATA = {
    "ideType": "IDE_UNSPECIFIED",
    "platform": "PLATFORM_UNSPECIFIED",
    "pluginType": "GEMINI",
}
GEMINI_SETUP = ProjectSetup(
    label="Gemini Code Assist",
    load_metadata=_GEMINI_METADATA,
    onboard_metadata=_GEMINI_METADATA,
    tier_field="tierId",
    fallback_tier="legacy-tier",
    project_fields=("cloudaicompanionProject",),
    needs_current_tier=True,
)


def _google_flow(*, scopes: tuple[str, ...], **fields: Any) -> OAuthFlow:
    """A Google installed-app login: Google's endpoints, offline access with a consent
    prompt (so a refresh token comes back), form-encoded token calls, and the scopes every
    Code Assist client asks for plus ``scopes`` (names under googleapis.com/auth/)."""
    names = ("cloud-platform", "userinfo.email", "userinfo.profile", *scopes)
    return OAuthFlow(
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        scopes=tuple(_GOOGLE_SCOPE + name for name in names),
        token_body="form",
        extra_authorize_params=(("access_type", "offline"), ("prompt", "consent")),
        **fields,
    )


def _codex_headers(config: Config) -> HeaderDefaults:
    codex = config.codex_header_defaults
    return HeaderDefaults(
        user_agent=codex.user_agent,
        version=codex.version,
        originator=codex.originator,
        beta_features=codex.beta_features,
    )


def _claude_headers(config: Config) -> HeaderDefaults:
    claude = config.claude_header_defaults
    stainless = {
        "x-stainless-package-version": claude.package_version,
        "x-stainless-runtime-version": claude.runtime_version,
        "x-stainless-os": claude.os,
        "x-stainless-arch": claude.arch,
        "x-stainless-timeout": claude.timeout,
    }
    return HeaderDefaults(
        user_agent=claude.user_agent,
        version=claude.version,
        sdk_headers={name: value for name, value in stainless.items() if value},
    )


def _gemini_headers(config: Config) -> HeaderDefaults:
    gemini = config.gemini_cli_header_defaults
    return HeaderDefaults(
        user_agent=gemini.user_agent, version=gemini.version, runtime=gemini.api_client
    )


def _cooling_scope(provider: Provider, model_level: bool | None) -> None:
    """`codex.model-level-cooling` / `claude.model-level-cooling`: set, it decides whether a
    rate limit rests the account or the model; absent, the provider's own default holds."""
    default = type(provider).rests_whole_credential
    provider.rests_whole_credential = default if model_level is None else not model_level


def _claude_settings(provider: Provider, config: Config) -> None:
    if isinstance(provider, ClaudeOAuthProvider):
        provider.plan_limits_only = config.claude_plan_limits_only
    _cooling_scope(provider, config.claude.model_level_cooling)


def _codex_settings(provider: Provider, config: Config) -> None:
    _cooling_scope(provider, config.codex.model_level_cooling)


CODEX_ENTRY = ProviderEntry(
    kind="codex",
    display_name="Codex",
    owned_by="openai",
    config_channels=(),
    management_channels=("openai",),
    login="codex",
    login_aliases=("openai",),
    login_routes=("codex",),
    callback_routes=("codex",),
    cloud_project=False,
    model_prefixes=("gpt-", "o1", "o3", "o4", "codex-", "chatgpt-"),
    listed_models=("gpt-5.5", "gpt-6", "gpt-6.1", "gpt-6.1-codex"),
    api_keys=lambda config: config.codex_api_key,
    api_key_rank=2,
    api_key_base_url="https://api.openai.com/v1",
    api_key_provider=CodexApiKeyProvider,
    account_provider=CodexProvider,
    vendor=CODEX,
    configure=_codex_settings,
    header_defaults=_codex_headers,
    flow=OAuthFlow(
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
    file=CodexFile(),
    vendor_origin="https://chatgpt.com",
    vendor_paths=("/backend-api/wham/",),
)

CLAUDE_ENTRY = ProviderEntry(
    kind="claude",
    display_name="Claude",
    owned_by="anthropic",
    config_channels=(),
    management_channels=("anthropic",),
    login="anthropic",
    login_aliases=("claude",),
    login_routes=("anthropic", "claude"),
    callback_routes=("anthropic",),
    cloud_project=False,
    model_prefixes=("claude-",),
    # Current names only (claude-sonnet-4-5 retired on 2026-11-30).
    listed_models=("claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5"),
    api_keys=lambda config: config.claude_api_key,
    api_key_rank=0,
    api_key_base_url="https://api.anthropic.com",
    api_key_provider=ClaudeApiKeyProvider,
    account_provider=ClaudeOAuthProvider,
    vendor=CLAUDE,
    header_defaults=_claude_headers,
    flow=OAuthFlow(
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
    file=ClaudeFile(),
    vendor_origin="https://api.anthropic.com",
    vendor_paths=("/api/oauth/usage", "/api/oauth/profile", "/v1/models"),
    configure=_claude_settings,
)

GEMINI_ENTRY = ProviderEntry(
    kind="gemini",
    display_name="Gemini CLI",
    owned_by="google",
    # CLIProxyAPI calls the channel "gemini-cli".
    config_channels=("gemini-cli",),
    management_channels=("gemini-cli",),
    login="gemini-cli",
    login_aliases=("gemini", "google"),
    login_routes=("gemini-cli", "gemini"),
    # /google/callback: the reference's name before it dropped Gemini CLI.
    callback_routes=("gemini-cli", "google"),
    cloud_project=True,
    model_prefixes=("gemini-", "gemma-", "learnlm-"),
    listed_models=(
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-3-pro-preview",
    ),
    api_keys=lambda config: config.gemini_api_key,
    api_key_rank=1,
    api_key_base_url="https://generativelanguage.googleapis.com",
    api_key_provider=GeminiApiKeyProvider,
    account_provider=GeminiCLIProvider,
    vendor=GEMINI_CLI,
    header_defaults=_gemini_headers,
    flow=_google_flow(
        provider="gemini",
        display_name="Gemini (Google account)",
        client_id="681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
        client_secret="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",
        scopes=(),
        callback_port=8085,
        callback_path="/oauth2callback",
        # google-auth-library as Gemini CLI 0.61 uses it.
        refresh_fields=("refresh_token", "client_id", "client_secret", "grant_type"),
        refresh_content_type="application/x-www-form-urlencoded;charset=UTF-8",
        userinfo_url="https://www.googleapis.com/oauth2/v1/userinfo?alt=json",
        code_assist_base_url=CODE_ASSIST_BASE_URL,
        project_setup=GEMINI_SETUP,
    ),
    file=GoogleTokenFile(),
    vendor_origin=CODE_ASSIST_BASE_URL,
    vendor_paths=("/v1internal:retrieveUserQuota", "/v1internal:loadCodeAssist"),
)


# Vertex AI: service-account files (imported, tokens minted from the key) and `vertex-api-key`
# entries; both speak Gemini (providers/vertex.py, auth/vertex_account.py).
VERTEX_ENTRY = ProviderEntry(
    kind="vertex",
    display_name="Vertex AI",
    owned_by="google",
    config_channels=(),
    management_channels=(),
    login="vertex",
    login_aliases=(),
    login_routes=(),  # POST /vertex/import instead of a browser login
    callback_routes=(),
    cloud_project=False,
    model_prefixes=("gemini-",),
    listed_models=VERTEX_MODELS,
    api_keys=lambda config: config.vertex_api_key,
    api_key_rank=3,
    api_key_base_url=GLOBAL_HOST,
    api_key_provider=VertexApiKeyProvider,
    account_provider=VertexProvider,
    vendor=GEMINI_CLI,
    header_defaults=_gemini_headers,
    flow=VERTEX_FLOW,
    file=VertexFile(),
    vendor_origin=GLOBAL_HOST,
    vendor_paths=("/v1/projects/",),
    mint_token=mint_token,
)


def _antigravity_headers(config: Config) -> HeaderDefaults:
    antigravity = config.antigravity_header_defaults
    return HeaderDefaults(user_agent=antigravity.user_agent, version=antigravity.version)


ANTIGRAVITY_ENTRY = ProviderEntry(
    kind="antigravity",
    display_name="Antigravity",
    owned_by="google",
    config_channels=(),
    management_channels=(),
    login="antigravity",
    login_aliases=("anti-gravity",),
    login_routes=("antigravity",),
    callback_routes=("antigravity",),
    cloud_project=False,
    # Exact names only: Antigravity's Gemini and Claude names must not capture every
    # gemini-*/claude-* request meant for Gemini CLI or Claude accounts.
    model_prefixes=(),
    listed_models=ANTIGRAVITY_MODELS,
    api_keys=lambda config: [],  # accounts only: Antigravity has no API keys
    api_key_rank=3,
    api_key_base_url=PROD_BASE_URL,
    api_key_provider=AntigravityProvider,
    account_provider=AntigravityProvider,
    vendor=ANTIGRAVITY,
    header_defaults=_antigravity_headers,
    flow=_google_flow(
        provider="antigravity",
        display_name="Antigravity (Google account)",
        client_id="1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
        client_secret="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",
        scopes=("cclog", "experimentsandconfigs"),
        callback_port=51121,
        callback_path="/oauth-callback",
        userinfo_url="https://www.googleapis.com/oauth2/v2/userinfo?alt=json",
        code_assist_base_url=PROD_BASE_URL,
        project_setup=ProjectSetup(
            label="Antigravity",
            load_metadata={"ideType": "ANTIGRAVITY"},
            onboard_metadata={
                "ide_type": "ANTIGRAVITY",
                "ide_version": "{version}",
                "ide_name": "antigravity",
            },
            tier_field="tier_id",
            fallback_tier="free-tier",
            project_fields=("cloudaicompanionProject", "projectId", "project"),
            vendor=ANTIGRAVITY,
            user_agent_suffix="google-api-nodejs-client/10.3.0",
        ),
        # The IDE renews its token 50 minutes before the hour is up.
        refresh_lead_seconds=3000.0,
    ),
    file=AntigravityFile(),
    vendor_origin=PROD_BASE_URL,
    vendor_paths=(
        "/v1internal:fetchAvailableModels",
        "/v1internal:loadCodeAssist",
        "/v1internal:retrieveUserQuotaSummary",
    ),
)


def builtin_entries() -> list[ProviderEntry]:
    """The shipped kinds, in the order they are listed (logins, file types, messages)."""
    from .kinds_device import KIMI_ENTRY, XAI_ENTRY  # the device-code kinds, in their own file

    return [
        CODEX_ENTRY,
        CLAUDE_ENTRY,
        GEMINI_ENTRY,
        VERTEX_ENTRY,
        ANTIGRAVITY_ENTRY,
        KIMI_ENTRY,
        XAI_ENTRY,
    ]
