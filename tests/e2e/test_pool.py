"""Cooldowns through the real proxy: a rate-limited credential rests until its reset, the pool
moves on without asking it, and when every credential rests the client gets a 429 with the
earliest reset as Retry-After. Time is a fake clock injected into the proxy's cooldown book."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as gerrors

from tests.e2e.clients import CLIENTS, ask
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, GeminiSim, Reply

T0 = 1_700_000_000.0

POOL_CONFIG = """
request-retry: 1
# These tests are about what the client sees when credentials rest; waiting for a reset
# (max-retry-interval) has its own tests in test_pool_retries.py.
max-retry-interval: 0
claude-api-key:
  - api-key: first-key
    base-url: {claude}
    models: [{{name: up-claude, alias: pooled}}, {{name: up-claude-solo, alias: solo-a}}]
  - api-key: second-key
    base-url: {claude}
    models: [{{name: up-claude, alias: pooled}}]
  - api-key: tireless-key
    base-url: {claude}
    disable-cooling: true
    models: [{{name: up-claude, alias: never-cools}}]
gemini-api-key:
  - api-key: only-key
    base-url: {gemini}
    models: [{{name: up-gemini, alias: lonely}}]
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def cooling_proxy(
    _anthropic_sim_server: AnthropicSim, _gemini_sim_server: GeminiSim
) -> Iterator[ProxyServer]:
    config = POOL_CONFIG.format(
        claude=_anthropic_sim_server.base_url, gemini=_gemini_sim_server.base_url
    )
    with ProxyServer(config) as proxy:
        yield proxy


@pytest.fixture
def clock(cooling_proxy: ProxyServer) -> FakeClock:
    fake = FakeClock()
    cooling_proxy.state.cooldowns.clock = fake
    cooling_proxy.state.cooldowns.clear()
    return fake


def _keys(sim: AnthropicSim) -> list[str]:
    return [sim.presented_key(r) for r in sim.requests]


@pytest.mark.parametrize("client", CLIENTS)
def test_next_request_after_a_429_skips_the_cooled_credential(
    client: str, cooling_proxy: ProxyServer, anthropic_sim: AnthropicSim, clock: FakeClock
) -> None:
    base = cooling_proxy.base_url
    anthropic_sim.queue(Reply.error(429, retry_after=30))
    assert ask(client, base, "pooled", "one", stream=False).text == "echo: one"
    cooled, other = _keys(anthropic_sim)
    assert cooled != other
    for prompt in ("two", "three", "four"):
        assert ask(client, base, "pooled", prompt, stream=True).text == f"echo: {prompt}"
    # The cooled key was asked once (the 429) and never again, streaming or not.
    assert _keys(anthropic_sim).count(cooled) == 1
    clock.now = T0 + 29.9
    ask(client, base, "pooled", "five", stream=False)
    assert _keys(anthropic_sim).count(cooled) == 1
    # The reset passes: round-robin brings the key back within two requests, no restart.
    clock.now = T0 + 30
    ask(client, base, "pooled", "six", stream=False)
    ask(client, base, "pooled", "seven", stream=False)
    assert _keys(anthropic_sim).count(cooled) == 2


def test_every_credential_cooling_is_a_429_with_the_earliest_reset(
    cooling_proxy: ProxyServer, gemini_sim: GeminiSim, clock: FakeClock
) -> None:
    base = cooling_proxy.base_url
    gemini_sim.queue(Reply.error(429, retry_after=20))
    oa = openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.RateLimitError):
        oa.chat.completions.create(model="lonely", messages=messages)  # type: ignore[arg-type]
    assert len(gemini_sim.requests) == 1

    clock.now = T0 + 5
    with pytest.raises(openai.RateLimitError) as caught:
        oa.chat.completions.create(model="lonely", messages=messages)  # type: ignore[arg-type]
    assert caught.value.response.headers["retry-after"] == "15"
    claude = anthropic.Anthropic(base_url=base, api_key="k", max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude.messages.create(
            model="lonely", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert limited.value.response.headers["retry-after"] == "15"
    google = genai.Client(api_key="k", http_options={"base_url": base})
    with pytest.raises(gerrors.ClientError) as refused:
        google.models.generate_content(model="lonely", contents="hi")
    assert refused.value.code == 429
    with pytest.raises(openai.RateLimitError):
        list(oa.chat.completions.create(model="lonely", messages=messages, stream=True))  # type: ignore[arg-type]
    # Nobody asked the upstream while it rested.
    assert len(gemini_sim.requests) == 1

    clock.now = T0 + 20
    assert ask("gemini", base, "lonely", "back?", stream=False).text == "echo: back?"
    assert len(gemini_sim.requests) == 2


def test_pool_answers_429_when_both_keys_rest(
    cooling_proxy: ProxyServer, anthropic_sim: AnthropicSim, clock: FakeClock
) -> None:
    anthropic_sim.queue(Reply.error(429, retry_after=40), Reply.error(429, retry_after=12))
    claude = anthropic.Anthropic(base_url=cooling_proxy.base_url, api_key="k", max_retries=0)
    ask_pooled = lambda: claude.messages.create(  # noqa: E731
        model="pooled", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    with pytest.raises(anthropic.RateLimitError):
        ask_pooled()
    assert len(anthropic_sim.requests) == 2
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask_pooled()
    assert caught.value.response.headers["retry-after"] == "12"  # the earliest of the two
    assert len(anthropic_sim.requests) == 2
    # The cooldown is per upstream model: the same key still serves another model.
    assert ask("anthropic", cooling_proxy.base_url, "solo-a", "x", stream=False).text
    clock.now = T0 + 12
    assert ask_pooled().content
    assert len(anthropic_sim.requests) == 4


def test_transient_error_cools_briefly(
    cooling_proxy: ProxyServer, anthropic_sim: AnthropicSim, clock: FakeClock
) -> None:
    base = cooling_proxy.base_url
    anthropic_sim.queue(Reply.error(503))
    ask("openai_chat", base, "pooled", "a", stream=False)
    cooled = _keys(anthropic_sim)[0]
    for _ in range(3):
        ask("openai_chat", base, "pooled", "b", stream=False)
    assert _keys(anthropic_sim).count(cooled) == 1
    clock.now = T0 + 5  # transient-error-cooldown-seconds defaults to 5
    for _ in range(2):
        ask("openai_chat", base, "pooled", "c", stream=False)
    assert _keys(anthropic_sim).count(cooled) == 2


def test_disable_cooling_per_entry_and_globally(
    cooling_proxy: ProxyServer, anthropic_sim: AnthropicSim, clock: FakeClock
) -> None:
    base = cooling_proxy.base_url
    anthropic_sim.queue(Reply.error(429, retry_after=30))
    with pytest.raises(openai.RateLimitError):
        ask("openai_chat", base, "never-cools", "a", stream=False)
    assert ask("openai_chat", base, "never-cools", "b", stream=False).text == "echo: b"
    assert _keys(anthropic_sim) == ["tireless-key", "tireless-key"]

    state = cooling_proxy.state
    original = state.runtime.config
    try:
        state.apply(original.model_copy(update={"disable_cooling": True}))
        anthropic_sim.queue(Reply.error(429, retry_after=30))
        with pytest.raises(openai.RateLimitError):
            ask("openai_chat", base, "solo-a", "c", stream=False)
        assert ask("openai_chat", base, "solo-a", "d", stream=False).text == "echo: d"
        assert state.cooldowns.snapshot() == []
    finally:
        state.apply(original)


def test_cooldowns_survive_a_config_reload(
    cooling_proxy: ProxyServer, gemini_sim: GeminiSim, clock: FakeClock
) -> None:
    gemini_sim.queue(Reply.error(429, retry_after=60))
    with pytest.raises(gerrors.ClientError):
        ask("gemini", cooling_proxy.base_url, "lonely", "a", stream=False)
    state = cooling_proxy.state
    state.apply(state.runtime.config.model_copy())
    with pytest.raises(gerrors.ClientError):
        ask("gemini", cooling_proxy.base_url, "lonely", "b", stream=False)
    assert len(gemini_sim.requests) == 1
    [cooldown] = state.cooldowns.snapshot()
    assert (cooldown.credential_id, cooldown.model, cooldown.until) == (
        "gemini-api-key[0]",
        "up-gemini",
        T0 + 60,
    )
    assert cooldown.reason.startswith("rate-limit")
