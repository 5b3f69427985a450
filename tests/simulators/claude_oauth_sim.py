"""Anthropic's Messages API as a Claude Pro/Max OAuth token reaches it.

On top of the API-key simulator: the token must come as a bearer token with the OAuth beta in
`anthropic-beta` (else 401), and generation requests must open their system prompt with Claude
Code's identity line (else 400: subscription tokens are only for Claude Code). Every reply
carries the `anthropic-ratelimit-unified-*` headers of the subscription's windows.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from .anthropic_sim import AnthropicSim
from .core import RecordedRequest
from .reply import Reply

CLAUDE_CODE_IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
OAUTH_BETA = "oauth-2025-04-20"
NOT_CLAUDE_CODE = (
    "This credential is only authorized for use with Claude Code and cannot be used for other "
    "API requests."
)


def unified_headers(status: str = "allowed", reset_in: int = 3600) -> dict[str, str]:
    reset = str(int(time.time()) + reset_in)
    return {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": reset,
        "anthropic-ratelimit-unified-5h-status": status,
        "anthropic-ratelimit-unified-5h-reset": reset,
        "anthropic-ratelimit-unified-5h-utilization": "1.0" if status == "rejected" else "0.2",
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
    }


def rate_limit_reply(reset_in: int = 1200) -> Reply:
    """The 429 a subscription gets once its 5-hour window is used up."""
    return Reply.error(
        429,
        "This request would exceed your account's rate limit. Please try again later.",
        error_type="rate_limit_error",
        retry_after=reset_in,
        headers=unified_headers("rejected", reset_in),
    )


class ClaudeOAuthSim(AnthropicSim):
    """base_url is http://127.0.0.1:PORT. `api_keys` holds the access tokens accepted; empty
    accepts any bearer token."""

    default_models = ("claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5")

    def presented_key(self, rec: RecordedRequest) -> str | None:
        scheme, _, token = rec.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def next_reply(self, rec: RecordedRequest) -> Reply:
        reply = super().next_reply(rec)
        return reply.with_options(headers={**unified_headers(), **reply.headers})

    def _reject(self, rec: RecordedRequest, required: tuple[str, ...]) -> Response | None:
        if self.presented_key(rec) is None:
            return self.error_response(401, "OAuth token required: send Authorization: Bearer")
        betas = {b.strip() for b in rec.headers.get("anthropic-beta", "").split(",")}
        if OAUTH_BETA not in betas:
            return self.error_response(401, "OAuth authentication is currently not supported.")
        if rejected := super()._reject(rec, required):
            return rejected
        if self.validate and rec.path == "/v1/messages" and not _identity_first(rec.json):
            return self.error_response(400, NOT_CLAUDE_CODE)
        return None


def _identity_first(body: Any) -> bool:
    system = body.get("system") if isinstance(body, dict) else None
    if isinstance(system, list) and system and isinstance(system[0], dict):
        return system[0].get("text") == CLAUDE_CODE_IDENTITY
    return False
