"""The Anthropic sim parsed by the official `anthropic` SDK pointed straight at it."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from tests.simulators import AnthropicSim, Reply

USER: list[MessageParam] = [{"role": "user", "content": "hello sim"}]


def _client(sim: AnthropicSim) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.base_url, api_key="sk-ant", max_retries=0, timeout=5)


def test_json_text_usage_excludes_cache_reads(anthropic_sim: AnthropicSim) -> None:
    anthropic_sim.queue(
        Reply.text("Hello world", input_tokens=11, output_tokens=7, cached_tokens=4)
    )
    message = _client(anthropic_sim).messages.create(model="claude-x", max_tokens=50, messages=USER)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello world"  # type: ignore[union-attr]
    assert (message.stop_reason, message.model) == ("end_turn", "claude-x")
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (7, 4)
    assert message.usage.output_tokens == 7


def test_stream_accumulates_in_the_sdk(anthropic_sim: AnthropicSim) -> None:
    anthropic_sim.queue(
        Reply.text("Hello streaming world", finish="length", reasoning="hmm let me see")
    )
    with _client(anthropic_sim).messages.stream(model="c", max_tokens=50, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello streaming world"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "hmm let me see"  # type: ignore[union-attr]
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 5


def test_tool_use_streamed_input_is_parsed(anthropic_sim: AnthropicSim) -> None:
    anthropic_sim.queue(
        Reply.tool_call("Bash", {"command": "cat hello.txt"}, text="Let me look.", chunk_size=6)
    )
    with _client(anthropic_sim).messages.stream(model="c", max_tokens=50, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    tool = final.content[1]
    assert tool.type == "tool_use" and tool.id.startswith("toolu_")
    assert (tool.name, tool.input) == ("Bash", {"command": "cat hello.txt"})


def test_raw_stream_event_order_and_beta_query(anthropic_sim: AnthropicSim) -> None:
    body = {"model": "c", "max_tokens": 5, "stream": True, "messages": USER}
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "k"}
    text = httpx.post(
        anthropic_sim.base_url + "/v1/messages?beta=true", json=body, headers=headers
    ).text
    events = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert anthropic_sim.last_request.query == {"beta": "true"}


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
    ],
)
def test_errors_have_the_anthropic_shape(
    anthropic_sim: AnthropicSim,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    anthropic_sim.queue(Reply.error(status, retry_after=2))
    with pytest.raises(error_class) as caught:
        _client(anthropic_sim).messages.create(model="c", max_tokens=5, messages=USER)
    assert caught.value.status_code == status
    body = caught.value.body
    assert (
        isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == error_type
    )
    assert caught.value.response.headers["retry-after"] == "2"


def test_cut_stream_raises_without_message_stop(anthropic_sim: AnthropicSim) -> None:
    anthropic_sim.queue(Reply.text("one two three", cut_after=1))
    events: list[str] = []
    with pytest.raises(Exception):  # noqa: B017 (the transport's own error type)
        for event in _client(anthropic_sim).messages.create(
            model="c", max_tokens=5, messages=USER, stream=True
        ):
            events.append(event.type)
    assert events[-1] == "content_block_delta" and "message_stop" not in events


def test_count_tokens_and_models(anthropic_sim: AnthropicSim) -> None:
    anthropic_sim.token_count = 42
    client = _client(anthropic_sim)
    assert client.messages.count_tokens(model="c", messages=USER).input_tokens == 42
    anthropic_sim.models = ["claude-a", "claude-b"]
    assert [m.id for m in client.models.list()] == ["claude-a", "claude-b"]
