"""The forwarding core: ask the pool what to try, send it, answer the client.

routing/attempts.py decides (which candidate, when to wait, stop or rest); this module sends,
refreshes an account after a 401, and answers. Same protocol on both sides takes the
pass-through path (body forwarded with only the model and auth changed, stream relayed as
bytes); otherwise the request goes through the canonical model.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from time import perf_counter

from starlette.responses import Response

from cliproxy.config.model_fallbacks import fallback_chain
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.base import Credential, Provider, RequestContext, UpstreamReply
from cliproxy.routing.affinity import affinity_session
from cliproxy.routing.attempts import (
    Failure,
    PoolWalk,
    Verdict,
    Wait,
    judge,
    pair_key,
    rest_key,
    retry_rounds,
    unreachable,
)
from cliproxy.routing.quota import quota_fallbacks
from cliproxy.routing.registry import Candidate, prefer_bound
from cliproxy.server.call import ClientCall
from cliproxy.server.outcomes import AttemptBook
from cliproxy.server.respond import (
    SERVED_MODEL_HEADER,
    collect,
    complete,
    failure_response,
    log_served,
    overhead_headers,
    stream,
)
from cliproxy.server.resting import fresh_credential, reauthorize, recovered, rest
from cliproxy.server.upstream_errors import read_error
from cliproxy.state import AppState, Runtime
from cliproxy.usage.events import PASS_THROUGH, TRANSLATED

log = logging.getLogger(__name__)


async def forward(state: AppState, call: ClientCall) -> Response:
    return await _Forwarding(state, call).run()


class _CandidateOrder:
    """The selector's order for a round's ready candidates, session affinity and
    max-retry-credentials applied. A callable of its own rather than a method of the
    forwarding, so the walk that holds it does not hold the forwarding in a cycle: the
    request's objects are then freed as it ends, not by the garbage collector."""

    __slots__ = ("model", "runtime", "session", "state")

    def __init__(self, state: AppState, runtime: Runtime, session: str | None, model: str) -> None:
        self.state, self.runtime, self.session, self.model = state, runtime, session, model

    def __call__(self, round_no: int, ready: list[Candidate]) -> list[Candidate]:
        runtime, model = self.runtime, self.model
        order = runtime.selector.order(model, ready, len(ready))
        if self.session is not None and round_no == 0:
            order = prefer_bound(self.state.affinity, self.session, model, ready, order)
        limit = runtime.config.max_retry_credentials
        return order[:limit] if limit else order


class _Forwarding:
    """One client call through the pool. Nothing reaches the client until an upstream
    answered well, so every switch between credentials is invisible to it."""

    def __init__(self, state: AppState, call: ClientCall) -> None:
        self.state, self.call = state, call
        self.runtime = runtime = state.runtime
        config = runtime.config
        self.upstream_seconds = 0.0
        self.reauthorized: set[str] = set()  # accounts already refreshed after a 401
        self.session = affinity_session(config.routing, call.headers, call.body)
        self.walk = PoolWalk.for_model(
            call.model,
            runtime.registry.candidates
            if call.pin is None
            else call.pin.candidates(runtime.registry.candidates),
            fallback_chain(config.model_fallbacks, call.model),
            book=state.cooldowns,
            retries=partial(retry_rounds, runtime.registry, runtime.request_retry),
            order=_CandidateOrder(state, runtime, self.session, call.model),
            max_wait=config.max_retry_interval,
            switch_project=config.quota_exceeded.switch_project,
        )
        self.ctx = RequestContext(call.stream, call.headers, call.query, call.protocol.name)
        self.attempts = AttemptBook(state.observers, call.track, call.model)
        self.sent_at = 0.0  # when the current attempt went out
        call.track.client_protocol, call.track.model = call.protocol.name, call.model
        call.track.stream = call.stream

    async def run(self) -> Response:
        while (step := self.walk.next_step()) is not None:
            if isinstance(step, Wait):
                log.info("%s: all resting; waiting %.1f s", self.call.model, step.seconds)
                await self.state.sleep(step.seconds)
                continue
            self.attempts.fallback = step.model or ""
            response = await self._attempt(step.candidate)
            if response is not None:
                if step.model is not None:  # answered by a fallback model
                    response.headers[SERVED_MODEL_HEADER] = step.model
                return response
        if self.walk.failure is None:
            raise self.walk.all_resting(self.call.model)
        return failure_response(self.call, self.walk.failure, self.upstream_seconds)

    async def _attempt(self, candidate: Candidate) -> Response | None:
        """Ask one candidate: a Response when it answered, None to go on with the next."""
        state, call, walk = self.state, self.call, self.walk
        spoken = candidate.provider.for_client(call.protocol)
        if spoken is not candidate.provider:
            # Same credential and model (refusals and rests are kept per those), another wire.
            candidate = replace(candidate, provider=spoken)
        provider = candidate.provider
        credential = candidate.credential
        from_store = bool(credential.account) and state.auth_store.get(credential.id) is not None
        if from_store:
            try:
                credential = await fresh_credential(state, credential)
            except ProxyError as account_error:
                log.warning("%s: %s", credential.label, account_error.message)
                self._not_sent(candidate, account_error)
                return None
        passthrough = (
            provider.protocol is call.protocol
            and call.encoder_factory is None
            and not call.carries_foreign_reasoning
        )
        model = candidate.upstream_model
        body = call.upstream_body(provider, model, passthrough, self.runtime.payload)
        refusal = provider.refusal(credential, self.ctx, body)
        if refusal is not None:
            log.info("%s: not sent: %s", credential.label, refusal.message)
            self._not_sent(candidate, refusal)
            return None
        upstream_request = provider.build_request(credential, model, body, self.ctx)
        self.sent_at = sent_at = perf_counter()
        try:
            upstream = await state.upstream.send(upstream_request, credential.proxy_url)
        except ProxyError as send_error:
            failed_at = perf_counter()
            self.upstream_seconds += failed_at - sent_at
            log.warning("%s %s: %s", provider.name, credential.label, send_error.message)
            verdict = unreachable(send_error, self.runtime.cooling, self._cooling(credential))
            self._settled(candidate, credential, 502, Failure(send_error), verdict, failed_at)
            return None
        headers_at = perf_counter()
        self.upstream_seconds += headers_at - sent_at
        latency = headers_at - sent_at
        provider.observe_reply(credential, upstream.status, upstream.headers)
        if upstream.status == 401 and from_store and credential.id not in self.reauthorized:
            # An account token the upstream no longer accepts: refresh once, then try again.
            upstream.release()
            self.reauthorized.add(credential.id)
            refused = ProxyError(
                ErrorKind.AUTHENTICATION, f"account {credential.id} was refused by the upstream"
            )
            if await reauthorize(state, credential):
                walk.again(candidate)
                self.attempts.book(candidate, 401, refused, latency, reauthorized=True)
            else:
                walk.refuse(candidate, Failure(refused))
                self.attempts.book(candidate, 401, refused, latency, refused=True)
            return None
        if upstream.status >= 400:
            await self._failed(candidate, credential, upstream, passthrough, headers_at)
            return None
        if self.session is not None:
            # This credential answered: the session's next turn comes back to it.
            ttl = self.runtime.config.routing.session_affinity_ttl
            state.affinity.bind(self.session, call.model, credential.id, ttl)
        recovered(state, credential, pair_key(candidate)[1])
        self.attempts.book(candidate, upstream.status, None, latency)
        call.track.path = PASS_THROUGH if passthrough else TRANSLATED
        log_served(call, candidate, passthrough, latency)
        upstream_seconds = self.upstream_seconds
        if call.stream:
            overhead = overhead_headers(perf_counter() - call.started - upstream_seconds)
            return stream(call, candidate, upstream, passthrough, call.parsed, overhead)
        if provider.stream_only and upstream.content_type != "application/json":
            return await collect(call, provider, upstream, upstream_seconds, headers_at)
        return await complete(call, candidate, upstream, passthrough, upstream_seconds, headers_at)

    def _not_sent(self, candidate: Candidate, error: ProxyError) -> None:
        self.walk.refuse(candidate, Failure(error))
        self.attempts.book(candidate, 0, error, 0.0, sent=False, refused=True)

    async def _failed(
        self,
        candidate: Candidate,
        credential: Credential,
        upstream: UpstreamReply,
        passthrough: bool,
        headers_at: float,
    ) -> None:
        """Read an upstream error reply and let the decision table say what it means."""
        provider = candidate.provider
        assert isinstance(provider, Provider)
        status = upstream.status
        error, raw = await read_error(provider, upstream, self.state.cooldowns.now())
        read_at = perf_counter()
        self.upstream_seconds += read_at - headers_at
        log.warning("%s %s answered %d: %s", provider.name, credential.label, status, error.message)
        explained = provider.explain_refusal(credential, self.ctx, status, error.message)
        if explained is not None:
            # Not this client kind on this credential: another credential may take it, and
            # the client hears why rather than the upstream's own words.
            self.walk.refuse(candidate, Failure(explained))
            self.attempts.book(candidate, status, error, read_at - self.sent_at, refused=True)
            return
        policy = self.runtime.registry.policy(credential.id)
        text = raw.decode("utf-8", "replace")
        rule = policy.classify(status, text, error.message) if policy.error_rules else None
        retryable = provider.should_retry(status)
        verdict = judge(
            status, error, rule, self.runtime.cooling, self._cooling(credential), retryable
        )
        failure = Failure(error, raw, status, passthrough)
        self._settled(candidate, credential, status, failure, verdict, read_at)
        if verdict.fall_back:
            quota = self.runtime.config.quota_exceeded
            self.walk.fall_back(quota_fallbacks(candidate, status, error, quota))

    def _settled(
        self,
        candidate: Candidate,
        credential: Credential,
        status: int,
        failure: Failure,
        verdict: Verdict,
        ended_at: float,
    ) -> None:
        """Carry out a failed attempt's verdict: rest the pair, tell the walk, book it."""
        if verdict.rest is not None:
            model = rest_key(candidate, status, failure.error)
            rest(self.state, credential, model, verdict.rest, status, failure.error)
        self.walk.failed(candidate, failure, verdict)
        self.attempts.book(
            candidate,
            failure.status,  # 0 for a connection failure: no upstream status came
            failure.error,
            ended_at - self.sent_at,
            refused=not self.walk.is_open(candidate),
            rested=verdict.rest is not None,
        )

    def _cooling(self, credential: Credential) -> bool:
        policy = self.runtime.registry.policy(credential.id)
        return policy.cooling_enabled(self.runtime.cooling.enabled)
