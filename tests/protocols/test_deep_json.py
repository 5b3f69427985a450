"""JSON that nests too deep inside a translation: a clear 400 for the client's, the upstream's
error (502 or an error event) for an upstream's, never an exception that ends as a 500.

The parse-time limit (model/json_limits.py) bounds the client's body; these are the values
parsed later (tool-call arguments carried as text, upstream replies and stream events) and the
one place a translation makes JSON deeper than it was (inlining a schema's $ref definitions).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cliproxy.model import (
    MAX_JSON_DEPTH,
    BlockEnd,
    ErrorKind,
    Message,
    MessageStart,
    ProxyError,
    Request,
    Response,
    StreamError,
    TextPart,
    Tool,
    ToolArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
)
from cliproxy.model.json_limits import MAX_UPSTREAM_JSON_DEPTH
from cliproxy.protocols.gemini_schema import to_gemini_schema
from cliproxy.protocols.registry import (
    ANTHROPIC,
    GEMINI,
    OPENAI_CHAT,
    OPENAI_COMPLETIONS,
    OPENAI_RESPONSES,
)
from cliproxy.protocols.sse import SSEEvent

LIMIT_WORDS = f"more than {MAX_JSON_DEPTH} levels"


def deep_object_text(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def history_with_arguments(arguments: str) -> Request:
    return Request(
        model="m",
        messages=[
            Message("user", [TextPart("use it")]),
            Message("assistant", [ToolCallPart("call_1", "f", arguments)]),
            Message("user", [ToolResultPart("call_1", [TextPart("ok")], name="f")]),
        ],
    )


@pytest.mark.parametrize("protocol", [ANTHROPIC, GEMINI], ids=["anthropic", "gemini"])
def test_a_clients_tool_arguments_nested_too_deep_are_a_400(protocol: Any) -> None:
    # OpenAI clients carry arguments as text; these protocols need them as an object.
    fits = protocol.render_request(history_with_arguments(deep_object_text(MAX_JSON_DEPTH)))
    orjson.dumps(fits)
    for levels in (MAX_JSON_DEPTH + 1, 300, 5000):
        with pytest.raises(ProxyError) as refused:
            protocol.render_request(history_with_arguments(deep_object_text(levels)))
        assert refused.value.status == 400 and LIMIT_WORDS in refused.value.message


@pytest.mark.parametrize("protocol", [ANTHROPIC, GEMINI], ids=["anthropic", "gemini"])
def test_an_upstreams_tool_arguments_nested_too_deep_are_its_502(protocol: Any) -> None:
    reply = Response(id="r", model="m", content=[ToolCallPart("c", "f", deep_object_text(300))])
    with pytest.raises(ProxyError) as refused:
        protocol.render_response(reply)
    assert refused.value.kind is ErrorKind.UPSTREAM and refused.value.status == 502


def test_gemini_stream_encoder_ends_with_an_error_for_arguments_nested_too_deep() -> None:
    encoder = GEMINI.stream_encoder(Request(model="m", stream=True))
    out = encoder.feed(MessageStart(id="r", model="m"))
    out += encoder.feed(ToolCallStart(0, id="c", name="f"))
    out += encoder.feed(ToolArgsDelta(0, deep_object_text(300)))
    out += encoder.feed(BlockEnd(0))
    assert b'"error"' in out and LIMIT_WORDS.encode() in out


def test_a_tool_result_nested_too_deep_for_an_object_goes_to_gemini_as_text() -> None:
    deep = deep_object_text(300)
    request = Request(
        model="m",
        messages=[
            Message("user", [TextPart("use it")]),
            Message("assistant", [ToolCallPart("call_1", "f", "{}")]),
            Message("user", [ToolResultPart("call_1", [TextPart(deep)], name="f")]),
        ],
    )
    body = GEMINI.render_request(request)
    orjson.dumps(body)
    assert deep in orjson.dumps(body).decode().replace('\\"', '"')


def deep_event(protocol: Any) -> str:
    """One stream event of ``protocol`` carrying a value nested past the upstream limit."""
    deep: Any = 1
    for _ in range(MAX_UPSTREAM_JSON_DEPTH + 10):
        deep = [deep]
    if protocol is ANTHROPIC:
        event = {"type": "message_start", "message": {"id": "m", "x": deep}}
    elif protocol is GEMINI:
        event = {"candidates": [{"content": {"parts": [{"text": "hi"}]}}], "x": deep}
    elif protocol is OPENAI_RESPONSES:
        event = {"type": "response.created", "response": {"id": "r", "x": deep}}
    else:
        event = {"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}}], "x": deep}
    return orjson.dumps(event).decode()


@pytest.mark.parametrize(
    "protocol",
    [ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES, OPENAI_COMPLETIONS],
    ids=["anthropic", "gemini", "chat", "responses", "completions"],
)
def test_an_upstream_stream_event_nested_too_deep_ends_the_stream_with_its_error(
    protocol: Any,
) -> None:
    events = protocol.stream_decoder().feed(SSEEvent(None, deep_event(protocol)))
    errors = [event.error for event in events if isinstance(event, StreamError)]
    assert errors and errors[0].kind is ErrorKind.UPSTREAM
    assert f"more than {MAX_UPSTREAM_JSON_DEPTH} levels" in errors[0].message


# ----- $ref inlining ----------------------------------------------------------------------------


def gemini_tools(schema: dict[str, Any]) -> list[Any]:
    request = Request(model="m", messages=[Message("user", [TextPart("hi")])])
    request.tools = [Tool(name="f", parameters=schema)]
    body = GEMINI.render_request(request)
    orjson.dumps(body)  # whatever comes out can be written
    return list(body.get("tools", []))


def test_a_schema_whose_refs_inline_past_the_limit_is_a_400_not_a_recursion_error() -> None:
    # Each definition is ~100 levels of items; eight hops of $ref would make ~800.
    def chain(target: str) -> dict[str, Any]:
        node: dict[str, Any] = {"$ref": f"#/$defs/{target}"}
        for _ in range(50):
            node = {"type": "array", "items": node}
        return node

    defs = {f"D{n}": chain(f"D{n + 1}") for n in range(10)}
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/D0"}}, "$defs": defs}
    with pytest.raises(ProxyError) as refused:
        to_gemini_schema(schema)
    assert refused.value.status == 400 and LIMIT_WORDS in refused.value.message


def test_a_deep_value_inlined_deep_is_a_400() -> None:
    deep: Any = 1
    for _ in range(120):
        deep = [deep]
    node: dict[str, Any] = {"$ref": "#/$defs/Leaf"}
    for _ in range(60):
        node = {"type": "array", "items": node}
    schema = {"type": "object", "properties": {"x": node}, "$defs": {"Leaf": {"default": deep}}}
    with pytest.raises(ProxyError, match=LIMIT_WORDS):
        gemini_tools(schema)


def test_references_that_fan_out_stop_being_inlined() -> None:
    # Ten definitions, each naming the next ten times: 10**8 nodes if all were inlined.
    defs = {
        f"D{n}": {
            "type": "object",
            "properties": {f"p{k}": {"$ref": f"#/$defs/D{n + 1}"} for k in range(10)},
        }
        for n in range(10)
    }
    defs["D10"] = {"type": "string"}
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/D0"}}, "$defs": defs}
    tools = gemini_tools(schema)
    assert len(orjson.dumps(tools)) < 5_000_000


def test_a_self_referencing_schema_still_inlines_a_few_levels() -> None:
    node = {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}
    schema = {**node, "$defs": {"Node": node}}
    cleaned = to_gemini_schema(schema)
    assert cleaned["properties"]["next"]["properties"]["next"]["type"] == "object"


@pytest.mark.parametrize(
    "protocol",
    [ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES],
    ids=["anthropic", "gemini", "chat", "responses"],
)
def test_an_upstream_error_body_nested_too_deep_is_reported_as_its_text(protocol: Any) -> None:
    # Its message, a value 1000 levels deep, would exhaust the recursion of str().
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    error = protocol.parse_error(429, f'{{"error": {{"message": {deep}}}}}'.encode())
    assert error.status == 429 and error.message.startswith('{"error"')


def test_a_code_assist_event_too_deep_to_write_is_left_for_the_decoder() -> None:
    from cliproxy.protocols.sse import SSEEvent
    from cliproxy.providers.gemini_cli import GeminiCLIProvider

    deep = '{"response": ' + '{"a": ' * 300 + "1" + "}" * 300 + "}"
    event = SSEEvent(None, deep)
    assert GeminiCLIProvider().unwrap_stream_event(event) is event
