"""Amp's upstream (ampcode.com): the control plane (threads, user, telemetry, login pages)
and the model endpoints Amp reaches through it (`/api/provider/anthropic/v1/messages`).

Every request is recorded. The upstream key must arrive both as `X-Api-Key` and as
`Authorization: Bearer` (cliproxy sets both); anything else is 401. Control-plane replies
carry CORS headers of their own, which cliproxy must blank, and `/auth/sign-in` redirects
(which cliproxy must pass on, not follow).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .anthropic_sim import AnthropicSim
from .core import RecordedRequest

UPSTREAM_KEY = "amp-upstream-secret"
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class AmpSim(AnthropicSim):
    """base_url is what `ampcode.upstream-url` holds."""

    def __init__(self, upstream_keys: set[str] | None = None, **kwargs: Any) -> None:
        super().__init__(api_keys=upstream_keys or {UPSTREAM_KEY}, **kwargs)

    def build_app(self) -> Starlette:
        anthropic = "/api/provider/anthropic/v1"
        return Starlette(
            routes=[
                Route(f"{anthropic}/messages", self._messages, methods=["POST"]),
                Route(f"{anthropic}/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/auth/sign-in", self._sign_in, methods=["GET"]),
                Route("/{path:path}", self._control, methods=_ANY),
            ]
        )

    def presented_key(self, rec: RecordedRequest) -> str | None:
        # Both spellings, agreeing: a proxy that sets only one is caught here.
        key = rec.headers.get("x-api-key")
        if rec.headers.get("authorization") != f"Bearer {key}":
            return None
        return key

    async def _control(self, request: Request) -> Response:
        rec = await self.record(request)
        if denied := self.check_auth(rec):
            return denied
        payload = {
            "ok": True,
            "method": rec.method,
            "path": rec.path,
            "query": rec.query,
            "body": rec.json,
        }
        return Response(
            orjson.dumps(payload),
            media_type="application/json",
            headers={
                "access-control-allow-origin": "https://ampcode.com",
                "access-control-allow-credentials": "true",
                "x-amp-sim": "control",
            },
        )

    async def _sign_in(self, request: Request) -> Response:
        await self.record(request)
        return Response(status_code=302, headers={"location": "https://ampcode.com/welcome"})
