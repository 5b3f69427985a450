"""Claude: a Claude Pro/Max subscription reached through the Claude Code login (auth file type
"claude").

Subscription tokens are accepted on the ordinary Messages API, but only with the OAuth beta and
in the shape Claude Code sends: its identity line must be the first system block. Requests from
a real Claude Code already look like that and are forwarded unchanged; other clients get the
identity line put first and their own system prompt moved after it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from cliproxy.protocols.anthropic_messages import PROTOCOL as ANTHROPIC
from cliproxy.providers.accounts_common import bearer, client_header, merge_csv
from cliproxy.providers.base import (
    Credential,
    Provider,
    RequestContext,
    UpstreamRequest,
    resolve_headers,
)

CLAUDE_BASE_URL = "https://api.anthropic.com"
CLAUDE_CODE_IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
OAUTH_BETA = "oauth-2025-04-20"
REQUIRED_BETAS = ("claude-code-20250219", OAUTH_BETA, "interleaved-thinking-2025-05-14")
ANTHROPIC_VERSION = "2023-06-01"
CLAUDE_CLI_VERSION = "2.0.76"
USER_AGENT = f"claude-cli/{CLAUDE_CLI_VERSION} (external, cli)"
UNIFIED_PREFIX = "anthropic-ratelimit-unified-"

MODELS: tuple[str, ...] = (
    "claude-opus-4-5",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-opus-4-1",
    "claude-opus-4",
    "claude-sonnet-4",
)


def is_claude_code(ctx: RequestContext, body: Mapping[str, object]) -> bool:
    """Whether the request comes from a real Claude Code (its body is then left alone)."""
    if ctx.client_protocol != ANTHROPIC.name:
        return False  # a translated body never comes from Claude Code
    headers = ctx.client_headers
    if (client_header(headers, "user-agent") or "").startswith("claude-cli/"):
        return True
    if (client_header(headers, "x-app") or "").lower() == "cli":
        return True
    return _starts_with_identity(body.get("system"))


def _starts_with_identity(system: object) -> bool:
    if isinstance(system, str):
        return system.strip() == CLAUDE_CODE_IDENTITY
    if isinstance(system, list) and system and isinstance(system[0], dict):
        text = system[0].get("text")
        return isinstance(text, str) and text.strip() == CLAUDE_CODE_IDENTITY
    return False


def with_identity_first(system: object) -> list[Any]:
    """The system blocks with Claude Code's identity line first and the caller's prompt after."""
    identity: dict[str, Any] = {"type": "text", "text": CLAUDE_CODE_IDENTITY}
    if isinstance(system, list):
        return list(system) if _starts_with_identity(system) else [identity, *system]
    if isinstance(system, str) and system.strip() and not _starts_with_identity(system):
        return [identity, {"type": "text", "text": system}]
    return [identity]


class ClaudeOAuthProvider(Provider):
    """Anthropic Messages on api.anthropic.com with a Claude Code OAuth access token."""

    name = "claude"
    protocol = ANTHROPIC

    def __init__(self) -> None:
        # credential id -> the anthropic-ratelimit-unified-* headers of its latest reply.
        self._limits: dict[str, dict[str, str]] = {}

    def models(self) -> list[str]:
        return list(MODELS)

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        return self._request(credential, model, "/v1/messages", body, ctx)

    def build_count_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        return self._request(credential, model, "/v1/messages/count_tokens", body, ctx)

    def _request(
        self,
        credential: Credential,
        model: str,
        path: str,
        body: dict[str, object],
        ctx: RequestContext,
    ) -> UpstreamRequest:
        body["model"] = model
        claude_code = is_claude_code(ctx, body)
        if not claude_code:
            body["system"] = with_identity_first(body.get("system"))
        url = (credential.base_url or CLAUDE_BASE_URL).rstrip("/") + path + "?beta=true"
        headers = self._headers(credential, ctx, claude_code)
        return UpstreamRequest(url, headers, orjson.dumps(body))

    def _headers(
        self, credential: Credential, ctx: RequestContext, claude_code: bool
    ) -> dict[str, str]:
        client = ctx.client_headers
        from_anthropic = ctx.client_protocol == ANTHROPIC.name
        client_betas = client_header(client, "anthropic-beta") if from_anthropic else None
        version = client_header(client, "anthropic-version") if from_anthropic else None
        user_agent = client_header(client, "user-agent") if claude_code else None
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if ctx.stream else "application/json",
            **bearer(credential.secret),
            "anthropic-version": version or ANTHROPIC_VERSION,
            "anthropic-beta": merge_csv(client_betas, REQUIRED_BETAS),
            "anthropic-dangerous-direct-browser-access": "true",
            "x-app": "cli",
            "user-agent": user_agent or USER_AGENT,
        }
        headers.update(resolve_headers(credential.headers, client))
        return headers

    # ----- unified rate-limit headers ---------------------------------------------------------

    def observe_reply(
        self, credential: Credential, status: int, headers: Mapping[str, str]
    ) -> None:
        found = {
            name.lower()[len(UNIFIED_PREFIX) :]: value
            for name, value in headers.items()
            if name.lower().startswith(UNIFIED_PREFIX)
        }
        if found:
            found["observed_at"] = f"{time.time():.0f}"
            self._limits[credential.id] = found

    def usage(self, credential_id: str) -> dict[str, str] | None:
        """The latest anthropic-ratelimit-unified-* values of one account (names without the
        prefix, e.g. "status", "reset", "5h-utilization"), None before its first reply."""
        return self._limits.get(credential_id)

    def usage_snapshots(self) -> dict[str, dict[str, str]]:
        return {key: dict(value) for key, value in self._limits.items()}
