"""Client routes for the OpenAI, Anthropic and Gemini generation endpoints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any

from starlette.requests import Request as HTTPRequest
from starlette.responses import Response

from cliproxy.model import Request, invalid
from cliproxy.protocols.base import StreamEncoder, WireProtocol
from cliproxy.protocols.gemini_interactions_request import interaction_model
from cliproxy.protocols.gemini_stream import GeminiStreamEncoder
from cliproxy.protocols.registry import (
    ANTHROPIC,
    GEMINI,
    GEMINI_INTERACTIONS,
    OPENAI_CHAT,
    OPENAI_COMPLETIONS,
    OPENAI_RESPONSES,
)
from cliproxy.server.call import ClientCall, read_json_body, require_model, require_stream_flag
from cliproxy.server.count import count_tokens
from cliproxy.server.forward import forward
from cliproxy.server.key_policy import admit, check_model
from cliproxy.server.outcomes import track_of
from cliproxy.server.pinned import pin_of
from cliproxy.state import AppState

_NO_QUERY: Mapping[str, str] = {}


def _query(request: HTTPRequest) -> Mapping[str, str]:
    # Most calls have no query string; skip building Starlette's QueryParams for them.
    return request.query_params if request.scope.get("query_string") else _NO_QUERY


def _state(request: HTTPRequest) -> AppState:
    state: AppState = request.app.state.cliproxy
    return state


async def _simple_call(
    request: HTTPRequest, protocol: WireProtocol, model_of: Callable[[Any], str] = require_model
) -> Response:
    started = perf_counter()
    state = _state(request)
    body, foreign = await read_json_body(request, state.runtime.config.request_body_limit_bytes)
    call = ClientCall(
        protocol=protocol,
        body=body,
        model=model_of(body),
        stream=require_stream_flag(body),
        headers=request.headers,
        query=_query(request),
        started=started,
        carries_foreign_reasoning=foreign,
        track=track_of(request.scope),
        pin=pin_of(request.scope, state),
    )
    admit(request.scope, state.key_limits, call.model, protocol.name, call.stream)
    return await forward(state, call)


async def chat_completions(request: HTTPRequest) -> Response:
    return await _simple_call(request, OPENAI_CHAT)


async def completions(request: HTTPRequest) -> Response:
    return await _simple_call(request, OPENAI_COMPLETIONS)


async def responses(request: HTTPRequest) -> Response:
    return await _simple_call(request, OPENAI_RESPONSES)


async def messages(request: HTTPRequest) -> Response:
    return await _simple_call(request, ANTHROPIC)


async def interactions(request: HTTPRequest) -> Response:
    """POST /v1beta/interactions: exactly one of model (served) or agent (refused)."""
    return await _simple_call(request, GEMINI_INTERACTIONS, interaction_model)


async def messages_count_tokens(request: HTTPRequest) -> Response:
    started = perf_counter()
    state = _state(request)
    body, _ = await read_json_body(request, state.runtime.config.request_body_limit_bytes)
    model = require_model(body)
    check_model(request.scope, model)
    return await count_tokens(state, ANTHROPIC, model, body, request, started)


def _gemini_array_encoder(request: Request) -> StreamEncoder:
    return GeminiStreamEncoder(request, sse=False)


GEMINI_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


async def gemini_post(request: HTTPRequest) -> Response:
    """POST /v1beta/models/{model}:{method} (also under /v1/models/...)."""
    started = perf_counter()
    target = request.path_params["target"]
    model, sep, method = target.rpartition(":")
    model = model.removeprefix("models/")
    if not sep or not model or method not in GEMINI_METHODS:
        raise invalid(
            f"unknown Gemini method in '{target}'; expected {{model}}:" + "|".join(GEMINI_METHODS)
        )
    state = _state(request)
    body, foreign = await read_json_body(request, state.runtime.config.request_body_limit_bytes)
    if method == "countTokens":
        check_model(request.scope, model)
        return await count_tokens(state, GEMINI, model, body, request, started)
    call = ClientCall(
        protocol=GEMINI,
        body=body,
        model=model,
        stream=method == "streamGenerateContent",
        headers=request.headers,
        query=request.query_params,
        started=started,
        carries_foreign_reasoning=foreign,
        track=track_of(request.scope),
        pin=pin_of(request.scope, state),
    )
    if call.stream and request.query_params.get("alt") != "sse":
        # Without alt=sse Gemini streams one JSON array; only our own encoder writes that.
        call.encoder_factory = _gemini_array_encoder
        call.stream_media_type = "application/json"
    admit(request.scope, state.key_limits, model, GEMINI.name, call.stream)
    return await forward(state, call)
