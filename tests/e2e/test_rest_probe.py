"""Probing a resting API key: after a rate limit, the upstream is asked with the smallest
request there is, at most once a minute and once per reset hint; a success ends the rest, a new
429 renews it with the new hint; accounts and rests about to end are left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from cliproxy.config import parse_config_text
from cliproxy.server.rest_probe import RestProbe
from cliproxy.state import AppState
from tests.simulators import AnthropicSim, Reply

T0 = 1_900_000_000.0
KEY = "claude-api-key[0]"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def setup(
    anthropic_sim: AnthropicSim, tmp_path: Path
) -> AsyncIterator[tuple[AppState, RestProbe, Clock]]:
    config = parse_config_text(
        f"auth-dir: {tmp_path}\nclaude-api-key:\n"
        f"  - {{api-key: probe-key, base-url: '{anthropic_sim.base_url}',"
        " models: [{name: up-claude, alias: claude-model}]}\n",
        "config.yaml",
    )
    clock = Clock()
    state = AppState(config, clock=clock)
    yield state, RestProbe(state), clock
    await state.close()


def _rest(state: AppState, clock: Clock, seconds: float) -> None:
    state.cooldowns.cool(KEY, "up-claude", clock.now + seconds, "rate-limit (429)")


async def test_a_probe_that_succeeds_ends_the_rest(
    setup: tuple[AppState, RestProbe, Clock], anthropic_sim: AnthropicSim
) -> None:
    state, probe, clock = setup
    _rest(state, clock, 3600)
    assert await probe.pass_once() == 0  # first seen: the 429 itself was the last contact
    clock.now += 30
    assert await probe.pass_once() == 0  # not yet a minute
    clock.now += 31
    anthropic_sim.queue(Reply.text("ok"))
    assert await probe.pass_once() == 1
    sent = anthropic_sim.last_request
    assert sent.json["model"] == "up-claude" and sent.json["max_tokens"] == 1
    assert "probe-key" in (
        sent.headers.get("x-api-key", "") + sent.headers.get("authorization", "")
    )
    assert state.cooldowns.available_at(KEY, "up-claude") is None


async def test_a_probe_answered_429_renews_the_rest_and_waits_for_that_hint(
    setup: tuple[AppState, RestProbe, Clock], anthropic_sim: AnthropicSim
) -> None:
    state, probe, clock = setup
    _rest(state, clock, 3600)
    await probe.pass_once()
    clock.now += 61
    anthropic_sim.queue(Reply.error(429, retry_after=600))
    assert await probe.pass_once() == 1
    assert state.cooldowns.available_at(KEY, "up-claude") == pytest.approx(clock.now + 600, abs=1)
    clock.now += 120
    assert await probe.pass_once() == 0  # once per reset hint
    assert len(anthropic_sim.requests) == 1


async def test_rests_about_to_end_and_transient_ones_are_not_probed(
    setup: tuple[AppState, RestProbe, Clock], anthropic_sim: AnthropicSim
) -> None:
    state, probe, clock = setup
    _rest(state, clock, 90)
    await probe.pass_once()
    clock.now += 61  # 29 s left: waited out
    assert await probe.pass_once() == 0
    state.cooldowns.clear()
    state.cooldowns.cool(KEY, "up-claude", clock.now + 3600, "transient-error (503)")
    clock.now += 61
    assert await probe.pass_once() == 0
    assert anthropic_sim.requests == []


async def test_accounts_are_left_to_their_vendor_reads(
    anthropic_sim: AnthropicSim, tmp_path: Path
) -> None:
    account = {"type": "claude", "access_token": "at", "refresh_token": "rt",
               "email": "a@example.com", "expired": "2999-01-01T00:00:00Z"}  # fmt: skip
    (tmp_path / "claude-a.json").write_bytes(orjson.dumps(account))
    clock = Clock()
    state = AppState(parse_config_text(f"auth-dir: {tmp_path}\n", "c"), clock=clock)
    try:
        probe = RestProbe(state)
        state.cooldowns.cool("claude-a.json", "claude-sonnet-4-5", clock.now + 3600, "rate-limit")
        await probe.pass_once()
        clock.now += 120
        assert probe.due(clock.now) == []
    finally:
        await state.close()


def test_a_real_request_that_succeeds_ends_the_pairs_rest(anthropic_sim: AnthropicSim) -> None:
    import anthropic

    from tests.proxy_server import ProxyServer

    config = (
        "request-retry: 1\nmax-retry-interval: 0\nclaude-api-key:\n"
        f"  - {{api-key: only-key, base-url: '{anthropic_sim.base_url}',"
        " models: [{name: up-claude, alias: claude-model}]}\n"
    )
    anthropic_sim.queue(Reply.error(503, "momentary"), Reply.text("fine again"))
    with ProxyServer(config) as proxy:
        client = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
        reply = client.messages.create(
            model="claude-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.content[0].text == "fine again"  # the same key, asked again in round 1
        # The 503 rested the key for other requests; its success ended that rest.
        assert proxy.state.cooldowns.available_at(KEY, "up-claude") is None
    assert len(anthropic_sim.requests) == 2
