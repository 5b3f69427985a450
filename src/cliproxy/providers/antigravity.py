"""Antigravity: a Google account reached through the Antigravity IDE's login (auth file type
"antigravity"), serving Gemini and Claude models.

The upstream is Code Assist's v1internal API, as for Gemini CLI, in the IDE's envelope
(providers/antigravity_wire.py); replies come back in the same {"response": ...} envelope
(providers/code_assist.py). The IDE tries its daily host first and moves on to prod after a
request error, a 429 or "no capacity"; the transport does that from the request's
``fallback_urls``. A credential's own base URL (the file's ``base_url``) is the only host.

Only three headers go upstream: Content-Type, the hub's User-Agent and the account's token.
Nothing the client sent is relayed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import orjson

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.protocols.conversation import conversation_key
from cliproxy.protocols.gemini import PROTOCOL as GEMINI
from cliproxy.providers.accounts_common import bearer, client_header, conversation_id
from cliproxy.providers.antigravity_wire import MODELS, envelope, inner_request, moves_on
from cliproxy.providers.base import (
    Credential,
    Provider,
    RequestContext,
    UpstreamRequest,
    resolve_headers,
)
from cliproxy.providers.client_profiles import ANTIGRAVITY, ClientIdentities, ua_version
from cliproxy.providers.code_assist import (
    API_VERSION,
    CodeAssistReplies,
    count_envelope,
    generate_method,
)
from cliproxy.providers.vendor_reads import QuotaReading, QuotaWindow, VendorReads, epoch, number

DAILY_BASE_URL = "https://daily-cloudcode-pa.googleapis.com"
PROD_BASE_URL = "https://cloudcode-pa.googleapis.com"
# Tests and gateways replace the host list: comma-separated base URLs, tried in order.
BASE_URLS_ENV = "CLIPROXY_ANTIGRAVITY_BASE_URLS"
# What fetchAvailableModels lists besides the models a client can ask for (tab completion,
# internal chat models): only these families are served.
_SERVED_FAMILIES = ("gemini-", "claude-", "gpt-oss-")


def default_base_urls(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    source = os.environ if env is None else env
    listed = [url.strip().rstrip("/") for url in source.get(BASE_URLS_ENV, "").split(",")]
    return tuple(url for url in listed if url) or (DAILY_BASE_URL, PROD_BASE_URL)


class AntigravityProvider(CodeAssistReplies, VendorReads, Provider):
    """Gemini and Claude through Antigravity's Code Assist backend."""

    name = "antigravity"
    protocol = GEMINI

    def __init__(self, identities: ClientIdentities | None = None) -> None:
        super().__init__()
        self.identities = identities or ClientIdentities()
        self.base_urls = default_base_urls()

    def models(self) -> list[str]:
        return list(MODELS)

    def models_for(self, credential_id: str) -> list[str]:
        return self.catalog(credential_id) or self.models()

    def refusal(
        self, credential: Credential, ctx: RequestContext, body: Mapping[str, object]
    ) -> ProxyError | None:
        if _project(credential):
            return None
        return ProxyError(
            ErrorKind.AUTHENTICATION,
            f"account {credential.id} has no project_id (Antigravity bills a Code Assist "
            "project); run `cliproxy login antigravity` again",
        )

    # ----- generation -------------------------------------------------------------------------

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        # One session per conversation and account, as the IDE keeps one per chat.
        session = conversation_id(credential.id, conversation_key(ctx.client_headers, body))
        request = inner_request(model, body, session)
        wrapped = envelope(model, _project(credential), request)
        return self._request(credential, generate_method(ctx.stream), wrapped, ctx.client_headers)

    def build_count_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        return self._request(
            credential, "countTokens", count_envelope(model, body), ctx.client_headers
        )

    def _request(
        self,
        credential: Credential,
        method: str,
        payload: dict[str, Any],
        client: Mapping[str, str],
    ) -> UpstreamRequest:
        version = ua_version(ANTIGRAVITY, client_header(client, "user-agent") or "")
        if version is not None:
            # A genuine Antigravity client: never fall behind the version it runs.
            self.identities.adopt(ANTIGRAVITY, version)
        headers = {
            "content-type": "application/json",
            "user-agent": self.identities.profile(ANTIGRAVITY).user_agent_for(),
            **bearer(credential.secret),
            **resolve_headers(credential.headers, client),
        }
        hosts = self.hosts(credential)
        urls = tuple(f"{host}/{API_VERSION}:{method}" for host in hosts)
        return UpstreamRequest(
            urls[0], headers, orjson.dumps(payload), fallback_urls=urls[1:], moves_on=moves_on
        )

    def hosts(self, credential: Credential) -> tuple[str, ...]:
        if credential.base_url:
            return (credential.base_url.rstrip("/"),)
        return self.base_urls

    # ----- what the backend says about the account (server/account_watch.py sends these) ----

    def models_request(self, credential: Credential) -> UpstreamRequest | None:
        return self._available_models(credential)

    def read_models(self, data: Any) -> list[str] | None:
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict):
            return None
        served = [name for name in models if name.startswith(_SERVED_FAMILIES)]
        return served or None

    def quota_request(self, credential: Credential) -> UpstreamRequest | None:
        return self._available_models(credential)

    def read_quota(self, data: Any, now: float) -> QuotaReading | None:
        """fetchAvailableModels: {"models": {name: {"quotaInfo": {"remainingFraction",
        "resetTime"}}}}; a model without quotaInfo says nothing about its quota."""
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict):
            return None
        windows = []
        for name, info in models.items():
            quota = info.get("quotaInfo") if isinstance(info, dict) else None
            if not isinstance(quota, dict) or not name.startswith(_SERVED_FAMILIES):
                continue
            remaining = number(quota.get("remainingFraction"))
            used = None if remaining is None else round((1 - remaining) * 100, 2)
            windows.append(QuotaWindow(name, used, epoch(quota.get("resetTime"))))
        return QuotaReading(tuple(windows), now) if windows else None

    def _available_models(self, credential: Credential) -> UpstreamRequest | None:
        project = _project(credential)
        if not project:
            return None
        return self._request(credential, "fetchAvailableModels", {"project": project}, {})


def _project(credential: Credential) -> str:
    return credential.account.get("project_id", "").strip()
