"""Claude: a Claude Pro/Max subscription reached through the Claude Code login (auth file type
"claude").

Subscription tokens are accepted on the ordinary Messages API, but only with the OAuth beta and
in the shape Claude Code sends: its identity line must be the first system block. A real Claude
Code is relayed untouched: its body and every header as sent (its SDK headers, session id,
betas, billing block), only the account's bearer token in place of the client's key and the
OAuth beta added when missing. Other clients are presented as the current Claude Code (the
client profile): its identity line first, their own system prompt after it, its user-agent,
betas and SDK headers. Claude Code's billing block is never invented for them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.protocols.anthropic_messages import PROTOCOL as ANTHROPIC
from cliproxy.providers.accounts_common import bearer, client_header, merge_csv, relayed_headers
from cliproxy.providers.base import (
    Credential,
    Provider,
    RequestContext,
    UpstreamRequest,
    resolve_headers,
)
from cliproxy.providers.client_profiles import CLAUDE, ClientIdentities, ua_version
from cliproxy.providers.vendor_reads import QuotaReading, QuotaWindow, VendorReads, epoch, number

CLAUDE_BASE_URL = "https://api.anthropic.com"
CLAUDE_CODE_IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
OAUTH_BETA = "oauth-2025-04-20"
ANTHROPIC_VERSION = "2023-06-01"
UNIFIED_PREFIX = "anthropic-ratelimit-unified-"
# Anthropic's 400 for a non-Claude-Code client on a subscription whose extra usage is off or
# spent: "Third-party apps now draw from your extra usage, not your plan limits. ..."
EXTRA_USAGE_MARKERS = ("draw from your extra usage", "draw from extra usage")
THIRD_PARTY_REST_SECONDS = 3600.0
PLAN_LIMITS_ONLY = "claude-plan-limits-only"  # the account-file switch (auth/records.py)
BILLING_PREFIX = "x-anthropic-billing-header:"

# Served until the account's own model list has been read. Claude Code 2.1.331 retired
# claude-sonnet-4-5 (2026-11-30), claude-opus-4 and claude-sonnet-4 (2026-06-15) and remaps
# claude-opus-4-1, so none of those is advertised.
MODELS: tuple[str, ...] = (
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-opus-4-7",
    "claude-sonnet-4-6",
    "claude-opus-4-5",
    "claude-haiku-4-5",
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


def carries_billing_attestation(body: Mapping[str, object]) -> bool:
    """Whether system[0] is Claude Code's billing block with its ``cch=`` attestation (relayed
    from a genuine Claude Code; cliproxy never writes one)."""
    system = body.get("system")
    if not isinstance(system, list) or not system or not isinstance(system[0], dict):
        return False
    text = system[0].get("text")
    return isinstance(text, str) and text.startswith(BILLING_PREFIX) and "cch=" in text


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


class ClaudeOAuthProvider(VendorReads, Provider):
    """Anthropic Messages on api.anthropic.com with a Claude Code OAuth access token."""

    name = "claude"
    protocol = ANTHROPIC

    def __init__(self, identities: ClientIdentities | None = None) -> None:
        super().__init__()
        self.identities = identities or ClientIdentities()
        # credential id -> the anthropic-ratelimit-unified-* headers of its latest reply.
        self._limits: dict[str, dict[str, str]] = {}
        # The config's claude-plan-limits-only (an account file may also set it for itself).
        self.plan_limits_only = False
        # credential id -> epoch until which clients other than Claude Code rest on it, after
        # Anthropic answered that they draw from extra usage there.
        self._third_party_rest: dict[str, float] = {}

    def models(self) -> list[str]:
        return list(MODELS)

    def models_for(self, credential_id: str) -> list[str]:
        return self.catalog(credential_id) or self.models()

    # ----- what Anthropic says about the account (server/account_watch.py sends these) ----------

    def _read(self, credential: Credential, path: str) -> UpstreamRequest:
        profile = self.identities.profile(CLAUDE)
        headers = {
            "accept": "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
            "anthropic-beta": OAUTH_BETA,
            "user-agent": profile.user_agent_for(),
            **bearer(credential.secret),
        }
        url = (credential.base_url or CLAUDE_BASE_URL).rstrip("/") + path
        return UpstreamRequest(url, headers, b"", method="GET")

    def models_request(self, credential: Credential) -> UpstreamRequest | None:
        return self._read(credential, "/v1/models")

    def read_models(self, data: Any) -> list[str] | None:
        listed = data.get("data") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            return None
        ids = [m["id"] for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str)]
        return ids or None

    def quota_request(self, credential: Credential) -> UpstreamRequest | None:
        return self._read(credential, "/api/oauth/usage")

    def read_quota(self, data: Any, now: float) -> QuotaReading | None:
        """{"five_hour": {"utilization": 42.0, "resets_at": "<RFC 3339>"}, "seven_day": ...}"""
        if not isinstance(data, dict):
            return None
        windows = []
        for name, window in data.items():
            if not isinstance(window, dict) or "utilization" not in window:
                continue
            windows.append(
                QuotaWindow(name, number(window.get("utilization")), epoch(window.get("resets_at")))
            )
        return QuotaReading(tuple(windows), now) if windows else None

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
        if is_claude_code(ctx, body):
            version = ua_version(CLAUDE, client_header(ctx.client_headers, "user-agent") or "")
            if version is not None:
                self.identities.adopt(CLAUDE, version)
            headers = relayed_headers(ctx.client_headers)
            headers["anthropic-beta"] = merge_csv(headers.get("anthropic-beta"), (OAUTH_BETA,))
        else:
            body["system"] = with_identity_first(body.get("system"))
            headers = self._presented_headers(ctx)
        headers.update(bearer(credential.secret))
        headers.update(resolve_headers(credential.headers, ctx.client_headers))
        url = (credential.base_url or CLAUDE_BASE_URL).rstrip("/") + path + "?beta=true"
        return UpstreamRequest(url, headers, orjson.dumps(body))

    def _presented_headers(self, ctx: RequestContext) -> dict[str, str]:
        """Another client, presented as the current Claude Code. An Anthropic client's own
        version and betas are kept (its body may rely on them)."""
        profile = self.identities.profile(CLAUDE)
        client = ctx.client_headers
        from_anthropic = ctx.client_protocol == ANTHROPIC.name
        client_betas = client_header(client, "anthropic-beta") if from_anthropic else None
        version = client_header(client, "anthropic-version") if from_anthropic else None
        return {
            "content-type": "application/json",
            "accept": "application/json",  # what Claude Code sends, streaming or not
            "anthropic-version": version or ANTHROPIC_VERSION,
            "anthropic-beta": merge_csv(client_betas, profile.betas),
            "anthropic-dangerous-direct-browser-access": "true",
            "x-app": "cli",
            "user-agent": profile.user_agent_for(),
            **profile.sdk_headers,
        }

    # ----- protecting the plan -------------------------------------------------------------------

    def refusal(
        self, credential: Credential, ctx: RequestContext, body: Mapping[str, object]
    ) -> ProxyError | None:
        # What Anthropic bills from the plan: a request carrying Claude Code's own billing block
        # (with its cch attestation, which Claude Code writes only for Anthropic's own base URL).
        # Everything else, a Claude Code pointed at cliproxy included, draws from extra usage.
        genuine = carries_billing_attestation(body)
        now = time.time()
        if not genuine and self._third_party_rest.get(credential.id, 0.0) > now:
            until = self._third_party_rest[credential.id]
            return ProxyError(
                ErrorKind.PERMISSION,
                f"account {credential.id} serves only Claude Code's own billed requests until "
                f"{time.strftime('%H:%M:%S', time.localtime(until))}: Anthropic answered that "
                "other clients draw from its extra usage, which it refused",
            )
        if not (self.plan_limits_only or credential.account.get(PLAN_LIMITS_ONLY) == "true"):
            return None
        if not genuine:
            return ProxyError(
                ErrorKind.PERMISSION,
                f"claude-plan-limits-only is on for account {credential.id}: Anthropic bills "
                "requests without Claude Code's own billing block (any other client, or Claude "
                "Code pointed at a proxy) from extra usage, so cliproxy does not send this one",
            )
        reset = self.plan_exhausted_until(credential.id, now)
        if reset is not None:
            return ProxyError(
                ErrorKind.RATE_LIMIT,
                f"claude-plan-limits-only is on for account {credential.id}: its plan window "
                "is used up and further requests would draw from extra usage",
                retry_after=max(0.0, reset - now),
            )
        return None

    def explain_refusal(
        self, credential: Credential, ctx: RequestContext, status: int, message: str
    ) -> ProxyError | None:
        if status != 400 or not any(marker in message.lower() for marker in EXTRA_USAGE_MARKERS):
            return None
        self._third_party_rest[credential.id] = time.time() + THIRD_PARTY_REST_SECONDS
        return ProxyError(
            ErrorKind.PERMISSION,
            f"the Claude subscription of account {credential.id} refused this client: "
            "Anthropic bills clients other than Claude Code from the plan's extra usage, which "
            f"is off or used up (Anthropic: {message}). The account keeps serving Claude Code; "
            "other clients rest on it for an hour.",
        )

    def plan_exhausted_until(self, credential_id: str, now: float) -> float | None:
        """When the account's plan window resets, while its latest reply said it is used up."""
        limits = self._limits.get(credential_id)
        if not limits or limits.get("status") != "rejected":
            return None
        try:
            reset = float(limits.get("reset", ""))
        except ValueError:
            return None
        return reset if reset > now else None

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
