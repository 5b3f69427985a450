"""The pool's state lives behind one interface (routing/pool_state.py): selectors keep no
counters of their own, so two processes sharing a store rotate as one, and a config reload
carries the rotation on."""

from __future__ import annotations

from collections import Counter

import pytest

from cliproxy.config import parse_config_text
from cliproxy.providers.api_keys import ClaudeApiKeyProvider
from cliproxy.providers.base import Credential
from cliproxy.routing.pool_state import MemoryCounters, PoolState, memory_pool_state
from cliproxy.routing.registry import Candidate, RoundRobin, WeightedRoundRobin
from cliproxy.state import AppState

PROVIDER = ClaudeApiKeyProvider()


def cand(name: str, weight: int = 1) -> Candidate:
    return Candidate(PROVIDER, Credential(name, "s-" + name, "http://x", weight=weight), "up")


def leaders(selector: RoundRobin | WeightedRoundRobin, pool: list[Candidate], n: int) -> list[str]:
    return [
        c.credential.id
        for c in (selector.order("m", pool, 1)[0] for _ in range(n))
        if c.credential is not None
    ]


@pytest.mark.parametrize("kind", [RoundRobin, WeightedRoundRobin])
def test_two_processes_sharing_counters_rotate_as_one(kind: type) -> None:
    shared = MemoryCounters()
    first, second = kind(shared), kind(shared)
    pool = [cand("a"), cand("b")]
    picks = [leaders(selector, pool, 1)[0] for selector in (first, second) * 4]
    assert picks == ["a", "b"] * 4


def test_weighted_rotation_with_large_weights_still_follows_them() -> None:
    # A weight sum past the schedule limit takes the low-discrepancy path.
    pool = [cand("a", 700_000), cand("b", 200_001), cand("c", 100_000)]
    counts = Counter(leaders(WeightedRoundRobin(), pool, 3000))
    for name, share in (("a", 0.7), ("b", 0.2), ("c", 0.1)):
        assert abs(counts[name] / 3000 - share) <= 0.01, counts


CONFIG = """
claude-api-key:
  - {api-key: a, base-url: "http://127.0.0.1:9", models: [{name: up, alias: m}]}
  - {api-key: b, base-url: "http://127.0.0.1:9", models: [{name: up, alias: m}]}
"""


def test_a_reload_carries_the_rotation_on_and_a_handed_in_store_is_used(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = f'auth-dir: "{tmp_path}"\n' + CONFIG
    pool = memory_pool_state(lambda: 0.0)
    state = AppState(parse_config_text(config, "c"), pool=pool)
    assert state.cooldowns is pool.cooldowns and state.affinity is pool.affinity

    def leader() -> str:
        runtime = state.runtime
        order = runtime.selector.order("m", runtime.registry.candidates("m"), 1)
        assert order[0].credential is not None
        return order[0].credential.id

    first = leader()
    state.apply(parse_config_text(config + "debug: true\n", "c"))
    assert leader() != first  # the new selector continued, not restarted
    assert isinstance(state.pool, PoolState)


def test_a_keys_rest_follows_it_when_an_edit_renumbers_the_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    two_keys = f'auth-dir: "{tmp_path}"\n' + CONFIG
    state = AppState(parse_config_text(two_keys, "c"), clock=lambda: 1000.0)
    state.cooldowns.cool("claude-api-key[0]", "up", 1060.0, "rate-limit (429)")
    state.cooldowns.cool("claude-api-key[1]", "up", 1300.0, "rate-limit (429)")
    # The first key is deleted: key "b" is now claude-api-key[0].
    only_b = two_keys.replace(
        '  - {api-key: a, base-url: "http://127.0.0.1:9", models: [{name: up, alias: m}]}\n', ""
    )
    state.apply(parse_config_text(only_b, "c"))
    assert [(c.credential_id, c.until) for c in state.cooldowns.snapshot()] == [
        ("claude-api-key[0]", 1300.0)
    ]
