"""Providers for upstreams reached with an API key from config.yaml.

One class per upstream wire protocol: OpenAI-compatible Chat Completions (openai-compatibility),
Anthropic Messages (claude-api-key), Gemini (gemini-api-key) and OpenAI Responses (codex-api-key).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

import orjson

from cliproxy.protocols.anthropic_messages import PROTOCOL as ANTHROPIC
from cliproxy.protocols.gemini import PROTOCOL as GEMINI
from cliproxy.protocols.openai_chat import PROTOCOL as OPENAI_CHAT
from cliproxy.protocols.openai_responses import PROTOCOL as OPENAI_RESPONSES
from cliproxy.providers.base import (
    Credential,
    Provider,
    RequestContext,
    UpstreamRequest,
    resolve_headers,
)

USER_AGENT = "cliproxy/0.1"
# Each kind's default base URL is in its catalog entry (auth/kinds.py).


def api_headers(
    credential: Credential, ctx: RequestContext, auth: dict[str, str]
) -> dict[str, str]:
    """The JSON request headers an API-key upstream gets: ours, its auth, the configured ones."""
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if ctx.stream else "application/json",
        "user-agent": USER_AGENT,
        **auth,
    }
    if credential.headers:
        headers.update(resolve_headers(credential.headers, ctx.client_headers))
    return headers


@lru_cache(maxsize=256)  # a handful of configured base URLs, asked on every request
def _is_official_anthropic(base_url: str) -> bool:
    return urlsplit(base_url).hostname == "api.anthropic.com"


class OpenAICompatProvider(Provider):
    protocol = OPENAI_CHAT

    def __init__(self, name: str) -> None:
        self.name = f"openai-compatibility:{name}"

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body["model"] = model
        url = credential.base_url.rstrip("/") + "/chat/completions"
        auth = {"authorization": f"Bearer {credential.secret}"} if credential.secret else {}
        return UpstreamRequest(url, api_headers(credential, ctx, auth), orjson.dumps(body))


class CodexApiKeyProvider(Provider):
    """OpenAI Responses API with an API key (config section codex-api-key)."""

    name = "codex-api-key"
    protocol = OPENAI_RESPONSES

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body["model"] = model
        url = credential.base_url.rstrip("/") + "/responses"
        auth = {"authorization": f"Bearer {credential.secret}"}
        return UpstreamRequest(url, api_headers(credential, ctx, auth), orjson.dumps(body))


class ClaudeApiKeyProvider(Provider):
    """Anthropic Messages with an API key (config section claude-api-key)."""

    name = "claude-api-key"
    protocol = ANTHROPIC

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body["model"] = model
        return self._request(credential, "/v1/messages", body, ctx)

    def build_count_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body["model"] = model
        return self._request(credential, "/v1/messages/count_tokens", body, ctx)

    def _request(
        self, credential: Credential, path: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        from_anthropic_client = ctx.client_protocol == ANTHROPIC.name
        url = credential.base_url.rstrip("/") + path
        if from_anthropic_client and ctx.client_query.get("beta") == "true":
            url += "?beta=true"
        # Anthropic's own API wants x-api-key; compatible gateways commonly want a bearer token.
        if _is_official_anthropic(credential.base_url):
            auth = {"x-api-key": credential.secret}
        else:
            auth = {"authorization": f"Bearer {credential.secret}"}
        auth["anthropic-version"] = (
            ctx.client_headers.get("anthropic-version", "2023-06-01")
            if from_anthropic_client
            else "2023-06-01"
        )
        beta = ctx.client_headers.get("anthropic-beta") if from_anthropic_client else None
        if beta:
            auth["anthropic-beta"] = beta
        return UpstreamRequest(url, api_headers(credential, ctx, auth), orjson.dumps(body))


class GeminiApiKeyProvider(Provider):
    """Google AI Studio (Generative Language API) with an API key (config gemini-api-key)."""

    name = "gemini-api-key"
    protocol = GEMINI

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        method = "streamGenerateContent?alt=sse" if ctx.stream else "generateContent"
        return self._request(credential, model, method, body, ctx)

    def build_count_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        return self._request(credential, model, "countTokens", body, ctx)

    def _request(
        self,
        credential: Credential,
        model: str,
        method: str,
        body: dict[str, object],
        ctx: RequestContext,
    ) -> UpstreamRequest:
        body.pop("model", None)
        url = f"{credential.base_url.rstrip('/')}/v1beta/models/{model}:{method}"
        return self._upstream(credential, url, body, ctx)

    def _upstream(
        self, credential: Credential, url: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        """How the Gemini request at ``url`` reaches Google: here over HTTP with the key (the
        AI Studio relay sends it through the user's browser instead, providers/aistudio.py)."""
        auth = {"x-goog-api-key": credential.secret}
        return UpstreamRequest(url, api_headers(credential, ctx, auth), orjson.dumps(body))
