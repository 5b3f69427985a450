"""Vertex AI: Google's Gemini models on Google Cloud, spoken in the same Gemini body.

Two ways in, one wire. A service-account auth file (``type: vertex``, imported with
``cliproxy login vertex --service-account``) is a Google Cloud project: its token is minted
from the service account (auth/vertex_account.py) and its URLs name the project and region,
``https://{location}-aiplatform.googleapis.com/v1/projects/{p}/locations/{location}/publishers/
google/models/{m}:{action}`` (``global`` has no region in the host). A ``vertex-api-key`` entry
of config.yaml (Vertex express mode, or a Vertex-compatible gateway) sends ``x-goog-api-key`` to
``{base-url}/v1/publishers/google/models/{m}:{action}``, with no project or region.

Only the ``google`` publisher is reached: partner models on Vertex (Anthropic's, Llama, ...)
speak their own vendors' bodies at ``publishers/<vendor>`` and are not routed, and Imagen's
``:predict`` (instances/parameters, never streamed) has no Gemini body to translate to.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

import orjson

from cliproxy.protocols.gemini import PROTOCOL as GEMINI
from cliproxy.providers.api_keys import api_headers
from cliproxy.providers.base import Credential, Provider, RequestContext, UpstreamRequest
from cliproxy.providers.client_profiles import ClientIdentities

GLOBAL_HOST = "https://aiplatform.googleapis.com"
DEFAULT_LOCATION = "us-central1"
# What a Vertex countTokens body may hold; a Gemini client's {"generateContentRequest": {...}}
# (AI Studio's shape) is unwrapped into these.
_COUNT_FIELDS = ("contents", "systemInstruction", "tools", "generationConfig")


def service_host(location: str) -> str:
    """The Vertex AI endpoint of a region; the ``global`` location has the bare host."""
    location = location.strip() or DEFAULT_LOCATION
    if location == "global":
        return GLOBAL_HOST
    return f"https://{location}-aiplatform.googleapis.com"


def _method(ctx: RequestContext) -> str:
    return "streamGenerateContent?alt=sse" if ctx.stream else "generateContent"


def count_body(body: Mapping[str, object]) -> dict[str, object]:
    """A countTokens body Vertex accepts (it refuses AI Studio's generateContentRequest)."""
    inner = body.get("generateContentRequest")
    source = inner if isinstance(inner, Mapping) else body
    counted = {name: source[name] for name in _COUNT_FIELDS if source.get(name)}
    counted.setdefault("contents", [])
    return counted


class _VertexBase(Provider):
    protocol = GEMINI

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body.pop("model", None)  # the model rides in the URL
        return self._request(credential, model, _method(ctx), body, ctx)

    def build_count_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        return self._request(credential, model, "countTokens", count_body(body), ctx)

    def _request(
        self,
        credential: Credential,
        model: str,
        method: str,
        body: Mapping[str, object],
        ctx: RequestContext,
    ) -> UpstreamRequest:
        url = f"{self.model_url(credential, model)}:{method}"
        return UpstreamRequest(
            url, api_headers(credential, ctx, self.auth(credential)), orjson.dumps(body)
        )

    @abstractmethod
    def model_url(self, credential: Credential, model: str) -> str:
        """The model's URL (before ``:method``) for this kind of Vertex credential."""

    @abstractmethod
    def auth(self, credential: Credential) -> dict[str, str]:
        """The credential's auth header (an API key, or a minted service-account token)."""


class VertexApiKeyProvider(_VertexBase):
    """config.yaml `vertex-api-key`: express mode or a Vertex-compatible gateway."""

    name = "vertex-api-key"

    def model_url(self, credential: Credential, model: str) -> str:
        base = (credential.base_url or GLOBAL_HOST).rstrip("/")
        return f"{base}/v1/publishers/google/models/{model}"

    def auth(self, credential: Credential) -> dict[str, str]:
        return {"x-goog-api-key": credential.secret}


class VertexProvider(_VertexBase):
    """Service-account auth files (``type: vertex``): a project's Vertex AI, by region."""

    name = "vertex"

    def __init__(self, identities: ClientIdentities | None = None) -> None:
        # The catalog hands every account provider the client identities; Vertex has no
        # client of its own to look like.
        del identities

    def models(self) -> list[str]:
        return list(VERTEX_MODELS)

    def model_url(self, credential: Credential, model: str) -> str:
        project = credential.account.get("project_id", "")
        location = credential.account.get("location", "") or DEFAULT_LOCATION
        # A base_url in the file (or $CLIPROXY_VERTEX_BASE_URL) replaces the host only.
        host = (credential.base_url or service_host(location)).rstrip("/")
        return f"{host}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}"

    def auth(self, credential: Credential) -> dict[str, str]:
        return {"authorization": f"Bearer {credential.secret}"}


# Listed in /v1/models for a service account (any gemini-* name is forwarded).
VERTEX_MODELS = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-3-pro-preview",
)
