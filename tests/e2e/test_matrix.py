"""Every official SDK x every upstream simulator, streaming and not: the text, the usage and the
finish reason the SDK reports are the ones the upstream sent."""

from __future__ import annotations

import pytest

from tests.e2e.clients import CLIENTS, ask
from tests.e2e.conftest import UPSTREAM_KEY
from tests.proxy_server import ProxyServer
from tests.simulators import Reply, Simulator

UPSTREAMS = {
    "chat-model": ("openai_chat_sim", "up-chat"),
    "resp-model": ("responses_sim", "up-resp"),
    "claude-model": ("anthropic_sim", "up-claude"),
    "gemini-model": ("gemini_sim", "up-gemini"),
}
TEXT = "Hello from the upstream simulator, sent in small pieces."


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", list(UPSTREAMS))
@pytest.mark.parametrize("client", CLIENTS)
def test_sdk_sees_what_the_upstream_sent(
    client: str, model: str, stream: bool, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    fixture, upstream_model = UPSTREAMS[model]
    sim: Simulator = request.getfixturevalue(fixture)
    sim.queue(Reply.text(TEXT, input_tokens=31, output_tokens=17, chunk_size=7))

    answer = ask(client, matrix_proxy.base_url, model, "What do you say?", stream)

    assert answer.text == TEXT
    assert (answer.input_tokens, answer.output_tokens) == (31, 17)
    assert answer.finish == "stop"
    upstream_request = sim.last_request
    body_model = upstream_request.json.get("model") if upstream_request.json else None
    assert upstream_model in (body_model, upstream_request.path.split("/")[-1].split(":")[0])
    assert sim.presented_key(upstream_request) == UPSTREAM_KEY


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_length_finish_reason_carries_over(
    client: str, stream: bool, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    for model, (fixture, _) in UPSTREAMS.items():
        sim: Simulator = request.getfixturevalue(fixture)
        sim.queue(Reply.text("cut short", finish="length", input_tokens=5, output_tokens=2))
        answer = ask(client, matrix_proxy.base_url, model, "long story please", stream)
        assert (answer.text, answer.finish) == ("cut short", "length"), model


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_demo_provider_through_every_sdk(
    client: str, stream: bool, matrix_proxy: ProxyServer
) -> None:
    answer = ask(client, matrix_proxy.base_url, "demo-echo", "ping", stream)
    assert answer.text == "Echo: ping"
    assert answer.finish == "stop"
    assert answer.output_tokens > 0
