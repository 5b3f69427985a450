"""The forwarding core: pick a candidate, build the upstream call, retry, answer the client.

Same protocol on both sides takes the pass-through path (body forwarded with only the model and
auth changed, stream relayed as bytes); otherwise the request goes through the canonical model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import perf_counter
from typing import Any

import aiohttp
import orjson
from starlette.responses import Response

from cliproxy.model import ErrorKind, ProxyError, Request
from cliproxy.providers.base import Credential, LocalProvider, Provider, RequestContext
from cliproxy.routing.affinity import is_subagent, session_key
from cliproxy.routing.cooldown import RATE_LIMIT, TRANSIENT, seconds_until
from cliproxy.routing.quota import project_variants, quota_fallbacks, rest_model
from cliproxy.routing.registry import Candidate, prefer_bound
from cliproxy.routing.reset_hints import seconds_from_headers
from cliproxy.server.call import ClientCall
from cliproxy.server.errors import error_response
from cliproxy.server.respond import collect, complete, overhead_headers, serve_local, stream
from cliproxy.state import AppState, Runtime
from cliproxy.usage.events import LOCAL, PASS_THROUGH, TRANSLATED, AttemptOutcome

log = logging.getLogger(__name__)


async def forward(state: AppState, call: ClientCall) -> Response:
    return await _Forwarding(state, call).run()


@dataclass(slots=True)
class _Failure:
    """The last upstream refusal, answered to the client when nothing else succeeds."""

    error: ProxyError
    raw: bytes = b""
    status: int = 0
    passthrough: bool = False


class _Stop(Exception):
    """A request-scoped error rule (or a non-retryable status) ends the request now."""


class _Forwarding:
    """One client call through the pool: rounds over the candidates, as CLIProxyAPI counts
    them. Round 0 tries each usable credential once; ``request-retry`` more rounds follow,
    each admitting the credentials whose own request-retry reaches that round. A round finds
    every credential resting: wait for the earliest reset when it comes within
    ``max-retry-interval``, else stop. Nothing reaches the client until an upstream answered
    well, so every switch is invisible to it."""

    def __init__(self, state: AppState, call: ClientCall) -> None:
        self.state = state
        self.call = call
        self.runtime = state.runtime
        self.canonical: Request | None = None
        self.upstream_seconds = 0.0
        self.failure: _Failure | None = None
        # Credentials refused for this request (auth, permission): asking them again within
        # the same request cannot help.
        self.refused: set[tuple[str, str]] = set()
        self.reauthorized: set[str] = set()  # accounts already refreshed after a 401
        # Cooled by this request after a transient error: later rounds may still retry them
        # (a 5xx is often momentary); a rate-limited pair waits for its reset like any other.
        self.transient_here: set[tuple[str, str]] = set()
        self.session: str | None = None
        self.fell_back = False  # quota fallbacks are tried once per request
        self.ctx = RequestContext(call.stream, call.headers, call.query, call.protocol.name)
        self.attempts = 0  # AttemptOutcomes emitted so far
        self.sent_at = 0.0  # when the current attempt went out
        self.rested = False  # whether the attempt being booked cooled its credential
        track = call.track
        track.client_protocol = call.protocol.name
        track.model = call.model
        track.stream = call.stream

    async def run(self) -> Response:
        runtime, call = self.runtime, self.call
        config = runtime.config
        registry = runtime.registry
        everyone = registry.candidates(call.model)
        routing = config.routing
        # Off by default: then no header scan and no body hashing on the hot path.
        if routing.session_affinity and (
            routing.session_affinity_subagents or not is_subagent(call.headers, call.body)
        ):
            self.session = session_key(call.headers, call.body)
        rounds = max(self._retries(c) for c in everyone)
        waited = 0.0
        round_no = 0
        while round_no <= rounds:
            pool = [self._project_with_quota(c) for c in everyone]
            admitted = [c for c in pool if self._retries(c) >= round_no and self._open(c)]
            ready = [c for c in admitted if not self._resting(c)]
            if not ready:
                if not admitted:
                    break
                # Everything left is resting: wait for the earliest reset if it comes soon.
                pause = self._earliest_reset(admitted) - self.state.cooldowns.now()
                if pause <= 0 or waited + pause > config.max_retry_interval:
                    break
                log.info("%s: every credential rests; waiting %.1f s", call.model, pause)
                await self.state.sleep(pause)
                waited += pause
                continue  # the same round, now that a credential is back
            order = runtime.selector.order(call.model, ready, len(ready))
            if self.session is not None and round_no == 0:
                order = prefer_bound(self.state.affinity, self.session, call.model, ready, order)
            if config.max_retry_credentials:
                order = order[: config.max_retry_credentials]
            try:
                for candidate in order:
                    if not self._open(candidate) or (
                        self._resting(candidate) and _key(candidate) not in self.transient_here
                    ):
                        continue  # refused or cooled by another request meanwhile
                    response = await self._attempt(candidate)
                    if response is not None:
                        return response
            except _Stop:
                break
            round_no += 1
        return self._give_up(everyone)

    # --- the pool's view ---------------------------------------------------------------------

    def _retries(self, candidate: Candidate) -> int:
        if candidate.credential is None:
            return 0
        own = self.runtime.registry.policy(candidate.credential.id).request_retry
        return self.runtime.request_retry if own is None else own

    def _open(self, candidate: Candidate) -> bool:
        return _key(candidate) not in self.refused

    def _resting(self, candidate: Candidate) -> bool:
        if candidate.credential is None:
            return False
        if _key(candidate) in self.transient_here:
            return False
        book = self.state.cooldowns
        return book.available_at(*_key(candidate)) is not None

    def _project_with_quota(self, candidate: Candidate) -> Candidate:
        """A Gemini account with several projects rests per project: while its first project
        rests, the account serves through the next one that does not (switch-project)."""
        if not self.runtime.config.quota_exceeded.switch_project:
            return candidate
        variants = project_variants(candidate)
        if len(variants) == 1:
            return candidate
        for variant in variants:
            if self._open(variant) and not self._resting(variant):
                return variant
        return candidate

    def _earliest_reset(self, candidates: list[Candidate]) -> float:
        book = self.state.cooldowns
        resets = [book.available_at(*_key(c)) for c in candidates if c.credential is not None]
        return min((r for r in resets if r is not None), default=book.now())

    def _give_up(self, everyone: list[Candidate]) -> Response:
        failure = self.failure
        call = self.call
        if failure is None:
            # No upstream was asked: every credential rests past max-retry-interval.
            book = self.state.cooldowns
            wait = seconds_until(self._earliest_reset(everyone), book.now())
            raise ProxyError(
                ErrorKind.RATE_LIMIT,
                f"every credential for model '{call.model}' is cooling down after upstream "
                f"rate limits or errors; retry in {wait} s",
                retry_after=wait,
            )
        error = failure.error
        call.track.error_kind = error.kind
        if failure.status == 0:
            raise error  # a connection failure: no upstream body to relay
        overhead = overhead_headers(perf_counter() - call.started - self.upstream_seconds)
        if failure.passthrough and _is_json(failure.raw):
            # The upstream's own body goes back as is; its reset hint (body or header) still
            # reaches the client as Retry-After.
            if error.retry_after is not None:
                overhead["retry-after"] = str(max(0, round(error.retry_after)))
            return Response(
                failure.raw, failure.status, media_type="application/json", headers=overhead
            )
        response = error_response(call.protocol, error)
        response.headers.update(overhead)
        return response

    # --- one attempt --------------------------------------------------------------------------

    async def _attempt(self, candidate: Candidate) -> Response | None:
        """Ask one candidate. A Response when it answered (or the request must stop here);
        None to go on with the next."""
        state, call = self.state, self.call
        provider = candidate.provider
        if isinstance(provider, LocalProvider):
            call.track.candidate = candidate
            call.track.path = LOCAL
            self.canonical = self.canonical or call.canonical()
            return await serve_local(
                provider, replace(self.canonical, model=candidate.upstream_model), call
            )
        assert candidate.credential is not None
        credential = candidate.credential
        from_store = bool(credential.account) and state.auth_store.get(credential.id) is not None
        if from_store:
            try:
                credential = await _fresh_credential(state, credential)
            except ProxyError as account_error:
                log.warning("%s: %s", credential.label, account_error.message)
                self.refused.add(_key(candidate))
                self.failure = _Failure(account_error)
                self._booked(candidate, 0, account_error, 0.0, sent=False)
                return None
        passthrough = (
            provider.protocol is call.protocol
            and call.encoder_factory is None
            and not call.carries_foreign_reasoning
        )
        if passthrough:
            body: dict[str, Any] = dict(call.body)
        else:
            self.canonical = self.canonical or call.canonical()
            upstream_canonical = replace(self.canonical, model=candidate.upstream_model)
            body = provider.protocol.render_request(upstream_canonical)
        payload_rules = self.runtime.payload
        if payload_rules:
            body = payload_rules.apply(
                body,
                models=(call.model, candidate.upstream_model),
                target=provider.protocol.name,
                source=call.protocol.name,
                headers=call.headers,
            )
        ctx = self.ctx
        refusal = provider.refusal(credential, ctx, body)
        if refusal is not None:
            log.info("%s: not sent: %s", credential.label, refusal.message)
            self.refused.add(_key(candidate))
            self.failure = _Failure(refusal)
            self._booked(candidate, 0, refusal, 0.0, sent=False)
            return None
        upstream_request = provider.build_request(credential, candidate.upstream_model, body, ctx)
        self.sent_at = sent_at = perf_counter()
        try:
            upstream = await state.upstream.send(upstream_request, credential.proxy_url)
        except ProxyError as send_error:
            failed_at = perf_counter()
            self.upstream_seconds += failed_at - sent_at
            log.warning("%s %s: %s", provider.name, credential.label, send_error.message)
            self.failure = _Failure(send_error)
            # Unreachable or timed out: rest it briefly, like a 502, so the next requests go
            # elsewhere first.
            if self._cool(candidate, credential, 502, send_error):
                self.transient_here.add(_key(candidate))
            self._booked(candidate, 0, send_error, failed_at - sent_at)
            return None
        headers_at = perf_counter()
        self.upstream_seconds += headers_at - sent_at
        provider.observe_reply(credential, upstream.status, upstream.headers)
        if upstream.status == 401 and from_store and credential.id not in self.reauthorized:
            # An account token the upstream no longer accepts: refresh once, then try again.
            upstream.release()
            self.reauthorized.add(credential.id)
            refused = ProxyError(
                ErrorKind.AUTHENTICATION, f"account {credential.id} was refused by the upstream"
            )
            if await _reauthorize(state, credential):
                self._booked(candidate, 401, refused, headers_at - sent_at, reauthorized=True)
                return await self._attempt(candidate)
            self.refused.add(_key(candidate))
            self.failure = _Failure(refused)
            self._booked(candidate, 401, refused, headers_at - sent_at)
            return None
        if upstream.status >= 400:
            return await self._failed(candidate, credential, upstream, passthrough, headers_at)
        if self.session is not None:
            # This credential answered: the session's next turn comes back to it.
            routing = self.runtime.config.routing
            state.affinity.bind(
                self.session, call.model, credential.id, routing.session_affinity_ttl
            )
        self._booked(candidate, upstream.status, None, headers_at - sent_at)
        call.track.path = PASS_THROUGH if passthrough else TRANSLATED
        upstream_seconds = self.upstream_seconds
        if call.stream:
            overhead = overhead_headers(perf_counter() - call.started - upstream_seconds)
            _log_served(call, candidate, passthrough, headers_at - sent_at)
            return stream(call, candidate, upstream, passthrough, self.canonical, overhead)
        _log_served(call, candidate, passthrough, headers_at - sent_at)
        if provider.stream_only and upstream.content_type != "application/json":
            return await collect(call, provider, upstream, upstream_seconds, headers_at)
        return await complete(call, candidate, upstream, passthrough, upstream_seconds, headers_at)

    async def _failed(
        self,
        candidate: Candidate,
        credential: Credential,
        upstream: aiohttp.ClientResponse,
        passthrough: bool,
        headers_at: float,
    ) -> Response | None:
        """Book an upstream error reply; raise _Stop when the request must end with it. A
        quota error may still be answered here by a fallback of the same account."""
        provider = candidate.provider
        assert isinstance(provider, Provider)
        status = upstream.status
        error, raw = await _read_error(provider, upstream, self.state.cooldowns.now())
        read_at = perf_counter()
        self.upstream_seconds += read_at - headers_at
        latency = read_at - self.sent_at
        log.warning("%s %s answered %d: %s", provider.name, credential.label, status, error.message)
        self.failure = _Failure(error, raw, status, passthrough)
        explained = provider.explain_refusal(credential, self.ctx, status, error.message)
        if explained is not None:
            # Not this client kind on this credential: another credential may take it, and
            # the client hears why rather than the upstream's own words.
            self.failure = _Failure(explained)
            self.refused.add(_key(candidate))
            self._booked(candidate, status, error, latency)
            return None
        policy = self.runtime.registry.policy(credential.id)
        action = (
            policy.classify(status, raw.decode("utf-8", "replace"), error.message)
            if policy.error_rules
            else None
        )
        if action is not None:
            if action.cools:
                self._cool(candidate, credential, status, error, forced=True)
            if not action.retries:
                self._booked(candidate, status, error, latency)
                raise _Stop
            self.refused.add(_key(candidate))  # the rule says: another credential, not this
            self._booked(candidate, status, error, latency)
            return None
        cooled = self._cool(candidate, credential, status, error)
        if status in (401, 403) or (status == 429 and not cooled):
            self.refused.add(_key(candidate))
        elif cooled and status != 429 and error.kind is not ErrorKind.RATE_LIMIT:
            self.transient_here.add(_key(candidate))
        self._booked(candidate, status, error, latency)
        if not provider.should_retry(status):
            raise _Stop
        if not self.fell_back:
            policy_switches = self.runtime.config.quota_exceeded
            fallbacks = quota_fallbacks(candidate, status, error, policy_switches)
            if fallbacks:
                return await self._fall_back(fallbacks)
        return None

    async def _fall_back(self, fallbacks: list[Candidate]) -> Response | None:
        """Try the same account's other projects / preview models at once. When none answers,
        the client hears about the original quota error (a retired preview's 404 would only
        mislead it)."""
        self.fell_back = True
        original = self.failure
        for fallback in fallbacks:
            if not self._open(fallback) or self._resting(fallback):
                continue
            response = await self._attempt(fallback)
            if response is not None:
                return response
        self.failure = original
        return None

    def _cool(
        self,
        candidate: Candidate,
        credential: Credential,
        status: int,
        error: ProxyError,
        *,
        forced: bool = False,
    ) -> bool:
        model = _key(candidate)[1]
        cooled = _cool(self.state, self.runtime, credential, model, status, error, forced=forced)
        self.rested = self.rested or cooled
        return cooled

    def _booked(
        self,
        candidate: Candidate,
        status: int,
        error: ProxyError | None,
        latency: float,
        *,
        sent: bool = True,
        reauthorized: bool = False,
    ) -> None:
        """One attempt ended: tell the observers (the request counters among them)."""
        self.attempts += 1
        track = self.call.track
        track.attempts = self.attempts
        track.candidate = candidate
        credential = candidate.credential
        assert credential is not None
        rested, self.rested = self.rested, False
        self.state.observers.emit(
            AttemptOutcome(
                credential_id=credential.id,
                provider=candidate.provider.name,
                upstream_model=candidate.upstream_model,
                requested_model=self.call.model,
                status=status,
                error_kind=error.kind if error is not None else None,
                latency=latency,
                number=self.attempts,
                sent=sent,
                refused=_key(candidate) in self.refused,
                rested=rested,
                reauthorized=reauthorized,
            )
        )


def _cool(
    state: AppState,
    runtime: Runtime,
    credential: Credential,
    model: str,
    status: int,
    error: ProxyError,
    *,
    forced: bool = False,
) -> bool:
    """Rest the (credential, upstream model) pair after a rate limit or a transient error, as
    the config allows; ``forced`` (a stop/continue-and-cooldown rule) rests it even for a
    status that normally does not. True when it was cooled."""
    cooling = runtime.cooling
    enabled = runtime.registry.policy(credential.id).cooling_enabled(cooling.enabled)
    seconds = cooling.duration(status, error.kind, error.retry_after, enabled)
    if seconds is None and forced and enabled:
        seconds = error.retry_after or cooling.rate_limit_seconds
    if seconds is None:
        return False
    book = state.cooldowns
    until = book.now() + seconds
    rate_limited = status == 429 or error.kind is ErrorKind.RATE_LIMIT
    reason = RATE_LIMIT if rate_limited else TRANSIENT
    book.cool(credential.id, model, until, f"{reason} ({status})")
    log.info("%s cools for %s for %.0f s (%d)", credential.label, model, seconds, status)
    if credential.account and state.auth_store.get(credential.id) is not None:
        _mark_account(state, credential.id, book.now(), until)
    return True


def _key(candidate: Candidate) -> tuple[str, str]:
    """What refusals and cooldowns are kept per: an alias pool may put several upstream models
    of one credential behind one client name, and each has its own quota (as has each project
    of a Gemini account with several)."""
    credential = candidate.credential
    return (credential.id if credential is not None else "", rest_model(candidate))


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


async def _read_error(
    provider: Provider, upstream: aiohttp.ClientResponse, now: float
) -> tuple[ProxyError, bytes]:
    try:
        raw = await upstream.read()
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        raw = b""
    finally:
        upstream.release()
    error = provider.protocol.parse_error(upstream.status, raw)
    if error.retry_after is None:
        # The body's own hint wins; then Retry-After (seconds or an HTTP date); then the
        # vendor's per-limit reset headers.
        error.retry_after = _retry_after(upstream.headers.get("retry-after", ""), now)
    if error.retry_after is None and upstream.status == 429:
        error.retry_after = seconds_from_headers(upstream.headers, now)
    return error, raw


def _retry_after(value: str, now: float) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return None


def _is_json(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False
