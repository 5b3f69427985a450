"""Answering the client once an upstream replied well: a JSON reply (forwarded or
translated), a stream relayed or translated, a stream collected for a non-streaming client, and
the pass-through path's relay. The forwarding core (forward.py) decides which."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from time import perf_counter

import aiohttp
import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cliproxy.model import ErrorKind, ProxyError, Request, loads_upstream
from cliproxy.protocols.base import StreamEncoder
from cliproxy.protocols.sse import SSEEvent
from cliproxy.providers.base import Provider, UpstreamReply, mask_secret
from cliproxy.routing.attempts import Failure
from cliproxy.routing.registry import Candidate
from cliproxy.server.call import ClientCall
from cliproxy.server.errors import error_response
from cliproxy.server.hangup import WATCHED
from cliproxy.server.relay import (
    StreamOutcome,
    collect_stream,
    relay_json_reply,
    relay_passthrough,
    relay_translated,
)
from cliproxy.server.reply_model import stream_renamer
from cliproxy.server.upstream_errors import is_json_object

log = logging.getLogger(__name__)

SERVED_MODEL_HEADER = "x-cliproxy-model"  # set when a fallback model (model-fallbacks) answered
OVERHEAD_HEADER = "x-cliproxy-overhead-ms"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class RelayResponse(StreamingResponse):
    """A stream to the client, without Starlette's own disconnect listener where CancelOnHangUp
    already watches the connection (it cancels the route, and with it this stream, when the
    client goes away): that listener costs a task group and a second task per stream."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(WATCHED) and self.background is None:
            # The chunks go out from a task of their own. Awaited here, at the bottom of the
            # middleware chain, the stream would resume all ~25 coroutine frames above it for
            # every chunk (and unwind them at every wait); its own task resumes three. A
            # cancel of the request's task (a hang-up) reaches this one through the await.
            await asyncio.get_running_loop().create_task(self.stream_response(send))
            return
        await super().__call__(scope, receive, send)


def overhead_headers(ms: float) -> dict[str, str]:
    return {OVERHEAD_HEADER: f"{ms * 1000:.2f}"}


async def complete(
    call: ClientCall,
    candidate: Candidate,
    upstream: UpstreamReply,
    passthrough: bool,
    upstream_seconds: float,
    headers_at: float,
) -> Response:
    provider = candidate.provider
    assert isinstance(provider, Provider)
    try:
        raw = await upstream.read()
    except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
        raise ProxyError(
            ErrorKind.UPSTREAM, f"upstream reply was cut off ({exc.__class__.__name__})"
        ) from None
    finally:
        upstream.release()
    upstream_seconds += perf_counter() - headers_at
    try:
        data = loads_upstream(raw, f"{provider.name}'s reply")
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise ProxyError(ErrorKind.UPSTREAM, f"{provider.name} sent a reply that is not JSON")
    # Pass-through answers with the client's model name, as translation does (reply_model.py).
    renamed = passthrough and call.model != candidate.upstream_model
    if provider.wraps_replies:
        data = provider.unwrap_json(data)
    if renamed:
        data[call.protocol.reply_model_key] = call.model
    if provider.wraps_replies or renamed:
        raw = orjson.dumps(data)
    if passthrough:
        call.track.usage = provider.protocol.reply_usage(data)
        overhead = overhead_headers(perf_counter() - call.started - upstream_seconds)
        return Response(raw, 200, media_type="application/json", headers=overhead)
    reply = provider.protocol.parse_response(data)
    call.track.usage = reply.usage
    reply.model = call.model
    body = orjson.dumps(call.protocol.render_response(reply))
    overhead = overhead_headers(perf_counter() - call.started - upstream_seconds)
    return Response(body, 200, media_type="application/json", headers=overhead)


async def collect(
    call: ClientCall,
    provider: Provider,
    upstream: UpstreamReply,
    upstream_seconds: float,
    headers_at: float,
) -> Response:
    """A non-streaming client of a stream-only upstream: read the whole stream into one reply
    and answer it as JSON in the client's protocol (pass-through or not, the canonical reply
    is rendered, since the upstream never sent a JSON body to forward)."""
    reply = await collect_stream(
        upstream, provider.protocol.stream_decoder(), _event_unwrapper(provider)
    )
    upstream_seconds += perf_counter() - headers_at
    call.track.usage = reply.usage
    reply.model = call.model
    body = orjson.dumps(call.protocol.render_response(reply))
    overhead = overhead_headers(perf_counter() - call.started - upstream_seconds)
    return Response(body, 200, media_type="application/json", headers=overhead)


def _event_unwrapper(provider: Provider) -> Callable[[SSEEvent], SSEEvent] | None:
    return provider.unwrap_stream_event if provider.wraps_replies else None


def stream(
    call: ClientCall,
    candidate: Candidate,
    upstream: UpstreamReply,
    passthrough: bool,
    canonical: Request | None,
    overhead: dict[str, str],
) -> Response:
    provider = candidate.provider
    assert isinstance(provider, Provider)
    outcome = StreamOutcome()
    call.track.stream_outcome = outcome
    client_request = canonical or Request(model=call.model, stream=True)
    if upstream.content_type == "application/json":
        if canonical is None:
            # Pass-through skipped parsing; the encoder needs the client's stream options.
            with contextlib.suppress(ProxyError):
                client_request = call.canonical()
        encoder = _encoder(call, client_request)
        unwrap_json = provider.unwrap_json if provider.wraps_replies else None
        body = relay_json_reply(upstream, provider.protocol, encoder, outcome, unwrap_json)
    elif passthrough:
        rename = stream_renamer(call.protocol.reply_model_key, candidate.upstream_model, call.model)
        body = relay_passthrough(
            upstream,
            call.protocol,
            client_request,
            outcome,
            _event_unwrapper(provider),
            rename,
            call.hidden_events,
        )
    else:
        encoder = _encoder(call, client_request)
        body = relay_translated(
            upstream,
            provider.protocol.stream_decoder(),
            encoder,
            outcome,
            _event_unwrapper(provider),
        )
    return RelayResponse(
        body, media_type=call.stream_media_type, headers={**SSE_HEADERS, **overhead}
    )


def _encoder(call: ClientCall, request: Request) -> StreamEncoder:
    if call.encoder_factory is not None:
        return call.encoder_factory(request)
    return call.protocol.stream_encoder(request)


def failure_response(call: ClientCall, failure: Failure, upstream_seconds: float) -> Response:
    """Answer the latest upstream refusal when no credential succeeded."""
    error = failure.error
    call.track.error_kind = error.kind
    if failure.status == 0:
        raise error  # a connection failure: no upstream body to relay
    overhead = overhead_headers(perf_counter() - call.started - upstream_seconds)
    raw = failure.raw
    for secret in call.track.secrets:
        if len(secret) >= 6:
            # Upstreams quote the key they were given ("Incorrect API key provided: ..."); the
            # client must never learn the proxy's own upstream keys from that.
            shown = mask_secret(secret)
            raw = raw.replace(secret.encode(), shown.encode())
            error.message = error.message.replace(secret, shown)
    if failure.passthrough and is_json_object(raw):
        # The upstream's own body goes back as is; its reset hint (body or header) still
        # reaches the client as Retry-After.
        if error.retry_after is not None:
            overhead["retry-after"] = str(max(0, round(error.retry_after)))
        return Response(raw, failure.status, media_type="application/json", headers=overhead)
    response = error_response(call.protocol, error)
    response.headers.update(overhead)
    return response


def log_served(call: ClientCall, candidate: Candidate, passthrough: bool, wait: float) -> None:
    # DEBUG, not INFO: one line per request cost ~15% of throughput in the benchmark.
    if log.isEnabledFor(logging.DEBUG):
        credential = candidate.credential.label
        log.debug(
            "%s %s%s -> %s %s as %s (%s, first byte %.0f ms)",
            call.protocol.name,
            call.model,
            " stream" if call.stream else "",
            candidate.provider.name,
            credential,
            candidate.upstream_model,
            "pass-through" if passthrough else "translated",
            wait * 1000,
        )
