"""The pool's decisions for one client request, as a state machine without I/O.

``PoolWalk`` says what to do next: try a candidate, wait for a reset, or give up; the
forwarding core (server/forward.py) does it and reports back how each attempt ended.
``judge`` is the decision table for an upstream error reply: HTTP status by the credential's
request-scoped error rule → stop, retry elsewhere, rest. Both read the cooldown book and never
write it: resting a pair is an effect the caller carries out (it also shows in the account
listings), so a table test drives the machine with nothing but a clock.

Rounds, as CLIProxyAPI counts them: round 0 tries each usable credential once; ``request-retry``
more rounds follow, each admitting the credentials whose own request-retry reaches that round.
A round that finds every admitted credential resting waits for the earliest reset when it
comes within ``max-retry-interval``, else the request ends. A quota error may first be answered
by the same credential's other quotas (routing/quota.py), tried at once, once per request.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.routing.cooldown import CooldownBook, CoolingPolicy, seconds_until
from cliproxy.routing.policy import ErrorAction
from cliproxy.routing.quota import project_variants, rest_model
from cliproxy.routing.registry import Candidate, ModelRegistry

PairKey = tuple[str, str]  # (credential id, the model its cooldown is kept under)
WHOLE_CREDENTIAL = "*"  # the model a rest of the whole credential is kept under


def pair_key(candidate: Candidate) -> PairKey:
    """What refusals and cooldowns are kept per: an alias pool may put several upstream models
    of one credential behind one client name, and each has its own quota (as has each project
    of a Gemini account with several)."""
    return (candidate.credential.id, rest_model(candidate))


def rest_key(candidate: Candidate, status: int, error: ProxyError) -> str:
    """The model a failed attempt's rest is kept under: the whole credential when a rate limit
    hit a provider whose limits are the account's, across models (Codex's windows); else the
    pair's own model (and a transient error always rests only the pair)."""
    rate_limited = status == 429 or error.kind is ErrorKind.RATE_LIMIT
    if rate_limited and candidate.provider.rests_whole_credential:
        return WHOLE_CREDENTIAL
    return pair_key(candidate)[1]


def retry_rounds(registry: ModelRegistry, default: int, candidate: Candidate) -> int:
    """How many rounds after the first admit a candidate: its credential's own request-retry,
    else the global one."""
    own = registry.policy(candidate.credential.id).request_retry
    return default if own is None else own


@dataclass(frozen=True, slots=True)
class Failure:
    """The latest upstream refusal, answered to the client when nothing else succeeds."""

    error: ProxyError
    raw: bytes = b""  # the upstream's error body, relayed as is on the pass-through path
    status: int = 0  # 0: no upstream reply (a connection failure, or not sent)
    passthrough: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one failed attempt means for the rest of the request."""

    stop: bool = False  # end the request with this failure
    refuse: bool = False  # do not ask this pair again within this request
    # Rested by this attempt after a transient error, yet later rounds of this request may
    # ask it again (a 5xx is often momentary; a rate limit is not).
    retry_here: bool = False
    rest: float | None = None  # seconds the pair rests, or None
    fall_back: bool = False  # try the credential's other quotas now (if it has any)


def judge(
    status: int,
    error: ProxyError,
    rule: ErrorAction | None,
    cooling: CoolingPolicy,
    cooling_enabled: bool,
    retryable: bool,
) -> Verdict:
    """The decision for an upstream error reply. ``rule``: the credential's request-scoped
    error rule that matched, if any (it decides alone, and rests the pair only when it says
    so: then even a status that normally does not rest); ``retryable``: whether the provider
    says another credential may succeed with this status."""
    usual = cooling.duration(status, error.kind, error.retry_after, cooling_enabled)
    if rule is not None:
        rest = None
        if rule.cools and cooling_enabled:
            rest = usual if usual is not None else error.retry_after or cooling.rate_limit_seconds
        if not rule.retries:
            return Verdict(stop=True, rest=rest)
        return Verdict(refuse=True, rest=rest)  # another credential, not this one
    rested = usual is not None
    rate_limited = status == 429 or error.kind is ErrorKind.RATE_LIMIT
    # An auth refusal cannot change within one request; a 429 that does not rest (cooling
    # off) must not be asked again either, or the request would hammer it.
    refuse = status in (401, 403) or (status == 429 and not rested)
    retry_here = not refuse and rested and not rate_limited
    return Verdict(
        stop=not retryable, refuse=refuse, retry_here=retry_here, rest=usual, fall_back=retryable
    )


def unreachable(error: ProxyError, cooling: CoolingPolicy, cooling_enabled: bool) -> Verdict:
    """No reply at all (unreachable, timed out): rest it briefly, like a 502, so the next
    requests go elsewhere first; this request's later rounds may still ask it."""
    rest = cooling.duration(502, error.kind, error.retry_after, cooling_enabled)
    return Verdict(retry_here=rest is not None, rest=rest)


@dataclass(frozen=True, slots=True)
class Try:
    candidate: Candidate
    model: str | None = None  # a fallback model (model-fallbacks) the candidate serves, if any


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


Step = Try | Wait | None  # None: give up, answer the latest failure


class PoolWalk:
    """One client request's way through its candidates.

    ``retries(candidate)``: how many rounds after the first admit it (its own request-retry,
    else the global one). ``order(round, ready)``: the selector's order for a round's ready
    candidates (session affinity and max-retry-credentials applied). ``fallbacks``: the
    models to go on with, in order, once every candidate failed or rests (model-fallbacks),
    their candidates from ``candidates_for``; a model not served here is skipped. With
    fallbacks left, a walk whose candidates all rest goes on at once instead of waiting."""

    def __init__(
        self,
        everyone: list[Candidate],
        *,
        book: CooldownBook,
        retries: Callable[[Candidate], int],
        order: Callable[[int, list[Candidate]], list[Candidate]],
        max_wait: float,
        switch_project: bool,
        fallbacks: Sequence[str] = (),
        candidates_for: Callable[[str], list[Candidate]] | None = None,
    ) -> None:
        self.everyone = everyone
        self.model: str | None = None  # the fallback model being walked; None: the requested
        self._fallback_models = deque(fallbacks if candidates_for is not None else ())
        self._candidates_for = candidates_for
        self.book = book
        self.retries = retries
        self.order = order
        self.max_wait = max_wait
        self.switch_project = switch_project
        self.rounds = max((retries(c) for c in everyone), default=0)
        self.round_no = 0
        self.waited = 0.0
        self.failure: Failure | None = None
        self.refused: set[PairKey] = set()
        self.retry_here: set[PairKey] = set()
        self._planned = -1  # the round whose queue is being walked
        self._queue: deque[Candidate] = deque()
        self._fallbacks: deque[Candidate] = deque()
        self._failure_before_fallbacks: Failure | None = None
        self._fell_back = False
        self._again: Candidate | None = None
        self._stopped = False

    @classmethod
    def for_model(
        cls,
        model: str,
        candidates_for: Callable[[str], list[Candidate]],
        fallbacks: Sequence[str],
        **rules: Any,
    ) -> PoolWalk:
        """The walk for a requested model and its fallback chain. A model not served here but
        with fallbacks is a name that stands for its chain: the walk starts with them."""
        try:
            everyone = candidates_for(model)
        except ProxyError:
            if not fallbacks:
                raise
            everyone = []
        return cls(everyone, fallbacks=fallbacks, candidates_for=candidates_for, **rules)

    # --- what next --------------------------------------------------------------------------

    def next_step(self) -> Step:
        if self._stopped:
            return None
        if self._again is not None:
            again, self._again = self._again, None
            return Try(again)
        fallback = self._pop_usable(self._fallbacks)
        if fallback is not None:
            return Try(fallback, self.model)
        if self._failure_before_fallbacks is not None:
            # No fallback answered: the client hears about the original quota error (a
            # retired preview's 404 would only mislead it).
            self.failure, self._failure_before_fallbacks = self._failure_before_fallbacks, None
        while True:
            candidate = self._pop_usable(self._queue)
            if candidate is not None:
                return Try(candidate, self.model)
            if self._planned == self.round_no:
                self.round_no += 1
            if self.round_no > self.rounds:
                if self._next_model():
                    continue
                return None
            pool = [self._with_free_quota(c) for c in self.everyone]
            admitted = [c for c in pool if self.retries(c) >= self.round_no and self.is_open(c)]
            ready = [c for c in admitted if not self.resting(c)]
            if not ready:
                if (not admitted or self._fallback_models) and self._next_model():
                    continue
                if not admitted:
                    return None
                pause = self.earliest_reset(admitted) - self.book.now()
                if pause <= 0 or self.waited + pause > self.max_wait:
                    return None
                self.waited += pause
                return Wait(pause)  # then the same round, once a credential is back
            self._planned = self.round_no
            self._queue = deque(self.order(self.round_no, ready))

    def _next_model(self) -> bool:
        """Go on with the next fallback model that is served here; False when none is left."""
        while self._fallback_models and self._candidates_for is not None:
            model = self._fallback_models.popleft()
            try:
                everyone = self._candidates_for(model)
            except ProxyError:
                continue  # not served here: a chain may name models of another setup
            self.model, self.everyone = model, everyone
            self.rounds = max((self.retries(c) for c in everyone), default=0)
            self.round_no, self._planned = 0, -1
            self._fell_back = False  # a new model's own quota alternatives may be tried
            return True
        return False

    # --- what happened ----------------------------------------------------------------------

    def refuse(self, candidate: Candidate, failure: Failure) -> None:
        """The pair cannot take this request (not sent, or refused): never ask it again here."""
        self.refused.add(pair_key(candidate))
        self.failure = failure

    def failed(self, candidate: Candidate, failure: Failure, verdict: Verdict) -> None:
        self.failure = failure
        key = pair_key(candidate)
        if verdict.refuse:
            self.refused.add(key)
        if verdict.retry_here:
            self.retry_here.add(key)
        if verdict.stop:
            self._stopped = True

    def again(self, candidate: Candidate) -> None:
        """Ask the same candidate once more, now (its token was just refreshed)."""
        self._again = candidate

    def fall_back(self, fallbacks: list[Candidate]) -> None:
        """Try these at once, before anyone else; only the request's first quota error gets
        them."""
        if self._fell_back or not fallbacks:
            return
        self._fell_back = True
        self._failure_before_fallbacks = self.failure
        self._fallbacks.extend(fallbacks)

    # --- the pool's view --------------------------------------------------------------------

    def is_open(self, candidate: Candidate) -> bool:
        return pair_key(candidate) not in self.refused

    def resting(self, candidate: Candidate) -> bool:
        key = pair_key(candidate)
        if self.book.available_at(key[0], WHOLE_CREDENTIAL) is not None:
            return True
        return key not in self.retry_here and self.book.available_at(*key) is not None

    def all_resting(self, model: str) -> ProxyError:
        """The answer when no upstream was asked: every credential rests past
        max-retry-interval."""
        wait = seconds_until(self.earliest_reset(self.everyone), self.book.now())
        return ProxyError(
            ErrorKind.RATE_LIMIT,
            f"every credential for model '{model}' is cooling down after upstream "
            f"rate limits or errors; retry in {wait} s",
            retry_after=wait,
        )

    def earliest_reset(self, candidates: list[Candidate]) -> float:
        resets = [self._available_at(c) for c in candidates]
        return min((r for r in resets if r is not None), default=self.book.now())

    def _available_at(self, candidate: Candidate) -> float | None:
        """When the pair is usable again: after its own rest and its credential's, if any."""
        key = pair_key(candidate)
        own = self.book.available_at(*key)
        whole = self.book.available_at(key[0], WHOLE_CREDENTIAL)
        return max(own, whole) if own is not None and whole is not None else own or whole

    def _pop_usable(self, queue: deque[Candidate]) -> Candidate | None:
        # Skip what another request refused or rested meanwhile.
        while queue:
            candidate = queue.popleft()
            if self.is_open(candidate) and not self.resting(candidate):
                return candidate
        return None

    def _with_free_quota(self, candidate: Candidate) -> Candidate:
        """A credential with several quotas rests per quota: while its first rests, it serves
        through the next one that does not (switch-project)."""
        if not self.switch_project:
            return candidate
        variants = project_variants(candidate)
        if len(variants) == 1:
            return candidate
        for variant in variants:
            if self.is_open(variant) and not self.resting(variant):
                return variant
        return candidate
