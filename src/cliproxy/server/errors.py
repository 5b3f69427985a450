"""Which wire protocol a path belongs to, and error replies in that protocol's own JSON."""

from __future__ import annotations

import logging

import orjson
from starlette.responses import Response

from cliproxy.model import ProxyError
from cliproxy.protocols.base import WireProtocol
from cliproxy.protocols.registry import ANTHROPIC, GEMINI, OPENAI_CHAT

log = logging.getLogger(__name__)


def protocol_for(path: str, headers: dict[str, str]) -> WireProtocol:
    """The protocol whose error format a client on ``path`` understands."""
    if path.startswith("/v1/messages"):
        return ANTHROPIC
    if path.startswith(("/v1beta/", "/v1/interactions")):
        return GEMINI
    if path.startswith("/v1/models/") and ":" in path:
        return GEMINI
    if path.rstrip("/") in ("/v1/models", "/v1beta/models"):
        return models_protocol(path, headers)
    return OPENAI_CHAT


def models_protocol(path: str, headers: dict[str, str]) -> WireProtocol:
    """GET /v1/models is shared: the headers tell which SDK is asking (reference/clients.md)."""
    if path.startswith("/v1beta"):
        return GEMINI
    if "anthropic-version" in headers:
        return ANTHROPIC
    if "x-goog-api-key" in headers or "x-goog-api-client" in headers:
        return GEMINI
    return OPENAI_CHAT


def error_response(protocol: WireProtocol, error: ProxyError) -> Response:
    headers = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(max(0, round(error.retry_after)))
    return Response(
        orjson.dumps(protocol.render_error(error)),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )
