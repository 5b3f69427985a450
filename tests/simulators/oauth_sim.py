"""OAuth provider simulator: authorize page, token endpoint (code + PKCE, refresh), Google
userinfo, and Code Assist's loadCodeAssist / onboardUser. One server plays OpenAI (codex),
Anthropic (claude) and Google (gemini); the client_id of each request says which.

Routes: GET /oauth/authorize, POST /oauth/token, GET /oauth2/v1/userinfo,
POST /v1internal:loadCodeAssist, POST /v1internal:onboardUser.

Scripting: `expires_in`, `rotate_refresh_tokens`, `revoke(rt)`, `fail_token_with` (statuses
answered to the next refresh grants), `refresh_delay`, `existing_project`; counters
`refresh_calls`, `onboard_calls`; `token_requests` records each token call's parameters.
A test's "browser" is `browse(url)`: an httpx GET of the authorize URL that follows the
redirect to the loopback callback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from cliproxy.auth.flows import OAuthFlow, oauth_flow

from .server import SimServer

CODEX_CLIENT = oauth_flow("codex", env={}).client_id
CLAUDE_CLIENT = oauth_flow("claude", env={}).client_id
GOOGLE_FLOW = oauth_flow("gemini", env={})
STYLES = {CODEX_CLIENT: "codex", CLAUDE_CLIENT: "claude", GOOGLE_FLOW.client_id: "gemini"}
CALLBACK_PATHS = {"codex": "/auth/callback", "claude": "/callback", "gemini": "/oauth2callback"}
OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"


@dataclass(frozen=True)
class _Grant:
    style: str
    redirect_uri: str
    challenge: str
    email: str


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def browse(url: str) -> httpx.Response:
    """What a browser does after the user approves: load the authorize URL and follow its
    redirect to the loopback callback."""
    return httpx.get(url, follow_redirects=True, timeout=10)


def callback_location(url: str) -> str:
    """The callback URL the authorize page redirects to, without loading it (paste mode)."""
    response = httpx.get(url, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["location"]


class OAuthSim(SimServer):
    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.emails = {
            "codex": "coder@example.com",
            "claude": "claude.user@example.com",
            "gemini": "gem.user@example.com",
        }
        self.account_id = "acct-1234"
        self.plan = "pro"
        self.expires_in = 3600
        self.rotate_refresh_tokens = False
        self.refresh_delay = 0.0
        self.fail_token_with: deque[int] = deque()
        self.existing_project: str | None = None
        self.user_project_tier = False
        self.onboard_project = "sim-project-42"
        self.refresh_calls = 0
        self.onboard_calls = 0
        self.token_requests: list[dict[str, Any]] = []
        self.token_headers: list[dict[str, str]] = []
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # token -> (style, email)
        self._access: dict[str, str] = {}  # token -> email
        self.revoked: set[str] = set()

    # ----- configuration helpers for tests ----------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment variables that point every flow at this simulator."""
        root = self.root_url
        env: dict[str, str] = {}
        for name in ("CODEX", "CLAUDE", "GEMINI"):
            env[f"CLIPROXY_{name}_AUTHORIZE_URL"] = f"{root}/oauth/authorize"
            env[f"CLIPROXY_{name}_TOKEN_URL"] = f"{root}/oauth/token"
        env["CLIPROXY_GEMINI_USERINFO_URL"] = f"{root}/oauth2/v1/userinfo?alt=json"
        env["CLIPROXY_CODE_ASSIST_BASE_URL"] = root
        return env

    def flows(self) -> dict[str, OAuthFlow]:
        env = self.env()
        return {name: oauth_flow(name, env=env) for name in ("codex", "claude", "gemini")}

    def issue_refresh_token(self, style: str, email: str | None = None) -> str:
        token = f"rt-{style}-{secrets.token_hex(6)}"
        self._refresh[token] = (style, email or self.emails[style])
        return token

    def auth_file(self, style: str, *, expires_in: float = 3600) -> dict[str, Any]:
        """An auth file in CLIProxyAPI's layout whose tokens this simulator accepts."""
        email = self.emails[style]
        access = f"at-{style}-{secrets.token_hex(8)}"
        self._access[access] = email
        refresh = self.issue_refresh_token(style, email)
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
        if style == "gemini":
            return {
                "type": "gemini",
                "token": {
                    "access_token": access,
                    "token_type": "Bearer",
                    "refresh_token": refresh,
                    "expiry": expiry,
                    "client_id": GOOGLE_FLOW.client_id,
                    "client_secret": GOOGLE_FLOW.client_secret,
                    "scopes": list(GOOGLE_FLOW.scopes),
                    "token_uri": "https://oauth2.googleapis.com/token",
                },
                "project_id": "proj-1",
                "email": email,
                "auto": True,
                "checked": True,
            }
        raw: dict[str, Any] = {
            "type": style,
            "access_token": access,
            "refresh_token": refresh,
            "email": email,
            "expired": expiry,
            "last_refresh": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if style == "codex":
            raw["account_id"] = self.account_id
        return raw

    def revoke(self, refresh_token: str) -> None:
        self.revoked.add(refresh_token)

    def access_token_valid(self, token: str) -> bool:
        return token in self._access

    # ----- app --------------------------------------------------------------------------------

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/authorize", self._authorize, methods=["GET"]),
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/oauth2/v1/userinfo", self._userinfo, methods=["GET"]),
                Route("/v1internal:loadCodeAssist", self._load_code_assist, methods=["POST"]),
                Route("/v1internal:onboardUser", self._onboard_user, methods=["POST"]),
            ]
        )

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        style = STYLES.get(q.get("client_id", ""))
        if style is None:
            return oauth_error(400, "invalid_client", "unknown client_id")
        redirect = q.get("redirect_uri", "")
        parts = urlsplit(redirect)
        if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1"):
            return oauth_error(400, "invalid_request", "redirect_uri must be a loopback http URL")
        if parts.path != CALLBACK_PATHS[style]:
            return oauth_error(
                400, "invalid_request", f"redirect_uri path must be {CALLBACK_PATHS[style]}"
            )
        if q.get("response_type") != "code":
            return oauth_error(400, "unsupported_response_type", "response_type must be code")
        challenge = q.get("code_challenge", "")
        if q.get("code_challenge_method") != "S256" or len(challenge) < 43:
            return oauth_error(400, "invalid_request", "PKCE S256 code_challenge required")
        if not q.get("state"):
            return oauth_error(400, "invalid_request", "state required")
        if not q.get("scope"):
            return oauth_error(400, "invalid_scope", "scope required")
        if style == "claude" and q.get("code") != "true":
            return oauth_error(400, "invalid_request", "code=true required")
        if style == "gemini" and q.get("access_type") != "offline":
            return oauth_error(400, "invalid_request", "access_type=offline required")
        code = "code-" + secrets.token_hex(8)
        self._codes[code] = _Grant(style, redirect, challenge, self.emails[style])
        target = redirect + "?" + urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(target, status_code=302)

    async def _token(self, request: Request) -> Response:
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            params = orjson.loads(body or b"{}")
        else:
            params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.token_requests.append(
            {
                "content_type": content_type,
                **params,
                "_user_agent": request.headers.get("user-agent"),
            }
        )
        self.token_headers.append(dict(request.headers))
        style = STYLES.get(str(params.get("client_id", "")))
        if style is None:
            return oauth_error(401, "invalid_client", "unknown client_id")
        # Anthropic takes JSON only, Google a form only; OpenAI takes either (codex logs in
        # with a form and refreshes with JSON).
        is_json = content_type.startswith("application/json")
        if (style == "claude" and not is_json) or (style == "gemini" and is_json):
            return oauth_error(400, "invalid_request", "wrong body encoding for this client")
        if style == "gemini" and params.get("client_secret") != GOOGLE_FLOW.client_secret:
            return oauth_error(401, "invalid_client", "client_secret mismatch")
        grant = params.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(style, params)
        if grant == "refresh_token":
            return await self._refresh_grant(style, params)
        return oauth_error(400, "unsupported_grant_type", str(grant))

    def _code_grant(self, style: str, params: dict[str, Any]) -> Response:
        issued = self._codes.pop(str(params.get("code", "")), None)
        if issued is None or issued.style != style:
            return oauth_error(400, "invalid_grant", "unknown or used code")
        if params.get("redirect_uri") != issued.redirect_uri:
            return oauth_error(400, "invalid_grant", "redirect_uri mismatch")
        if not pkce_matches(str(params.get("code_verifier", "")), issued.challenge):
            return oauth_error(400, "invalid_grant", "PKCE verification failed")
        if style == "claude" and not params.get("state"):
            return oauth_error(400, "invalid_request", "state required")
        refresh = self.issue_refresh_token(style, issued.email)
        return JSONResponse(self._tokens(style, issued.email, refresh))

    async def _refresh_grant(self, style: str, params: dict[str, Any]) -> Response:
        self.refresh_calls += 1
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        if self.fail_token_with:
            status = self.fail_token_with.popleft()
            return oauth_error(status, "temporarily_unavailable", "scripted failure")
        token = str(params.get("refresh_token", ""))
        known = self._refresh.get(token)
        if known is None or token in self.revoked or known[0] != style:
            return oauth_error(400, "invalid_grant", "refresh token revoked or unknown")
        email = known[1]
        new_refresh = None
        if self.rotate_refresh_tokens:
            self.revoked.add(token)
            new_refresh = self.issue_refresh_token(style, email)
        return JSONResponse(self._tokens(style, email, new_refresh))

    def _tokens(self, style: str, email: str, refresh: str | None) -> dict[str, Any]:
        access = f"at-{style}-{secrets.token_hex(8)}"
        self._access[access] = email
        reply: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if refresh is not None:
            reply["refresh_token"] = refresh
        if style == "codex":
            now = int(time.time())
            reply["id_token"] = unsigned_jwt(
                {
                    "iss": "https://auth.openai.com",
                    "email": email,
                    "iat": now,
                    "exp": now + 3600,
                    OPENAI_AUTH_CLAIM: {
                        "chatgpt_account_id": self.account_id,
                        "chatgpt_plan_type": self.plan,
                    },
                }
            )
        elif style == "claude":
            reply["account"] = {"uuid": "acc-uuid-1", "email_address": email}
            reply["organization"] = {"uuid": "org-uuid-1", "name": "Sim Org"}
        else:
            reply["scope"] = " ".join(GOOGLE_FLOW.scopes)
        return reply

    def _bearer_email(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return self._access.get(auth.removeprefix("Bearer ").strip())

    async def _userinfo(self, request: Request) -> Response:
        email = self._bearer_email(request)
        if email is None:
            return oauth_error(401, "invalid_token", "bad access token")
        return JSONResponse({"id": "1234", "email": email, "verified_email": True})

    async def _load_code_assist(self, request: Request) -> Response:
        if self._bearer_email(request) is None:
            return oauth_error(401, "invalid_token", "bad access token")
        if self.existing_project:
            return JSONResponse(
                {
                    "currentTier": {"id": "free-tier"},
                    "allowedTiers": [{"id": "free-tier", "isDefault": True}],
                    "cloudaicompanionProject": self.existing_project,
                }
            )
        tier = {"id": "standard-tier" if self.user_project_tier else "free-tier", "isDefault": True}
        if self.user_project_tier:
            tier["userDefinedCloudaicompanionProject"] = True
        return JSONResponse({"allowedTiers": [tier]})

    async def _onboard_user(self, request: Request) -> Response:
        if self._bearer_email(request) is None:
            return oauth_error(401, "invalid_token", "bad access token")
        body = orjson.loads(await request.body() or b"{}")
        if not body.get("tierId"):
            return oauth_error(400, "invalid_request", "tierId required")
        self.onboard_calls += 1
        if self.onboard_calls < 2:  # a long-running operation, done on the second poll
            return JSONResponse({"name": "operations/onboard-1", "done": False})
        return JSONResponse(
            {
                "name": "operations/onboard-1",
                "done": True,
                "response": {
                    "cloudaicompanionProject": {"id": self.onboard_project, "name": "Sim"}
                },
            }
        )


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 S256: the challenge is the unpadded base64url SHA-256 of the verifier."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge


def oauth_error(status: int, code: str, description: str) -> Response:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


# Named fixtures, so a test module can import them without shadowing its own parameters:
#     from tests.simulators.oauth_sim import oauth_sim_fixture, oauth_sim_server_fixture


@pytest.fixture(scope="module", name="_oauth_sim_server")
def oauth_sim_server_fixture() -> Iterator[OAuthSim]:
    with OAuthSim() as sim:
        yield sim


@pytest.fixture(name="oauth_sim")
def oauth_sim_fixture(_oauth_sim_server: OAuthSim) -> OAuthSim:
    _oauth_sim_server.reset()
    return _oauth_sim_server
