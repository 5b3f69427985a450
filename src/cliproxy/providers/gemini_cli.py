"""Gemini CLI: a Google account reached through the Gemini CLI login (auth file type "gemini").

The upstream is Google's Code Assist API (cloudcode-pa), which speaks Gemini inside an
envelope: requests are {"model", "project", "request": <GenerateContentRequest>} and every
reply, streamed or not, is {"response": <GenerateContentResponse>, ...}. The provider builds
the envelope and the server takes replies out of it through the unwrap hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cliproxy.protocols.gemini import PROTOCOL as GEMINI
from cliproxy.protocols.sse import SSEEvent
from cliproxy.providers.base import (
    Credential,
    Provider,
    RequestContext,
    UpstreamRequest,
    resolve_headers,
)

CODE_ASSIST_BASE_URL = "https://cloudcode-pa.googleapis.com"
API_VERSION = "v1internal"
GEMINI_CLI_VERSION = "0.18.0"
GOOG_API_CLIENT = "gl-node/22.17.0"

MODELS: tuple[str, ...] = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
)


def user_agent(model: str) -> str:
    return f"GeminiCLI/{GEMINI_CLI_VERSION}/{model} (linux; x64)"


def project_ids(account: Mapping[str, str]) -> list[str]:
    """The Cloud projects an account may use, in order, without repeats. CLIProxyAPI writes
    several as one comma-separated ``project_id`` (a login that activated "ALL" projects)."""
    seen: list[str] = []
    for item in account.get("project_id", "").split(","):
        project = item.strip()
        if project and project not in seen:
            seen.append(project)
    return seen


def active_project(credential: Credential) -> str:
    """The project a request with this credential bills: the first one listed ("" if none).
    Quota fallbacks pin a single other project into a copy of the credential."""
    projects = project_ids(credential.account)
    return projects[0] if projects else ""


class GeminiCLIProvider(Provider):
    """Gemini through Code Assist's v1internal methods with a Google OAuth access token."""

    name = "gemini-cli"
    protocol = GEMINI
    wraps_replies = True

    def models(self) -> list[str]:
        return list(MODELS)

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body.pop("model", None)  # the model rides in the envelope, never in the inner request
        envelope: dict[str, object] = {"model": model}
        project = active_project(credential)
        if project:
            envelope["project"] = project
        envelope["request"] = body
        method = "streamGenerateContent?alt=sse" if ctx.stream else "generateContent"
        return self._request(credential, model, method, envelope, ctx)

    def build_count_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        # Gemini clients send {"contents"} or {"generateContentRequest": {...}}; Code Assist
        # counts {"request": {"model": "models/<m>", "contents"}} and answers {"totalTokens"}.
        inner = body.get("generateContentRequest")
        source = inner if isinstance(inner, dict) else body
        contents = source.get("contents")
        request = {"model": f"models/{model}", "contents": contents if contents else []}
        return self._request(credential, model, "countTokens", {"request": request}, ctx)

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
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if ctx.stream else "application/json",
            "authorization": f"Bearer {credential.secret}",
            "user-agent": user_agent(model),
            "x-goog-api-client": GOOG_API_CLIENT,
        }
        headers.update(resolve_headers(credential.headers, ctx.client_headers))
        return UpstreamRequest(url, headers, orjson.dumps(envelope))

    # ----- the reply envelope -----------------------------------------------------------------

    def unwrap_json(self, data: dict[str, Any]) -> dict[str, Any]:
        inner = data.get("response")
        return inner if isinstance(inner, dict) else data

    def unwrap_stream_event(self, event: SSEEvent) -> SSEEvent:
        if '"response"' not in event.data:
            return event  # not an envelope (e.g. an error object): let the decoder judge it
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return event
        if not isinstance(data, dict) or not isinstance(data.get("response"), dict):
            return event
        return SSEEvent(event.event, orjson.dumps(data["response"]).decode())
