"""Google Vertex AI upstream, with the OAuth token endpoint its service accounts use.

Routes, as Vertex has them (the Gemini body and replies are GeminiSim's):
- ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:{method}``: a Bearer
  access token this simulator minted for a service account of project ``p``.
- ``POST /v1/publishers/google/models/{m}:{method}``: express mode, ``x-goog-api-key``.
- ``POST /token``: the JWT-bearer grant (RFC 7523) a service account signs with its private
  key; the signature is checked with the public key of the account ``service_account()``
  made, as are the audience, the scope and the times, and a short-lived token is handed out.

Vertex enforces what AI Studio does not: every content needs a role (user or model). Errors
have Google's ``{"error": {"code", "message", "status"}}`` shape; an OAuth error is
``{"error", "error_description"}``.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import RecordedRequest, Turn
from .gemini_sim import GeminiSim

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
_METHODS = ("generateContent", "streamGenerateContent", "countTokens")
_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential."
)


@dataclass
class _Account:
    email: str
    project: str
    key_id: str
    public_key: rsa.RSAPublicKey


@dataclass(frozen=True)
class Issued:
    token: str
    email: str
    project: str
    expires_at: float


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class VertexSim(GeminiSim):
    """base_url (http://127.0.0.1:PORT) stands in for every regional and the global host."""

    default_models = ("gemini-2.5-flash", "gemini-2.5-pro")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._accounts: dict[str, _Account] = {}
        self._issued: dict[str, Issued] = {}
        self._grants = 0
        self._guard = threading.Lock()
        self.token_lifetime = 3600  # seconds each minted token is good for

    def build_app(self) -> Starlette:
        models = "publishers/google/models/{target:path}"
        return Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route(
                    f"/v1/projects/{{project}}/locations/{{location}}/{models}",
                    self._project_call,
                    methods=["POST"],
                ),
                Route(f"/v1/{models}", self._express_call, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        super().reset()
        with self._guard:
            self._issued.clear()
            self._grants = 0
        self.token_lifetime = 3600

    # ----- test helpers -----------------------------------------------------------------------

    def service_account(
        self, project: str = "sim-project", name: str = "cliproxy"
    ) -> dict[str, Any]:
        """A new service-account key file for ``project`` whose tokens this simulator mints."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        email = f"{name}@{project}.iam.gserviceaccount.com"
        key_id = uuid.uuid4().hex
        with self._guard:
            self._accounts[email] = _Account(email, project, key_id, key.public_key())
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": "1" + str(uuid.uuid4().int)[:20],
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": f"{self.base_url}/token",
            "universe_domain": "googleapis.com",
        }

    @property
    def grants(self) -> int:
        """How many tokens the token endpoint has minted."""
        with self._guard:
            return self._grants

    def expire_tokens(self) -> None:
        """Every token minted so far stops being accepted (as if its hour were up)."""
        with self._guard:
            self._issued = {
                token: Issued(i.token, i.email, i.project, 0.0) for token, i in self._issued.items()
            }

    # ----- the token endpoint -----------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        await self.record(request, read=True)  # reads the body first: form() reuses it
        form = await request.form()
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type.")
        assertion = str(form.get("assertion") or "")
        claims, problem = self._verified_claims(assertion)
        if problem or claims is None:
            return _oauth_error("invalid_grant", problem or "Invalid JWT.")
        account = self._accounts[str(claims["iss"])]
        token = "ya29.sim-" + uuid.uuid4().hex
        with self._guard:
            self._grants += 1
            self._issued[token] = Issued(
                token, account.email, account.project, time.time() + self.token_lifetime
            )
        body = {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        return self.json_response(body)

    def _verified_claims(self, assertion: str) -> tuple[dict[str, Any] | None, str]:
        pieces = assertion.split(".")
        if len(pieces) != 3:
            return (
                None,
                "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
            )
        try:
            header = orjson.loads(_b64url(pieces[0]))
            claims = orjson.loads(_b64url(pieces[1]))
            signature = _b64url(pieces[2])
        except (ValueError, orjson.JSONDecodeError):
            return None, "Invalid JWT: cannot decode"
        if header.get("alg") != "RS256":
            return None, "Invalid JWT: alg must be RS256"
        account = self._accounts.get(str(claims.get("iss")))
        if account is None:
            return None, "Invalid JWT Signature."  # Google's answer for an unknown account
        try:
            account.public_key.verify(
                signature,
                f"{pieces[0]}.{pieces[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return None, "Invalid JWT Signature."
        now = time.time()
        if header.get("kid") not in (None, account.key_id):
            return None, "Invalid JWT Signature."
        # google-auth names Google's own endpoint as the audience whatever token_uri says.
        if claims.get("aud") not in (f"{self.base_url}/token", GOOGLE_TOKEN_URI):
            return None, "Invalid JWT: aud is not this token endpoint"
        if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
            return None, "Invalid JWT: the scope must include cloud-platform"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return None, "Invalid JWT: iat and exp are required"
        if exp - iat > 3600 or exp < now or iat > now + 300:
            return None, "Invalid JWT: Token must be a short-lived token (60 minutes)"
        return claims, ""

    # ----- model calls ------------------------------------------------------------------------

    async def _project_call(self, request: Request) -> Response:
        rec = await self.record(request)
        auth = rec.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        with self._guard:
            issued = self._issued.get(token)
        if issued is None or issued.expires_at <= time.time():
            return self.error_response(401, _UNAUTHENTICATED, error_type="UNAUTHENTICATED")
        project = request.path_params["project"]
        if project != issued.project:
            message = (
                f"Permission 'aiplatform.endpoints.predict' denied on resource "
                f"'projects/{project}/locations/{request.path_params['location']}' "
                "(or it may not exist)."
            )
            return self.error_response(403, message, error_type="PERMISSION_DENIED")
        return self._answer(rec, request.path_params["target"])

    async def _express_call(self, request: Request) -> Response:
        rec = await self.record(request)
        if denied := self.check_auth(rec):
            return denied
        return self._answer(rec, request.path_params["target"])

    def _answer(self, rec: RecordedRequest, target: str) -> Response:
        model, _, method = target.rpartition(":")
        if method not in _METHODS or not model:
            return self.error_response(404, f"Method not found: {method}")
        if model not in self.models:
            message = (
                f"Publisher Model `publishers/google/models/{model}` was not found or your "
                "project does not have access to it."
            )
            return self.error_response(404, message)
        body = rec.json
        if self.validate and (problem := _vertex_problem(body, method)):
            return self.error_response(400, problem)
        if method == "countTokens":
            count = self.counted_tokens(body)
            return self.json_response({"totalTokens": count, "totalBillableCharacters": count * 4})
        return self.respond(
            self.next_reply(rec),
            Turn(model=model, request=rec),
            stream=method == "streamGenerateContent",
        )


def _vertex_problem(body: Any, method: str) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    if "generateContentRequest" in body:
        # AI Studio's countTokens shape; Vertex has no such field.
        return 'Invalid JSON payload received. Unknown name "generateContentRequest": Cannot find field.'
    contents = body.get("contents")
    if method != "countTokens" and not contents:
        return "Unable to submit request because it must include at least one parts field."
    for content in contents or []:
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            return "Please use a valid role: user, model."
    return None


def _oauth_error(code: str, description: str) -> Response:
    payload = {"error": code, "error_description": description}
    return Response(orjson.dumps(payload), status_code=400, media_type="application/json")
