"""Cooldowns and credential selection, with a fake clock (no sleeping)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from cliproxy.auth.records import AccountState
from cliproxy.config import parse_config_text
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.api_keys import ClaudeApiKeyProvider
from cliproxy.providers.base import Credential
from cliproxy.routing.build import build_registry
from cliproxy.routing.cooldown import CoolingPolicy, MemoryCooldownBook, seconds_until
from cliproxy.routing.registry import (
    Candidate,
    FillFirst,
    RoundRobin,
    WeightedRoundRobin,
    make_selector,
)
from cliproxy.server.resting import rest

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def book(clock: FakeClock) -> MemoryCooldownBook:
    return MemoryCooldownBook(clock)


PROVIDER = ClaudeApiKeyProvider()


def cand(name: str, *, weight: int = 1, priority: int = 0) -> Candidate:
    credential = Credential(name, "secret-" + name, "http://x", weight=weight, priority=priority)
    return Candidate(PROVIDER, credential, "up-model")


def first_choices(selector: object, candidates: list[Candidate], n: int) -> list[str]:
    picks = []
    for _ in range(n):
        order = selector.order("m", candidates, 2)  # type: ignore[attr-defined]
        assert order[0].credential is not None
        picks.append(order[0].credential.id)
    return picks


# ----- the book and the policy --------------------------------------------------------------


def test_429_with_retry_after_30_cools_exactly_30_seconds(
    book: MemoryCooldownBook, clock: FakeClock
) -> None:
    seconds = CoolingPolicy().duration(429, ErrorKind.RATE_LIMIT, 30.0)
    assert seconds == 30.0
    book.cool("a", "m", clock.now + seconds, "rate-limit")
    assert book.available_at("a", "m") == T0 + 30
    clock.now = T0 + 29.999
    assert book.available_at("a", "m") == T0 + 30
    clock.now = T0 + 30
    assert book.available_at("a", "m") is None  # back exactly at the reset
    assert book.snapshot() == []


def test_cooldown_is_per_credential_and_model(book: MemoryCooldownBook) -> None:
    book.cool("a", "m", T0 + 10, "rate-limit")
    assert book.available_at("a", "other-model") is None
    assert book.available_at("b", "m") is None


def test_a_shorter_cooldown_does_not_cut_a_longer_one(
    book: MemoryCooldownBook, clock: FakeClock
) -> None:
    book.cool("a", "m", T0 + 60, "rate-limit")
    book.cool("a", "m", T0 + 5, "transient-error")
    assert book.available_at("a", "m") == T0 + 60
    clock.now = T0 + 61
    book.cool("a", "m", T0 + 66, "transient-error")  # the old one has ended: a new one starts
    assert book.available_at("a", "m") == T0 + 66


def test_clear_and_snapshot(book: MemoryCooldownBook) -> None:
    book.cool("a", "m1", T0 + 20, "rate-limit")
    book.cool("a", "m2", T0 + 10, "rate-limit")
    book.cool("b", "m1", T0 + 30, "transient-error")
    assert [(c.credential_id, c.model) for c in book.snapshot()] == [
        ("a", "m2"),
        ("a", "m1"),
        ("b", "m1"),
    ]
    book.clear("a", "m2")
    assert book.available_at("a", "m2") is None and book.available_at("a", "m1") is not None
    book.clear("a")
    assert [c.credential_id for c in book.snapshot()] == ["b"]
    book.clear()
    assert book.snapshot() == []


def test_policy_defaults_caps_and_transient() -> None:
    policy = CoolingPolicy(rate_limit_seconds=60, transient_seconds=5, max_seconds=3600)
    assert policy.duration(429, ErrorKind.RATE_LIMIT, None) == 60  # no hint: the default
    assert policy.duration(429, ErrorKind.RATE_LIMIT, 86_400) == 3600  # capped
    # A vendor quota error parse_error maps to a rate limit cools even without a 429.
    assert policy.duration(403, ErrorKind.RATE_LIMIT, 120) == 120
    for status in (408, 500, 502, 503, 529):
        assert policy.duration(status, ErrorKind.UPSTREAM, None) == 5
    assert policy.duration(503, ErrorKind.OVERLOADED, 7) == 7
    for status in (400, 401, 403, 404):
        assert policy.duration(status, ErrorKind.AUTHENTICATION, None) is None
    assert CoolingPolicy(transient_seconds=0).duration(500, ErrorKind.UPSTREAM, None) is None


def test_disable_cooling_policy() -> None:
    assert CoolingPolicy(enabled=False).duration(429, ErrorKind.RATE_LIMIT, 30) is None
    assert CoolingPolicy(enabled=False).duration(500, ErrorKind.UPSTREAM, None) is None


def test_seconds_until_rounds_up_so_retrying_after_it_succeeds() -> None:
    assert seconds_until(T0 + 29.2, T0) == 30
    assert seconds_until(T0 + 30, T0) == 30
    assert seconds_until(T0 + 0.1, T0) == 1


# ----- config -------------------------------------------------------------------------------


def test_config_keys_for_cooling_and_weights() -> None:
    config = parse_config_text(
        """
routing: {strategy: weighted-round-robin}
disable-cooling: true
transient-error-cooldown-seconds: 2
max-cooldown-seconds: 900
claude-api-key:
  - {api-key: a, weight: 3, priority: 1, disable-cooling: true}
  - {api-key: b}
openai-compatibility:
  - name: pool
    base-url: http://127.0.0.1:1
    priority: 4
    disable-cooling: true
    api-key-entries: [{api-key: x, weight: 2}, {api-key: y, priority: 9}]
    models: [m]
""",
        "c.yaml",
    )
    assert config.unsupported_keys() == [] and config.warnings == []
    assert config.routing.strategy == "weighted-round-robin"
    assert config.disable_cooling and config.transient_error_cooldown_seconds == 2
    registry = build_registry(config)
    claude = [c.credential for c in registry.candidates("claude-x")]
    assert [(c.weight, c.priority) for c in claude if c] == [(3, 1), (1, 0)]
    compat = [c.credential for c in registry.candidates("m")]
    assert [(c.weight, c.priority) for c in compat if c] == [(2, 4), (1, 9)]
    exempt = {key for key, policy in registry.policies.items() if policy.disable_cooling}
    assert exempt == {
        "claude-api-key[0]",
        "openai-compatibility[pool][0]",
        "openai-compatibility[pool][1]",
    }


@pytest.mark.parametrize("spelling", ["weighted-round-robin", "WRR", "weightedroundrobin"])
def test_weighted_strategy_spellings(spelling: str) -> None:
    config = parse_config_text(f"routing: {{strategy: {spelling}}}", "c")
    assert config.routing.strategy == "weighted-round-robin"
    assert isinstance(make_selector(config.routing.strategy), WeightedRoundRobin)


def test_negative_weight_is_an_error() -> None:
    with pytest.raises(Exception, match="weight"):
        parse_config_text("claude-api-key: [{api-key: a, weight: -1}]", "c")


# ----- selection ----------------------------------------------------------------------------


def test_round_robin_is_even_over_many_requests() -> None:
    pool = [cand("a"), cand("b"), cand("c")]
    picks = first_choices(RoundRobin(), pool, 300)
    assert Counter(picks) == {"a": 100, "b": 100, "c": 100}
    assert picks[:3] == ["a", "b", "c"]


def test_weighted_round_robin_follows_weights() -> None:
    pool = [cand("a", weight=5), cand("b", weight=3), cand("c", weight=2)]
    counts = Counter(first_choices(WeightedRoundRobin(), pool, 1000))
    for name, share in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        assert abs(counts[name] / 1000 - share) <= 0.01, counts
    # Smooth: the heavy credential is interleaved, never served 5 times in a row.
    picks = first_choices(WeightedRoundRobin(), pool, 20)
    assert "aaa" not in "".join(picks)


def test_weighted_order_puts_the_others_behind_for_retries() -> None:
    order = WeightedRoundRobin().order("m", [cand("a", weight=1), cand("b", weight=9)], 3)
    assert [c.credential.id for c in order if c.credential] == ["b", "a", "b"]


def test_fill_first_stays_on_the_first_until_it_cools(
    book: MemoryCooldownBook, clock: FakeClock
) -> None:
    pool = [cand("a"), cand("b")]
    selector = FillFirst()

    def ready() -> list[Candidate]:
        return [c for c in pool if c.credential and book.available_at(c.credential.id, "m") is None]

    assert first_choices(selector, ready(), 10) == ["a"] * 10
    book.cool("a", "m", clock.now + 30, "rate-limit")
    assert first_choices(selector, ready(), 10) == ["b"] * 10
    clock.now += 30
    assert first_choices(selector, ready(), 3) == ["a"] * 3


@pytest.mark.parametrize("selector_cls", [RoundRobin, FillFirst, WeightedRoundRobin])
def test_priority_is_honoured(selector_cls: type) -> None:
    pool = [
        cand("low"),
        cand("high1", priority=5),
        cand("mid", priority=1),
        cand("high2", priority=5),
    ]
    selector = selector_cls()
    picks = first_choices(selector, pool, 40)
    assert set(picks) <= {"high1", "high2"}
    if selector_cls is not FillFirst:
        assert Counter(picks) == {"high1": 20, "high2": 20}
    # Lower priorities follow, highest first, as fall-backs for retries.
    order = selector.order("m", pool, 4)
    assert [c.credential.id for c in order[2:]] == ["mid", "low"]
    # With the top priority gone (cooling), the next one leads.
    assert first_choices(selector, [pool[0], pool[2]], 3) == ["mid"] * 3


def test_round_robin_rotates_per_model() -> None:
    selector = RoundRobin()
    pool = [cand("a"), cand("b")]
    assert selector.order("m1", pool, 1)[0].credential == pool[0].credential
    assert selector.order("m2", pool, 1)[0].credential == pool[0].credential
    assert selector.order("m1", pool, 1)[0].credential == pool[1].credential


# ----- accounts -----------------------------------------------------------------------------


def test_a_cooling_account_shows_in_the_store_and_carries_weight(
    tmp_path: Path, clock: FakeClock
) -> None:
    from cliproxy.state import AppState

    account = {
        "type": "claude",
        "access_token": "at-claude",
        "refresh_token": "rt-claude",
        "email": "b@example.com",
        "expired": "2999-01-02T03:04:05Z",
        "weight": 4,
        "priority": 2,
    }
    (tmp_path / "claude-b.json").write_bytes(orjson.dumps(account))
    config = parse_config_text(f"auth-dir: {tmp_path}\n", "c")
    state = AppState(config, clock=clock)
    [candidate] = state.runtime.registry.candidates("claude-sonnet-4-5")
    credential = candidate.credential
    assert credential is not None and (credential.weight, credential.priority) == (4, 2)
    error = ProxyError(ErrorKind.RATE_LIMIT, "slow down", retry_after=90)
    seconds = state.runtime.cooling.duration(429, error.kind, error.retry_after)
    assert seconds == 90
    rest(state, credential, "claude-sonnet-4-5", seconds, 429, error)
    assert state.cooldowns.available_at("claude-b.json", "claude-sonnet-4-5") == T0 + 90
    status = state.auth_store.status("claude-b.json", now=datetime.fromtimestamp(T0, UTC))
    assert status.state is AccountState.COOLING
    assert status.cooling_until == datetime.fromtimestamp(T0 + 90, UTC)
    # A shorter rest for another model does not shorten what the listing shows.
    transient = ProxyError(ErrorKind.UPSTREAM, "oops")
    seconds = state.runtime.cooling.duration(503, transient.kind, transient.retry_after)
    assert seconds is not None
    rest(state, credential, "claude-haiku-4-5", seconds, 503, transient)
    status = state.auth_store.status("claude-b.json", now=datetime.fromtimestamp(T0, UTC))
    assert status.cooling_until == datetime.fromtimestamp(T0 + 90, UTC)
