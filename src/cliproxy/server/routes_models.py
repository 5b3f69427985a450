"""Model listings. GET /v1/models is shared by three SDKs and answers in the asker's shape."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request as HTTPRequest
from starlette.responses import Response

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.routing.registry import ModelInfo
from cliproxy.server.errors import models_protocol
from cliproxy.server.key_policy import check_model, policy_of
from cliproxy.server.pinned import pin_of
from cliproxy.state import AppState

_STARTED = int(time.time())


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def openai_model(info: ModelInfo) -> dict[str, Any]:
    return {"id": info.id, "object": "model", "created": _STARTED, "owned_by": info.owned_by}


def anthropic_model(info: ModelInfo) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_STARTED))
    return {"type": "model", "id": info.id, "display_name": info.id, "created_at": created}


def gemini_model(info: ModelInfo) -> dict[str, Any]:
    return {
        "name": f"models/{info.id}",
        "baseModelId": info.id,
        "version": "001",
        "displayName": info.id,
        "description": f"served by {info.owned_by}",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    }


async def list_models(request: HTTPRequest) -> Response:
    state: AppState = request.app.state.cliproxy
    pin = pin_of(request.scope, state)
    registry = state.runtime.registry
    models = registry.models() if pin is None else pin.models(registry)
    policy = policy_of(request.scope)
    if policy is not None and policy.allowed_models is not None:
        models = [info for info in models if policy.allows(info.id)]  # what the key may use
    protocol = models_protocol(request.url.path, dict(request.headers))
    if protocol.name == "anthropic":
        data = [anthropic_model(m) for m in models]
        return _json(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
    if protocol.name == "gemini":
        return _json({"models": [gemini_model(m) for m in models]})
    return _json({"object": "list", "data": [openai_model(m) for m in models]})


async def get_model(request: HTTPRequest) -> Response:
    state: AppState = request.app.state.cliproxy
    name = request.path_params["target"].removeprefix("models/")
    info = state.runtime.registry.model(name)
    pin = pin_of(request.scope, state)
    if info is not None and pin is not None:
        pin.candidates(state.runtime.registry.candidates)(name)  # 404 when not the pin's
    if info is None:
        raise ProxyError(ErrorKind.NOT_FOUND, f"model '{name}' is not served here", param="model")
    check_model(request.scope, name)
    protocol = models_protocol(request.url.path, dict(request.headers))
    if protocol.name == "anthropic":
        return _json(anthropic_model(info))
    if protocol.name == "gemini":
        return _json(gemini_model(info))
    return _json(openai_model(info))
