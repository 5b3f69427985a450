"""Gemini Interactions inbound (`POST /v1/interactions`, `/v1beta/interactions`) with the official
google-genai SDK's interactions client, answered by other vendors' upstreams through the
canonical model: text, streams, a function-call round trip, the refusals of what only Google's
servers can do, and a cut upstream stream that never looks complete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai

from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, OpenAIChatSim, Reply

CONFIG = """
demo: false
request-retry: 0
max-retry-interval: 0
claude-api-key:
  - api-key: up-claude-key
    base-url: {claude}
    models: [{{name: claude-up, alias: claude-model}}]
openai-compatibility:
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: up-chat-key}}]
    models: [{{name: chat-up, alias: chat-model}}]
"""
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[AnthropicSim, OpenAIChatSim, ProxyServer]]:
    with AnthropicSim() as claude, OpenAIChatSim() as chat:
        config = CONFIG.format(claude=claude.base_url, chat=chat.base_url)
        with ProxyServer(config) as proxy:
            yield claude, chat, proxy


@pytest.fixture
def sims(world: tuple[AnthropicSim, OpenAIChatSim, ProxyServer]) -> dict[str, Any]:
    claude, chat, _ = world
    claude.reset()
    chat.reset()
    return {"claude-model": claude, "chat-model": chat}


@pytest.fixture
def client(world: tuple[AnthropicSim, OpenAIChatSim, ProxyServer]) -> genai.Client:
    return genai.Client(api_key="unused", http_options={"base_url": world[2].base_url})


@pytest.mark.parametrize("model", ["claude-model", "chat-model"])
def test_a_text_interaction(client: genai.Client, sims: dict[str, Any], model: str) -> None:
    sims[model].queue(Reply.text("hello from upstream", input_tokens=7, output_tokens=3))
    reply = client.interactions.create(
        model=model, input="hi", system_instruction="be brief",
        generation_config={"temperature": 0.2, "max_output_tokens": 50},
    )  # fmt: skip
    assert reply.status == "completed"
    assert reply.output_text == "hello from upstream"
    assert reply.usage is not None and reply.usage.total_input_tokens == 7
    sent = sims[model].requests[0].json
    assert "be brief" in json.dumps(sent)  # the system instruction reached the upstream
    assert sent.get("max_tokens") == 50 or sent.get("max_completion_tokens") == 50


@pytest.mark.parametrize("model", ["claude-model", "chat-model"])
def test_a_streamed_interaction(client: genai.Client, sims: dict[str, Any], model: str) -> None:
    sims[model].queue(Reply.text("one two three four", chunk_size=4))
    events = list(client.interactions.create(model=model, input="count", stream=True))
    kinds = [event.event_type for event in events]
    assert kinds[0] == "interaction.created" and kinds[-1] == "interaction.completed"
    assert "step.start" in kinds and "step.stop" in kinds
    text = "".join(e.delta.text for e in events if e.event_type == "step.delta")  # type: ignore[union-attr]
    assert text == "one two three four"
    assert events[-1].interaction.status == "completed"  # type: ignore[union-attr]


def test_a_function_call_round_trip(client: genai.Client, sims: dict[str, Any]) -> None:
    claude = sims["claude-model"]
    claude.queue(Reply.tool_call("get_weather", {"city": "Paris"}))
    first = client.interactions.create(model="claude-model", input="weather?", tools=[WEATHER])
    assert first.status == "requires_action"
    call = next(step for step in first.steps or [] if step.type == "function_call")
    assert call.name == "get_weather" and call.arguments == {"city": "Paris"}  # type: ignore[union-attr]
    claude.queue(Reply.text("It is sunny in Paris."))
    second = client.interactions.create(
        model="claude-model",
        tools=[WEATHER],
        input=[
            {"type": "user_input", "content": [{"type": "text", "text": "weather?"}]},
            {"type": "function_call", "id": call.id, "name": "get_weather",  # type: ignore[union-attr]
             "arguments": {"city": "Paris"}},
            {"type": "function_result", "call_id": call.id, "name": "get_weather",  # type: ignore[union-attr]
             "result": "sunny, 24 C"},
        ],
    )  # fmt: skip
    assert second.output_text == "It is sunny in Paris."
    messages = claude.requests[1].json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[2]["content"][0]["type"] == "tool_result"
    assert messages[2]["content"][0]["tool_use_id"] == messages[1]["content"][0]["id"]


def test_streamed_function_call(client: genai.Client, sims: dict[str, Any]) -> None:
    sims["chat-model"].queue(Reply.tool_call("get_weather", {"city": "Oslo"}))
    events = list(
        client.interactions.create(model="chat-model", input="w", tools=[WEATHER], stream=True)
    )
    start = next(e for e in events if e.event_type == "step.start")
    assert start.step.type == "function_call" and start.step.name == "get_weather"  # type: ignore[union-attr]
    pieces = [e.delta.arguments for e in events if e.event_type == "step.delta"]  # type: ignore[union-attr]
    assert "".join(p or "" for p in pieces).replace(" ", "") == '{"city":"Oslo"}'
    assert events[-1].interaction.status == "requires_action"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"agent": "deep-research", "input": "x"}, "agent"),
        ({"model": "claude-model", "agent": "a", "input": "x"}, "exactly one of model or agent"),
        ({"model": "claude-model", "input": "x", "previous_interaction_id": "i1"}, "previous_interaction_id"),
        ({"model": "claude-model", "input": "x", "tools": [{"type": "google_search"}]}, "tools[0].type"),
        ({"model": "claude-model"}, "input"),
        ({"model": "claude-model", "input": "x", "stream": "yes"}, "stream"),
    ],
)  # fmt: skip
def test_refusals_name_the_field_in_googles_error_shape(
    world: tuple[AnthropicSim, OpenAIChatSim, ProxyServer], sims: dict[str, Any],
    body: dict[str, Any], names: str,
) -> None:  # fmt: skip
    for path in ("/v1/interactions", "/v1beta/interactions"):
        refused = httpx.post(world[2].base_url + path, json=body)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and names in error["message"]
    assert not sims["claude-model"].requests


def test_an_unknown_model_is_404_in_googles_shape(world, sims) -> None:
    refused = httpx.post(
        world[2].base_url + "/v1/interactions", json={"model": "nope", "input": "x"}
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["status"] == "NOT_FOUND"


def test_a_cut_upstream_stream_ends_with_an_error_event_not_done(world, sims) -> None:
    sims["claude-model"].queue(Reply.text("a long answer that is cut", chunk_size=3, cut_after=2))
    body = {"model": "claude-model", "input": "x", "stream": True}
    with httpx.stream("POST", world[2].base_url + "/v1/interactions", json=body) as reply:
        text = reply.read().decode()
    assert '"event_type":"error"' in text
    assert "[DONE]" not in text and "interaction.completed" not in text
