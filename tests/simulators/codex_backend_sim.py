"""The ChatGPT Codex backend: POST /backend-api/codex/responses, the Responses API as a ChatGPT
subscription reaches it.

Unlike api.openai.com it needs the account id beside the OAuth token, only streams, refuses
stored responses and several parameters (400 with a `{"detail": ...}` body), wants
`instructions`, reports the plan's usage windows in `x-codex-*` headers on every reply, and
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
REJECTED = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p", "truncation")


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
    default_models = ("gpt-5", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-max")

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
            ]
        )

    async def _usage(self, request: Request) -> Response:
        """GET /backend-api/wham/usage: the plan's windows as JSON (what `codex /status` and
        quota tools read), for the same bearer token the responses route takes."""
        rec = await self.record(request)
        if self.presented_key(rec) is None:
            return self._detail(401, "Could not parse your authentication token.")
        if denied := self.check_auth(rec):
            return denied
        return self.json_response(usage_payload(self.usage_headers))

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
        if not isinstance(body.get("instructions"), str) or not body["instructions"]:
            return self._detail(400, "Instructions are required")
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
