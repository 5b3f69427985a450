"""Upstream faults reach the client as its own protocol's error, and the proxy keeps serving:
a stream cut mid-way, 429/5xx with rotation to the next credential, garbage, a hung upstream."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as gerrors

from tests.e2e.clients import CLIENTS, ask
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, GeminiSim, OpenAIChatSim, Reply, ResponsesSim, Simulator

UPSTREAMS = {
    "chat-model": "openai_chat_sim",
    "resp-model": "responses_sim",
    "claude-model": "anthropic_sim",
    "gemini-model": "gemini_sim",
}
# What each SDK raises when the server reports an error (in a body or inside a stream).
SDK_ERRORS: tuple[type[BaseException], ...] = (
    openai.APIError,
    anthropic.APIError,
    gerrors.APIError,
    httpx.HTTPError,
)


def _stream_fails(client: str, base_url: str, model: str) -> None:
    """Assert that streaming through ``client`` ends in an error the SDK reports as one."""
    if client == "openai_responses":
        oa = openai.OpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0)
        events = list(oa.responses.create(model=model, input="tell me", stream=True))
        assert events[-1].type in ("response.failed", "error"), events[-1].type
        assert not any(e.type == "response.completed" for e in events)
        return
    with pytest.raises(SDK_ERRORS):
        ask(client, base_url, model, "tell me", stream=True)


@pytest.mark.parametrize("model", list(UPSTREAMS))
@pytest.mark.parametrize("client", CLIENTS)
def test_stream_cut_midway_is_an_error_for_the_client(
    client: str, model: str, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    sim: Simulator = request.getfixturevalue(UPSTREAMS[model])
    sim.queue(Reply.text("one two three four five six seven eight", chunk_size=4, cut_after=2))
    _stream_fails(client, matrix_proxy.base_url, model)
    # The proxy is still healthy afterwards.
    assert ask(client, matrix_proxy.base_url, "demo-echo", "still there?", stream=True).text


@pytest.mark.parametrize("model", list(UPSTREAMS))
@pytest.mark.parametrize("client", CLIENTS)
def test_garbage_from_upstream_is_a_clean_error(
    client: str, model: str, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    sim: Simulator = request.getfixturevalue(UPSTREAMS[model])
    sim.queue(Reply.garbage())
    with pytest.raises(SDK_ERRORS) as caught:
        ask(client, matrix_proxy.base_url, model, "hi", stream=False)
    status = getattr(caught.value, "status_code", None) or getattr(caught.value, "code", None)
    assert status == 502
    sim.queue(Reply.garbage())
    _stream_fails(client, matrix_proxy.base_url, model)


# These tests are about rotation within one request; cooldowns across requests (which would
# rest a key between the parametrized cases) are tested in test_pool.py.
POOL_CONFIG = """
request-retry: 1
disable-cooling: true
upstream-timeout-seconds: 1
claude-api-key:
  - api-key: first-key
    base-url: {claude}
    models: [{{name: up-claude, alias: pooled}}]
  - api-key: second-key
    base-url: {claude}
    models: [{{name: up-claude, alias: pooled}}]
gemini-api-key:
  - api-key: only-key
    base-url: {gemini}
    models: [{{name: up-gemini, alias: lonely}}]
openai-compatibility:
  - name: chat-pool
    base-url: {chat}
    api-key-entries: [{{api-key: a-key}}, {{api-key: b-key}}]
    models: [{{name: up-chat, alias: chat-pooled}}]
codex-api-key:
  - api-key: resp-key
    base-url: {responses}
    models: [{{name: up-resp, alias: resp-lonely}}]
"""


@pytest.fixture(scope="module")
def pool_proxy(
    _anthropic_sim_server: AnthropicSim,
    _gemini_sim_server: GeminiSim,
    _openai_chat_sim_server: OpenAIChatSim,
    _responses_sim_server: ResponsesSim,
) -> Iterator[ProxyServer]:
    config = POOL_CONFIG.format(
        claude=_anthropic_sim_server.base_url,
        gemini=_gemini_sim_server.base_url,
        chat=_openai_chat_sim_server.base_url,
        responses=_responses_sim_server.base_url,
    )
    with ProxyServer(config) as proxy:
        yield proxy


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503, 529])
@pytest.mark.parametrize("client", CLIENTS)
def test_failure_before_first_byte_moves_to_the_next_credential(
    client: str, status: int, pool_proxy: ProxyServer, anthropic_sim: AnthropicSim
) -> None:
    anthropic_sim.queue(Reply.error(status, retry_after=7))
    answer = ask(client, pool_proxy.base_url, "pooled", "rotate please", stream=False)
    assert answer.text == "echo: rotate please"
    keys = [anthropic_sim.presented_key(r) for r in anthropic_sim.requests]
    assert len(keys) == 2 and set(keys) == {"first-key", "second-key"}


def test_openai_compat_keys_rotate_round_robin(
    pool_proxy: ProxyServer, openai_chat_sim: OpenAIChatSim
) -> None:
    for _ in range(4):
        ask("openai_chat", pool_proxy.base_url, "chat-pooled", "x", stream=False)
    keys = [openai_chat_sim.presented_key(r) for r in openai_chat_sim.requests]
    assert sorted(keys) == ["a-key", "a-key", "b-key", "b-key"]
    assert keys[0] != keys[1]


def test_rate_limit_after_retries_reaches_the_client_with_its_hint(
    pool_proxy: ProxyServer, gemini_sim: GeminiSim
) -> None:
    gemini_sim.queue(Reply.error(429, retry_after=12))
    reply = httpx.post(
        pool_proxy.base_url + "/v1/chat/completions",
        json={"model": "lonely", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert reply.status_code == 429
    assert reply.json()["error"]["type"] in (
        "rate_limit_error",
        "rate_limit_exceeded",
        "insufficient_quota",
    )
    assert reply.headers["retry-after"] == "12"
    # The only credential refused this request; asking it again at once could not help.
    assert len(gemini_sim.requests) == 1
    client = genai.Client(api_key="k", http_options={"base_url": pool_proxy.base_url})
    gemini_sim.queue(Reply.error(429, retry_after=12))
    with pytest.raises(gerrors.ClientError) as caught:
        client.models.generate_content(model="lonely", contents="hi")
    assert caught.value.code == 429


def test_client_error_is_not_retried(pool_proxy: ProxyServer, anthropic_sim: AnthropicSim) -> None:
    anthropic_sim.queue(Reply.error(400, message="max_tokens: too large"))
    client = anthropic.Anthropic(base_url=pool_proxy.base_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="pooled", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert "max_tokens: too large" in str(caught.value)
    assert len(anthropic_sim.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_hung_upstream_times_out_cleanly(
    stream: bool, pool_proxy: ProxyServer, responses_sim: ResponsesSim
) -> None:
    # Both attempts (request-retry: 1) hang; each is cut off by upstream-timeout-seconds.
    responses_sim.queue(Reply.text("never", hang=True), Reply.text("never", hang=True))
    oa = openai.OpenAI(base_url=pool_proxy.base_url + "/v1", api_key="k", max_retries=0)
    if stream:
        _stream_fails("openai_chat", pool_proxy.base_url, "resp-lonely")
    else:
        with pytest.raises(openai.APIStatusError) as caught:
            oa.responses.create(model="resp-lonely", input="hi")
        assert caught.value.status_code in (502, 504)
    assert ask("openai_chat", pool_proxy.base_url, "resp-lonely", "after", stream=False).text


@pytest.mark.parametrize("client", CLIENTS)
def test_stream_stalling_midway_ends_in_an_error(
    client: str, pool_proxy: ProxyServer, openai_chat_sim: OpenAIChatSim
) -> None:
    openai_chat_sim.queue(Reply.text("a b c d e f", chunk_size=2, cut_after=1, hang=True))
    _stream_fails(client, pool_proxy.base_url, "chat-pooled")
