"""Gemini CLI: a Google account reached through the Gemini CLI login (auth file type "gemini").

The upstream is Google's Code Assist API (cloudcode-pa), which speaks Gemini inside an
envelope: requests are {"model", "project", "request": <GenerateContentRequest>} and every
reply, streamed or not, is {"response": <GenerateContentResponse>, ...}. The provider builds
the envelope; the reply side is shared with Antigravity (providers/code_assist.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cliproxy.config.schema import QuotaExceeded as Switches
from cliproxy.model import ProxyError
from cliproxy.protocols.conversation import conversation_key
from cliproxy.protocols.gemini import PROTOCOL as GEMINI
from cliproxy.providers.accounts_common import (
    bearer,
    client_header,
    conversation_id,
    relayed_headers,
)
from cliproxy.providers.base import (
    Credential,
    Provider,
    RequestContext,
    UpstreamRequest,
    resolve_headers,
)
from cliproxy.providers.client_profiles import GEMINI_CLI, ClientIdentities, ua_version
from cliproxy.providers.code_assist import (
    API_VERSION,
    CodeAssistReplies,
    count_envelope,
    generate_method,
)
from cliproxy.providers.gemini_quota import (
    active_project,
    alternatives,
    rest_key,
    variants,
)
from cliproxy.providers.vendor_reads import QuotaReading, QuotaWindow, VendorReads, epoch, number

CODE_ASSIST_BASE_URL = "https://cloudcode-pa.googleapis.com"

MODELS: tuple[str, ...] = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
)


def _user_turns(body: Mapping[str, object]) -> int:
    contents = body.get("contents")
    if not isinstance(contents, list):
        return 0
    return sum(
        1
        for turn in contents
        if isinstance(turn, dict)
        and turn.get("role", "user") == "user"
        and any(isinstance(p, dict) and "text" in p for p in turn.get("parts") or [])
    )


class GeminiCLIProvider(CodeAssistReplies, VendorReads, Provider):
    """Gemini through Code Assist's v1internal methods with a Google OAuth access token."""

    name = "gemini-cli"
    protocol = GEMINI

    def __init__(self, identities: ClientIdentities | None = None) -> None:
        super().__init__()
        self.identities = identities or ClientIdentities()

    def models(self) -> list[str]:
        return list(MODELS)

    # --- QuotaAlternatives (providers/abilities.py): projects and preview models ----------------

    def quota_alternatives(
        self, credential: Credential, model: str, status: int, error: ProxyError, policy: Switches
    ) -> list[tuple[Credential, str]]:
        return alternatives(credential, model, status, error, policy)

    def rest_key(self, credential: Credential, model: str) -> str:
        return rest_key(credential, model)

    def variants(self, credential: Credential) -> list[Credential]:
        return variants(credential)

    # ----- what Code Assist says about the account (server/account_watch.py sends these) -------

    def quota_request(self, credential: Credential) -> UpstreamRequest | None:
        project = active_project(credential)
        if not project:
            return None
        profile = self.identities.profile(GEMINI_CLI)
        base = (credential.base_url or CODE_ASSIST_BASE_URL).rstrip("/")
        headers = {
            "content-type": "application/json",
            "accept": "*/*",
            "user-agent": profile.user_agent_for(MODELS[0]),
            "x-goog-api-client": profile.runtime,
            **bearer(credential.secret),
        }
        body = orjson.dumps({"project": project})
        return UpstreamRequest(f"{base}/{API_VERSION}:retrieveUserQuota", headers, body)

    def read_quota(self, data: Any, now: float) -> QuotaReading | None:
        """{"buckets": [{"modelId", "tokenType", "remainingFraction", "resetTime"}]}"""
        buckets = data.get("buckets") if isinstance(data, dict) else None
        if not isinstance(buckets, list):
            return None
        windows = []
        for bucket in buckets:
            if not isinstance(bucket, dict) or not isinstance(bucket.get("modelId"), str):
                continue
            remaining = number(bucket.get("remainingFraction"))
            used = None if remaining is None else round((1 - remaining) * 100, 2)
            windows.append(QuotaWindow(bucket["modelId"], used, epoch(bucket.get("resetTime"))))
        return QuotaReading(tuple(windows), now) if windows else None

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body.pop("model", None)  # the model rides in the envelope, never in the inner request
        envelope: dict[str, object] = {"model": model}
        project = active_project(credential)
        if project:
            envelope["project"] = project
        # As the CLI sends them: one session id per conversation, one prompt id per user turn
        # (the tool round trips of that turn share it).
        session = conversation_id(credential.id, conversation_key(ctx.client_headers, body))
        envelope["user_prompt_id"] = conversation_id(session, str(_user_turns(body)))
        if "session_id" not in body:
            body["session_id"] = session
        envelope["request"] = body
        return self._request(credential, model, generate_method(ctx.stream), envelope, ctx)

    def build_count_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        return self._request(credential, model, "countTokens", count_envelope(model, body), ctx)

    def _request(
        self,
        credential: Credential,
        model: str,
        method: str,
        envelope: dict[str, object],
        ctx: RequestContext,
    ) -> UpstreamRequest:
        base = (credential.base_url or CODE_ASSIST_BASE_URL).rstrip("/")
        url = f"{base}/{API_VERSION}:{method}"
        client = ctx.client_headers
        version = ua_version(GEMINI_CLI, client_header(client, "user-agent") or "")
        if version is not None:
            # A real Gemini CLI: its own identity headers, only the account's token instead.
            self.identities.adopt(GEMINI_CLI, version)
            headers = relayed_headers(client)
            headers["content-type"] = "application/json"
        else:
            profile = self.identities.profile(GEMINI_CLI)
            headers = {
                "content-type": "application/json",
                "accept": "*/*",
                "user-agent": profile.user_agent_for(model),
                "x-goog-api-client": profile.runtime,
            }
        headers.update(bearer(credential.secret))
        headers.update(resolve_headers(credential.headers, client))
        return UpstreamRequest(url, headers, orjson.dumps(envelope))
