"""Anthropic's Messages API as a Claude Pro/Max OAuth token reaches it.

On top of the API-key simulator: the token must come as a bearer token with the OAuth beta in
`anthropic-beta` (else 401), and generation requests must open their system prompt with Claude
Code's identity line (else 400: subscription tokens are only for Claude Code), from a client
whose `claude-cli/<version>` user-agent is at least the current models' floor (else 400
`claude_code_version_too_old`). Every reply carries the `anthropic-ratelimit-unified-*` headers
of the subscription's windows.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .anthropic_sim import AnthropicSim
from .core import RecordedRequest
from .reply import Reply

CLAUDE_CODE_IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
OAUTH_BETA = "oauth-2025-04-20"
TOO_OLD_CODE = "claude_code_version_too_old"
BILLING_PREFIX = "x-anthropic-billing-header:"
NOT_CLAUDE_CODE = (
    "This credential is only authorized for use with Claude Code and cannot be used for other "
    "API requests."
)


# The floor Anthropic set for current models in September 2026 (jcode#1134: 2.1.123 refused,
# 2.1.257 served).
MIN_CLAUDE_CODE = "2.1.251"


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


def version_too_old(user_agent: str) -> str | None:
    """The refusal for a client below the floor, None when it may use current models."""
    head = user_agent.split(" ", 1)[0]
    claimed = head.split("/", 1)[1] if head.startswith("claude-cli/") else "0"
    if _version(claimed) and _version(claimed) >= _version(MIN_CLAUDE_CODE):
        return None
    return (
        f"Claude Code {claimed} does not support this model; version {MIN_CLAUDE_CODE} or "
        "newer is required"
    )


def default_usage_windows(five_hour: float = 20.0, reset_in: int = 3600) -> dict[str, Any]:
    def at(seconds: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + seconds))

    return {
        "five_hour": {"utilization": five_hour, "resets_at": at(reset_in)},
        "seven_day": {"utilization": 35.0, "resets_at": at(5 * 86400)},
        "seven_day_opus": None,
    }


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


EXTRA_USAGE_REFUSAL = (
    "Third-party apps now draw from your extra usage, not your plan limits. Add more at "
    "claude.ai/settings/usage and keep going."
)


class ClaudeOAuthSim(AnthropicSim):
    """base_url is http://127.0.0.1:PORT. `api_keys` holds the access tokens accepted; empty
    accepts any bearer token. With `extra_usage_enabled` False, a generation request without
    Claude Code's billing attestation (`cch=` in a billing block at system[0]) is answered as
    Anthropic answers third-party apps on a plan whose extra usage is off."""

    default_models = ("claude-opus-4-5", "claude-sonnet-4-6", "claude-haiku-4-5")
    extra_usage_enabled = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.usage_windows = default_usage_windows()

    def reset(self) -> None:
        super().reset()
        self.usage_windows = default_usage_windows()

    def build_app(self) -> Starlette:
        app = super().build_app()
        app.router.routes.append(Route("/api/oauth/usage", self._usage, methods=["GET"]))
        return app

    async def _models(self, request: Request) -> Response:
        # What a proxy reads on its own: kept apart from the generation requests.
        rec = await self.record(request, read=True)
        if rejected := self._reject(rec, ()):
            return rejected
        data = [{"type": "model", "id": m, "display_name": m} for m in self.models]
        return self.json_response({"data": data, "has_more": False})

    async def _usage(self, request: Request) -> Response:
        """GET /api/oauth/usage: the plan's windows, utilization in percent."""
        rec = await self.record(request, read=True)
        if rejected := self._reject(rec, ()):
            return rejected
        return self.json_response(self.usage_windows)

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
        if rec.path == "/v1/messages" and not self.extra_usage_enabled and not _attested(rec.json):
            return self.error_response(400, EXTRA_USAGE_REFUSAL, error_type="invalid_request_error")
        if self.validate and rec.path == "/v1/messages":
            too_old = version_too_old(rec.headers.get("user-agent", ""))
            if too_old is not None:
                return self.error_response(
                    400, too_old, error_type="invalid_request_error", code=TOO_OLD_CODE
                )
        return None


def _attested(body: Any) -> bool:
    system = body.get("system") if isinstance(body, dict) else None
    if not isinstance(system, list) or not system or not isinstance(system[0], dict):
        return False
    text = system[0].get("text")
    return isinstance(text, str) and text.startswith(BILLING_PREFIX) and "cch=" in text


def _identity_first(body: Any) -> bool:
    """The identity line opens the system prompt, or follows Claude Code's billing block."""
    system = body.get("system") if isinstance(body, dict) else None
    if not isinstance(system, list):
        return False
    texts = [block.get("text") if isinstance(block, dict) else None for block in system[:2]]
    if texts and isinstance(texts[0], str) and texts[0].startswith(BILLING_PREFIX):
        texts = texts[1:]
    return bool(texts) and texts[0] == CLAUDE_CODE_IDENTITY
