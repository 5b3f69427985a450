"""The device-code kinds: kimi (Kimi Code, kimi-cli's login) and xai (Grok, the Grok CLI's
OIDC login), one catalog entry each (see kinds.py for the shape)."""

from __future__ import annotations

from cliproxy.config.schema import Config
from cliproxy.providers.client_profiles import GROK, KIMI, HeaderDefaults
from cliproxy.providers.kimi import KIMI_BASE_URL, KimiProvider
from cliproxy.providers.kimi import MODELS as KIMI_MODELS
from cliproxy.providers.xai import (
    MODELS as XAI_MODELS,
)
from cliproxy.providers.xai import (
    XAI_API_BASE_URL,
    XaiApiKeyProvider,
    XaiProvider,
)

from .device_files import KimiFile, XaiFile
from .flow_spec import OAuthFlow
from .kind_entry import ProviderEntry


def _no_header_defaults(config: Config) -> HeaderDefaults:
    """No `*-header-defaults` section for these vendors: the profile's values."""
    return HeaderDefaults()


KIMI_ENTRY = ProviderEntry(
    kind="kimi",
    display_name="Kimi",
    owned_by="moonshot",
    config_channels=(),
    management_channels=(),
    login="kimi",
    login_aliases=("moonshot",),
    login_routes=("kimi",),
    callback_routes=(),
    cloud_project=False,
    model_prefixes=("kimi-",),
    listed_models=KIMI_MODELS,
    api_keys=lambda config: [],  # Kimi has no API-key section in the reference's config
    api_key_rank=4,
    api_key_base_url=KIMI_BASE_URL,
    api_key_provider=KimiProvider,
    account_provider=KimiProvider,
    vendor=KIMI,
    header_defaults=_no_header_defaults,
    flow=OAuthFlow(
        provider="kimi",
        display_name="Kimi Code",
        authorize_url="",
        token_url="https://auth.kimi.com/api/oauth/token",
        client_id="17e5f671-d194-4dfb-9706-5516cb48c098",
        scopes=(),
        callback_port=0,
        callback_path="",
        token_body="form",
        grant="device_code",
        device_authorization_url="https://auth.kimi.com/api/oauth/device_authorization",
        poll_interval=5.0,
        poll_timeout=15 * 60.0,
        state_prefix="kmi",
    ),
    file=KimiFile(),
    vendor_origin="https://api.kimi.com",
    vendor_paths=("/coding/v1/usages",),
)

XAI_ENTRY = ProviderEntry(
    kind="xai",
    display_name="xAI (Grok)",
    owned_by="xai",
    config_channels=("grok", "x-ai"),
    management_channels=("x-ai", "grok"),
    login="xai",
    login_aliases=("x-ai", "x.ai", "grok"),
    login_routes=("xai",),
    callback_routes=(),
    cloud_project=False,
    model_prefixes=("grok-",),
    listed_models=XAI_MODELS,
    api_keys=lambda config: config.xai_api_key,
    api_key_rank=3,
    api_key_base_url=XAI_API_BASE_URL,
    api_key_provider=XaiApiKeyProvider,
    account_provider=XaiProvider,
    vendor=GROK,
    header_defaults=_no_header_defaults,
    flow=OAuthFlow(
        provider="xai",
        display_name="xAI (Grok)",
        authorize_url="",
        token_url="",  # from the issuer's discovery document
        client_id="b1a00492-073a-47ea-816f-4c329264a828",
        scopes=("openid", "profile", "email", "offline_access", "grok-cli:access", "api:access"),
        callback_port=0,
        callback_path="",
        token_body="form",
        grant="device_code",
        issuer="https://auth.x.ai",
        endpoint_domains=("x.ai",),
        poll_interval=5.0,
        poll_timeout=30 * 60.0,
        state_prefix="xai",
    ),
    file=XaiFile(),
    vendor_origin="https://cli-chat-proxy.grok.com",
    vendor_paths=("/v1/billing",),
)
