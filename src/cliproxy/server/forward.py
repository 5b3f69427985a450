"""The forwarding core: pick a candidate, build the upstream call, retry, answer the client.

Same protocol on both sides takes the pass-through path (body forwarded with only the model and
auth changed, stream relayed as bytes); otherwise the request goes through the canonical model.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

import aiohttp
import orjson
from starlette.responses import Response, StreamingResponse

from cliproxy.model import ErrorKind, ProxyError, Request
from cliproxy.model.accumulate import response_events
from cliproxy.protocols.base import StreamEncoder
from cliproxy.protocols.sse import SSEEvent
from cliproxy.providers.base import Credential, LocalProvider, Provider, RequestContext
from cliproxy.routing.affinity import prefer_bound, session_key
from cliproxy.routing.cooldown import RATE_LIMIT, TRANSIENT, seconds_until
from cliproxy.routing.registry import Candidate
from cliproxy.server.call import ClientCall
from cliproxy.server.errors import error_response
from cliproxy.server.relay import (
    StreamOutcome,
    collect_stream,
    relay_json_reply,
    relay_local,
    relay_passthrough,
    relay_translated,
)
from cliproxy.server.state import AppState, Runtime

log = logging.getLogger(__name__)

OVERHEAD_HEADER = "x-cliproxy-overhead-ms"
REFUSALS = frozenset({401, 403, 429})
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _overhead(ms: float) -> dict[str, str]:
    return {OVERHEAD_HEADER: f"{ms * 1000:.2f}"}


async def forward(state: AppState, call: ClientCall) -> Response:
    runtime = state.runtime
    candidates = _not_cooling(state, runtime.registry.candidates(call.model), call.model)
    order = runtime.selector.order(call.model, candidates, runtime.request_retry + 1)
    routing = runtime.config.routing
    # Off by default: then no header scan and no body hashing on the hot path.
    session = session_key(call.headers, call.body) if routing.session_affinity else None
    if session is not None:
        order = prefer_bound(state.affinity, session, call.model, candidates, order)
    canonical: Request | None = None
    last_error: ProxyError | None = None
    upstream_seconds = 0.0
    # Credentials refused for this request (auth, permission, quota): asking them again within
    # the same request cannot help, so later rounds skip them.
    refused: set[str] = set()
    reauthorized: set[str] = set()  # accounts already refreshed after a 401 in this request
    # Cooled by this request: later rounds may still retry them (a 5xx is often momentary).
    cooled_here: set[str] = set()
    queue = list(order)
    while queue:
        candidate = queue.pop(0)
        provider = candidate.provider
        if candidate.credential is not None and candidate.credential.id in refused:
            continue
        if _cooled_elsewhere(state, candidate, call.model, cooled_here):
            continue
        if isinstance(provider, LocalProvider):
            canonical = canonical or call.canonical()
            return await _serve_local(
                provider, replace(canonical, model=candidate.upstream_model), call
            )
        assert candidate.credential is not None
        credential = candidate.credential
        from_store = bool(credential.account) and state.auth_store.get(credential.id) is not None
        if from_store:
            try:
                credential = await _fresh_credential(state, credential)
            except ProxyError as account_error:
                log.warning("%s: %s", credential.label, account_error.message)
                refused.add(credential.id)
                last_error = account_error
                continue
        passthrough = (
            provider.protocol is call.protocol
            and call.encoder_factory is None
            and not call.carries_foreign_reasoning
        )
        if passthrough:
            body: dict[str, Any] = dict(call.body)
        else:
            canonical = canonical or call.canonical()
            upstream_canonical = replace(canonical, model=candidate.upstream_model)
            body = provider.protocol.render_request(upstream_canonical)
        ctx = RequestContext(call.stream, call.headers, call.query, call.protocol.name)
        upstream_request = provider.build_request(credential, candidate.upstream_model, body, ctx)
        sent_at = perf_counter()
        try:
            upstream = await state.upstream.send(upstream_request, credential.proxy_url)
        except ProxyError as send_error:
            upstream_seconds += perf_counter() - sent_at
            log.warning("%s %s: %s", provider.name, credential.label, send_error.message)
            last_error = send_error
            continue
        headers_at = perf_counter()
        upstream_seconds += headers_at - sent_at
        provider.observe_reply(credential, upstream.status, upstream.headers)
        if upstream.status == 401 and from_store and credential.id not in reauthorized:
            # An account token the upstream no longer accepts: refresh once, then try again.
            upstream.release()
            reauthorized.add(credential.id)
            if await _reauthorize(state, credential):
                queue.insert(0, candidate)
                continue
            refused.add(credential.id)
            last_error = ProxyError(
                ErrorKind.AUTHENTICATION, f"account {credential.id} was refused by the upstream"
            )
            continue
        if upstream.status >= 400:
            error, raw = await _read_error(provider, upstream)
            upstream_seconds += perf_counter() - headers_at
            log.warning(
                "%s %s answered %d: %s",
                provider.name,
                credential.label,
                upstream.status,
                error.message,
            )
            if upstream.status in REFUSALS:
                refused.add(credential.id)
            if _cool(state, runtime, credential, call.model, upstream.status, error):
                cooled_here.add(credential.id)
            if provider.should_retry(upstream.status) and _more_to_try(queue, refused):
                last_error = error
                continue
            overhead = _overhead(perf_counter() - call.started - upstream_seconds)
            if passthrough and _is_json(raw):
                # The upstream's own body goes back as is; its reset hint (body or header)
                # still reaches the client as Retry-After.
                if error.retry_after is not None:
                    overhead["retry-after"] = str(max(0, round(error.retry_after)))
                return Response(
                    raw, upstream.status, media_type="application/json", headers=overhead
                )
            response = error_response(call.protocol, error)
            response.headers.update(overhead)
            return response
        if session is not None:
            # This credential answered: the session's next turn comes back to it.
            state.affinity.bind(session, call.model, credential.id, routing.session_affinity_ttl)
        if call.stream:
            overhead = _overhead(perf_counter() - call.started - upstream_seconds)
            _log_served(call, candidate, passthrough, headers_at - sent_at)
            return _stream(call, candidate, upstream, passthrough, canonical, overhead)
        _log_served(call, candidate, passthrough, headers_at - sent_at)
        if provider.stream_only and upstream.content_type != "application/json":
            return await _collect(call, provider, upstream, upstream_seconds, headers_at)
        return await _complete(call, candidate, upstream, passthrough, upstream_seconds, headers_at)
    if last_error is None:
        # Every candidate was cooled by other requests while this one waited its turn.
        _not_cooling(state, candidates, call.model)
    raise last_error or ProxyError(ErrorKind.UPSTREAM, "no upstream could serve the request")


def _cooled_elsewhere(
    state: AppState, candidate: Candidate, model: str, cooled_here: set[str]
) -> bool:
    """Cooled by another request since this one was ordered: leave it alone."""
    credential = candidate.credential
    if credential is None or credential.id in cooled_here:
        return False
    return state.cooldowns.available_at(credential.id, model) is not None


def _not_cooling(state: AppState, candidates: list[Candidate], model: str) -> list[Candidate]:
    """The candidates not cooling for ``model``; when all are, a 429 whose Retry-After is the
    earliest reset (no upstream is asked: each one told us to wait)."""
    book = state.cooldowns
    ready: list[Candidate] = []
    earliest: float | None = None
    for candidate in candidates:
        until = None
        if candidate.credential is not None:
            until = book.available_at(candidate.credential.id, model)
        if until is None:
            ready.append(candidate)
        elif earliest is None or until < earliest:
            earliest = until
    if ready or earliest is None:
        return ready
    wait = seconds_until(earliest, book.now())
    raise ProxyError(
        ErrorKind.RATE_LIMIT,
        f"every credential for model '{model}' is cooling down after upstream rate limits or "
        f"errors; retry in {wait} s",
        retry_after=wait,
    )


def _cool(
    state: AppState,
    runtime: Runtime,
    credential: Credential,
    model: str,
    status: int,
    error: ProxyError,
) -> bool:
    """Rest a (credential, model) pair after a rate limit or a transient upstream error, as
    the config allows. True when it was cooled."""
    policy = runtime.registry.policy(credential.id)
    cooling = runtime.cooling
    enabled = policy.cooling_enabled(cooling.enabled)
    seconds = cooling.duration(status, error.kind, error.retry_after, enabled)
    if seconds is None:
        return False
    book = state.cooldowns
    until = book.now() + seconds
    reason = RATE_LIMIT if status == 429 or error.kind is ErrorKind.RATE_LIMIT else TRANSIENT
    book.cool(credential.id, model, until, f"{reason} ({status})")
    log.info("%s cools for %s for %.0f s (%d)", credential.label, model, seconds, status)
    if credential.account and state.auth_store.get(credential.id) is not None:
        _mark_account(state, credential.id, book.now(), until)
    return True


def _mark_account(state: AppState, record_id: str, now: float, until: float) -> None:
    """Show the cooldown in account listings; an account cooling for several models shows the
    latest reset."""
    moment, reset = datetime.fromtimestamp(now, UTC), datetime.fromtimestamp(until, UTC)
    current = state.auth_store.status(record_id, now=moment).cooling_until
    if current is None or current < reset:
        state.auth_store.mark_cooling(record_id, reset)


def _log_served(call: ClientCall, candidate: Candidate, passthrough: bool, wait: float) -> None:
    # DEBUG, not INFO: one line per request cost ~15% of throughput in the benchmark.
    if log.isEnabledFor(logging.DEBUG):
        credential = candidate.credential.label if candidate.credential else "-"
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


async def _fresh_credential(state: AppState, credential: Credential) -> Credential:
    """The account's credential with a token that is valid now (refreshed first if due)."""
    record = await state.refresher.ensure_fresh(credential.id)
    if record.access_token == credential.secret:
        return credential
    return replace(credential, secret=record.access_token)


async def _reauthorize(state: AppState, credential: Credential) -> bool:
    """Refresh an account after a 401; True when a new token came of it."""
    record = state.auth_store.get(credential.id)
    if record is None:
        return False
    try:
        fresh = await state.refresher.refresh_after_401(record)
    except ProxyError as error:
        log.warning("%s: refresh after 401 failed: %s", credential.label, error.message)
        return False
    return bool(fresh.access_token) and fresh.access_token != credential.secret


def _more_to_try(rest: list[Candidate], refused: set[str]) -> bool:
    return any(c.credential is None or c.credential.id not in refused for c in rest)


async def _read_error(
    provider: Provider, upstream: aiohttp.ClientResponse
) -> tuple[ProxyError, bytes]:
    try:
        raw = await upstream.read()
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        raw = b""
    finally:
        upstream.release()
    error = provider.protocol.parse_error(upstream.status, raw)
    retry_after = upstream.headers.get("retry-after")
    if retry_after and error.retry_after is None:
        try:
            error.retry_after = float(retry_after)
        except ValueError:
            pass
    return error, raw


def _is_json(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


async def _complete(
    call: ClientCall,
    candidate: Candidate,
    upstream: aiohttp.ClientResponse,
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
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise ProxyError(ErrorKind.UPSTREAM, f"{provider.name} sent a reply that is not JSON")
    if provider.wraps_replies:
        data = provider.unwrap_json(data)
        raw = orjson.dumps(data)
    if passthrough:
        overhead = _overhead(perf_counter() - call.started - upstream_seconds)
        return Response(raw, 200, media_type="application/json", headers=overhead)
    reply = provider.protocol.parse_response(data)
    reply.model = call.model
    body = orjson.dumps(call.protocol.render_response(reply))
    overhead = _overhead(perf_counter() - call.started - upstream_seconds)
    return Response(body, 200, media_type="application/json", headers=overhead)


async def _collect(
    call: ClientCall,
    provider: Provider,
    upstream: aiohttp.ClientResponse,
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
    reply.model = call.model
    body = orjson.dumps(call.protocol.render_response(reply))
    overhead = _overhead(perf_counter() - call.started - upstream_seconds)
    return Response(body, 200, media_type="application/json", headers=overhead)


def _event_unwrapper(provider: Provider) -> Callable[[SSEEvent], SSEEvent] | None:
    return provider.unwrap_stream_event if provider.wraps_replies else None


def _stream(
    call: ClientCall,
    candidate: Candidate,
    upstream: aiohttp.ClientResponse,
    passthrough: bool,
    canonical: Request | None,
    overhead: dict[str, str],
) -> Response:
    provider = candidate.provider
    assert isinstance(provider, Provider)
    outcome = StreamOutcome()
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
        body = relay_passthrough(
            upstream, call.protocol, client_request, outcome, _event_unwrapper(provider)
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
    return StreamingResponse(
        body, media_type=call.stream_media_type, headers={**SSE_HEADERS, **overhead}
    )


def _encoder(call: ClientCall, request: Request) -> StreamEncoder:
    if call.encoder_factory is not None:
        return call.encoder_factory(request)
    return call.protocol.stream_encoder(request)


async def _serve_local(provider: LocalProvider, request: Request, call: ClientCall) -> Response:
    reply = await provider.respond(request)
    reply.model = call.model
    if call.stream:
        request.model = call.model
        events = list(response_events(reply, chunk_size=16))
        overhead = _overhead(perf_counter() - call.started)
        return StreamingResponse(
            relay_local(events, _encoder(call, request)),
            media_type=call.stream_media_type,
            headers={**SSE_HEADERS, **overhead},
        )
    body = orjson.dumps(call.protocol.render_response(reply))
    return Response(
        body, 200, media_type="application/json", headers=_overhead(perf_counter() - call.started)
    )
