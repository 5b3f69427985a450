"""Session affinity through the real proxy: a Claude-Code-style session stays on one key of a
two-key pool, another session takes the other key, a 429 moves the session for good, and with
affinity off round-robin alternates. Time is a fake clock injected into the cooldown book, which
the affinity book shares."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, Reply

T0 = 1_700_000_000.0

AFFINITY_CONFIG = """
request-retry: 1
routing:
  strategy: round-robin
  session-affinity: true
  session-affinity-ttl: "10m"
claude-api-key:
  - api-key: first-key
    base-url: {claude}
    models: [{{name: up-claude, alias: pooled}}]
  - api-key: second-key
    base-url: {claude}
    models: [{{name: up-claude, alias: pooled}}]
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def affinity_proxy(_anthropic_sim_server: AnthropicSim) -> Iterator[ProxyServer]:
    with ProxyServer(AFFINITY_CONFIG.format(claude=_anthropic_sim_server.base_url)) as proxy:
        yield proxy


@pytest.fixture
def clock(affinity_proxy: ProxyServer) -> FakeClock:
    fake = FakeClock()
    state = affinity_proxy.state
    state.cooldowns.clock = fake
    state.cooldowns.clear()
    state.affinity.clear()
    return fake


def _claude_code(proxy: ProxyServer, session: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=proxy.base_url,
        api_key="k",
        max_retries=0,
        default_headers={"X-Claude-Code-Session-Id": session},
    )


def _turn(client: anthropic.Anthropic, prompt: str, *, stream: bool = False) -> str:
    messages = [{"role": "user", "content": prompt}]
    if stream:
        with client.messages.stream(model="pooled", max_tokens=10, messages=messages) as events:  # type: ignore[arg-type]
            return events.get_final_text()
    reply = client.messages.create(model="pooled", max_tokens=10, messages=messages)  # type: ignore[arg-type]
    return reply.content[0].text  # type: ignore[union-attr]


def _keys(sim: AnthropicSim) -> list[str | None]:
    return [sim.presented_key(r) for r in sim.requests]


def test_each_session_stays_on_its_key(
    affinity_proxy: ProxyServer, anthropic_sim: AnthropicSim, clock: FakeClock
) -> None:
    alice = _claude_code(affinity_proxy, "session-alice")
    bob = _claude_code(affinity_proxy, "session-bob")
    # Uneven turns, so plain per-request rotation could not keep either session on one key.
    pattern = "ABAAABBAAB"
    for turn, who in enumerate(pattern):
        client = alice if who == "A" else bob
        assert _turn(client, f"t{turn}", stream=turn % 3 == 1) == f"echo: t{turn}"
    keys = _keys(anthropic_sim)
    alice_keys = {key for key, who in zip(keys, pattern, strict=True) if who == "A"}
    bob_keys = {key for key, who in zip(keys, pattern, strict=True) if who == "B"}
    assert pattern.count("A") == 6
    assert len(alice_keys) == 1 and len(bob_keys) == 1
    assert alice_keys | bob_keys == {"first-key", "second-key"}
    # The binding survives a config reload.
    state = affinity_proxy.state
    state.apply(state.runtime.config.model_copy())
    _turn(alice, "after reload")
    assert _keys(anthropic_sim)[-1] in alice_keys


def test_without_affinity_round_robin_alternates(
    affinity_proxy: ProxyServer, anthropic_sim: AnthropicSim, clock: FakeClock
) -> None:
    state = affinity_proxy.state
    original = state.runtime.config
    routing = original.routing.model_copy(update={"session_affinity": False})
    try:
        state.apply(original.model_copy(update={"routing": routing}))
        alice = _claude_code(affinity_proxy, "session-alice")
        for turn in range(6):
            _turn(alice, f"a{turn}")
        keys = _keys(anthropic_sim)
        assert all(keys[i] != keys[i + 1] for i in range(5))
        assert len(state.affinity) == 0
    finally:
        state.apply(original)


def test_429_on_the_bound_key_moves_the_session_for_good(
    affinity_proxy: ProxyServer, anthropic_sim: AnthropicSim, clock: FakeClock
) -> None:
    alice = _claude_code(affinity_proxy, "session-alice")
    _turn(alice, "one")
    [bound] = _keys(anthropic_sim)
    anthropic_sim.queue(Reply.error(429, retry_after=30))
    # The bound key refuses; the retry goes to the other key within the same request.
    assert _turn(alice, "two") == "echo: two"
    refused, moved = _keys(anthropic_sim)[1:]
    assert refused == bound and moved != bound
    for turn in range(3):
        _turn(alice, f"cooling {turn}")
    # The old key's rest ends, but the session stays where it moved.
    clock.now = T0 + 31
    for turn in range(3):
        _turn(alice, f"rested {turn}", stream=turn == 0)
    assert _keys(anthropic_sim)[3:] == [moved] * 6


def test_binding_expires_after_the_ttl(
    affinity_proxy: ProxyServer, anthropic_sim: AnthropicSim, clock: FakeClock
) -> None:
    alice = _claude_code(affinity_proxy, "session-alice")
    _turn(alice, "one")
    [bound] = _keys(anthropic_sim)
    state = affinity_proxy.state
    credential_ids = {"first-key": "claude-api-key[0]", "second-key": "claude-api-key[1]"}
    assert state.affinity.bound("claude-code:session-alice", "pooled") == credential_ids[bound]
    clock.now = T0 + 599  # session-affinity-ttl: 10m, refreshed by each turn
    _turn(alice, "two")
    assert _keys(anthropic_sim)[-1] == bound
    clock.now = T0 + 599 + 599.9
    assert state.affinity.bound("claude-code:session-alice", "pooled") == credential_ids[bound]
    clock.now = T0 + 599 + 600
    assert state.affinity.bound("claude-code:session-alice", "pooled") is None


def test_conversation_without_session_header_sticks_by_first_message(
    affinity_proxy: ProxyServer, anthropic_sim: AnthropicSim, clock: FakeClock
) -> None:
    chat = openai.OpenAI(base_url=affinity_proxy.base_url + "/v1", api_key="k", max_retries=0)
    history: list[dict[str, str]] = [{"role": "user", "content": "plan a trip"}]
    for turn in range(4):
        reply = chat.chat.completions.create(model="pooled", messages=history)  # type: ignore[arg-type]
        history += [
            {"role": "assistant", "content": reply.choices[0].message.content or ""},
            {"role": "user", "content": f"more {turn}"},
        ]
    keys = _keys(anthropic_sim)
    # The one-message opening is not pinned; from the second turn on the conversation sticks.
    assert len(set(keys[1:])) == 1
    # One-shot requests keep alternating.
    for prompt in ("x", "y"):
        chat.chat.completions.create(model="pooled", messages=[{"role": "user", "content": prompt}])
    assert _keys(anthropic_sim)[-1] != _keys(anthropic_sim)[-2]
