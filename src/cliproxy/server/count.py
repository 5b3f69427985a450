"""Token counting: asked of the upstream when it can count, estimated locally otherwise."""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

import aiohttp
import orjson
from starlette.requests import Request as HTTPRequest
from starlette.responses import Response

from cliproxy.model import ProxyError
from cliproxy.protocols.base import CountRequestParser, WireProtocol
from cliproxy.providers.abilities import CountsTokens
from cliproxy.providers.base import RequestContext
from cliproxy.server.pinned import pin_of
from cliproxy.server.resting import fresh_credential
from cliproxy.state import AppState
from cliproxy.usage.tokens import count_request

log = logging.getLogger(__name__)


def estimate_tokens(protocol: WireProtocol, body: dict[str, Any]) -> int:
    """A local count of what the client sent (see usage/tokens.py). Raises the protocol's 400
    for a body it cannot read, as the upstream's counting endpoint would."""
    parse = (
        protocol.parse_count_tokens_request
        if isinstance(protocol, CountRequestParser)
        else protocol.parse_request
    )
    return count_request(parse(body))


def _render(protocol: WireProtocol, tokens: int) -> dict[str, Any]:
    if protocol.name == "gemini":
        return {"totalTokens": tokens}
    return {"input_tokens": tokens}


async def count_tokens(
    state: AppState,
    protocol: WireProtocol,
    model: str,
    body: dict[str, Any],
    request: HTTPRequest,
    started: float,
) -> Response:
    runtime = state.runtime
    pin = pin_of(request.scope, state)
    candidates_for = (
        runtime.registry.candidates if pin is None else pin.candidates(runtime.registry.candidates)
    )
    candidates = candidates_for(model)  # unknown model → 404 like generation
    upstream_seconds = 0.0
    for candidate in candidates:
        provider = candidate.provider
        if not (isinstance(provider, CountsTokens) and provider.protocol is protocol):
            continue
        ctx = RequestContext(False, request.headers, request.query_params, protocol.name)
        credential = candidate.credential
        if credential.account and state.auth_store.get(credential.id) is not None:
            # An account's token may be due (or, for a service account, not minted yet).
            try:
                credential = await fresh_credential(state, credential)
            except ProxyError as exc:
                log.warning("count_tokens via %s: %s", provider.name, exc.message)
                continue
        upstream_request = provider.build_count_request(
            credential, candidate.upstream_model, dict(body), ctx
        )
        sent = perf_counter()
        try:
            upstream = await state.upstream.send(upstream_request, credential.proxy_url)
            try:
                raw = await upstream.read()
            finally:
                upstream.release()
        except (ProxyError, aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            log.warning("count_tokens via %s failed: %s", provider.name, exc)
            upstream_seconds += perf_counter() - sent
            continue
        upstream_seconds += perf_counter() - sent
        if upstream.status == 200:
            overhead = (perf_counter() - started - upstream_seconds) * 1000
            return Response(
                raw,
                200,
                media_type="application/json",
                headers={"x-cliproxy-overhead-ms": f"{overhead:.2f}"},
            )
        log.warning("count_tokens via %s answered %d", provider.name, upstream.status)
        break
    overhead = (perf_counter() - started - upstream_seconds) * 1000
    return Response(
        orjson.dumps(_render(protocol, estimate_tokens(protocol, body))),
        200,
        media_type="application/json",
        headers={"x-cliproxy-overhead-ms": f"{overhead:.2f}"},
    )
