"""Anthropic Messages protocol: requests, responses, streams, errors, and the official SDK."""

from __future__ import annotations

import copy
from typing import Any

import anthropic
import httpx2  # the anthropic SDK is built on httpx2 and refuses httpx clients
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
    ResponseFormat,
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
from cliproxy.protocols.anthropic_messages import PROTOCOL
from cliproxy.protocols.sse import SSEEvent, SSEParser

# ---------------------------------------------------------------------------------------------
# Requests: wire → canonical → wire

CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.331.1;"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "cat hello.txt"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should read it.", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": "TOOL-FILE-OK",
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "text", "text": "thanks"},
            ],
        },
    ],
    "tools": [
        {
            "name": "Bash",
            "description": "Run a command",
            "input_schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {"command": {"type": "string"}},
            },
            "cache_control": {"type": "ephemeral"},
        },
        {
            "name": "DeferredToolPlaceholder",
            "input_schema": {"type": "object", "properties": {}},
            "defer_loading": True,
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "metadata": {"user_id": '{"device_id":"d1","account_uuid":"","session_id":"s1"}'},
    "thinking": {"type": "enabled", "budget_tokens": 31999, "display": "omitted"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "stop_sequences": ["STOP"],
}


def test_claude_code_request_round_trips_losslessly() -> None:
    body = copy.deepcopy(CLAUDE_CODE_BODY)
    request = PROTOCOL.parse_request(body)
    assert PROTOCOL.render_request(request) == CLAUDE_CODE_BODY
    assert body == CLAUDE_CODE_BODY  # parsing did not mutate the client's body


def test_claude_code_request_canonical_values() -> None:
    request = PROTOCOL.parse_request(copy.deepcopy(CLAUDE_CODE_BODY))
    assert request.model == "claude-sonnet-4-5"
    assert request.stream is True and request.max_tokens == 32000
    assert [p.text for p in request.system][1] == "You are Claude Code."
    assert request.system[1].cache_control == {"type": "ephemeral"}
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    assert request.messages[0].content[1] == ImagePart(media_type="image/png", data="iVBOR")
    thinking, redacted, _, call = request.messages[1].content
    assert thinking == ReasoningPart(
        text="I should read it.", signature="sig-1", issuer="anthropic"
    )
    assert redacted == ReasoningPart(encrypted="opaque", redacted=True, issuer="anthropic")
    assert call == ToolCallPart(id="toolu_01", name="Bash", arguments='{"command":"ls"}')
    result = request.messages[2].content[0]
    assert isinstance(result, ToolResultPart)
    assert (result.call_id, result.name, result.text()) == ("toolu_01", "Bash", "TOOL-FILE-OK")
    assert result.cache_control == {"type": "ephemeral"}
    bash, deferred, search = request.tools
    assert bash.parameters["properties"] == {"command": {"type": "string"}}
    assert bash.cache_control == {"type": "ephemeral"} and bash.builtin is None
    assert deferred.builtin is None  # still a plain function tool for other protocols
    assert search.name == "web_search" and search.builtin == CLAUDE_CODE_BODY["tools"][2]
    assert request.tool_choice == ToolChoice("auto")
    assert request.parallel_tool_calls is False
    assert request.reasoning == Reasoning(enabled=True, budget=31999, include_thoughts=False)
    assert request.metadata == CLAUDE_CODE_BODY["metadata"]
    assert request.stop == ["STOP"]
    assert (
        request.extras["anthropic"]["context_management"] == CLAUDE_CODE_BODY["context_management"]
    )


def test_system_role_messages_are_kept_in_place() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {"role": "system", "content": "plain"},
        ],
    }
    request = PROTOCOL.parse_request(body)
    assert [m.role for m in request.messages] == ["user", "system", "system"]
    assert request.messages[1].content == [TextPart("be brief", {"type": "ephemeral"})]
    assert request.messages[2].text() == "plain"


def test_adaptive_thinking_and_output_config() -> None:
    body = {
        "model": "claude-opus-5-5",
        "max_tokens": 128000,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {
            "effort": "max",
            "format": {"type": "json_schema", "schema": {"type": "object"}},
        },
    }
    request = PROTOCOL.parse_request(copy.deepcopy(body))
    assert request.reasoning == Reasoning(enabled=True, effort="xhigh", include_thoughts=False)
    assert request.response_format == ResponseFormat(type="json_schema", schema={"type": "object"})
    assert PROTOCOL.render_request(request) == body
    # A changed reasoning setting replaces the raw one instead of being ignored.
    request.reasoning = Reasoning(effort="low")
    rendered = PROTOCOL.render_request(request)
    assert rendered["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "effort" not in rendered["output_config"]


def test_count_tokens_body_needs_no_max_tokens() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []}
    request = PROTOCOL.parse_count_tokens_request(body)
    assert request.max_tokens is None
    with pytest.raises(ProxyError, match=r"max_tokens: required"):
        PROTOCOL.parse_request(body)
    rendered = PROTOCOL.render_count_tokens_request(request)
    assert rendered == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert PROTOCOL.count_tokens_response(12) == {"input_tokens": 12}


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_tokens": 1, "messages": []}, "model: required"),
        (_body(max_tokens="10"), "max_tokens: expected an integer"),
        (_body(max_tokens=True), "max_tokens: expected an integer"),
        (_body(max_tokens=0), "max_tokens: must be at least 1"),
        (_body(messages="hi"), "messages: expected a list"),
        (_body(messages=[]), "messages: at least one message"),
        (_body(messages=[{"role": "tool", "content": "x"}]), "messages[0].role: expected user"),
        (
            _body(messages=[{"role": "user", "content": 5}]),
            "messages[0].content: expected a string or a list",
        ),
        (
            _body(messages=[{"role": "user", "content": [{"text": "x"}]}]),
            "messages[0].content[0].type: expected a string",
        ),
        (
            _body(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
            "messages[0].content[0].text: expected a string",
        ),
        (
            _body(
                messages=[
                    {"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}
                ]
            ),
            "messages[0].content[0].source.type: expected base64, url or file",
        ),
        (
            _body(
                messages=[
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "a", "name": "f", "input": []}],
                    }
                ]
            ),
            "messages[0].content[0].input: expected an object",
        ),
        (
            _body(
                messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]
            ),
            "messages[0].content[0].tool_use_id: expected a string",
        ),
        (_body(system=[{"type": "image"}]), "system[0].type: expected text"),
        (_body(tools=[{"name": "f"}]), "tools[0].input_schema: expected an object"),
        (_body(tools=[{"name": "", "input_schema": {}}]), "tools[0].name: must not be empty"),
        (
            _body(tool_choice={"type": "sometimes"}),
            "tool_choice.type: expected auto, any, tool or none",
        ),
        (_body(tool_choice={"type": "tool"}), "tool_choice.name: expected a string"),
        (_body(thinking={"type": "enabled"}), "thinking.budget_tokens: required"),
        (_body(temperature="hot"), "temperature: expected a number"),
        (_body(stop_sequences=["a", 1]), "stop_sequences[1]: expected a string"),
        (_body(metadata="u1"), "metadata: expected an object"),
        ([1, 2], "body: expected an object"),
    ],
)
def test_bad_requests_name_the_field(body: Any, message: str) -> None:
    with pytest.raises(ProxyError) as caught:
        PROTOCOL.parse_request(body)
    assert caught.value.kind is ErrorKind.INVALID_REQUEST
    assert caught.value.status == 400
    assert message in caught.value.message


def test_unknown_block_types_are_skipped() -> None:
    body = _body(
        messages=[
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {},
                    },
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "text", "text": "found"},
                ],
            }
        ]
    )
    assert PROTOCOL.parse_request(body).messages[0].content == [TextPart("found")]


def test_documents_and_sources() -> None:
    content = [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            "title": "a.pdf",
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "hello"},
        },
        {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}},
        {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}},
        {"type": "image", "source": {"type": "file", "file_id": "file_2"}},
    ]
    request = PROTOCOL.parse_request(
        _body(messages=[{"role": "user", "content": copy.deepcopy(content)}])
    )
    parts = request.messages[0].content
    assert parts[0] == FilePart(media_type="application/pdf", data="JVBE", filename="a.pdf")
    assert parts[1] == FilePart(media_type="text/plain", data="aGVsbG8=")
    assert parts[4] == ImagePart(url="https://x/i.png")
    assert PROTOCOL.render_request(request)["messages"][0]["content"] == content


# ---------------------------------------------------------------------------------------------
# Requests from other protocols: canonical → wire the API accepts


def test_render_foreign_conversation() -> None:
    request = Request(
        model="claude-sonnet-4-5",
        system=[TextPart("be nice")],
        messages=[
            Message("system", [TextPart("rules")]),
            Message("user", [TextPart("hi"), ImagePart(url="data:image/jpeg;base64,AAAA")]),
            Message("user", [TextPart("")]),
            Message(
                "assistant",
                [
                    ReasoningPart(
                        text="openai thoughts", encrypted="enc", issuer="openai_responses"
                    ),
                    ReasoningPart(text="unsigned"),
                    ToolCallPart(id="call.1", name="f", arguments='{"a": 1}'),
                ],
            ),
            Message("assistant", [ToolCallPart(id="call_2", name="g", arguments="not json")]),
            Message("user", [TextPart("also")]),
            Message("user", [ToolResultPart(call_id="call.1", content=[TextPart("r1")])]),
            Message("user", [ToolResultPart(call_id="call_2", content=[], is_error=True)]),
        ],
        tools=[Tool(name="f"), Tool(name="g", parameters={"type": "object"}, strict=True)],
        tool_choice=ToolChoice("required"),
        metadata={"ticket": "123"},
        user="u-7",
    )
    body = PROTOCOL.render_request(request)
    assert body["max_tokens"] == 32000
    assert body["system"] == [{"type": "text", "text": "be nice"}]
    assert body["metadata"] == {"user_id": "u-7"}
    assert body["tool_choice"] == {"type": "any"}
    assert body["tools"][1] == {"name": "g", "input_schema": {"type": "object"}, "strict": True}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    first, assistant, last = (m["content"] for m in body["messages"])
    assert first == [
        {"type": "text", "text": "<system-reminder>\nrules\n</system-reminder>"},
        {"type": "text", "text": "hi"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
    ]
    assert assistant == [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {"_raw": "not json"}},
    ]
    assert last == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "r1"},
        {"type": "tool_result", "tool_use_id": "call_2", "is_error": True},
        {"type": "text", "text": "also"},
    ]


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking", "expected_max"),
    [
        (Reasoning(effort="high"), None, {"type": "enabled", "budget_tokens": 24576}, 32768),
        (Reasoning(effort="medium"), 4000, {"type": "enabled", "budget_tokens": 2000}, 4000),
        (Reasoning(effort="high"), 1500, None, 1500),  # no room for the minimum budget
        (Reasoning(budget=50000), None, {"type": "enabled", "budget_tokens": 50000}, 58192),
        (Reasoning(budget=0), None, {"type": "disabled"}, 32000),
        (Reasoning(effort="none"), None, {"type": "disabled"}, 32000),
        (Reasoning(enabled=True), 20000, {"type": "enabled", "budget_tokens": 8192}, 20000),
        (Reasoning(summary="auto"), None, None, 32000),
    ],
)
def test_render_reasoning_budget(
    reasoning: Reasoning, max_tokens: int | None, thinking: dict[str, Any] | None, expected_max: int
) -> None:
    request = Request(
        model="m",
        messages=[Message("user", [TextPart("hi")])],
        reasoning=reasoning,
        max_tokens=max_tokens,
        temperature=0.2,
        top_k=5,
    )
    body = PROTOCOL.render_request(request)
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == expected_max
    if thinking is not None and thinking["type"] == "enabled":
        assert thinking["budget_tokens"] < body["max_tokens"]
        assert "temperature" not in body and "top_k" not in body  # refused with thinking on
    else:
        assert body["temperature"] == 0.2 and body["top_k"] == 5


def _tool_history(first_block: ReasoningPart | None) -> list[Message]:
    assistant: list[Any] = [ToolCallPart(id="call_1", name="lookup", arguments="{}")]
    if first_block is not None:
        assistant.insert(0, first_block)
    return [
        Message("user", [TextPart("q")]),
        Message("assistant", assistant),
        Message("user", [ToolResultPart(call_id="call_1", content=[TextPart("r")])]),
    ]


@pytest.mark.parametrize(
    ("messages", "tool_choice", "thinks"),
    [
        (_tool_history(None), None, False),  # tool turn without a thinking block first
        (_tool_history(ReasoningPart(text="t", signature="s", issuer="anthropic")), None, True),
        (_tool_history(ReasoningPart(text="t", signature="s", issuer="gemini")), None, False),
        ([Message("user", [TextPart("q")])], ToolChoice("required"), False),  # forced tool
        ([Message("user", [TextPart("q")])], ToolChoice("auto"), True),
    ],
)
def test_thinking_dropped_where_the_api_refuses_it(
    messages: list[Message], tool_choice: ToolChoice | None, thinks: bool
) -> None:
    request = Request(
        model="m",
        messages=messages,
        tools=[Tool(name="lookup")],
        tool_choice=tool_choice,
        reasoning=Reasoning(effort="medium"),
        temperature=0.3,
    )
    body = PROTOCOL.render_request(request)
    assert ("thinking" in body) is thinks
    assert ("temperature" in body) is not thinks


def test_tools_declared_for_tool_history_without_tools() -> None:
    request = Request(model="m", messages=_tool_history(None))
    body = PROTOCOL.render_request(request)
    assert body["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "none"}


def test_render_signed_reasoning_and_parallel_flag() -> None:
    request = Request(
        model="m",
        messages=[
            Message("user", [TextPart("q")]),
            Message(
                "assistant",
                [ReasoningPart(text="t", signature="s", issuer="anthropic"), TextPart("a")],
            ),
        ],
        tools=[Tool(name="f")],
        parallel_tool_calls=False,
        response_format=ResponseFormat(type="json_schema", schema={"type": "object"}),
    )
    body = PROTOCOL.render_request(request)
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "t",
        "signature": "s",
    }
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": {"type": "object"}}
    }


# ---------------------------------------------------------------------------------------------
# Complete responses

WIRE_RESPONSE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Hello"},
        {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"x": [1, 2]}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
    },
}


def test_response_round_trip_and_usage() -> None:
    response = PROTOCOL.parse_response(copy.deepcopy(WIRE_RESPONSE))
    assert response.usage == Usage(
        input_tokens=115, output_tokens=20, cached_tokens=100, cache_creation_tokens=5
    )
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.content[0] == ReasoningPart(text="hmm", signature="sig", issuer="anthropic")
    assert response.content[2] == ToolCallPart(id="toolu_9", name="f", arguments='{"x":[1,2]}')
    assert PROTOCOL.render_response(response) == WIRE_RESPONSE


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        ("end_turn", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("stop_sequence", FinishReason.STOP_SEQUENCE),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("pause_turn", FinishReason.PAUSE),
        ("refusal", FinishReason.REFUSAL),
    ],
)
def test_stop_reasons(wire: str, reason: FinishReason) -> None:
    body = dict(WIRE_RESPONSE, content=[{"type": "text", "text": "x"}], stop_reason=wire)
    body["stop_sequence"] = "END" if wire == "stop_sequence" else None
    response = PROTOCOL.parse_response(body)
    assert response.finish_reason is reason
    rendered = PROTOCOL.render_response(response)
    assert (rendered["stop_reason"], rendered["stop_sequence"]) == (wire, body["stop_sequence"])


def test_render_foreign_response() -> None:
    response = Response(
        id="chatcmpl-abc",
        model="gpt-5",
        content=[TextPart("hi"), ToolCallPart(id="", name="f", arguments="")],
        finish_reason=FinishReason.STOP,  # Gemini says STOP even when it calls tools
        usage=Usage(input_tokens=50, output_tokens=9, cached_tokens=40, reasoning_tokens=4),
    )
    body = PROTOCOL.render_response(response)
    assert body["id"] == "msg_chatcmpl-abc"
    assert body["stop_reason"] == "tool_use"
    assert body["content"][1]["id"].startswith("toolu_") and body["content"][1]["input"] == {}
    assert body["usage"] == {
        "input_tokens": 10,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 40,
        "output_tokens_details": {"thinking_tokens": 4},
    }


def test_unusable_response_is_an_upstream_error() -> None:
    with pytest.raises(ProxyError) as caught:
        PROTOCOL.parse_response({"type": "message"})
    assert caught.value.kind is ErrorKind.UPSTREAM


# ---------------------------------------------------------------------------------------------
# Stream decoding: Anthropic SSE → canonical events


def _sse(kind: str, payload: dict[str, Any]) -> SSEEvent:
    return SSEEvent(kind, orjson.dumps({"type": kind, **payload}).decode())


UPSTREAM_STREAM = [
    _sse(
        "message_start",
        {
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-x",
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 7, "output_tokens": 1, "cache_read_input_tokens": 3},
            }
        },
    ),
    _sse("ping", {}),
    _sse(
        "content_block_start",
        {"index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    ),
    _sse(
        "content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "plan"}}
    ),
    _sse(
        "content_block_delta",
        {"index": 0, "delta": {"type": "signature_delta", "signature": "SIG"}},
    ),
    _sse("content_block_stop", {"index": 0}),
    _sse(
        "content_block_start",
        {
            "index": 1,
            "content_block": {
                "type": "server_tool_use",
                "id": "srv",
                "name": "web_search",
                "input": {},
            },
        },
    ),
    _sse(
        "content_block_delta",
        {"index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
    ),
    _sse("content_block_stop", {"index": 1}),
    _sse("content_block_start", {"index": 2, "content_block": {"type": "text", "text": ""}}),
    _sse("content_block_delta", {"index": 2, "delta": {"type": "text_delta", "text": "Hel"}}),
    _sse("content_block_delta", {"index": 2, "delta": {"type": "text_delta", "text": "lo"}}),
    _sse("content_block_stop", {"index": 2}),
    _sse(
        "content_block_start",
        {
            "index": 3,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
    ),
    _sse(
        "content_block_delta",
        {"index": 3, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
    ),
    _sse(
        "content_block_delta",
        {"index": 3, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
    ),
    _sse("content_block_stop", {"index": 3}),
    _sse(
        "message_delta",
        {
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },
    ),
    _sse("message_stop", {}),
]


def _decode(events: list[SSEEvent]) -> list[StreamEvent]:
    decoder = PROTOCOL.stream_decoder()
    out: list[StreamEvent] = []
    for event in events:
        out.extend(decoder.feed(event))
    out.extend(decoder.close())
    return out


def test_decoder_full_stream() -> None:
    events = _decode(UPSTREAM_STREAM)
    assert events == [
        MessageStart("msg_1", "claude-x", Usage(input_tokens=10, output_tokens=1, cached_tokens=3)),
        ReasoningStart(0, issuer="anthropic"),
        ReasoningDelta(0, text="plan"),
        ReasoningDelta(0, signature="SIG"),
        BlockEnd(0),
        TextStart(1),  # the server tool block at wire index 1 has no canonical form
        TextDelta(1, "Hel"),
        TextDelta(1, "lo"),
        BlockEnd(1),
        ToolCallStart(2, id="toolu_1", name="f"),
        ToolArgsDelta(2, '{"a":'),
        ToolArgsDelta(2, "1}"),
        BlockEnd(2),
        MessageEnd(
            FinishReason.TOOL_CALLS, Usage(input_tokens=10, output_tokens=30, cached_tokens=3)
        ),
    ]
    response = collect(events)
    assert response.text() == "Hello"
    assert response.content[0].signature == "SIG"  # type: ignore[union-attr]


def test_decoder_cut_stream_closes_blocks_then_errors() -> None:
    events = _decode(UPSTREAM_STREAM[:12])
    assert events[-2] == BlockEnd(1)
    last = events[-1]
    assert isinstance(last, StreamError) and last.error.kind is ErrorKind.UPSTREAM
    assert "ended early" in last.error.message


def test_decoder_error_event_ends_the_stream() -> None:
    error = _sse("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    events = _decode([*UPSTREAM_STREAM[:4], error, UPSTREAM_STREAM[4]])
    last = events[-1]
    assert isinstance(last, StreamError)
    assert (last.error.kind, last.error.message) == (ErrorKind.OVERLOADED, "Overloaded")
    assert sum(isinstance(e, StreamError) for e in events) == 1


def test_decoder_malformed_json_is_an_error_not_an_exception() -> None:
    events = _decode([UPSTREAM_STREAM[0], SSEEvent("content_block_delta", "{not json")])
    assert isinstance(events[-1], StreamError) and events[-1].error.kind is ErrorKind.UPSTREAM


def test_decoder_delta_without_start_and_stop_sequence() -> None:
    events = _decode(
        [
            _sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "x"}}),
            _sse(
                "message_delta",
                {
                    "delta": {"stop_reason": "stop_sequence", "stop_sequence": "##"},
                    "usage": {"output_tokens": 2, "input_tokens": 4},
                },
            ),
            _sse("message_stop", {}),
        ]
    )
    assert isinstance(events[0], MessageStart)
    assert events[1:] == [
        TextStart(0),
        TextDelta(0, "x"),
        BlockEnd(0),
        MessageEnd(FinishReason.STOP_SEQUENCE, Usage(input_tokens=4, output_tokens=2), "##"),
    ]


# ---------------------------------------------------------------------------------------------
# Stream encoding: canonical events → Anthropic SSE


def _frames(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    parser = SSEParser()
    events = parser.feed(data) + parser.close()
    return [(e.event, orjson.loads(e.data)) for e in events]


def _encode(events: list[StreamEvent], model: str = "claude-client") -> bytes:
    encoder = PROTOCOL.stream_encoder(Request(model=model))
    return b"".join(encoder.feed(event) for event in events)


def test_encoder_exact_frames() -> None:
    data = _encode(
        [
            MessageStart("chatcmpl-1", "gpt-5", Usage(input_tokens=12, cached_tokens=2)),
            ReasoningStart(4),
            ReasoningDelta(4, text="think"),
            ReasoningDelta(4, signature="S"),
            BlockEnd(4),
            TextStart(7),
            TextDelta(7, "Hi"),
            BlockEnd(7),
            ToolCallStart(9, id="call_1", name="f"),
            ToolArgsDelta(9, '{"q":1}'),
            UsageUpdate(Usage(output_tokens=3)),
            MessageEnd(FinishReason.TOOL_CALLS, Usage(output_tokens=5)),
        ]
    )
    assert data.startswith(b"event: message_start\ndata: {")
    frames = _frames(data)
    assert [name for name, _ in frames] == [payload["type"] for _, payload in frames]
    assert frames == [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_chatcmpl-1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-client",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 10,
                        "output_tokens": 0,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 2,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "think"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "S"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"q":1}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),  # closed by MessageEnd
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 2,
                },
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_encoder_opens_blocks_implicitly() -> None:
    frames = _frames(
        _encode([TextDelta(0, "a"), ToolArgsDelta(1, "{}"), MessageEnd(FinishReason.STOP)])
    )
    names = [name for name, _ in frames]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert frames[3][1]["content_block"]["type"] == "tool_use"
    assert frames[7][1]["delta"]["stop_reason"] == "tool_use"


def test_encoder_error_is_last_frame() -> None:
    encoder = PROTOCOL.stream_encoder(Request(model="m"))
    head = encoder.feed(MessageStart("msg_x", "m")) + encoder.feed(TextStart(0))
    tail = encoder.feed(StreamError(ProxyError(ErrorKind.RATE_LIMIT, "slow down")))
    assert tail == (
        b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}\n\n'
    )
    assert (
        encoder.feed(TextDelta(0, "late")) == b""
        and encoder.feed(MessageEnd(FinishReason.STOP)) == b""
    )
    assert b"message_stop" not in head


def test_encoder_then_decoder_preserves_the_reply() -> None:
    response = Response(
        id="msg_rt",
        model="m",
        content=[
            ReasoningPart(text="why", signature="sig", issuer="anthropic"),
            ReasoningPart(redacted=True, encrypted="blob", issuer="anthropic"),
            TextPart("answer"),
            ToolCallPart(id="toolu_x", name="f", arguments='{"k":"v"}'),
        ],
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(input_tokens=30, output_tokens=8, cached_tokens=20, cache_creation_tokens=4),
    )
    data = _encode(list(response_events(response, chunk_size=2)), model="m")
    parser = SSEParser()
    decoded = _decode(parser.feed(data) + parser.close())
    again = collect(decoded)
    assert again.content == response.content
    assert (again.finish_reason, again.usage, again.id) == (
        response.finish_reason,
        response.usage,
        "msg_rt",
    )


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("kind", "wire_type"),
    [
        (ErrorKind.INVALID_REQUEST, "invalid_request_error"),
        (ErrorKind.AUTHENTICATION, "authentication_error"),
        (ErrorKind.PERMISSION, "permission_error"),
        (ErrorKind.NOT_FOUND, "not_found_error"),
        (ErrorKind.TOO_LARGE, "request_too_large"),
        (ErrorKind.RATE_LIMIT, "rate_limit_error"),
        (ErrorKind.SERVER, "api_error"),
        (ErrorKind.UPSTREAM, "api_error"),
        (ErrorKind.OVERLOADED, "overloaded_error"),
        (ErrorKind.TIMEOUT, "timeout_error"),
    ],
)
def test_render_error(kind: ErrorKind, wire_type: str) -> None:
    assert PROTOCOL.render_error(ProxyError(kind, "boom")) == {
        "type": "error",
        "error": {"type": wire_type, "message": "boom"},
    }


def test_parse_error() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}'
    error = PROTOCOL.parse_error(529, body)
    assert (error.kind, error.status, error.message) == (ErrorKind.OVERLOADED, 529, "Overloaded")
    error = PROTOCOL.parse_error(
        429,
        b'{"type":"error","error":{"type":"rate_limit_error","message":"Slow","retry_after":12}}',
    )
    assert (error.kind, error.retry_after) == (ErrorKind.RATE_LIMIT, 12.0)
    error = PROTOCOL.parse_error(502, b"<html>Bad Gateway</html>")
    assert (error.kind, error.message) == (ErrorKind.UPSTREAM, "<html>Bad Gateway</html>")
    assert PROTOCOL.parse_error(500, b"").message == "upstream returned HTTP 500"


# ---------------------------------------------------------------------------------------------
# The official SDK accepts what we produce


def _client(handler: Any) -> anthropic.Anthropic:
    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(
        base_url="http://proxy.test",
        api_key="x",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )


def _sse_handler(data: bytes, seen: list[dict[str, Any]]) -> Any:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(orjson.loads(request.content))
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    return handler


SDK_REPLY = Response(
    id="resp_1",
    model="upstream-model",
    content=[
        ReasoningPart(text="thinking...", signature="sig"),
        TextPart("Hello from the proxy"),
        ToolCallPart(id="call_abc", name="get_weather", arguments='{"city":"Paris"}'),
    ],
    finish_reason=FinishReason.TOOL_CALLS,
    usage=Usage(input_tokens=25, output_tokens=17, cached_tokens=5),
)


def test_sdk_non_streaming() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = orjson.loads(request.content)
        seen.append(body)
        parsed = PROTOCOL.parse_request(body)
        wire = PROTOCOL.render_response(SDK_REPLY)
        wire["model"] = parsed.model
        return httpx2.Response(200, json=wire)

    message = _client(handler).messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert seen[0]["max_tokens"] == 100
    assert message.model == "claude-sonnet-4-5"
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[1].text == "Hello from the proxy"  # type: ignore[union-attr]
    assert message.content[2].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (20, 5)


def test_sdk_stream_iteration() -> None:
    seen: list[dict[str, Any]] = []
    data = _encode(list(response_events(SDK_REPLY, chunk_size=3)), model="claude-sonnet-4-5")
    stream = _client(_sse_handler(data, seen)).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    )
    events = list(stream)
    assert seen[0]["stream"] is True
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == "Hello from the proxy"
    delta = next(e for e in events if e.type == "message_delta")
    assert delta.delta.stop_reason == "tool_use" and delta.usage.output_tokens == 17


def test_sdk_stream_helper_final_message() -> None:
    data = _encode(list(response_events(SDK_REPLY, chunk_size=4)), model="claude-sonnet-4-5")
    client = _client(_sse_handler(data, []))
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed_text == "Hello from the proxy"
    assert final.id == "msg_resp_1"
    assert final.stop_reason == "tool_use"
    assert final.content[0].thinking == "thinking..." and final.content[0].signature == "sig"  # type: ignore[union-attr]
    tool = final.content[2]
    assert (
        tool.type == "tool_use" and tool.name == "get_weather" and tool.input == {"city": "Paris"}
    )
    assert (
        final.usage.input_tokens,
        final.usage.cache_read_input_tokens,
        final.usage.output_tokens,
    ) == (20, 5, 17)


def test_sdk_raises_on_error_event() -> None:
    encoder = PROTOCOL.stream_encoder(Request(model="m"))
    data = (
        encoder.feed(MessageStart("msg_1", "m"))
        + encoder.feed(TextStart(0))
        + encoder.feed(TextDelta(0, "par"))
    )
    data += encoder.feed(StreamError(ProxyError(ErrorKind.OVERLOADED, "upstream overloaded")))
    client = _client(_sse_handler(data, []))
    messages: Any = [{"role": "user", "content": "hi"}]
    with (
        pytest.raises(anthropic.APIStatusError, match="upstream overloaded"),
        client.messages.stream(model="m", max_tokens=10, messages=messages) as stream,
    ):
        stream.get_final_message()


def test_json_object_output_becomes_an_object_schema() -> None:
    from cliproxy.model import ResponseFormat

    body = PROTOCOL.render_request(
        Request(
            model="m",
            messages=[Message("user", [TextPart("json please")])],
            response_format=ResponseFormat(type="json_object"),
        )
    )
    assert body["output_config"]["format"] == {"type": "json_schema", "schema": {"type": "object"}}
