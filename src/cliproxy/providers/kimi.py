"""Kimi: a Kimi Code subscription reached through the kimi-cli device login (auth file type
"kimi").

The coding endpoint (https://api.kimi.com/coding) speaks two protocols: Anthropic Messages at
{base}/v1/messages and Chat Completions at {base}/v1/chat/completions. Messages clients take
the Messages path (pass-through, as the Claude API-key path sends it); every other client goes
to Chat Completions. Every call carries kimi-cli's identity: its user-agent and the X-Msh-*
device headers with the account's device id (from its auth file).
"""

from __future__ import annotations

from dataclasses import replace

import orjson

from cliproxy.protocols.anthropic_messages import PROTOCOL as ANTHROPIC
from cliproxy.protocols.base import WireProtocol
from cliproxy.protocols.openai_chat import PROTOCOL as OPENAI_CHAT
from cliproxy.providers.accounts_common import bearer
from cliproxy.providers.api_keys import ClaudeApiKeyProvider, api_headers
from cliproxy.providers.base import Credential, Provider, RequestContext, UpstreamRequest
from cliproxy.providers.client_profiles import KIMI, ClientIdentities

KIMI_BASE_URL = "https://api.kimi.com/coding"
MODELS: tuple[str, ...] = (
    "kimi-k2",
    "kimi-k2-thinking",
    "kimi-k2.5",
    "kimi-k2.6",
    "kimi-k2.7-code",
    "kimi-k2.7-code-highspeed",
    "kimi-k3",
    "kimi-k3-256k",
)


def kimi_identity(identities: ClientIdentities, credential: Credential) -> dict[str, str]:
    """kimi-cli's headers for this account: user-agent and X-Msh-* with its device id."""
    profile = identities.profile(KIMI)
    device_id = credential.account.get("account_id", "")
    return {"user-agent": profile.user_agent_for(), **profile.device_identity(device_id)}


def _base(credential: Credential) -> str:
    return (credential.base_url or KIMI_BASE_URL).rstrip("/")


class KimiMessagesProvider(ClaudeApiKeyProvider):
    """The Messages path: the Claude API-key request (bearer token, anthropic-version and
    the client's betas), at the coding base, with kimi-cli's identity."""

    name = "kimi"

    def __init__(self, identities: ClientIdentities) -> None:
        self.identities = identities

    def models(self) -> list[str]:
        return list(MODELS)

    def _request(
        self, credential: Credential, path: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        request = super()._request(replace(credential, base_url=_base(credential)), path, body, ctx)
        headers = {**request.headers, **kimi_identity(self.identities, credential)}
        return replace(request, headers=headers)


class KimiProvider(Provider):
    """Chat Completions for every client but Messages ones (see ``for_client``)."""

    name = "kimi"
    protocol = OPENAI_CHAT

    def __init__(self, identities: ClientIdentities | None = None) -> None:
        self.identities = identities or ClientIdentities()
        self.messages = KimiMessagesProvider(self.identities)

    def for_client(self, client_protocol: WireProtocol) -> Provider:
        return self.messages if client_protocol is ANTHROPIC else self

    def models(self) -> list[str]:
        return list(MODELS)

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body["model"] = model
        url = _base(credential) + "/v1/chat/completions"
        headers = api_headers(credential, ctx, bearer(credential.secret))
        headers.update(kimi_identity(self.identities, credential))
        return UpstreamRequest(url, headers, orjson.dumps(body))
