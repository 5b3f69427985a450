"""xAI / Grok as the Grok CLI reaches it, on one loopback server:

- the OIDC issuer (``issuer`` = root_url): GET /.well-known/openid-configuration naming the
  device-authorization and token endpoints, POST /oauth2/device/code, POST /oauth2/token;
- the Grok CLI chat backend (base_url = root + "/v1"): POST /v1/responses (OpenAI Responses),
  taking only issued tokens and refusing calls without X-XAI-Token-Auth: xai-grok-cli,
  x-grok-client-version and x-grok-client-identifier (403);
- the public API (api_url = root + "/api/v1"): POST /api/v1/responses for ``using_api``
  accounts' tokens, and POST /api/v1/chat/completions (OpenAI-compatible) for API keys, which
  ``chat`` records and answers.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cliproxy.auth.flows import oauth_flow

from .core import RecordedRequest
from .device_auth import DeviceAuthority
from .oauth_sim import unsigned_jwt
from .openai_chat_sim import InnerChatSim
from .openai_responses_sim import ResponsesSim

XAI_CLIENT = oauth_flow("xai", env={}).client_id
GROK_HEADERS = {"x-xai-token-auth": "xai-grok-cli"}
GROK_REQUIRED = ("x-grok-client-version", "x-grok-client-identifier")


class XaiSim(ResponsesSim):
    default_models = ("grok-4.6", "grok-4.5")

    def __init__(self, **kwargs: Any) -> None:
        self.chat = InnerChatSim(self)  # api.x.ai Chat Completions
        self.email = "grok.user@example.com"
        self.sub = "user-7f3a"
        self.auth = DeviceAuthority(
            XAI_CLIENT,
            verification_uri="https://accounts.x.ai/device",
            id_token=lambda: unsigned_jwt({"email": self.email, "sub": self.sub}),
            on_issue=self._accept,
        )
        super().__init__(**kwargs)
        self.reset()

    def _accept(self, token: str) -> None:
        self.api_keys.add(token)

    def reset(self) -> None:
        super().reset()
        self.chat.reset()
        self.auth.reset()
        self.api_keys = {"-none-"}  # only issued tokens
        self.email, self.sub = "grok.user@example.com", "user-7f3a"
        # Where the discovery document points; a test may point it off the issuer.
        self.endpoint_root = ""

    @property
    def api_url(self) -> str:
        return self.root_url + "/api/v1"

    def env(self) -> dict[str, str]:
        """Environment that points the xai flow and accounts at this simulator."""
        return {
            "CLIPROXY_XAI_ISSUER": self.root_url,
            "CLIPROXY_XAI_BASE_URL": self.base_url,
            "CLIPROXY_XAI_API_BASE_URL": self.api_url,
            "CLIPROXY_XAI_POLL_INTERVAL": str(self.auth.interval),
        }

    def auth_file(self, **extra: Any) -> dict[str, Any]:
        tokens = self.auth.issue()
        return {
            "type": "xai",
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "id_token": tokens["id_token"],
            "token_type": "Bearer",
            "expires_in": tokens["expires_in"],
            "expired": "2099-01-01T00:00:00Z",
            "email": self.email,
            "sub": self.sub,
            **extra,
        }

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery, methods=["GET"]),
                Route("/oauth2/device/code", self.auth.device_authorization, methods=["POST"]),
                Route("/oauth2/token", self.auth.token, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/api/v1/responses", self._responses, methods=["POST"]),
                Route("/api/v1/chat/completions", self.chat._chat, methods=["POST"]),
            ]
        )

    async def _discovery(self, request: Request) -> Response:
        root = self.endpoint_root or self.root_url
        return JSONResponse(
            {
                "issuer": self.root_url,
                "device_authorization_endpoint": f"{root}/oauth2/device/code",
                "token_endpoint": f"{root}/oauth2/token",
                "jwks_uri": f"{root}/.well-known/jwks.json",
            }
        )

    def check_auth(self, rec: RecordedRequest) -> Response | None:
        if rec.path.startswith("/v1/"):  # the Grok CLI backend
            for name, value in GROK_HEADERS.items():
                if rec.headers.get(name) != value:
                    return self.error_response(403, f"{name} must be {value}")
            for name in GROK_REQUIRED:
                if not rec.headers.get(name):
                    return self.error_response(403, f"missing header {name}")
        return super().check_auth(rec)
