"""OpenAI Responses protocol: request/response tables, stream decoding/encoding, and acceptance of
the encoder's bytes by the official openai SDK (through httpx.MockTransport, no network)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import openai
import orjson
import pydantic
import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent

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
from cliproxy.model.accumulate import collect, response_events
from cliproxy.protocols.openai_responses import PROTOCOL
from cliproxy.protocols.sse import SSEEvent, SSEParser

STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


# ---------------------------------------------------------------------------------------------
# helpers


def encode(events: Iterable[StreamEvent], model: str = "gpt-client") -> bytes:
    encoder = PROTOCOL.stream_encoder(Request(model=model))
    return b"".join(encoder.feed(event) for event in events)


def frames(data: bytes) -> list[dict[str, Any]]:
    """Parse SSE bytes, checking the event: line matches the JSON type of every frame."""
    parser = SSEParser()
    parsed = parser.feed(data) + parser.close()
    out = []
    for event in parsed:
        payload = orjson.loads(event.data)
        assert event.event == payload["type"]
        out.append(payload)
    return out


def decode(payloads: list[Any], close: bool = True) -> list[StreamEvent]:
    decoder = PROTOCOL.stream_decoder()
    out: list[StreamEvent] = []
    for payload in payloads:
        out.extend(decoder.feed(SSEEvent(payload.get("type"), orjson.dumps(payload).decode())))
    if close:
        out.extend(decoder.close())
    return out


def sdk_client(handler: Callable[[httpx.Request], httpx.Response]) -> openai.OpenAI:
    transport = httpx.MockTransport(handler)
    return openai.OpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="x",
        max_retries=0,
        # The SDK runs on httpx2 but accepts a legacy httpx client, which is what tests use.
        http_client=httpx.Client(transport=transport),  # type: ignore[arg-type]
    )


def sse_handler(body: bytes, seen: list[dict[str, Any]] | None = None) -> Callable:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/responses"
        if seen is not None:
            seen.append(orjson.loads(request.content))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return handler


TEXT_EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_1", model="upstream", usage=Usage(input_tokens=11, cached_tokens=3)),
    TextStart(0),
    TextDelta(0, "Hel"),
    TextDelta(0, "lo"),
    BlockEnd(0),
    MessageEnd(FinishReason.STOP, Usage(input_tokens=11, output_tokens=5, cached_tokens=3)),
]

TOOL_EVENTS: list[StreamEvent] = [
    MessageStart(id="resp_tool", model="upstream"),
    ReasoningStart(0, id="rs_1", issuer="openai_responses"),
    ReasoningDelta(0, text="think"),
    ReasoningDelta(0, encrypted="ENC"),
    BlockEnd(0),
    ToolCallStart(1, id="call_1", name="exec_command"),
    ToolArgsDelta(1, '{"cmd":'),
    ToolArgsDelta(1, '"ls"}'),
    BlockEnd(1),
    MessageEnd(
        FinishReason.TOOL_CALLS,
        Usage(input_tokens=20, output_tokens=9, reasoning_tokens=4),
    ),
]


# ---------------------------------------------------------------------------------------------
# requests

CODEX_BODY: dict[str, Any] = {
    "model": "gpt-5.1-codex",
    "stream": True,
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "SYS"}],
        },
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "ENV"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ctx"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say hi"}]},
    ],
    "tools": [
        {
            "type": "function",
            "name": "exec_command",
            "description": "run",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
            "strict": False,
        },
        {"type": "namespace", "name": "multi_agent_v1", "tools": []},
        {"type": "web_search"},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"summary": "auto"},
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "pck",
    "client_metadata": {"a": "b"},
}


def test_codex_request_without_instructions_parses() -> None:
    request = PROTOCOL.parse_request(CODEX_BODY)
    assert [p.text for p in request.system] == ["SYS", "ENV"]
    assert len(request.messages) == 1  # two user items merge into one canonical message
    assert request.messages[0].role == "user"
    assert [p.text for p in request.messages[0].content if isinstance(p, TextPart)] == [
        "ctx",
        "say hi",
    ]
    assert request.stream is True
    assert request.tools[0].name == "exec_command" and request.tools[0].strict is False
    assert request.tools[1].builtin == {"type": "namespace", "name": "multi_agent_v1", "tools": []}
    assert request.tools[2].name == "web_search" and request.tools[2].builtin == {
        "type": "web_search"
    }
    assert request.tool_choice == ToolChoice("auto")
    assert request.parallel_tool_calls is True
    assert request.reasoning == Reasoning(summary="auto")
    assert request.extras["openai_responses"] == {
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "pck",
        "client_metadata": {"a": "b"},
    }
    rendered = PROTOCOL.render_request(request)
    assert rendered["instructions"] == "SYS\n\nENV"
    assert rendered["tools"] == CODEX_BODY["tools"]
    assert rendered["prompt_cache_key"] == "pck" and rendered["store"] is False


def test_tool_round_trip_items() -> None:
    body = {
        "model": "m",
        "instructions": "be brief",
        "input": [
            {"role": "user", "content": "list files"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [
                    {"type": "summary_text", "text": "a"},
                    {"type": "summary_text", "text": "b"},
                ],
                "encrypted_content": "ENC",
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "exec_command",
                "arguments": '{"cmd":"ls"}',
                "status": "completed",
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt\n"},
            {"role": "developer", "content": "late note"},
        ],
    }
    request = PROTOCOL.parse_request(body)
    assert request.system == [TextPart("be brief")]
    assert [m.role for m in request.messages] == ["user", "assistant", "user", "system"]
    assistant = request.messages[1].content
    assert assistant == [
        ReasoningPart(text="a\n\nb", encrypted="ENC", issuer="openai_responses", id="rs_1"),
        ToolCallPart(id="call_1", name="exec_command", arguments='{"cmd":"ls"}'),
    ]
    assert request.messages[2].content == [
        ToolResultPart(call_id="call_1", content=[TextPart("a.txt\n")])
    ]
    assert request.messages[3].text() == "late note"

    rendered = PROTOCOL.render_request(request)
    assert rendered["input"][1] == {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "a\n\nb"}],
        "encrypted_content": "ENC",
    }
    assert rendered["input"][2] == {
        "type": "function_call",
        "call_id": "call_1",
        "name": "exec_command",
        "arguments": '{"cmd":"ls"}',
    }
    assert rendered["input"][3] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "a.txt\n",
    }
    assert rendered["input"][4]["role"] == "developer"


ROUND_TRIPS: list[dict[str, Any]] = [
    {
        "model": "m",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        ],
    },
    {
        "model": "m",
        "instructions": "sys",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "a", "annotations": []}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
        "tools": [
            {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}
        ],
        "tool_choice": {"type": "function", "name": "f"},
        "max_output_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "reasoning": {"effort": "high", "summary": "detailed"},
        "text": {
            "format": {
                "type": "json_schema",
                "name": "out",
                "schema": {"type": "object"},
                "strict": True,
            },
            "verbosity": "low",
        },
        "stream": True,
        "user": "u1",
        "metadata": {"k": "v"},
        "previous_response_id": "resp_0",
        "truncation": "auto",
    },
    {
        "model": "m",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,AAAA",
                        "detail": "high",
                    },
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"},
                    {"type": "input_image", "file_id": "file_img", "detail": "auto"},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,JVBE",
                        "filename": "a.pdf",
                    },
                    {"type": "input_file", "file_id": "file_1"},
                ],
            }
        ],
        "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []},
    },
]


@pytest.mark.parametrize("body", ROUND_TRIPS)
def test_request_round_trip(body: dict[str, Any]) -> None:
    assert PROTOCOL.render_request(PROTOCOL.parse_request(body)) == body


def test_request_parts_parse_to_canonical() -> None:
    request = PROTOCOL.parse_request(ROUND_TRIPS[2])
    parts = request.messages[0].content
    assert parts[0] == ImagePart(media_type="image/png", data="AAAA", detail="high")
    assert parts[1] == ImagePart(url="https://x/y.png", detail="auto")
    assert parts[3] == FilePart(media_type="application/pdf", data="JVBE", filename="a.pdf")
    fmt = PROTOCOL.parse_request(ROUND_TRIPS[1]).response_format
    assert fmt is not None and fmt.type == "json_schema" and fmt.schema == {"type": "object"}


def test_string_input_and_foreign_parts_render() -> None:
    request = PROTOCOL.parse_request({"model": "m", "input": "hello"})
    assert request.messages == [Message("user", [TextPart("hello")])]
    # Canonical features from other protocols: foreign reasoning dropped, budget → effort.
    foreign = Request(
        model="m",
        messages=[
            Message("user", [TextPart("q")]),
            Message(
                "assistant",
                [ReasoningPart(text="t", signature="sig", issuer="anthropic"), TextPart("a")],
            ),
        ],
        tools=[
            Tool(name="web_search", builtin={"type": "web_search_20250305", "name": "web_search"})
        ],
        reasoning=Reasoning(budget=20000),
        stop=["x"],
    )
    rendered = PROTOCOL.render_request(foreign)
    assert rendered["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "a", "annotations": []}],
        },
    ]
    # Another vendor's web search becomes this API's own web_search tool.
    assert rendered["tools"] == [{"type": "web_search"}] and "stop" not in rendered
    assert rendered["reasoning"] == {"effort": "high"}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "body"),
        ({"input": "x"}, "model"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": [3]}, "input[0]"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"role": "user", "content": 3}]}, "input[0].content"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
        ),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        (
            {
                "model": "m",
                "input": [{"type": "function_call_output", "call_id": "c", "output": 1}],
            },
            "input[0].output",
        ),
        ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "tools": {}}, "tools"),
        ({"model": "m", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "max_output_tokens": "10"}, "max_output_tokens"),
        ({"model": "m", "max_output_tokens": True}, "max_output_tokens"),
        ({"model": "m", "temperature": "hot"}, "temperature"),
        ({"model": "m", "instructions": ["x"]}, "instructions"),
        ({"model": "m", "text": {"format": {"type": "xml"}}}, "text.format"),
    ],
)
def test_bad_requests_name_the_field(body: Any, path: str) -> None:
    with pytest.raises(ProxyError) as caught:
        PROTOCOL.parse_request(body)
    assert caught.value.kind is ErrorKind.INVALID_REQUEST
    assert caught.value.message.startswith(path)


# ---------------------------------------------------------------------------------------------
# complete responses


def wire_response(output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": "gpt-5",
        "output": output,
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 2},
            "total_tokens": 17,
        },
    }
    body.update(extra)
    return body


MSG = {
    "type": "message",
    "id": "msg_1",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "hi", "annotations": []}],
}
CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "f",
    "arguments": '{"a":1}',
    "status": "completed",
}
REASONING = {
    "type": "reasoning",
    "id": "rs_1",
    "summary": [{"type": "summary_text", "text": "hmm"}],
    "encrypted_content": "ENC",
}


@pytest.mark.parametrize(
    ("body", "content", "finish"),
    [
        (wire_response([MSG]), [TextPart("hi")], FinishReason.STOP),
        (
            wire_response([REASONING, CALL]),
            [
                ReasoningPart(text="hmm", encrypted="ENC", issuer="openai_responses", id="rs_1"),
                ToolCallPart(id="call_1", name="f", arguments='{"a":1}'),
            ],
            FinishReason.TOOL_CALLS,
        ),
        (
            wire_response(
                [MSG], status="incomplete", incomplete_details={"reason": "max_output_tokens"}
            ),
            [TextPart("hi")],
            FinishReason.LENGTH,
        ),
        (
            wire_response(
                [MSG], status="incomplete", incomplete_details={"reason": "content_filter"}
            ),
            [TextPart("hi")],
            FinishReason.CONTENT_FILTER,
        ),
    ],
)
def test_parse_response(body: dict[str, Any], content: list[Any], finish: FinishReason) -> None:
    response = PROTOCOL.parse_response(body)
    assert response.id == "resp_1" and response.model == "gpt-5"
    assert response.content == content
    assert response.finish_reason is finish
    assert response.usage == Usage(
        input_tokens=10, output_tokens=7, cached_tokens=4, reasoning_tokens=2
    )
    assert response.created == 1700000000
    # Rendering gives an object the SDK validates and that parses back to the same reply.
    rendered = PROTOCOL.render_response(response)
    SDKResponse.model_validate(rendered)
    again = PROTOCOL.parse_response(rendered)
    assert (again.content, again.finish_reason, again.usage) == (content, finish, response.usage)


def test_render_response_shape() -> None:
    response = Response(
        id="msg_abc",
        model="m",
        content=[TextPart("x")],
        finish_reason=FinishReason.LENGTH,
        usage=Usage(input_tokens=3, output_tokens=2, cache_creation_tokens=1),
    )
    body = PROTOCOL.render_response(response)
    assert body["id"] == "resp_msg_abc" and body["object"] == "response"
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["total_tokens"] == 5
    assert body["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 1}
    assert body["output"][0]["id"].startswith("msg_")
    SDKResponse.model_validate(body)


def test_parse_response_failures() -> None:
    failed = wire_response(
        [],
        status="failed",
        error={"code": "rate_limit_exceeded", "message": "slow. Please try again in 2s."},
    )
    with pytest.raises(ProxyError) as caught:
        PROTOCOL.parse_response(failed)
    assert caught.value.kind is ErrorKind.RATE_LIMIT and caught.value.retry_after == 2.0
    with pytest.raises(ProxyError) as caught:
        PROTOCOL.parse_response({"id": "x"})
    assert caught.value.kind is ErrorKind.UPSTREAM


# ---------------------------------------------------------------------------------------------
# errors


def test_errors() -> None:
    body = PROTOCOL.render_error(ProxyError(ErrorKind.INVALID_REQUEST, "bad", param="model"))
    assert body == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "model", "code": None}
    }
    raw = orjson.dumps(
        {
            "error": {
                "message": "Rate limit. Please try again in 350ms.",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        }
    )
    error = PROTOCOL.parse_error(429, raw)
    assert (error.kind, error.status, error.retry_after) == (ErrorKind.RATE_LIMIT, 429, 0.35)
    assert error.message.startswith("Rate limit")
    plain = PROTOCOL.parse_error(503, b"upstream connect error")
    assert (plain.kind, plain.message) == (ErrorKind.OVERLOADED, "upstream connect error")
    empty = PROTOCOL.parse_error(500, b"")
    assert empty.kind is ErrorKind.SERVER and "500" in empty.message


# ---------------------------------------------------------------------------------------------
# stream encoder


def test_encoder_text_order_and_sdk_types() -> None:
    payloads = frames(encode(TEXT_EVENTS))
    assert [p["type"] for p in payloads] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    for payload in payloads:
        STREAM_EVENT.validate_python(payload)  # strict check against the SDK's event types
    added = payloads[2]["item"]
    assert (
        added["type"] == "message" and added["status"] == "in_progress" and added["content"] == []
    )
    assert payloads[6]["text"] == "Hello"
    done = payloads[8]["item"]
    assert done["content"][0]["text"] == "Hello" and done["id"] == added["id"]
    completed = payloads[-1]["response"]
    assert completed["id"] == "resp_msg_1" and completed["model"] == "gpt-client"
    assert completed["status"] == "completed"
    assert completed["output"] == [done]
    assert completed["usage"]["input_tokens_details"]["cached_tokens"] == 3
    assert completed["usage"]["total_tokens"] == 16


def test_encoder_tool_call_and_reasoning() -> None:
    payloads = frames(encode(TOOL_EVENTS))
    for payload in payloads:
        STREAM_EVENT.validate_python(payload)
    assert [p["type"] for p in payloads][2:] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    reasoning_done = payloads[7]["item"]
    assert reasoning_done == {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "think"}],
        "encrypted_content": "ENC",
    }
    call_added = payloads[8]
    assert call_added["output_index"] == 1
    assert call_added["item"]["arguments"] == "" and call_added["item"]["call_id"] == "call_1"
    assert payloads[11]["arguments"] == '{"cmd":"ls"}'
    assert payloads[12]["item"]["arguments"] == '{"cmd":"ls"}'
    assert payloads[12]["item"]["id"] == call_added["item"]["id"]
    assert payloads[-1]["response"]["usage"]["output_tokens_details"]["reasoning_tokens"] == 4


def test_encoder_length_becomes_incomplete() -> None:
    events = [*TEXT_EVENTS[:-1], MessageEnd(FinishReason.LENGTH, Usage(output_tokens=5))]
    last = frames(encode(events))[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    STREAM_EVENT.validate_python(last)


def test_encoder_error_becomes_response_failed() -> None:
    error = ProxyError(ErrorKind.RATE_LIMIT, "too many requests", retry_after=1.5)
    payloads = frames(encode([*TEXT_EVENTS[:4], StreamError(error)]))
    types = [p["type"] for p in payloads]
    assert types[-1] == "response.failed" and "response.completed" not in types
    failed = payloads[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "code": "rate_limit_exceeded",
        "message": "too many requests Please try again in 1.5s.",
    }
    STREAM_EVENT.validate_python(payloads[-1])


def test_encoder_implicit_open_and_unclosed_blocks() -> None:
    # No MessageStart, no TextStart, no BlockEnd: the encoder still produces a complete stream.
    payloads = frames(
        encode([TextDelta(0, "x"), ToolArgsDelta(1, "{}"), MessageEnd(FinishReason.STOP)])
    )
    types = [p["type"] for p in payloads]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types.count("response.output_item.added") == 2
    assert types.count("response.output_item.done") == 2
    assert types[-1] == "response.completed"
    assert len(payloads[-1]["response"]["output"]) == 2
    # nothing after the terminal event
    encoder = PROTOCOL.stream_encoder(Request(model="m"))
    encoder.feed(MessageEnd(FinishReason.STOP))
    assert encoder.feed(TextDelta(0, "late")) == b""


# ---------------------------------------------------------------------------------------------
# stream decoder


@pytest.mark.parametrize("events", [TEXT_EVENTS, TOOL_EVENTS])
def test_encoder_decoder_round_trip(events: list[StreamEvent]) -> None:
    decoded = decode(frames(encode(events)))
    original = collect(events)
    again = collect(decoded)
    # Stream events carry no issuer, so the accumulated parts compare equal to the originals.
    assert again.content == original.content
    assert again.finish_reason is original.finish_reason
    assert again.usage == original.usage
    assert isinstance(decoded[0], MessageStart) and isinstance(decoded[-1], MessageEnd)


def test_decoder_minimal_codex_style_stream() -> None:
    payloads = [
        {"type": "response.output_item.done", "output_index": 0, "item": MSG},
        {"type": "response.output_item.done", "output_index": 1, "item": CALL},
        {"type": "response.completed", "response": wire_response([MSG, CALL])},
    ]
    events = decode(payloads)
    assert events == [
        MessageStart(id="", model=""),
        TextStart(0),
        TextDelta(0, "hi"),
        BlockEnd(0),
        ToolCallStart(1, id="call_1", name="f"),
        ToolArgsDelta(1, '{"a":1}'),
        BlockEnd(1),
        MessageEnd(
            FinishReason.TOOL_CALLS,
            Usage(input_tokens=10, output_tokens=7, cached_tokens=4, reasoning_tokens=2),
        ),
    ]


def test_decoder_completed_only_and_reasoning_encrypted_at_done() -> None:
    events = decode([{"type": "response.completed", "response": wire_response([REASONING, MSG])}])
    reply = collect(events)
    assert reply.content == [
        ReasoningPart(text="hmm", encrypted="ENC", issuer="openai_responses", id="rs_1"),
        TextPart("hi"),
    ]
    assert reply.finish_reason is FinishReason.STOP


def test_decoder_incomplete() -> None:
    body = wire_response(
        [MSG], status="incomplete", incomplete_details={"reason": "max_output_tokens"}
    )
    events = decode([{"type": "response.incomplete", "response": body}])
    assert isinstance(events[-1], MessageEnd) and events[-1].finish_reason is FinishReason.LENGTH


@pytest.mark.parametrize(
    ("payload", "kind", "message"),
    [
        (
            {
                "type": "response.failed",
                "response": wire_response(
                    [], status="failed", error={"code": "server_error", "message": "boom"}
                ),
            },
            ErrorKind.UPSTREAM,
            "boom",
        ),
        (
            {"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None},
            ErrorKind.RATE_LIMIT,
            "slow down",
        ),
        (
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                    "message": "too long",
                },
            },
            ErrorKind.TOO_LARGE,
            "too long",
        ),
    ],
)
def test_decoder_error_events(payload: dict[str, Any], kind: ErrorKind, message: str) -> None:
    events = decode([{"type": "response.created", "response": wire_response([])}, payload])
    assert isinstance(events[-1], StreamError)
    assert (events[-1].error.kind, events[-1].error.message) == (kind, message)
    assert sum(isinstance(e, StreamError) for e in events) == 1  # close() adds nothing more


def test_decoder_cut_stream_and_bad_json() -> None:
    payloads = frames(encode(TEXT_EVENTS))[:6]  # stops mid-text
    events = decode(payloads)
    assert isinstance(events[-2], BlockEnd)
    assert isinstance(events[-1], StreamError) and events[-1].error.kind is ErrorKind.UPSTREAM
    assert "response.completed" in events[-1].error.message

    decoder = PROTOCOL.stream_decoder()
    out = decoder.feed(SSEEvent("response.created", "{not json"))
    assert isinstance(out[0], StreamError) and out[0].error.kind is ErrorKind.UPSTREAM
    assert decoder.close() == []


def test_decoder_delta_text_repaired_by_done_item() -> None:
    # Deltas delivered only part of the text; output_item.done carries the rest.
    payloads = [
        {"type": "response.output_item.added", "output_index": 0, "item": {**MSG, "content": []}},
        {
            "type": "response.output_text.delta",
            "output_index": 0,
            "item_id": "msg_1",
            "content_index": 0,
            "delta": "h",
        },
        {"type": "response.output_item.done", "output_index": 0, "item": MSG},
        {"type": "response.completed", "response": wire_response([MSG])},
    ]
    assert collect(decode(payloads)).text() == "hi"


# ---------------------------------------------------------------------------------------------
# acceptance: the official openai SDK reads what the encoder writes


def test_sdk_non_stream() -> None:
    response = Response(
        id="resp_x",
        model="m",
        content=[TextPart("hello"), ToolCallPart(id="call_9", name="f", arguments='{"a":1}')],
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(input_tokens=4, output_tokens=6, reasoning_tokens=1),
    )
    body = orjson.dumps(PROTOCOL.render_response(response))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, content=body)

    result = sdk_client(handler).responses.create(model="m", input="hi")
    assert result.output_text == "hello"
    assert result.usage is not None and result.usage.output_tokens_details.reasoning_tokens == 1
    calls = [o for o in result.output if o.type == "function_call"]
    assert calls[0].call_id == "call_9" and calls[0].arguments == '{"a":1}'


def test_sdk_stream_iteration() -> None:
    seen: list[dict[str, Any]] = []
    client = sdk_client(sse_handler(encode(TEXT_EVENTS), seen))
    events = list(client.responses.create(model="m", input="hi", stream=True))
    assert seen[0]["stream"] is True
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello"
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "Hello"
    assert completed.response.usage is not None and completed.response.usage.input_tokens == 11


def _shift(event: StreamEvent, by: int) -> StreamEvent:
    index = getattr(event, "index", None)
    return event if index is None else dataclasses.replace(event, index=index + by)


def test_sdk_stream_helper_final_response_with_tools() -> None:
    # The tool events, renumbered to follow a text block (copies: TOOL_EVENTS stays intact).
    shifted = [_shift(event, 1) for event in TOOL_EVENTS[1:]]
    events = [
        MessageStart(id="resp_h", model="u"),
        TextStart(0),
        TextDelta(0, "Let me look."),
        BlockEnd(0),
        *shifted,
    ]
    client = sdk_client(sse_handler(encode(events)))
    with client.responses.stream(model="m", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["Let me look."]
    assert final.output_text == "Let me look."
    kinds = [o.type for o in final.output]
    assert kinds == ["message", "reasoning", "function_call"]
    call = final.output[2]
    assert call.type == "function_call" and call.name == "exec_command"
    assert call.arguments == '{"cmd":"ls"}'
    assert final.usage is not None and final.usage.total_tokens == 29


def test_sdk_sees_failed_stream() -> None:
    error = ProxyError(ErrorKind.OVERLOADED, "upstream overloaded")
    body = encode([*TEXT_EVENTS[:3], StreamError(error)])
    client = sdk_client(sse_handler(body))
    events = list(client.responses.create(model="m", input="hi", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error is not None
    assert events[-1].response.error.message == "upstream overloaded"
    with client.responses.stream(model="m", input="hi") as stream, pytest.raises(RuntimeError):
        stream.get_final_response()


def test_replayed_response_events_encode_cleanly() -> None:
    # response_events() (used for non-streaming upstreams) feeds the encoder as well.
    response = Response(
        id="r", model="m", content=[TextPart("abc")], usage=Usage(input_tokens=1, output_tokens=1)
    )
    client = sdk_client(sse_handler(encode(response_events(response, chunk_size=1))))
    with client.responses.stream(model="m", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "abc"


def test_usage_update_event_reaches_completed() -> None:
    events = [
        *TEXT_EVENTS[:-1],
        UsageUpdate(Usage(output_tokens=42)),
        MessageEnd(FinishReason.STOP),
    ]
    assert frames(encode(events))[-1]["response"]["usage"]["output_tokens"] == 42


def test_codex_usage_limit_reached_gives_the_reset_as_retry_hint() -> None:
    import orjson

    from cliproxy.model import ErrorKind
    from cliproxy.protocols.openai_responses import PROTOCOL as RESPONSES

    body = {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "resets_in_seconds": 1234,
        }
    }
    error = RESPONSES.parse_error(429, orjson.dumps(body))
    assert error.kind is ErrorKind.RATE_LIMIT
    assert error.retry_after == 1234
