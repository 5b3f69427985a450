"""Codex: a ChatGPT subscription reached through the Codex CLI login (auth file type "codex").

The upstream is the ChatGPT backend's Responses endpoint, which differs from api.openai.com in
ways that matter: it only streams, refuses stored responses and several sampling parameters,
wants the account id beside the token, and reports the plan's usage windows in headers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cliproxy.protocols.openai_responses import PROTOCOL as OPENAI_RESPONSES
from cliproxy.providers.accounts_common import bearer, client_header, header_float
from cliproxy.providers.base import (
    Credential,
    Provider,
    RequestContext,
    UpstreamRequest,
    resolve_headers,
)

CODEX_BASE_URL = "https://chatgpt.com"
CODEX_PATH = "/backend-api/codex/responses"
CODEX_CLI_VERSION = "0.63.0"
ORIGINATOR = "codex_cli_rs"
USER_AGENT = f"{ORIGINATOR}/{CODEX_CLI_VERSION} (Linux; x86_64) cliproxy"
# Codex CLI itself sends its prompt as developer messages; the backend still insists on the field.
DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
ENCRYPTED_REASONING = "reasoning.encrypted_content"

MODELS: tuple[str, ...] = (
    "gpt-5",
    "gpt-5-codex",
    "gpt-5-codex-mini",
    "gpt-5.1",
    "gpt-5.1-codex",
    "gpt-5.1-codex-mini",
    "gpt-5.1-codex-max",
    "gpt-5.2",
    "gpt-5.2-codex",
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


class CodexProvider(Provider):
    """OpenAI Responses against chatgpt.com/backend-api/codex with a Codex OAuth token."""

    name = "codex"
    protocol = OPENAI_RESPONSES
    stream_only = True

    def __init__(self) -> None:
        # credential id -> latest usage snapshot; read by the management API and console.
        self._usage: dict[str, CodexUsage] = {}

    def models(self) -> list[str]:
        return list(MODELS)

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        prepare_body(body, model)
        url = (credential.base_url or CODEX_BASE_URL).rstrip("/") + CODEX_PATH
        return UpstreamRequest(url, self._headers(credential, body, ctx), orjson.dumps(body))

    def _headers(
        self, credential: Credential, body: dict[str, object], ctx: RequestContext
    ) -> dict[str, str]:
        client = ctx.client_headers
        user_agent = client_header(client, "user-agent") or ""
        cache_key = body.get("prompt_cache_key")
        session = (
            client_header(client, "session_id", "session-id", "x-session-id")
            or (cache_key if isinstance(cache_key, str) and cache_key else None)
            or str(uuid.uuid4())
        )
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            **bearer(credential.secret),
            # A real Codex CLI keeps its own identity; anyone else is presented as one.
            "user-agent": user_agent if user_agent.startswith(ORIGINATOR) else USER_AGENT,
            "originator": client_header(client, "originator") or ORIGINATOR,
            "version": CODEX_CLI_VERSION,
            "session_id": session,
        }
        account_id = credential.account.get("account_id")
        if account_id:
            headers["chatgpt-account-id"] = account_id
        headers.update(resolve_headers(credential.headers, client))
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


def prepare_body(body: dict[str, object], model: str) -> None:
    """Rewrite a Responses body in place into what the Codex backend accepts."""
    body["model"] = model
    body["stream"] = True
    body["store"] = False
    instructions = body.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
        body["instructions"] = DEFAULT_INSTRUCTIONS
    include = body.get("include")
    wanted = [i for i in include if isinstance(i, str)] if isinstance(include, list) else []
    if ENCRYPTED_REASONING not in wanted:
        wanted.append(ENCRYPTED_REASONING)
    body["include"] = wanted
    for name in REJECTED_FIELDS:
        body.pop(name, None)
    if body.get("service_tier") not in _SERVICE_TIERS:
        body.pop("service_tier", None)
    if "input" in body:
        body["input"] = _input_items(body["input"])


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
