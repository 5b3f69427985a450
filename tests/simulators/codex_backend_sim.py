"""The ChatGPT Codex backend: POST /backend-api/codex/responses, the Responses API as a ChatGPT
subscription reaches it.

Unlike api.openai.com it needs the account id beside the OAuth token, only streams, refuses
stored responses and several parameters (400 with a `{"detail": ...}` body), refuses each
model to clients below its minimal Codex version (the `version` header, else the user-agent's),
reports the plan's usage windows in `x-codex-*` headers on every reply, and
answers an exhausted plan with 429 `usage_limit_reached` carrying the reset time. GET
/backend-api/wham/usage reports the same windows as JSON (what quota tools read).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import RecordedRequest, Turn
from .openai_responses_sim import ResponsesSim
from .reply import Reply

CODEX_PATH = "/backend-api/codex/responses"
USAGE_PATH = "/backend-api/wham/usage"
MODELS_PATH = "/backend-api/codex/models"
REJECTED = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p", "truncation")
# minimal_client_version from codex 0.169.0's bundled catalog: 0.124.0 for gpt-5.5, up to
# 0.155.0 for the rest of the current catalog.
MIN_CLIENT_VERSION = {"gpt-5.5": "0.124.0"}
DEFAULT_MIN_CLIENT_VERSION = "0.155.0"


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


def client_version(headers: dict[str, str]) -> str:
    """The Codex version a request claims: its `version` header, else its user-agent's."""
    if headers.get("version"):
        return headers["version"]
    agent = headers.get("user-agent", "")
    head = agent.split(" ", 1)[0]
    return head.split("/", 1)[1] if head.startswith("codex_") and "/" in head else ""


def default_usage_headers(now: float | None = None) -> dict[str, str]:
    """Usage headers as the backend sends them: a 5-hour primary and a weekly secondary window."""
    now = time.time() if now is None else now
    return {
        "x-codex-primary-used-percent": "12.5",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-after-seconds": "3600",
        "x-codex-secondary-used-percent": "40",
        "x-codex-secondary-window-minutes": "10080",
        "x-codex-secondary-reset-at": str(int(now) + 86400),
    }


def usage_payload(headers: dict[str, str], plan_type: str = "plus") -> dict[str, Any]:
    """The wham/usage body matching the usage headers: the same two windows, in seconds."""
    now = int(time.time())

    def window(which: str) -> dict[str, Any] | None:
        used = headers.get(f"x-codex-{which}-used-percent")
        if used is None:
            return None
        minutes = int(headers.get(f"x-codex-{which}-window-minutes", "0"))
        after = headers.get(f"x-codex-{which}-reset-after-seconds")
        reset_at = headers.get(f"x-codex-{which}-reset-at")
        reset_after = int(after) if after else max(0, int(reset_at or now) - now)
        return {
            "used_percent": round(float(used)),
            "limit_window_seconds": minutes * 60,
            "reset_after_seconds": reset_after,
            "reset_at": int(reset_at) if reset_at else now + reset_after,
        }

    return {
        "plan_type": plan_type,
        "rate_limit": {
            "allowed": True,
            "limit_reached": False,
            "primary_window": window("primary"),
            "secondary_window": window("secondary"),
        },
        "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
    }


def usage_limit_reply(resets_in_seconds: int = 1800, plan_type: str = "plus") -> Reply:
    """The 429 the backend sends once the plan's window is used up."""
    error = {
        "type": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": plan_type,
        "resets_at": int(time.time()) + resets_in_seconds,
        "resets_in_seconds": resets_in_seconds,
    }
    return Reply.error(429, body={"error": error})


class CodexBackendSim(ResponsesSim):
    """base_url is http://127.0.0.1:PORT (the provider appends /backend-api/codex/responses).
    `api_keys` holds the access tokens accepted; empty accepts any bearer token."""

    base_path = ""
    default_models = ("gpt-5.5", "gpt-6-codex", "gpt-6.1", "gpt-6.1-codex", "gpt-6.1-codex-spark")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.usage_headers = default_usage_headers()

    def reset(self) -> None:
        super().reset()
        self.usage_headers = default_usage_headers()

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(CODEX_PATH, self._codex, methods=["POST"]),
                Route(USAGE_PATH, self._usage, methods=["GET"]),
                Route(MODELS_PATH, self._models, methods=["GET"]),
            ]
        )

    async def _usage(self, request: Request) -> Response:
        """GET /backend-api/wham/usage: the plan's windows as JSON (what `codex /status` and
        quota tools read), for the same bearer token the responses route takes."""
        rec = await self.record(request, read=True)
        if self.presented_key(rec) is None:
            return self._detail(401, "Could not parse your authentication token.")
        if denied := self.check_auth(rec):
            return denied
        return self.json_response(usage_payload(self.usage_headers))

    async def _models(self, request: Request) -> Response:
        """GET /backend-api/codex/models?client_version=: the catalog this account may use,
        each model hidden from clients below its minimal version (as the backend lists it)."""
        rec = await self.record(request, read=True)
        if self.presented_key(rec) is None:
            return self._detail(401, "Could not parse your authentication token.")
        if denied := self.check_auth(rec):
            return denied
        claimed = _version_tuple(rec.query.get("client_version", ""))
        models = []
        for slug in self.models:
            needed = MIN_CLIENT_VERSION.get(slug, DEFAULT_MIN_CLIENT_VERSION)
            visible = bool(claimed) and claimed >= _version_tuple(needed)
            models.append(
                {
                    "slug": slug,
                    "display_name": slug,
                    "visibility": "list" if visible else "hide",
                    "minimal_client_version": needed,
                }
            )
        return self.json_response({"models": models})

    async def _codex(self, request: Request) -> Response:
        rec = await self.record(request)
        if rejected := self._reject(rec):
            return rejected
        body = rec.json
        reply = self.next_reply(rec)
        reply = reply.with_options(headers={**self.usage_headers, **reply.headers})
        return self.respond(reply, Turn(model=str(body.get("model", "")), request=rec), stream=True)

    def _reject(self, rec: RecordedRequest) -> Response | None:
        if self.presented_key(rec) is None:
            return self._detail(401, "Could not parse your authentication token.")
        if denied := self.check_auth(rec):
            return denied
        if not self.validate:
            return None
        if not rec.headers.get("chatgpt-account-id"):
            return self._detail(400, "Missing chatgpt-account-id header")
        body = rec.json
        if not isinstance(body, dict):
            return self._detail(400, "Invalid JSON body")
        for name in REJECTED:
            if name in body:
                return self._detail(400, f"Unsupported parameter: {name}")
        if body.get("stream") is not True:
            return self._detail(400, "Stream must be set to true")
        if body.get("store") is not False:
            return self._detail(400, "Store must be set to false")
        model = str(body.get("model", ""))
        needed = MIN_CLIENT_VERSION.get(model, DEFAULT_MIN_CLIENT_VERSION)
        claimed = _version_tuple(client_version(rec.headers))
        if not claimed or claimed < _version_tuple(needed):
            return self._detail(
                400,
                f"The '{model}' model requires a newer version of Codex. Please upgrade to the "
                "latest app or CLI and try again.",
            )
        items = body.get("input")
        if not isinstance(items, list):
            return self._detail(400, "Input must be a list")
        if any(isinstance(i, dict) and i.get("role") == "system" for i in items):
            return self._detail(400, "System messages are not allowed")
        if "model" not in body:
            return self._detail(400, "Missing required parameter: 'model'.")
        return None

    def _detail(self, status: int, message: str) -> Response:
        return self.respond(Reply.error(status, body={"detail": message}), None, stream=False)
