"""Kimi Code as kimi-cli reaches it, on one loopback server:

- auth.kimi.com's device flow: POST /api/oauth/device_authorization and POST /api/oauth/token
  (device-code and refresh grants), both wanting kimi-cli's X-Msh-* device headers;
- the coding endpoint (base_url = root + "/coding"): Anthropic Messages at /coding/v1/messages
  and Chat Completions at /coding/v1/chat/completions, each taking only tokens issued here and
  refusing calls without kimi-cli's user-agent and device headers (403).

``requests`` holds the Messages calls, ``chat.requests`` the Chat Completions ones; replies
are queued on each (``queue`` / ``chat.queue``).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from cliproxy.auth.flows import oauth_flow

from .anthropic_sim import AnthropicSim
from .core import RecordedRequest
from .device_auth import DeviceAuthority
from .openai_chat_sim import InnerChatSim

KIMI_CLIENT = oauth_flow("kimi", env={}).client_id
DEVICE_HEADERS = (
    "X-Msh-Platform",
    "X-Msh-Version",
    "X-Msh-Device-Name",
    "X-Msh-Device-Model",
    "X-Msh-Device-Id",
)


def identity_problem(rec: RecordedRequest) -> str | None:
    """Why the coding endpoint refuses this caller as a coding agent, or None."""
    if not rec.headers.get("user-agent", "").startswith("KimiCLI/"):
        return "this endpoint is for Kimi CLI and supported coding agents"
    for name in DEVICE_HEADERS:
        if not rec.headers.get(name.lower()):
            return f"missing header {name}"
    return None


class _ChatPart(InnerChatSim):
    """The Chat Completions half of the coding endpoint."""

    def check_auth(self, rec: RecordedRequest) -> Response | None:
        if problem := identity_problem(rec):
            return self.error_response(403, problem)
        return super().check_auth(rec)


class KimiSim(AnthropicSim):
    base_path = "/coding"
    default_models = ("kimi-k2.5", "kimi-k3")

    def __init__(self, **kwargs: Any) -> None:
        self.chat = _ChatPart(self)
        self.auth = DeviceAuthority(
            KIMI_CLIENT,
            required_headers=DEVICE_HEADERS,
            verification_uri="https://www.kimi.com/code/authorize_device",
            on_issue=self._accept,
        )
        super().__init__(**kwargs)
        self.reset()

    def _accept(self, token: str) -> None:
        self.api_keys.add(token)
        self.chat.api_keys.add(token)

    def reset(self) -> None:
        super().reset()
        self.chat.reset()
        self.auth.reset()
        # Only issued tokens are accepted, and none is issued yet: a placeholder keeps the
        # check on (an empty set would accept anything).
        self.api_keys = {"-none-"}
        self.chat.api_keys = {"-none-"}

    def env(self) -> dict[str, str]:
        """Environment that points the kimi flow and accounts at this simulator."""
        return {
            "CLIPROXY_KIMI_DEVICE_URL": f"{self.root_url}/api/oauth/device_authorization",
            "CLIPROXY_KIMI_TOKEN_URL": f"{self.root_url}/api/oauth/token",
            "CLIPROXY_KIMI_BASE_URL": self.base_url,
            "CLIPROXY_KIMI_POLL_INTERVAL": str(self.auth.interval),
        }

    def auth_file(self, device_id: str = "dev-0123456789abcdef") -> dict[str, Any]:
        """A kimi auth file in the reference's layout whose tokens this simulator accepts."""
        tokens = self.auth.issue()
        return {
            "type": "kimi",
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "token_type": "Bearer",
            "scope": tokens["scope"],
            "device_id": device_id,
            "expired": "2099-01-01T00:00:00Z",
        }

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/api/oauth/device_authorization",
                    self.auth.device_authorization,
                    methods=["POST"],
                ),
                Route("/api/oauth/token", self.auth.token, methods=["POST"]),
                Route("/coding/v1/messages", self._messages, methods=["POST"]),
                Route("/coding/v1/chat/completions", self.chat._chat, methods=["POST"]),
            ]
        )

    def check_auth(self, rec: RecordedRequest) -> Response | None:
        if problem := identity_problem(rec):
            return self.error_response(403, problem)
        return super().check_auth(rec)
