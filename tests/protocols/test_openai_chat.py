"""OpenAI Chat Completions: requests, replies, streams and errors, checked against the SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2  # the openai SDK is built on httpx2 (it also accepts httpx clients)
import openai
import orjson
import pytest

from cliproxy.model import (
    BlockEnd,
    ErrorKind,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    ProxyError,
    Reasoning,
    ReasoningDelta,
    ReasoningPart,
    ReasoningStart,
    Request,
    Response,
    StreamError,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    Tool,
    ToolArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    Usage,
    UsageUpdate,
)
from cliproxy.model.accumulate import collect
from cliproxy.protocols.openai_chat import PROTOCOL
from cliproxy.protocols.sse import SSEEvent, SSEParser

# --- helpers ---------------------------------------------------------------------------------


def chunks(body: bytes) -> list[Any]:
    """The data lines of an SSE body, JSON-decoded ("[DONE]" kept as the string)."""
    events = SSEParser().feed(body)
    return [e.data if e.data == "[DONE]" else orjson.loads(e.data) for e in events]


def encode(events: list[StreamEvent], **request_fields: Any) -> bytes:
    encoder = PROTOCOL.stream_encoder(Request(model="client-model", **request_fields))
    return b"".join(encoder.feed(event) for event in events)


def decode(lines: list[str], close: bool = True) -> list[StreamEvent]:
    decoder = PROTOCOL.stream_decoder()
    out: list[StreamEvent] = []
    for line in lines:
        out.extend(decoder.feed(SSEEvent(None, line)))
    if close:
        out.extend(decoder.close())
    return out


def sdk_client(handler: Callable[[httpx2.Request], httpx2.Response]) -> openai.OpenAI:
    return openai.OpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="x",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def sse_reply(body: bytes) -> Callable[[httpx2.Request], httpx2.Response]:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return handler


TEXT_EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_1", model="upstream-model"),
    TextStart(0),
    TextDelta(0, "Hel"),
    TextDelta(0, "lo"),
    BlockEnd(0),
    MessageEnd(FinishReason.STOP, Usage(input_tokens=12, output_tokens=3, cached_tokens=4)),
]

TOOL_EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_2", model="upstream-model"),
    ReasoningStart(0),
    ReasoningDelta(0, text="thinking"),
    ReasoningDelta(0, signature="sig"),
    BlockEnd(0),
    TextStart(1),
    TextDelta(1, "Let me look."),
    BlockEnd(1),
    ToolCallStart(2, id="call_a", name="read_file"),
    ToolArgsDelta(2, '{"path":'),
    ToolArgsDelta(2, '"a.txt"}'),
    BlockEnd(2),
    ToolCallStart(3, id="call_b", name="list_dir"),
    ToolArgsDelta(3, "{}"),
    BlockEnd(3),
    MessageEnd(
        FinishReason.TOOL_CALLS, Usage(input_tokens=20, output_tokens=9, reasoning_tokens=5)
    ),
]


# --- requests: wire → canonical ----------------------------------------------------------------

FULL_REQUEST: dict[str, Any] = {
    "model": "gpt-x",
    "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "system", "content": [{"type": "text", "text": "Use tools."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBOR", "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
                {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
                },
                {"type": "file", "file": {"file_id": "file-123"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "hmm",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"a":1}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "one"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "two"}]},
        {"role": "system", "content": "Mid-conversation note."},
        {"role": "user", "content": "thanks"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "does f",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "strict": True,
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "parallel_tool_calls": False,
    "max_completion_tokens": 500,
    "temperature": 0.5,
    "top_p": 0.9,
    "stop": "END",
    "seed": 7,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "reasoning_effort": "high",
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    },
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "u-1",
    "metadata": {"k": "v"},
    "store": True,
    "prompt_cache_key": "pck",
    "logprobs": False,
}


def test_parse_full_request() -> None:
    req = PROTOCOL.parse_request(FULL_REQUEST)
    assert req.model == "gpt-x"
    assert [p.text for p in req.system] == ["Be brief.", "Use tools."]
    roles = [m.role for m in req.messages]
    assert roles == ["user", "assistant", "user", "system", "user"]
    user = req.messages[0].content
    assert user[0] == TextPart("Look:")
    assert user[1] == ImagePart(media_type="image/png", data="iVBOR", detail="low")
    assert user[2] == ImagePart(url="https://x.test/cat.jpg")
    assert user[3] == FilePart(media_type="audio/wav", data="UklG")
    assert user[4] == FilePart(media_type="application/pdf", data="JVBE", filename="a.pdf")
    assert user[5] == FilePart(file_id="file-123")
    assistant = req.messages[1].content
    assert assistant[0] == ReasoningPart(text="hmm")
    assert assistant[1:] == [
        ToolCallPart(id="call_1", name="f", arguments='{"a":1}'),
        ToolCallPart(id="call_2", name="g", arguments="{}"),
    ]
    # Consecutive tool messages fold into one user message, names recovered from the calls.
    assert req.messages[2].content == [
        ToolResultPart(call_id="call_1", content=[TextPart("one")], name="f"),
        ToolResultPart(call_id="call_2", content=[TextPart("two")], name="g"),
    ]
    assert req.messages[3].content == [TextPart("Mid-conversation note.")]
    assert req.tools == [
        Tool(
            name="f",
            description="does f",
            parameters={"type": "object", "properties": {"a": {"type": "integer"}}},
            strict=True,
        )
    ]
    assert req.tool_choice == ToolChoice(mode="tool", name="f")
    assert req.parallel_tool_calls is False
    assert req.max_tokens == 500
    assert (req.temperature, req.top_p, req.seed) == (0.5, 0.9, 7)
    assert (req.presence_penalty, req.frequency_penalty) == (0.1, 0.2)
    assert req.stop == ["END"]
    assert req.reasoning == Reasoning(effort="high")
    assert req.response_format is not None
    assert (req.response_format.type, req.response_format.name) == ("json_schema", "out")
    assert req.response_format.schema == {"type": "object"} and req.response_format.strict
    assert req.stream and req.include_usage
    assert req.user == "u-1" and req.metadata == {"k": "v"}
    assert req.extras["openai_chat"] == {
        "store": True,
        "prompt_cache_key": "pck",
        "logprobs": False,
        "max_completion_tokens": 500,
    }


def test_full_request_round_trip() -> None:
    wire = PROTOCOL.render_request(PROTOCOL.parse_request(FULL_REQUEST))
    messages = wire.pop("messages")
    assert messages[0] == {"role": "system", "content": "Be brief.\n\nUse tools."}
    assert messages[1]["content"][:2] == FULL_REQUEST["messages"][2]["content"][:2]
    assert messages[1]["content"][2:] == FULL_REQUEST["messages"][2]["content"][2:]
    # reasoning_content has no place in chat history: dropped.
    assert "reasoning_content" not in messages[2]
    assert messages[2]["tool_calls"] == FULL_REQUEST["messages"][3]["tool_calls"]
    assert messages[3:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "one"},
        {"role": "tool", "tool_call_id": "call_2", "content": "two"},
        {"role": "system", "content": "Mid-conversation note."},
        {"role": "user", "content": "thanks"},
    ]
    expected = {k: v for k, v in FULL_REQUEST.items() if k != "messages"}
    expected["stop"] = ["END"]
    assert wire == expected


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model: expected a string"),
        ({"model": "m"}, "messages: expected a non-empty list"),
        ({"model": "m", "messages": []}, "messages: expected a non-empty list"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]: expected an object"),
        ({"model": "m", "messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content: required"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].image_url: expected an object",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id: expected a string",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}],
            },
            "messages[0].tool_calls[0].function.name",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n: only n=1"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": 3}, "stop:"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"},
            "max_tokens: expected an integer",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature: expected a number",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{}]},
            "tools[0].function: expected an object",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "any"},
            "tool_choice:",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "yaml"},
            },
            "response_format.type",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "stream_options": {"include_usage": "yes"},
            },
            "stream_options.include_usage: expected a boolean",
        ),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ProxyError) as info:
        PROTOCOL.parse_request(body)
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert fragment in info.value.message


def test_max_tokens_and_stop_list() -> None:
    req = PROTOCOL.parse_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 64,
            "stop": ["a", "b"],
        }
    )
    assert req.max_tokens == 64 and req.stop == ["a", "b"]
    assert "openai_chat" not in req.extras
    wire = PROTOCOL.render_request(req)
    assert wire["max_tokens"] == 64 and "max_completion_tokens" not in wire


# --- requests: canonical (from another protocol) → wire ------------------------------------------


def test_render_foreign_request() -> None:
    req = Request(
        model="gpt-x",
        system=[TextPart("sys a"), TextPart("sys b")],
        messages=[
            Message("user", [TextPart("hi")]),
            Message(
                "assistant",
                [
                    ReasoningPart(text="thought", signature="sig", issuer="anthropic"),
                    TextPart("calling"),
                    ToolCallPart(id="toolu_1", name="read", arguments='{"p":1}'),
                ],
            ),
            Message(
                "user",
                [
                    ToolResultPart(
                        call_id="toolu_1",
                        content=[TextPart("data"), ImagePart(media_type="image/jpeg", data="AAA")],
                        is_error=False,
                    ),
                    TextPart("go on"),
                ],
            ),
        ],
        tools=[
            Tool(name="read", parameters={"type": "object"}),
            Tool(name="web_search", builtin={"type": "web_search_20250305", "name": "web_search"}),
        ],
        tool_choice=ToolChoice(mode="required"),
        max_tokens=32000,
        top_k=40,
        reasoning=Reasoning(budget=31999, enabled=True),
        metadata={"user_id": "u"},
        stream=True,
    )
    wire = PROTOCOL.render_request(req)
    assert wire["messages"] == [
        {"role": "system", "content": "sys a\n\nsys b"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "read", "arguments": '{"p":1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "data"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAA"}},
                {"type": "text", "text": "go on"},
            ],
        },
    ]
    assert wire["tools"] == [
        {"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}
    ]
    assert wire["tool_choice"] == "required"
    assert wire["reasoning_effort"] == "high"
    # Reasoning models only take max_completion_tokens.
    assert wire["max_completion_tokens"] == 32000 and "max_tokens" not in wire
    assert "top_k" not in wire and "metadata" not in wire
    assert wire["stream"] is True and wire["stream_options"] == {"include_usage": True}


# --- complete replies --------------------------------------------------------------------------


def test_parse_response_with_tools_reasoning_usage() -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "ok",
                    "reasoning_content": "why",
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 30,
            "total_tokens": 130,
            "prompt_tokens_details": {"cached_tokens": 60},
            "completion_tokens_details": {"reasoning_tokens": 10},
        },
    }
    resp = PROTOCOL.parse_response(body)
    assert resp.content == [
        ReasoningPart(text="why", issuer="openai_chat"),
        TextPart("ok"),
        ToolCallPart(id="call_9", name="f", arguments="{}"),
    ]
    assert resp.finish_reason is FinishReason.TOOL_CALLS
    assert resp.usage == Usage(
        input_tokens=100, output_tokens=30, cached_tokens=60, reasoning_tokens=10
    )
    wire = PROTOCOL.render_response(resp)
    assert wire["choices"][0]["message"]["reasoning_content"] == "why"
    assert wire["choices"][0]["message"]["tool_calls"] == [
        {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    assert wire["usage"] == body["usage"]
    assert (wire["id"], wire["created"], wire["model"]) == ("chatcmpl-1", 1700000000, "gpt-x")


@pytest.mark.parametrize(
    ("reason", "wire"),
    [
        (FinishReason.STOP, "stop"),
        (FinishReason.STOP_SEQUENCE, "stop"),
        (FinishReason.PAUSE, "stop"),
        (FinishReason.REFUSAL, "stop"),
        (FinishReason.LENGTH, "length"),
        (FinishReason.TOOL_CALLS, "tool_calls"),
        (FinishReason.CONTENT_FILTER, "content_filter"),
    ],
)
def test_render_finish_reasons(reason: FinishReason, wire: str) -> None:
    resp = Response(id="x", model="m", content=[TextPart("t")], finish_reason=reason)
    body = PROTOCOL.render_response(resp)
    assert body["choices"][0]["finish_reason"] == wire
    assert body["id"].startswith("chatcmpl-") and body["created"] > 0


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("content_filter", FinishReason.CONTENT_FILTER),
        (None, FinishReason.STOP),
    ],
)
def test_parse_finish_reasons(wire: str | None, reason: FinishReason) -> None:
    body = {"choices": [{"message": {"content": "x"}, "finish_reason": wire}]}
    assert PROTOCOL.parse_response(body).finish_reason is reason


def test_stop_with_tool_calls_means_tool_calls() -> None:
    resp = Response(
        id="x", model="m", content=[ToolCallPart("c", "f")], finish_reason=FinishReason.STOP
    )
    body = PROTOCOL.render_response(resp)
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    "body",
    [{"choices": []}, {"object": "x"}, {"choices": [{"finish_reason": "stop"}]}],
)
def test_unusable_reply_is_upstream_error(body: dict[str, Any]) -> None:
    with pytest.raises(ProxyError) as info:
        PROTOCOL.parse_response(body)
    assert info.value.kind is ErrorKind.UPSTREAM


def test_sdk_reads_rendered_response() -> None:
    resp = Response(
        id="r1",
        model="gpt-x",
        content=[TextPart("Hi"), ToolCallPart(id="call_1", name="f", arguments='{"a":1}')],
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(input_tokens=5, output_tokens=2),
    )
    body = orjson.dumps(PROTOCOL.render_response(resp))
    client = sdk_client(
        lambda r: httpx2.Response(200, content=body, headers={"content-type": "application/json"})
    )
    out = client.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "hi"}]
    )
    assert out.choices[0].message.content == "Hi"
    assert out.choices[0].finish_reason == "tool_calls"
    tool_call = out.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert tool_call.function.name == "f" and tool_call.function.arguments == '{"a":1}'  # type: ignore[union-attr]
    assert out.usage is not None and out.usage.total_tokens == 7


# --- stream encoder ----------------------------------------------------------------------------


def test_encoder_text_stream_shape() -> None:
    frames = chunks(encode(TEXT_EVENTS))
    assert frames[-1] == "[DONE]"
    data = frames[:-1]
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in data} == {
        ("chatcmpl-msg_1", data[0]["created"], "client-model", "chat.completion.chunk")
    }
    assert [c["choices"][0]["delta"] for c in data] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in data] == [None, None, None, "stop"]
    assert all("usage" not in c for c in data)  # include_usage was not asked for


def test_encoder_usage_chunk_only_with_include_usage() -> None:
    frames = chunks(encode(TEXT_EVENTS, include_usage=True))
    assert frames[-1] == "[DONE]"
    usage_chunk = frames[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 12
    assert usage_chunk["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}
    assert frames[-3]["choices"][0]["finish_reason"] == "stop"


def test_encoder_tool_calls_use_ordinals_and_reasoning_content() -> None:
    data = chunks(encode(TOOL_EVENTS))[:-1]
    deltas = [c["choices"][0]["delta"] for c in data]
    assert {"reasoning_content": "thinking"} in deltas
    tool_deltas = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert tool_deltas == [
        {
            "index": 0,
            "id": "call_a",
            "type": "function",
            "function": {"name": "read_file", "arguments": ""},
        },
        {"index": 0, "function": {"arguments": '{"path":'}},
        {"index": 0, "function": {"arguments": '"a.txt"}'}},
        {
            "index": 1,
            "id": "call_b",
            "type": "function",
            "function": {"name": "list_dir", "arguments": ""},
        },
        {"index": 1, "function": {"arguments": "{}"}},
    ]
    assert data[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_encoder_error_frame_and_no_done() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="m", model="x"),
        TextStart(0),
        TextDelta(0, "par"),
        StreamError(ProxyError(ErrorKind.OVERLOADED, "upstream overloaded")),
        MessageEnd(FinishReason.STOP),  # ignored: the stream already ended
    ]
    frames = chunks(encode(events))
    assert "[DONE]" not in frames
    assert frames[-1] == {
        "error": {
            "message": "upstream overloaded",
            "type": "server_error",
            "param": None,
            "code": "overloaded",
        }
    }


def test_encoder_tolerates_missing_starts_and_open_blocks() -> None:
    events: list[StreamEvent] = [
        TextDelta(0, "a"),
        ToolArgsDelta(1, '{"x":1}'),
        UsageUpdate(Usage(input_tokens=3)),
        MessageEnd(FinishReason.TOOL_CALLS, Usage(output_tokens=2)),
    ]
    data = chunks(encode(events, include_usage=True))
    assert data[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert data[0]["id"].startswith("chatcmpl-")
    call = data[2]["choices"][0]["delta"]["tool_calls"][0]
    assert call["index"] == 0 and call["id"].startswith("call_") and call["type"] == "function"
    assert data[-2]["usage"]["prompt_tokens"] == 3 and data[-2]["usage"]["completion_tokens"] == 2


def test_sdk_stream_text_usage_finish() -> None:
    client = sdk_client(sse_reply(encode(TEXT_EVENTS, include_usage=True)))
    stream = client.chat.completions.create(
        model="client-model",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    got = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in got if c.choices)
    finishes = [c.choices[0].finish_reason for c in got if c.choices and c.choices[0].finish_reason]
    assert text == "Hello" and finishes == ["stop"]
    assert got[-1].usage is not None and got[-1].usage.prompt_tokens == 12
    assert got[-1].usage.prompt_tokens_details.cached_tokens == 4  # type: ignore[union-attr]


def test_sdk_stream_helper_accumulates_tool_calls() -> None:
    client = sdk_client(sse_reply(encode(TOOL_EVENTS, include_usage=True)))
    with client.chat.completions.stream(
        model="client-model",
        messages=[{"role": "user", "content": "hi"}],
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Let me look."
    assert final.choices[0].finish_reason == "tool_calls"
    calls = [c for c in message.tool_calls or [] if c.type == "function"]
    assert [(c.function.name, c.function.arguments, c.id) for c in calls] == [
        ("read_file", '{"path":"a.txt"}', "call_a"),
        ("list_dir", "{}", "call_b"),
    ]
    assert final.usage is not None and final.usage.completion_tokens_details is not None
    assert final.usage.completion_tokens_details.reasoning_tokens == 5


def test_sdk_raises_on_error_frame() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="m", model="x"),
        TextDelta(0, "par"),
        StreamError(ProxyError(ErrorKind.UPSTREAM, "upstream stream ended early")),
    ]
    client = sdk_client(sse_reply(encode(events)))
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="ended early"):
        list(stream)


# --- stream decoder ----------------------------------------------------------------------------


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return orjson.dumps({"id": "chatcmpl-u", "model": "up", "choices": choices, **extra}).decode()


def test_decoder_text_reasoning_usage() -> None:
    events = decode(
        [
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"reasoning_content": "think"}),
            _chunk({"content": "Hi"}),
            _chunk({"content": " there"}),
            _chunk({}, "stop"),
            _chunk(None, usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}),
            "[DONE]",
        ]
    )
    assert events == [
        MessageStart(id="chatcmpl-u", model="up"),
        ReasoningStart(0),
        ReasoningDelta(0, text="think"),
        BlockEnd(0),
        TextStart(1),
        TextDelta(1, "Hi"),
        TextDelta(1, " there"),
        BlockEnd(1),
        MessageEnd(FinishReason.STOP, Usage(input_tokens=7, output_tokens=2)),
    ]


def test_decoder_tool_calls_keyed_by_index() -> None:
    events = decode(
        [
            _chunk({"role": "assistant", "content": None}),
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "c0",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                }
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{}"},
                        }
                    ]
                }
            ),
            _chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    assert events == [
        MessageStart(id="chatcmpl-u", model="up"),
        ToolCallStart(0, id="c0", name="f"),
        ToolArgsDelta(0, '{"a"'),
        ToolArgsDelta(0, ":1}"),
        BlockEnd(0),
        ToolCallStart(1, id="c1", name="g"),
        ToolArgsDelta(1, "{}"),
        BlockEnd(1),
        MessageEnd(FinishReason.TOOL_CALLS),
    ]


def test_decoder_finish_without_done_is_a_normal_end() -> None:
    decoder = PROTOCOL.stream_decoder()
    decoder.feed(SSEEvent(None, _chunk({"content": "x"})))
    decoder.feed(SSEEvent(None, _chunk({}, "length")))
    assert not decoder.finished
    tail = decoder.close()
    assert tail == [BlockEnd(0), MessageEnd(FinishReason.LENGTH)]
    assert decoder.finished


def test_decoder_cut_stream_is_an_error() -> None:
    events = decode([_chunk({"content": "partial"})])
    assert events[-2] == BlockEnd(0)
    last = events[-1]
    assert isinstance(last, StreamError)
    assert last.error.kind is ErrorKind.UPSTREAM and "ended early" in last.error.message


def test_decoder_error_chunk() -> None:
    events = decode(
        [
            _chunk({"content": "a"}),
            '{"error": {"message": "Rate limit reached. Please try again in 1.5s.", "type": "tokens", "code": "rate_limit_exceeded"}}',
            _chunk({"content": "ignored"}),
        ]
    )
    last = events[-1]
    assert isinstance(last, StreamError)
    assert last.error.kind is ErrorKind.RATE_LIMIT and last.error.retry_after == 1.5
    assert "Rate limit reached" in last.error.message
    assert isinstance(events[-2], BlockEnd)


def test_decoder_bad_json() -> None:
    events = decode(["{not json"])
    assert len(events) == 1 and isinstance(events[0], StreamError)
    assert events[0].error.kind is ErrorKind.UPSTREAM


def test_encoder_decoder_round_trip() -> None:
    body = encode(TOOL_EVENTS, include_usage=True)
    events = decode([e.data for e in SSEParser().feed(body)])
    response = collect(events)
    assert response.text() == "Let me look."
    assert [p for p in response.content if isinstance(p, ToolCallPart)] == [
        ToolCallPart(id="call_a", name="read_file", arguments='{"path":"a.txt"}'),
        ToolCallPart(id="call_b", name="list_dir", arguments="{}"),
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.usage == Usage(input_tokens=20, output_tokens=9, reasoning_tokens=5)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "err_type"),
    [
        (ErrorKind.INVALID_REQUEST, "invalid_request_error"),
        (ErrorKind.AUTHENTICATION, "authentication_error"),
        (ErrorKind.PERMISSION, "permission_error"),
        (ErrorKind.NOT_FOUND, "not_found_error"),
        (ErrorKind.RATE_LIMIT, "rate_limit_error"),
        (ErrorKind.SERVER, "server_error"),
    ],
)
def test_render_error(kind: ErrorKind, err_type: str) -> None:
    body = PROTOCOL.render_error(ProxyError(kind, "boom", param="messages[0]"))
    assert body["error"]["type"] == err_type
    assert body["error"]["message"] == "boom" and body["error"]["param"] == "messages[0]"
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_render_quota_error() -> None:
    body = PROTOCOL.render_error(
        ProxyError(ErrorKind.RATE_LIMIT, "You exceeded your current quota")
    )
    assert body["error"]["type"] == "insufficient_quota"


@pytest.mark.parametrize(
    ("status", "body", "kind", "message", "retry"),
    [
        (
            429,
            b'{"error":{"message":"Rate limit reached. Please try again in 120ms.","type":"requests","code":"rate_limit_exceeded"}}',
            ErrorKind.RATE_LIMIT,
            "Rate limit reached. Please try again in 120ms.",
            0.12,
        ),
        (
            401,
            b'{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}',
            ErrorKind.AUTHENTICATION,
            "Incorrect API key",
            None,
        ),
        (
            400,
            b'{"error":{"message":"bad","type":"invalid_request_error","param":"messages"}}',
            ErrorKind.INVALID_REQUEST,
            "bad",
            None,
        ),
        (503, b"Service Unavailable", ErrorKind.OVERLOADED, "Service Unavailable", None),
        (500, b"", ErrorKind.SERVER, "upstream returned HTTP 500", None),
        (422, b'{"detail":"field required"}', ErrorKind.INVALID_REQUEST, "field required", None),
    ],
)
def test_parse_error(
    status: int, body: bytes, kind: ErrorKind, message: str, retry: float | None
) -> None:
    error = PROTOCOL.parse_error(status, body)
    assert (error.kind, error.status, error.message, error.retry_after) == (
        kind,
        status,
        message,
        retry,
    )


def test_parse_error_keeps_param() -> None:
    error = PROTOCOL.parse_error(
        400, b'{"error":{"message":"bad","type":"invalid_request_error","param":"messages"}}'
    )
    assert error.param == "messages"


def test_decoder_tool_calls_without_index_or_with_reused_index() -> None:
    events = decode(
        [
            _chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
            _chunk({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g"}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":2}'}}]}),
            _chunk({}, "stop"),  # some servers say stop after tool calls
        ]
    )
    response = collect(events)
    assert [
        (p.id, p.name, p.arguments) for p in response.content if isinstance(p, ToolCallPart)
    ] == [
        ("a", "f", "{}"),
        ("b", "g", '{"x":2}'),
    ]
    assert response.finish_reason is FinishReason.TOOL_CALLS


def test_decoder_error_event_name() -> None:
    decoder = PROTOCOL.stream_decoder()
    out = decoder.feed(SSEEvent("error", '{"message": "overloaded", "type": "overloaded_error"}'))
    assert isinstance(out[-1], StreamError) and out[-1].error.kind is ErrorKind.OVERLOADED
    assert decoder.close() == []


def test_empty_assistant_text_next_to_tool_calls_is_dropped() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    req = PROTOCOL.parse_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "", "tool_calls": [call]},
            ],
        }
    )
    assert req.messages[1].content == [ToolCallPart(id="c", name="f", arguments="{}")]
