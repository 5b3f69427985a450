"""The pool's decisions without any I/O: the decision table for an upstream error reply
(status by request-scoped rule -> stop / retry elsewhere / rest), and the walk through rounds,
waits, refusals and quota fallbacks, driven by a clock that only the test moves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from cliproxy.model import ErrorKind, ProxyError, kind_for_status
from cliproxy.providers.api_keys import OpenAICompatProvider
from cliproxy.providers.base import Credential
from cliproxy.routing.attempts import Failure, PoolWalk, Try, Verdict, Wait, judge, pair_key
from cliproxy.routing.cooldown import CoolingPolicy, MemoryCooldownBook
from cliproxy.routing.policy import ErrorAction
from cliproxy.routing.registry import Candidate

COOLING = CoolingPolicy(enabled=True, rate_limit_seconds=60.0, transient_seconds=5.0)
PROVIDER = OpenAICompatProvider("pool")


def error(status: int, retry_after: float | None = None) -> ProxyError:
    return ProxyError(kind_for_status(status), f"upstream said {status}", retry_after=retry_after)


@dataclass(frozen=True)
class Row:
    status: int
    rule: ErrorAction | None
    expected: Verdict
    retry_after: float | None = None
    cooling_enabled: bool = True


STOP, CONT = ErrorAction.STOP, ErrorAction.CONTINUE
STOP_COOL, CONT_COOL = ErrorAction.STOP_AND_COOLDOWN, ErrorAction.CONTINUE_AND_COOLDOWN

TABLE = [
    # No rule: the status decides.
    Row(429, None, Verdict(rest=30.0, fall_back=True), retry_after=30.0),
    Row(429, None, Verdict(rest=60.0, fall_back=True)),  # no hint: rate-limit-seconds
    Row(429, None, Verdict(refuse=True, fall_back=True), cooling_enabled=False),
    Row(500, None, Verdict(rest=5.0, retry_here=True, fall_back=True)),
    Row(503, None, Verdict(rest=2.0, retry_here=True, fall_back=True), retry_after=2.0),
    Row(408, None, Verdict(rest=5.0, retry_here=True, fall_back=True)),
    Row(502, None, Verdict(fall_back=True), cooling_enabled=False),
    Row(401, None, Verdict(refuse=True, fall_back=True)),
    Row(403, None, Verdict(refuse=True, fall_back=True)),
    Row(400, None, Verdict(stop=True)),
    Row(404, None, Verdict(stop=True)),
    Row(422, None, Verdict(stop=True)),
    # A rule decides alone; it rests the pair only when it says so.
    Row(400, CONT, Verdict(refuse=True)),
    Row(400, CONT_COOL, Verdict(refuse=True, rest=60.0)),
    Row(400, CONT_COOL, Verdict(refuse=True, rest=9.0), retry_after=9.0),
    Row(400, STOP, Verdict(stop=True)),
    Row(400, STOP_COOL, Verdict(stop=True, rest=60.0)),
    Row(429, STOP, Verdict(stop=True), retry_after=12.0),
    Row(429, STOP_COOL, Verdict(stop=True, rest=12.0), retry_after=12.0),
    Row(500, CONT, Verdict(refuse=True)),
    Row(500, CONT_COOL, Verdict(refuse=True, rest=5.0)),
    Row(429, CONT_COOL, Verdict(refuse=True), cooling_enabled=False),
]


@pytest.mark.parametrize(
    "row", TABLE, ids=[f"{r.status}-{r.rule or 'none'}-{i}" for i, r in enumerate(TABLE)]
)
def test_decision_table(row: Row) -> None:
    retryable = PROVIDER.should_retry(row.status)
    verdict = judge(
        row.status,
        error(row.status, row.retry_after),
        row.rule,
        COOLING,
        row.cooling_enabled,
        retryable,
    )
    assert verdict == row.expected


def test_transient_cooling_switched_off_rests_nothing() -> None:
    off = CoolingPolicy(transient_seconds=-1)
    assert judge(503, error(503), None, off, True, True) == Verdict(fall_back=True)


def test_a_rate_limit_kind_behind_another_status_is_not_retried_here() -> None:
    quota = ProxyError(ErrorKind.RATE_LIMIT, "quota", retry_after=20.0)
    assert judge(503, quota, None, COOLING, True, True) == Verdict(rest=20.0, fall_back=True)


# ----- the walk ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def candidate(name: str, model: str = "m") -> Candidate:
    return Candidate(PROVIDER, Credential(name, "sk-test", "http://127.0.0.1:1"), model)


A, B, C = candidate("a"), candidate("b"), candidate("c")


def walk_of(
    everyone: list[Candidate],
    book: MemoryCooldownBook,
    retries: dict[str, int] | None = None,
    max_wait: float = 0.0,
) -> PoolWalk:
    rounds = retries or {}
    return PoolWalk(
        everyone,
        book=book,
        retries=lambda c: rounds.get(c.credential.id if c.credential else "", 0),
        order=lambda _round, ready: list(ready),
        max_wait=max_wait,
        switch_project=True,
    )


def tried(walk: PoolWalk, on_try: Callable[[Candidate], None] | None = None) -> list[str]:
    """Walk to the end, failing every attempt (``on_try`` may react first)."""
    names: list[str] = []
    while (step := walk.next_step()) is not None:
        assert isinstance(step, Try), step
        assert step.candidate.credential is not None
        names.append(step.candidate.credential.id)
        if on_try is not None:
            on_try(step.candidate)
        assert len(names) < 50, "the walk does not end"
    return names


def test_round_zero_tries_each_once_then_gives_up() -> None:
    assert tried(walk_of([A, B, C], MemoryCooldownBook(Clock()))) == ["a", "b", "c"]


def test_later_rounds_admit_only_credentials_whose_retry_reaches_them() -> None:
    walk = walk_of([A, B, C], MemoryCooldownBook(Clock()), retries={"a": 2, "b": 1})
    assert tried(walk) == ["a", "b", "c", "a", "b", "a"]


def test_a_refused_pair_is_not_asked_again_in_later_rounds() -> None:
    walk = walk_of([A, B], MemoryCooldownBook(Clock()), retries={"a": 1, "b": 1})

    def refuse_a(c: Candidate) -> None:
        if c is A:
            walk.refuse(c, Failure(error(401), status=401))

    assert tried(walk, refuse_a) == ["a", "b", "b"]
    assert walk.failure is not None and walk.failure.status == 401


def test_a_stop_verdict_ends_the_walk() -> None:
    walk = walk_of([A, B], MemoryCooldownBook(Clock()))
    assert walk.next_step() == Try(A)
    walk.failed(A, Failure(error(400), status=400), Verdict(stop=True))
    assert walk.next_step() is None


def test_a_pair_resting_after_a_rate_limit_is_skipped_and_a_transient_one_retried_here() -> None:
    clock = Clock()
    book = MemoryCooldownBook(clock)
    walk = walk_of([A, B], book, retries={"a": 1, "b": 1})

    def fail(c: Candidate) -> None:
        if c is A:  # rate limited: rests, not asked again while resting
            book.cool("a", "m", clock.now + 60, "rate-limit")
            walk.failed(c, Failure(error(429), status=429), Verdict(rest=60.0))
        else:  # transient: rests for other requests, this one may ask again
            book.cool("b", "m", clock.now + 5, "transient")
            walk.failed(c, Failure(error(500), status=500), Verdict(rest=5.0, retry_here=True))

    assert tried(walk, fail) == ["a", "b", "b"]


def test_every_pair_resting_waits_for_the_earliest_reset_within_max_wait() -> None:
    clock = Clock()
    book = MemoryCooldownBook(clock)
    book.cool("a", "m", clock.now + 30, "rate-limit")
    book.cool("b", "m", clock.now + 10, "rate-limit")
    walk = walk_of([A, B], book, max_wait=15.0)
    assert walk.next_step() == Wait(10.0)
    clock.now += 10.0
    assert walk.next_step() == Try(B)
    book.cool("b", "m", clock.now + 10, "rate-limit")
    walk.failed(B, Failure(error(429), status=429), Verdict(rest=10.0))
    # Another 10 s would pass max-retry-interval (15 s in all): give up.
    assert walk.next_step() is None


def test_nothing_ready_and_resets_too_far_gives_up_without_a_failure() -> None:
    clock = Clock()
    book = MemoryCooldownBook(clock)
    book.cool("a", "m", clock.now + 100, "rate-limit")
    walk = walk_of([A], book, max_wait=30.0)
    assert walk.next_step() is None
    assert walk.failure is None
    assert walk.earliest_reset([A]) == clock.now + 100


def test_again_asks_the_same_candidate_at_once() -> None:
    walk = walk_of([A, B], MemoryCooldownBook(Clock()))
    assert walk.next_step() == Try(A)
    walk.again(A)
    assert walk.next_step() == Try(A)
    assert walk.next_step() == Try(B)


def test_fallbacks_come_first_once_and_the_original_failure_is_answered() -> None:
    walk = walk_of([A, B], MemoryCooldownBook(Clock()))
    fallback_1, fallback_2 = candidate("a", "m-preview"), candidate("a", "m-other")
    assert walk.next_step() == Try(A)
    quota = Failure(error(429), status=429)
    walk.failed(A, quota, Verdict(rest=60.0, fall_back=True))
    walk.fall_back([fallback_1, fallback_2])
    assert walk.next_step() == Try(fallback_1)
    walk.failed(fallback_1, Failure(error(404), status=404), Verdict(refuse=True))
    walk.fall_back([candidate("a", "never")])  # only the first quota error gets fallbacks
    assert walk.next_step() == Try(fallback_2)
    walk.failed(fallback_2, Failure(error(404), status=404), Verdict(refuse=True))
    assert walk.next_step() == Try(B)
    assert walk.failure is quota  # a retired preview's 404 would only mislead the client


def test_pairs_are_kept_per_upstream_model() -> None:
    assert pair_key(candidate("a", "x")) != pair_key(candidate("a", "y"))
    assert pair_key(candidate("a", "x")) == ("a", "x")


# ----- model fallbacks --------------------------------------------------------------------------


def fallback_walk(
    book: MemoryCooldownBook, chain: list[str], served: dict[str, list[Candidate]]
) -> PoolWalk:
    def candidates_for(model: str) -> list[Candidate]:
        if model not in served:
            raise ProxyError(ErrorKind.NOT_FOUND, f"model '{model}' is not served here")
        return served[model]

    return PoolWalk.for_model(
        "asked",
        candidates_for,
        chain,
        book=book,
        retries=lambda c: 0,
        order=lambda _round, ready: list(ready),
        max_wait=30.0,
        switch_project=True,
    )


def test_fallback_models_follow_once_every_candidate_failed_skipping_unknown_ones() -> None:
    x, y = candidate("x", "mx"), candidate("y", "my")
    walk = fallback_walk(
        MemoryCooldownBook(Clock()),
        ["unknown", "fb-1", "fb-2"],
        {
            "asked": [A, B],
            "fb-1": [x],
            "fb-2": [y],
        },
    )
    steps = []
    while (step := walk.next_step()) is not None:
        assert isinstance(step, Try)
        steps.append((step.candidate.credential.id, step.model))
        walk.failed(step.candidate, Failure(error(503), status=503), Verdict(fall_back=True))
    assert steps == [("a", None), ("b", None), ("x", "fb-1"), ("y", "fb-2")]
    assert walk.failure is not None and walk.failure.status == 503  # the last one


def test_a_resting_pool_goes_on_to_the_fallback_instead_of_waiting() -> None:
    clock = Clock()
    book = MemoryCooldownBook(clock)
    book.cool("a", "m", clock.now + 10, "rate-limit")
    x = candidate("x", "mx")
    walk = fallback_walk(book, ["fb"], {"asked": [A], "fb": [x]})
    assert walk.next_step() == Try(x, "fb")


def test_a_stop_verdict_ends_the_request_without_fallbacks() -> None:
    walk = fallback_walk(MemoryCooldownBook(Clock()), ["fb"], {"asked": [A], "fb": [B]})
    assert walk.next_step() == Try(A)
    walk.failed(A, Failure(error(400), status=400), Verdict(stop=True))
    assert walk.next_step() is None


def test_a_model_served_nowhere_but_with_fallbacks_stands_for_its_chain() -> None:
    walk = fallback_walk(MemoryCooldownBook(Clock()), ["fb"], {"fb": [B]})
    assert walk.next_step() == Try(B, "fb")
    with pytest.raises(ProxyError):
        fallback_walk(MemoryCooldownBook(Clock()), [], {})


# ----- what a rate limit rests ------------------------------------------------------------------


def test_a_rate_limit_rests_a_codex_account_for_every_model_and_an_api_key_per_model() -> None:
    from cliproxy.providers.codex import CodexProvider
    from cliproxy.routing.attempts import WHOLE_CREDENTIAL, rest_key

    account = Credential("codex-a.json", "token", "http://127.0.0.1:1")
    codex_one = Candidate(CodexProvider(), account, "gpt-5")
    codex_two = Candidate(CodexProvider(), account, "gpt-5-mini")
    limited = ProxyError(ErrorKind.RATE_LIMIT, "usage limit reached", retry_after=60)
    assert rest_key(codex_one, 429, limited) == WHOLE_CREDENTIAL
    assert rest_key(codex_one, 503, error(503)) == "gpt-5"  # a transient error: the pair only
    assert rest_key(A, 429, limited) == "m"

    clock = Clock()
    book = MemoryCooldownBook(clock)
    book.cool("codex-a.json", WHOLE_CREDENTIAL, clock.now + 60, "rate-limit")
    walk = walk_of([codex_one, codex_two, B], book)
    assert walk.resting(codex_two) and walk.resting(codex_one)
    assert tried(walk) == ["b"]
    assert walk.earliest_reset([codex_two]) == clock.now + 60
