"""client-keys: config validation (errors name the entry index and the field), the wildcard
match, and the counting of usage/key_limits.py (sliding window, Retry-After, UTC day and month,
seeding from the ledger's totals)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cliproxy.config import ConfigError, parse_config_text
from cliproxy.config.client_keys import ClientKey
from cliproxy.config.schema import ModelPrice
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.usage.events import RequestOutcome
from cliproxy.usage.key_limits import KeyLimits, next_month_start
from cliproxy.usage.prices import Prices


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config_text(text, "c.yaml")
    return [f"{p.key_path}: {p.message}" for p in error.value.problems]


def test_config_errors_name_the_entry_and_field() -> None:
    problems = _problems(
        """
api-keys: [sk-plain]
client-keys:
  - {key: sk-a, name: a}
  - {key: sk-b, name: b, requests-per-minute: 0}
  - {key: sk-a, name: A}
  - {key: sk-plain, name: c}
  - {name: d}
  - {key: sk-e, name: e, max-budget-usd-per-month: -1}
"""
    )
    assert any(
        p.startswith("client-keys[1].requests-per-minute: must be at least 1") for p in problems
    )
    assert any(p.startswith("client-keys[4].key:") for p in problems)
    assert any(p.startswith("client-keys[5].max-budget-usd-per-month: must be 0") for p in problems)
    second = _problems("client-keys:\n  - {key: sk-a, name: a}\n  - {key: sk-a, name: A}\n")
    assert any(p.startswith("client-keys[1].name: duplicate client key name 'A'") for p in second)
    assert any(p.startswith("client-keys[1].key: the key of 'A'") for p in second)
    third = _problems("api-keys: [sk-p]\nclient-keys:\n  - {key: sk-p, name: c}\n")
    assert third == [
        "client-keys[0].key: the key of 'c' is also listed in api-keys (where it has no policy);"
        " keep it in one place"
    ]


def test_a_client_key_is_a_client_key() -> None:
    config = parse_config_text("client-keys:\n  - {key: ' sk-a ', name: a}\n", "c.yaml")
    assert config.client_key_values == ["sk-a"]
    assert config.client_keys[0].allowed_models is None


def test_allowed_models_wildcards_ignore_case() -> None:
    entry = ClientKey(key="k", name="n", allowed_models=["claude-*", "GPT-5*", "team/exact"])
    assert entry.allows("Claude-Sonnet-4-5") and entry.allows("gpt-5.5")
    assert entry.allows("TEAM/exact") and not entry.allows("team/exact-2")
    assert not entry.allows("gemini-2.5-pro") and not entry.allows("x-claude-1")
    assert ClientKey(key="k", name="n").allows("anything")
    assert not ClientKey(key="k", name="n", allowed_models=[]).allows("anything")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _limited(limits: KeyLimits, policy: ClientKey) -> ProxyError:
    with pytest.raises(ProxyError) as error:
        limits.admit(policy)
    assert error.value.kind is ErrorKind.RATE_LIMIT
    return error.value


def test_requests_per_minute_slides() -> None:
    clock = Clock(1_000_000.0)
    limits = KeyLimits(Prices, clock)
    policy = ClientKey(key="k", name="n", requests_per_minute=2)
    limits.admit(policy)
    clock.now += 20
    limits.admit(policy)
    clock.now += 10.5
    assert _limited(limits, policy).retry_after == 30  # the first frees at +60
    clock.now += 29.5
    limits.admit(policy)  # the first left the window
    assert _limited(limits, policy).retry_after == 20
    assert limits.requests_last_minute("n") == 2


def test_concurrency_slots_are_given_back() -> None:
    limits = KeyLimits(Prices, Clock(0.0))
    policy = ClientKey(key="k", name="n", max_concurrent_requests=1)
    limits.admit(policy)
    error = _limited(limits, policy)
    assert error.retry_after == 1 and "max-concurrent-requests" in error.message
    limits.release("n")
    limits.admit(policy)


def _outcome(name: str, tokens: tuple[int, int], model: str = "priced") -> RequestOutcome:
    return RequestOutcome(
        client_key="sk-…",
        client_protocol="openai_chat",
        upstream_protocol="openai_chat",
        requested_model=model,
        upstream_model=model,
        credential_id="c",
        provider="p",
        path="pass-through",
        stream=False,
        status=200,
        error_kind=None,
        ending="completed",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cached_tokens=0,
        reasoning_tokens=0,
        latency=0.1,
        first_token=None,
        attempts=1,
        bytes_out=10,
        client_key_name=name,
    )


def test_tokens_and_cost_per_utc_day_and_month() -> None:
    end_of_month = datetime(2026, 12, 31, 23, 59, 0, tzinfo=UTC).timestamp()
    clock = Clock(end_of_month)
    prices = Prices({"priced": ModelPrice(input=1.0, output=2.0)})
    limits = KeyLimits(lambda: prices, clock)
    policy = ClientKey(key="k", name="n", tokens_per_day=1000, max_budget_usd_per_month=0.001)
    limits.on_request(_outcome("n", (500, 250)))  # $0.0005 + $0.0005
    limits.on_request(_outcome("", (10_000, 0)))  # a plain key: not counted
    assert limits.tokens_today("n") == 750
    assert limits.cost_this_month("n") == pytest.approx(0.001)
    error = _limited(limits, policy)
    assert "max-budget-usd-per-month" in error.message and error.retry_after == 60
    limits.on_request(_outcome("n", (300, 0)))
    error = _limited(limits, policy)
    assert "tokens-per-day" in error.message and error.retry_after == 60
    clock.now += 61  # a new day and a new month
    assert limits.tokens_today("n") == 0 and limits.cost_this_month("n") == 0
    limits.admit(policy)
    assert next_month_start(end_of_month) == datetime(2027, 1, 1, tzinfo=UTC).timestamp()


def test_seeded_from_ledger_totals() -> None:
    clock = Clock(datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp())
    limits = KeyLimits(Prices, clock)
    limits.seed({"n": (900, 0.1)}, {"n": (5000, 2.5)}, clock.now)
    assert limits.tokens_today("n") == 900 and limits.cost_this_month("n") == 2.5
    _limited(limits, ClientKey(key="k", name="n", max_budget_usd_per_month=2.5))
    _limited(limits, ClientKey(key="k", name="n", tokens_per_day=900))
    limits.admit(ClientKey(key="k", name="n", tokens_per_day=901, max_budget_usd_per_month=3))


def test_a_misspelt_field_is_a_warning() -> None:
    config = parse_config_text(
        "client-keys:\n  - {key: sk-a, name: a, request-per-minute: 3}\n", "c.yaml"
    )
    assert any("did you mean 'requests-per-minute'" in warning for warning in config.warnings)
