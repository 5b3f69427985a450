"""Codex: a ChatGPT subscription reached through the Codex CLI login (auth file type "codex").

The upstream is the ChatGPT backend's Responses endpoint, which differs from api.openai.com in
ways that matter: it only streams, refuses stored responses and several sampling parameters,
wants the account id beside the token, and reports the plan's usage windows in headers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cliproxy.model.ids import random_uuid4
from cliproxy.protocols.conversation import conversation_key
from cliproxy.protocols.openai_responses import PROTOCOL as OPENAI_RESPONSES
from cliproxy.providers.accounts_common import (
    bearer,
    client_header,
    conversation_id,
    header_float,
    relayed_headers,
)
from cliproxy.providers.base import (
    Credential,
    Provider,
    RequestContext,
    UpstreamRequest,
    resolve_headers,
)
from cliproxy.providers.client_profiles import CODEX, ClientIdentities, newer, ua_version
from cliproxy.providers.vendor_reads import QuotaReading, QuotaWindow, VendorReads, number

CODEX_BASE_URL = "https://chatgpt.com"
CODEX_PATH = "/backend-api/codex/responses"
MODELS_PATH = "/backend-api/codex/models"
USAGE_PATH = "/backend-api/wham/usage"
ENCRYPTED_REASONING = "reasoning.encrypted_content"

# Current Codex model names (none of the retired gpt-5 … gpt-5.2 line), served until the
# account's own model list has been read from the backend.
MODELS: tuple[str, ...] = (
    "gpt-5.5",
    "gpt-5.6-codex",
    "gpt-6",
    "gpt-6-codex",
    "gpt-6.1",
    "gpt-6.1-codex",
    "gpt-6.1-codex-spark",
    "gpt-6.1-mini",
)

# Parameters the backend answers with 400 "Unsupported parameter": the subscription fixes
# sampling and output limits itself.
REJECTED_FIELDS = (
    "max_output_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "truncation",
    "user",
    "context_management",
    "prompt_cache_retention",
    "safety_identifier",
    "stream_options",
)
_SERVICE_TIERS = frozenset({"priority", "fast"})


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """One rate-limit window of the plan (primary: the 5-hour one, secondary: the weekly one)."""

    used_percent: float | None
    window_minutes: int | None
    resets_at: float | None  # epoch seconds


@dataclass(frozen=True, slots=True)
class CodexUsage:
    """The usage headers of the latest reply an account got, as read at ``observed_at``."""

    primary: UsageWindow | None
    secondary: UsageWindow | None
    observed_at: float

    def to_json(self) -> dict[str, Any]:
        def window(w: UsageWindow | None) -> dict[str, Any] | None:
            if w is None:
                return None
            return {
                "used_percent": w.used_percent,
                "window_minutes": w.window_minutes,
                "resets_at": w.resets_at,
            }

        return {
            "primary": window(self.primary),
            "secondary": window(self.secondary),
            "observed_at": self.observed_at,
        }


def read_usage_window(headers: Mapping[str, str], which: str, now: float) -> UsageWindow | None:
    prefix = f"x-codex-{which}-"
    used = header_float(headers, prefix + "used-percent")
    minutes = header_float(headers, prefix + "window-minutes")
    reset_after = header_float(headers, prefix + "reset-after-seconds")
    reset_at = header_float(headers, prefix + "reset-at")
    if used is None and minutes is None and reset_after is None and reset_at is None:
        return None
    if reset_at is None and reset_after is not None:
        reset_at = now + reset_after
    return UsageWindow(used, int(minutes) if minutes is not None else None, reset_at)


class CodexProvider(VendorReads, Provider):
    """OpenAI Responses against chatgpt.com/backend-api/codex with a Codex OAuth token."""

    rests_whole_credential = True  # ChatGPT plans limit the account, across models

    name = "codex"
    protocol = OPENAI_RESPONSES
    stream_only = True

    def __init__(self, identities: ClientIdentities | None = None) -> None:
        super().__init__()
        self.identities = identities or ClientIdentities()
        # credential id -> latest usage snapshot; read by the management API and console.
        self._usage: dict[str, CodexUsage] = {}

    def models(self) -> list[str]:
        return list(MODELS)

    def models_for(self, credential_id: str) -> list[str]:
        return self.catalog(credential_id) or self.models()

    # ----- what the backend says about the account (server/account_watch.py sends these) --------

    def _read_headers(self, credential: Credential) -> dict[str, str]:
        profile = self.identities.profile(CODEX)
        headers = {
            "accept": "application/json",
            "user-agent": profile.user_agent_for(),
            "originator": profile.originator,
            "version": profile.version,
            **bearer(credential.secret),
        }
        account_id = credential.account.get("account_id")
        if account_id:
            headers["chatgpt-account-id"] = account_id
        return headers

    def _base(self, credential: Credential) -> str:
        return (credential.base_url or CODEX_BASE_URL).rstrip("/")

    def models_request(self, credential: Credential) -> UpstreamRequest | None:
        version = self.identities.profile(CODEX).version
        url = f"{self._base(credential)}{MODELS_PATH}?client_version={version}"
        return UpstreamRequest(url, self._read_headers(credential), b"", method="GET")

    def read_models(self, data: Any) -> list[str] | None:
        """The slugs the backend lists for this account and this client version."""
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list):
            return None
        slugs = [
            m["slug"]
            for m in models
            if isinstance(m, dict)
            and isinstance(m.get("slug"), str)
            and m.get("visibility", "list") == "list"
        ]
        return slugs or None

    def quota_request(self, credential: Credential) -> UpstreamRequest | None:
        url = self._base(credential) + USAGE_PATH
        return UpstreamRequest(url, self._read_headers(credential), b"", method="GET")

    def read_quota(self, data: Any, now: float) -> QuotaReading | None:
        limits = data.get("rate_limit") if isinstance(data, dict) else None
        if not isinstance(limits, dict):
            return None
        windows = []
        for name, key in (("five_hour", "primary_window"), ("weekly", "secondary_window")):
            window = limits.get(key)
            if not isinstance(window, dict):
                continue
            reset_at = number(window.get("reset_at"))
            after = number(window.get("reset_after_seconds"))
            if reset_at is None and after is not None:
                reset_at = now + after
            windows.append(QuotaWindow(name, number(window.get("used_percent")), reset_at))
        return QuotaReading(tuple(windows), now) if windows else None

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        url = (credential.base_url or CODEX_BASE_URL).rstrip("/") + CODEX_PATH
        genuine = genuine_codex_version(ctx)
        if genuine is not None:
            # The real Codex CLI: its body and headers as sent, only the account filled in.
            self.identities.adopt(CODEX, genuine)
            body["model"] = model
            headers = relayed_headers(ctx.client_headers)
        else:
            # One id per conversation, as the CLI keeps one thread id per thread.
            session = conversation_id(credential.id, conversation_key(ctx.client_headers, body))
            prepare_body(body, model, session)
            headers = self._presented_headers(session)
        headers.update(bearer(credential.secret))
        account_id = credential.account.get("account_id")
        if account_id:
            headers["chatgpt-account-id"] = account_id
        headers.update(resolve_headers(credential.headers, ctx.client_headers))
        return UpstreamRequest(url, headers, orjson.dumps(body))

    def _presented_headers(self, session: str) -> dict[str, str]:
        """Another client, presented as a current `codex exec` session of this conversation."""
        profile = self.identities.profile(CODEX)
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "user-agent": profile.user_agent_for(),
            "originator": profile.originator,
            "version": profile.version,
            "session-id": session,
            "thread-id": session,
            "x-client-request-id": str(random_uuid4()),
        }
        if profile.beta_features:
            headers["x-codex-beta-features"] = profile.beta_features
        return headers

    # ----- usage-limit headers ----------------------------------------------------------------

    def observe_reply(
        self, credential: Credential, status: int, headers: Mapping[str, str]
    ) -> None:
        now = time.time()
        primary = read_usage_window(headers, "primary", now)
        secondary = read_usage_window(headers, "secondary", now)
        if primary is not None or secondary is not None:
            self._usage[credential.id] = CodexUsage(primary, secondary, now)

    def usage(self, credential_id: str) -> CodexUsage | None:
        """The latest usage snapshot of one account, None before its first reply."""
        return self._usage.get(credential_id)

    def usage_snapshots(self) -> dict[str, CodexUsage]:
        """Every account's latest usage snapshot, keyed by credential id."""
        return dict(self._usage)


def genuine_codex_version(ctx: RequestContext) -> str | None:
    """The version of a real Codex CLI making this call (recognised by its user-agent, which
    only the CLI writes as ``codex_<originator>/<version>``), None for any other client."""
    if ctx.client_protocol != OPENAI_RESPONSES.name:
        return None
    user_agent = client_header(ctx.client_headers, "user-agent") or ""
    version = ua_version(CODEX, user_agent)
    if version is None:
        return None
    claimed = client_header(ctx.client_headers, "version")
    return claimed if claimed and newer(claimed, version) else version


def prepare_body(body: dict[str, object], model: str, session: str) -> None:
    """Rewrite a Responses body in place into what the Codex backend accepts, the way the CLI
    writes it: its prompt as the first developer message (no ``instructions``), the thread id
    as ``prompt_cache_key`` so the backend's prompt cache carries across turns."""
    body["model"] = model
    body["stream"] = True
    body["store"] = False
    include = body.get("include")
    wanted = [i for i in include if isinstance(i, str)] if isinstance(include, list) else []
    if ENCRYPTED_REASONING not in wanted:
        wanted.append(ENCRYPTED_REASONING)
    body["include"] = wanted
    for name in REJECTED_FIELDS:
        body.pop(name, None)
    if body.get("service_tier") not in _SERVICE_TIERS:
        body.pop("service_tier", None)
    instructions = body.pop("instructions", None)
    items = _input_items(body.get("input", []))
    if isinstance(instructions, str) and instructions.strip() and isinstance(items, list):
        developer = {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": instructions}],
        }
        items = [developer, *items]
    body["input"] = items
    cache_key = body.get("prompt_cache_key")
    if not isinstance(cache_key, str) or not cache_key.strip():
        body["prompt_cache_key"] = session


def _input_items(raw: object) -> object:
    """A plain-string input as one user message; system turns as developer turns (the backend
    refuses the system role inside input)."""
    if isinstance(raw, str):
        return [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}
        ]
    if not isinstance(raw, list):
        return raw
    items: list[object] = []
    for item in raw:
        if isinstance(item, dict) and item.get("role") == "system":
            item = {**item, "role": "developer"}
        items.append(item)
    return items
