"""xAI / Grok: a Grok subscription reached through the Grok CLI's device login (auth file type
"xai"), and xAI API keys (config section xai-api-key).

Accounts call the Grok CLI's chat backend, ``POST https://cli-chat-proxy.grok.com/v1/responses``
(OpenAI Responses), with the CLI's headers: X-XAI-Token-Auth, x-grok-client-version and
x-grok-client-identifier. An account whose file says ``using_api: true`` calls the public API
(https://api.x.ai/v1/responses) with its token instead. API keys use the public API's
OpenAI-compatible Chat Completions (https://api.x.ai/v1/chat/completions).
"""

from __future__ import annotations

import os

import orjson

from cliproxy.protocols.openai_responses import PROTOCOL as OPENAI_RESPONSES
from cliproxy.providers.accounts_common import bearer
from cliproxy.providers.api_keys import OpenAICompatProvider, api_headers
from cliproxy.providers.base import Credential, Provider, RequestContext, UpstreamRequest
from cliproxy.providers.client_profiles import GROK, ClientIdentities

GROK_CLI_BASE_URL = "https://cli-chat-proxy.grok.com/v1"
XAI_API_BASE_URL = "https://api.x.ai/v1"
TOKEN_AUTH = "xai-grok-cli"
CLIENT_IDENTIFIER = "grok-shell"
USING_API = "using_api"  # the account-file switch (auth/records.py)
MODELS: tuple[str, ...] = (
    "grok-4.6",
    "grok-build-0.1",
    "grok-4.5",
    "grok-4.3",
    "grok-4.20-0309-reasoning",
    "grok-4.20-0309-non-reasoning",
    "grok-4.20-multi-agent-0309",
    "grok-3-mini",
    "grok-3-mini-fast",
    "grok-composer-2.5-fast",
)


class XaiProvider(Provider):
    """OpenAI Responses against the Grok CLI backend with an xAI OAuth token."""

    name = "xai"
    protocol = OPENAI_RESPONSES

    def __init__(self, identities: ClientIdentities | None = None) -> None:
        self.identities = identities or ClientIdentities()
        # using_api accounts' upstream; $CLIPROXY_XAI_API_BASE_URL points it elsewhere (tests).
        self.api_base_url = os.environ.get("CLIPROXY_XAI_API_BASE_URL", "") or XAI_API_BASE_URL

    def models(self) -> list[str]:
        return list(MODELS)

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body["model"] = model
        profile = self.identities.profile(GROK)
        headers = api_headers(credential, ctx, bearer(credential.secret))
        headers["user-agent"] = profile.user_agent_for(model)
        if credential.account.get(USING_API) == "true":
            base = self.api_base_url
        else:
            base = credential.base_url or GROK_CLI_BASE_URL
            headers["x-xai-token-auth"] = TOKEN_AUTH
            headers["x-grok-client-version"] = profile.version
            headers["x-grok-client-identifier"] = CLIENT_IDENTIFIER
        url = base.rstrip("/") + "/responses"
        return UpstreamRequest(url, headers, orjson.dumps(body))


class XaiApiKeyProvider(OpenAICompatProvider):
    """xAI's public API with an API key: OpenAI-compatible Chat Completions."""

    def __init__(self) -> None:
        super().__init__("xai")
        self.name = "xai-api-key"

    def models(self) -> list[str]:
        return list(MODELS)
