"""Antigravity's Google side in one loopback server: the Google OAuth endpoints for its client,
userinfo (v2), and the Code Assist backend as the IDE reaches it.

Routes: GET /o/oauth2/v2/auth, POST /token, GET /oauth2/v2/userinfo, and
POST /v1internal:{loadCodeAssist, onboardUser, fetchAvailableModels, generateContent,
streamGenerateContent, countTokens}.

What it enforces, as the real backend does (or as the IDE always sends, so that a difference
is a bug): Antigravity's client id and secret, its five scopes, offline access, form-encoded
token calls; a User-Agent `antigravity/hub/<version> <os>/<arch>` at or above
``min_version`` ("This version of Antigravity is no longer supported" below it); no header
beyond Content-Type, User-Agent and Authorization (plus HTTP's own); the envelope
{model, userAgent: "antigravity", requestType, project, requestId: "agent-...",
request: {contents, sessionId}} with no safetySettings and no top-level toolConfig; for
Claude models VALIDATED function calling and maxOutputTokens within the cap.

Point the proxy at it with ``env()``; script generation replies with ``queue``.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from cliproxy.auth.flows import oauth_flow
from cliproxy.providers.client_profiles import version_key

from .code_assist_sim import CodeAssistSim
from .core import RecordedRequest, Turn
from .oauth_sim import oauth_error, pkce_matches

FLOW = oauth_flow("antigravity", env={})
GENERATION = ("generateContent", "streamGenerateContent", "countTokens")
_UA = re.compile(r"^antigravity/hub/(\d+(?:\.\d+)*) [a-z]+/[a-z0-9_]+( |$)")
# Headers any HTTP client adds; anything else came from somewhere it should not.
_HTTP_OWN = {"host", "content-length", "accept", "accept-encoding", "connection"}
_SENT = {"content-type", "user-agent", "authorization"}
STALE = "This version of Antigravity is no longer supported. Please update to the latest version."
CLAUDE_CAP = 64000


class AntigravitySim(CodeAssistSim):
    default_models = (
        "gemini-3-flash",
        "claude-sonnet-4-6",
        "claude-opus-4-6-thinking",
        "gemini-3.1-pro-low",
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Issued tokens outlive reset(), as Google's do: a module's proxy still holds them.
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (redirect_uri, challenge)
        self._refresh: set[str] = set()
        self._access: set[str] = set()
        self.reset()

    def reset(self) -> None:
        """Forget scripting, requests and counters (not the tokens issued)."""
        super().reset()
        self.email = "agy.user@example.com"
        self.min_version = "2.9.0"
        self.expires_in = 3600
        self.existing_project: str | None = None
        self.onboard_project = "agy-project-7"
        self.onboard_calls = 0
        self.refresh_calls = 0
        self.control_calls: list[RecordedRequest] = []

    # ----- for tests --------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment that points the Antigravity login (and its generation hosts) here."""
        root = self.root_url
        return {
            "CLIPROXY_ANTIGRAVITY_AUTHORIZE_URL": f"{root}/o/oauth2/v2/auth",
            "CLIPROXY_ANTIGRAVITY_TOKEN_URL": f"{root}/token",
            "CLIPROXY_ANTIGRAVITY_USERINFO_URL": f"{root}/oauth2/v2/userinfo?alt=json",
            "CLIPROXY_ANTIGRAVITY_CODE_ASSIST_BASE_URL": root,
            "CLIPROXY_ANTIGRAVITY_BASE_URLS": root,
        }

    def auth_file(self, *, expires_in: float = 3600, project: str = "agy-proj-1") -> dict[str, Any]:
        """An auth file in the reference's layout whose tokens this simulator accepts."""
        now = time.time()
        return {
            "type": "antigravity",
            "access_token": self._issue_access(),
            "refresh_token": self._issue_refresh(),
            "expires_in": int(expires_in),
            "timestamp": int(now * 1000),
            "expired": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + expires_in)),
            "project_id": project,
            "email": self.email,
        }

    def share_tokens_with(self, other: AntigravitySim) -> None:
        """Accept the tokens ``other`` issues (two hosts of one backend: daily and prod)."""
        self._access = other._access
        self._refresh = other._refresh

    def _issue_access(self) -> str:
        token = f"ya29.agy-{secrets.token_hex(8)}"
        self._access.add(token)
        return token

    def _issue_refresh(self) -> str:
        token = f"1//agy-{secrets.token_hex(8)}"
        self._refresh.add(token)
        return token

    # ----- app --------------------------------------------------------------------------------

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/o/oauth2/v2/auth", self._authorize, methods=["GET"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/oauth2/v2/userinfo", self._userinfo, methods=["GET"]),
                Route("/v1internal:{method}", self._v1internal, methods=["POST"]),
            ]
        )

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != FLOW.client_id:
            return oauth_error(400, "invalid_client", "The OAuth client was not found.")
        redirect = urlsplit(q.get("redirect_uri", ""))
        if (
            redirect.hostname not in ("localhost", "127.0.0.1")
            or redirect.path != "/oauth-callback"
        ):
            return oauth_error(400, "redirect_uri_mismatch", "redirect_uri is not registered")
        missing = set(FLOW.scopes) - set(q.get("scope", "").split())
        if missing:
            return oauth_error(400, "invalid_scope", f"missing scopes {sorted(missing)}")
        if q.get("access_type") != "offline" or q.get("response_type") != "code":
            return oauth_error(400, "invalid_request", "access_type=offline, response_type=code")
        if not q.get("state"):
            return oauth_error(400, "invalid_request", "state required")
        code = "4/agy-" + secrets.token_hex(8)
        self._codes[code] = (q["redirect_uri"], q.get("code_challenge", ""))
        target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(target, status_code=302)

    async def _token(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return oauth_error(400, "invalid_request", "Google's token endpoint takes a form")
        params = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if params.get("client_id") != FLOW.client_id:
            return oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if params.get("client_secret") != FLOW.client_secret:
            return oauth_error(401, "invalid_client", "Unauthorized")
        grant = params.get("grant_type")
        if grant == "authorization_code":
            issued = self._codes.pop(params.get("code", ""), None)
            if issued is None or params.get("redirect_uri") != issued[0]:
                return oauth_error(400, "invalid_grant", "Bad Request")
            if issued[1] and not pkce_matches(params.get("code_verifier", ""), issued[1]):
                return oauth_error(400, "invalid_grant", "code_verifier mismatch")
            return JSONResponse(self._tokens(self._issue_refresh()))
        if grant == "refresh_token":
            self.refresh_calls += 1
            if params.get("refresh_token") not in self._refresh:
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            return JSONResponse(self._tokens(None))
        return oauth_error(400, "unsupported_grant_type", str(grant))

    def _tokens(self, refresh: str | None) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "access_token": self._issue_access(),
            "expires_in": self.expires_in,
            "scope": " ".join(FLOW.scopes),
            "token_type": "Bearer",
        }
        if refresh is not None:
            reply["refresh_token"] = refresh
        return reply

    def _known_token(self, headers: Any) -> bool:
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        return token in self._access or token in self.api_keys

    async def _userinfo(self, request: Request) -> Response:
        if not self._known_token(request.headers):
            return oauth_error(401, "invalid_token", "Invalid Credentials")
        return JSONResponse({"id": "10987", "email": self.email, "verified_email": True})

    # ----- Code Assist ------------------------------------------------------------------------

    async def _v1internal(self, request: Request) -> Response:
        method = request.path_params["method"]
        generation = method in GENERATION
        rec = await self.record(request, read=not generation)
        if not generation:
            self.control_calls.append(rec)
        if not self._known_token(rec.headers):
            return self.error_response(401, "Request had invalid authentication credentials.")
        if problem := self._header_problem(rec, method):
            return self.error_response(400, problem)
        body = rec.json if isinstance(rec.json, dict) else {}
        if method == "loadCodeAssist":
            return self._load(body)
        if method == "onboardUser":
            return self._onboard(body, rec)
        if method == "fetchAvailableModels":
            return self._available(body)
        if not generation:
            return self.error_response(404, f"Method not found: {method}")
        if method == "countTokens":
            inner = body.get("request") if isinstance(body.get("request"), dict) else {}
            return self.json_response({"totalTokens": self.counted_tokens(inner)})
        if problem := envelope_problem(body):
            return self.error_response(400, problem)
        reply = self._quota_for(body) or self.next_reply(rec)
        turn = Turn(model=str(body["model"]), request=rec)
        return self.respond(reply, turn, stream=method == "streamGenerateContent")

    def _header_problem(self, rec: RecordedRequest, method: str) -> str | None:
        match = _UA.match(rec.headers.get("user-agent", ""))
        if match is None:
            return f"unexpected User-Agent {rec.headers.get('user-agent')!r}"
        if version_key(match.group(1)) < version_key(self.min_version):
            return STALE
        if method in GENERATION:
            foreign = set(rec.headers) - _HTTP_OWN - _SENT
            if foreign:
                return f"unexpected headers {sorted(foreign)}"
        return None

    def _load(self, body: dict[str, Any]) -> Response:
        metadata = body.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("ideType") != "ANTIGRAVITY":
            return self.error_response(400, "metadata.ideType must be ANTIGRAVITY")
        reply: dict[str, Any] = {"allowedTiers": [{"id": "free-tier", "isDefault": True}]}
        if self.existing_project:
            reply["currentTier"] = {"id": "free-tier"}
            reply["cloudaicompanionProject"] = self.existing_project
        return self.json_response(reply)

    def _onboard(self, body: dict[str, Any], rec: RecordedRequest) -> Response:
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        wanted = {"ide_type": "ANTIGRAVITY", "ide_name": "antigravity"}
        if not body.get("tier_id") or any(metadata.get(k) != v for k, v in wanted.items()):
            return self.error_response(400, "tier_id and the ide metadata are required")
        ua_version = _UA.match(rec.headers["user-agent"])
        if ua_version is None or metadata.get("ide_version") != ua_version.group(1):
            return self.error_response(400, "metadata.ide_version must name the client version")
        if not rec.headers["user-agent"].endswith(" google-api-nodejs-client/10.3.0"):
            return self.error_response(400, "onboardUser comes from the node client library")
        self.onboard_calls += 1
        if self.onboard_calls < 2:  # a long-running operation, done on the second poll
            return self.json_response({"name": "operations/agy-onboard", "done": False})
        project = {"id": self.onboard_project, "name": "Antigravity"}
        return self.json_response(
            {
                "name": "operations/agy-onboard",
                "done": True,
                "response": {"cloudaicompanionProject": project},
            }
        )

    def _available(self, body: dict[str, Any]) -> Response:
        if not body.get("project"):
            return self.error_response(400, "project is required")
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        models: dict[str, Any] = {"chat_20706": {}}  # an internal model: no client asks for it
        for model in self.models:
            spent = self._quota_for({"project": body["project"], "model": model}) is not None
            models[model] = {
                "displayName": model,
                "quotaInfo": {"remainingFraction": 0.0 if spent else 0.6, "resetTime": reset},
            }
        return self.json_response({"models": models})


def envelope_problem(body: dict[str, Any]) -> str | None:
    """Why the backend would refuse this generation envelope, or None."""
    checks = [
        (isinstance(body.get("model"), str) and body["model"], "model is required"),
        (body.get("userAgent") == "antigravity", "userAgent must be antigravity"),
        (body.get("requestType") in ("agent", "image_gen", "web_search"), "bad requestType"),
        (isinstance(body.get("project"), str) and body["project"], "project is required"),
        (str(body.get("requestId", "")).startswith("agent-"), "requestId must be agent-<uuid>"),
        ("toolConfig" not in body, "toolConfig belongs inside request"),
    ]
    for ok, problem in checks:
        if not ok:
            return problem
    inner = body.get("request")
    if not isinstance(inner, dict) or not inner.get("contents"):
        return "request.contents is required"
    if not isinstance(inner.get("sessionId"), str) or not inner["sessionId"]:
        return "request.sessionId is required"
    if "safetySettings" in inner or "safety_settings" in inner:
        return "request.safetySettings is not accepted"
    if "claude" in body["model"]:
        config = inner.get("generationConfig") or {}
        if int(config.get("maxOutputTokens") or 0) > CLAUDE_CAP:
            return f"max_tokens: {config['maxOutputTokens']} > {CLAUDE_CAP}"
        mode = (inner.get("toolConfig") or {}).get("functionCallingConfig", {}).get("mode")
        if mode != "VALIDATED":
            return "Claude models need toolConfig.functionCallingConfig.mode VALIDATED"
    return None


def no_capacity(model: str) -> dict[str, Any]:
    """The body of a 503 a host sends when it has no capacity for a model right now."""
    return {
        "error": {
            "code": 503,
            "message": f"No capacity available for model {model} on the server",
            "status": "UNAVAILABLE",
        }
    }
