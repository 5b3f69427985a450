"""The OpenAI sims parsed by the official `openai` SDK pointed straight at them."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.simulators import OpenAIChatSim, Reply, ResponsesSim, ToolCall

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello sim"}]


def _client(sim: OpenAIChatSim | ResponsesSim) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0, timeout=5)


# ----- Chat Completions -------------------------------------------------------------------------


def test_chat_json_text_usage_and_finish(openai_chat_sim: OpenAIChatSim) -> None:
    openai_chat_sim.queue(
        Reply.text(
            "Hello world", input_tokens=11, output_tokens=7, cached_tokens=3, reasoning_tokens=2
        )
    )
    completion = _client(openai_chat_sim).chat.completions.create(
        model="gpt-4o-mini", messages=USER
    )
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason, completion.model) == (
        "Hello world",
        "stop",
        "gpt-4o-mini",
    )
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 7, 18)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 3
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 2
    assert openai_chat_sim.last_request.headers["authorization"] == "Bearer sk-test"


def test_chat_stream_with_usage_chunk(openai_chat_sim: OpenAIChatSim) -> None:
    openai_chat_sim.queue(Reply.text("Hello streaming world", finish="length", output_tokens=3))
    stream = _client(openai_chat_sim).chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello streaming world"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_chat_tool_calls_json_and_streamed(openai_chat_sim: OpenAIChatSim) -> None:
    calls = [
        ToolCall("get_weather", {"city": "Paris"}, "call_a"),
        ToolCall("get_time", {"tz": "UTC"}),
    ]
    openai_chat_sim.queue(
        Reply.parallel_tool_calls(calls), Reply.parallel_tool_calls(calls, chunk_size=4)
    )
    client = _client(openai_chat_sim)
    message = client.chat.completions.create(model="m", messages=USER).choices[0]
    assert message.finish_reason == "tool_calls"
    first, second = message.message.tool_calls or []
    assert first.type == "function" and second.type == "function"
    assert (first.id, first.function.name, json.loads(first.function.arguments)) == (
        "call_a",
        "get_weather",
        {"city": "Paris"},
    )
    assert second.id.startswith("call_") and second.function.name == "get_time"
    arguments: dict[int, str] = {}
    names: dict[int, str] = {}
    for chunk in client.chat.completions.create(model="m", messages=USER, stream=True):
        for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            assert delta.function is not None
            arguments[delta.index] = arguments.get(delta.index, "") + (
                delta.function.arguments or ""
            )
            if delta.function.name:
                names[delta.index] = delta.function.name
    assert names == {0: "get_weather", 1: "get_time"}
    assert [json.loads(arguments[i]) for i in (0, 1)] == [{"city": "Paris"}, {"tz": "UTC"}]


def test_chat_rate_limit_error(openai_chat_sim: OpenAIChatSim) -> None:
    openai_chat_sim.queue(Reply.error(429, retry_after=3))
    with pytest.raises(openai.RateLimitError) as caught:
        _client(openai_chat_sim).chat.completions.create(model="m", messages=USER)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "3"


def test_chat_cut_stream_raises_in_the_sdk(openai_chat_sim: OpenAIChatSim) -> None:
    openai_chat_sim.queue(Reply.text("one two three", cut_after=2))
    seen: list[str] = []
    with pytest.raises(Exception):  # noqa: B017 (the transport's own error type)
        for chunk in _client(openai_chat_sim).chat.completions.create(
            model="m", messages=USER, stream=True
        ):
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "one two"


def test_models_list(openai_chat_sim: OpenAIChatSim) -> None:
    openai_chat_sim.models = ["m-1", "m-2"]
    assert [m.id for m in _client(openai_chat_sim).models.list()] == ["m-1", "m-2"]


# ----- Responses --------------------------------------------------------------------------------


def test_responses_json(responses_sim: ResponsesSim) -> None:
    responses_sim.queue(Reply.text("Hi there", input_tokens=20, output_tokens=4, cached_tokens=8))
    response = _client(responses_sim).responses.create(model="gpt-5", input="hello sim")
    assert response.output_text == "Hi there" and response.status == "completed"
    assert response.usage is not None
    assert (
        response.usage.input_tokens,
        response.usage.output_tokens,
        response.usage.total_tokens,
    ) == (20, 4, 24)
    assert response.usage.input_tokens_details.cached_tokens == 8


def test_responses_stream_event_sequence(responses_sim: ResponsesSim) -> None:
    responses_sim.queue(Reply.text("Hello world", reasoning="thinking hard"))
    events = list(_client(responses_sim).responses.create(model="gpt-5", input="x", stream=True))
    types = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert types[:2] == ["response.created", "response.in_progress"]
    message_events = types[types.index("response.content_part.added") - 1 :]
    assert message_events == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "response.reasoning_summary_text.delta" in types
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "Hello world"
    assert final.response.usage is not None and final.response.usage.output_tokens == 5


def test_responses_stream_helper_with_function_call(responses_sim: ResponsesSim) -> None:
    responses_sim.queue(
        Reply.tool_call("exec_command", {"cmd": "cat hello.txt"}, call_id="call_9", chunk_size=5)
    )
    with _client(responses_sim).responses.stream(model="gpt-5", input="x") as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1
    item = final.output[0]
    assert item.type == "function_call"
    assert (item.call_id, item.name, json.loads(item.arguments)) == (
        "call_9",
        "exec_command",
        {"cmd": "cat hello.txt"},
    )


def test_responses_length_finish_is_incomplete(responses_sim: ResponsesSim) -> None:
    responses_sim.queue(Reply.text("trunc", finish="length"), Reply.text("trunc", finish="length"))
    client = _client(responses_sim)
    response = client.responses.create(model="gpt-5", input="x")
    assert response.status == "incomplete"
    assert response.incomplete_details and response.incomplete_details.reason == "max_output_tokens"
    events = list(client.responses.create(model="gpt-5", input="x", stream=True))
    assert events[-1].type == "response.incomplete"


def test_responses_cut_stream_lacks_completed(responses_sim: ResponsesSim) -> None:
    responses_sim.queue(Reply.text("a b c", cut_after=1))
    types: list[str] = []
    with pytest.raises(Exception):  # noqa: B017
        for event in _client(responses_sim).responses.create(model="gpt-5", input="x", stream=True):
            types.append(event.type)
    assert types[-1] == "response.output_text.delta"
    assert "response.completed" not in types


def test_responses_error_shape(responses_sim: ResponsesSim) -> None:
    responses_sim.queue(Reply.error(400, "bad input"))
    with pytest.raises(openai.BadRequestError) as caught:
        _client(responses_sim).responses.create(model="gpt-5", input="x")
    assert caught.value.body == {
        "message": "bad input",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
