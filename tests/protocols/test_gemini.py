"""Gemini protocol: wire ↔ canonical tables, streams, errors, and the google-genai SDK reading
what the encoder produces."""

from __future__ import annotations

import copy
from typing import Any

import httpx
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
from cliproxy.protocols.gemini import PROTOCOL, count_tokens_response, models_list
from cliproxy.protocols.gemini_request import DUMMY_SIGNATURE
from cliproxy.protocols.gemini_schema import to_gemini_schema, to_json_schema
from cliproxy.protocols.sse import SSEEvent, SSEParser

# --- schema dialect ------------------------------------------------------------------------------

SCHEMA_CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    (
        "drops unsupported keywords",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "x",
            "$comment": "c",
            "type": "object",
            "additionalProperties": False,
            "strict": True,
            "properties": {"a": {"type": "string", "examples": ["q"], "description": "A"}},
            "required": ["a"],
        },
        {
            "type": "object",
            "properties": {"a": {"type": "string", "description": "A"}},
            "required": ["a"],
        },
    ),
    (
        "type array with null becomes nullable",
        {"type": "object", "properties": {"a": {"type": ["string", "null"]}}},
        {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}},
    ),
    (
        "type array of two types becomes anyOf",
        {"type": ["string", "integer"]},
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    ),
    ("const becomes a one-value enum", {"const": "x"}, {"type": "string", "enum": ["x"]}),
    ("numeric enum is dropped", {"type": "integer", "enum": [1, 2]}, {"type": "integer"}),
    (
        "anyOf with null flattens",
        {"anyOf": [{"type": "number"}, {"type": "null"}]},
        {"type": "number", "nullable": True},
    ),
    (
        "oneOf becomes anyOf",
        {"oneOf": [{"type": "string"}, {"type": "boolean"}]},
        {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
    ),
    (
        "$ref is inlined from $defs, sibling description wins",
        {
            "type": "object",
            "$defs": {"P": {"type": "object", "properties": {"x": {"type": "number"}}}},
            "properties": {"p": {"$ref": "#/$defs/P", "description": "point"}},
        },
        {
            "type": "object",
            "properties": {
                "p": {
                    "type": "object",
                    "properties": {"x": {"type": "number"}},
                    "description": "point",
                }
            },
        },
    ),
    (
        "definitions work too and recursion is cut",
        {
            "definitions": {
                "N": {"type": "object", "properties": {"next": {"$ref": "#/definitions/N"}}}
            },
            "$ref": "#/definitions/N",
        },
        # Expanded until the depth limit, then a plain object.
        None,
    ),
    (
        "unsupported formats are removed, supported kept",
        {
            "type": "object",
            "properties": {
                "u": {"type": "string", "format": "uri"},
                "d": {"type": "string", "format": "date-time"},
                "i": {"type": "integer", "format": "int64"},
            },
        },
        {
            "type": "object",
            "properties": {
                "u": {"type": "string"},
                "d": {"type": "string", "format": "date-time"},
                "i": {"type": "integer", "format": "int64"},
            },
        },
    ),
    (
        "required names without a property are dropped",
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "zz"]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
    ),
    (
        "allOf members merge",
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
            ]
        },
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    ),
    (
        "arrays, nested, keeps min/max/default",
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "n": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 5,
                        "default": 2,
                        "exclusiveMinimum": 0,
                    }
                },
            },
            "minItems": 1,
            "uniqueItems": True,
        },
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 5, "default": 2}},
            },
            "minItems": 1,
        },
    ),
    ("empty properties are dropped", {"type": "object", "properties": {}}, {"type": "object"}),
]


@pytest.mark.parametrize(
    ("case", "schema", "expected"), SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES]
)
def test_to_gemini_schema(
    case: str, schema: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    original = copy.deepcopy(schema)
    cleaned = to_gemini_schema(schema)
    assert schema == original  # pure
    if expected is not None:
        assert cleaned == expected
    else:
        depth = 0
        node = cleaned
        while "properties" in node:
            node = node["properties"]["next"]
            depth += 1
        assert 3 < depth < 20 and node == {"type": "object"}
    assert "$ref" not in orjson.dumps(cleaned).decode()


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {
                "type": "OBJECT",
                "properties": {
                    "a": {"type": "STRING", "nullable": True, "format": "enum", "enum": ["x"]}
                },
                "propertyOrdering": ["a"],
            },
            {"type": "object", "properties": {"a": {"type": ["string", "null"], "enum": ["x"]}}},
        ),
        (
            {"type": "ARRAY", "items": {"type": "INTEGER"}},
            {"type": "array", "items": {"type": "integer"}},
        ),
        (
            {"anyOf": [{"type": "STRING"}], "nullable": True},
            {"anyOf": [{"type": "string"}, {"type": "null"}]},
        ),
        ("not a schema", {}),
    ],
)
def test_to_json_schema(schema: Any, expected: dict[str, Any]) -> None:
    assert to_json_schema(schema) == expected


# --- requests ------------------------------------------------------------------------------------

ROUTER_REQUEST: dict[str, Any] = {
    "contents": [{"role": "user", "parts": [{"text": "classify: say hi"}]}],
    "systemInstruction": {"parts": [{"text": "You are a router."}]},
    "generationConfig": {
        "temperature": 0,
        "maxOutputTokens": 1024,
        "responseMimeType": "application/json",
        "responseJsonSchema": {
            "type": "object",
            "properties": {
                "complexity_reasoning": {"type": "string"},
                "complexity_score": {"type": "integer", "minimum": 1, "maximum": 100},
            },
            "required": ["complexity_reasoning", "complexity_score"],
        },
        "thinkingConfig": {"thinkingBudget": 512},
    },
}

CLI_TOOL_ROUND_TRIP: dict[str, Any] = {
    "contents": [
        {"role": "user", "parts": [{"text": "read hello.txt"}]},
        {
            "role": "model",
            "parts": [
                {"text": "I should read it.", "thought": True, "thoughtSignature": "sig-thought"},
                {
                    "functionCall": {
                        "id": "read_file_1_0",
                        "name": "read_file",
                        "args": {"path": "hello.txt"},
                    },
                    "thoughtSignature": "sig-call",
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "read_file_1_0",
                        "name": "read_file",
                        "response": {"output": "TOOL-FILE-OK\n"},
                    }
                }
            ],
        },
    ],
    "systemInstruction": {"role": "user", "parts": [{"text": "You are Gemini CLI."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "read_file",
                    "description": "Read a file",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"path": {"type": "string"}},
                        "required": ["path"],
                    },
                }
            ]
        },
        {"googleSearch": {}},
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["read_file"]}},
    "generationConfig": {
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "stopSequences": ["END"],
        "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH"},
        "responseModalities": ["TEXT"],
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    "cachedContent": "cachedContents/abc",
}


def test_parse_router_request() -> None:
    request = PROTOCOL.parse_request(copy.deepcopy(ROUTER_REQUEST))
    assert request.model == ""
    assert request.system_text() == "You are a router."
    assert request.messages == [Message("user", [TextPart("classify: say hi")])]
    assert request.temperature == 0 and request.max_tokens == 1024
    assert request.response_format == ResponseFormat(
        "json_schema", schema=ROUTER_REQUEST["generationConfig"]["responseJsonSchema"]
    )
    assert request.reasoning == Reasoning(budget=512, enabled=True)
    assert request.extras == {}


def test_parse_cli_tool_round_trip() -> None:
    request = PROTOCOL.parse_request(copy.deepcopy(CLI_TOOL_ROUND_TRIP))
    assert request.messages[1] == Message(
        "assistant",
        [
            ReasoningPart(text="I should read it.", signature="sig-thought", issuer="gemini"),
            ToolCallPart(
                "read_file_1_0", "read_file", '{"path":"hello.txt"}', signature="sig-call"
            ),
        ],
    )
    assert request.messages[2].content == [
        ToolResultPart("read_file_1_0", [TextPart("TOOL-FILE-OK\n")], name="read_file")
    ]
    assert request.tools[0].parameters["required"] == ["path"]
    assert request.tools[1] == Tool(name="googleSearch", builtin={"googleSearch": {}})
    assert request.tool_choice == ToolChoice("tool", "read_file")
    assert (request.top_k, request.top_p, request.stop) == (64, 0.95, ["END"])
    assert request.reasoning == Reasoning(effort="high", enabled=True, include_thoughts=True)
    assert request.extras["gemini"] == {
        "generationConfig": {"responseModalities": ["TEXT"]},
        "safetySettings": CLI_TOOL_ROUND_TRIP["safetySettings"],
        "cachedContent": "cachedContents/abc",
    }


@pytest.mark.parametrize(
    "body",
    [
        ROUTER_REQUEST,
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "describe"},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                    ],
                },
                {"role": "model", "parts": [{"text": "a cat", "thoughtSignature": "s1"}]},
                {
                    "role": "user",
                    "parts": [
                        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/f.pdf"}},
                        {"inlineData": {"mimeType": "application/pdf", "data": "JVBER"}},
                    ],
                },
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "f",
                            "parameters": {
                                "type": "object",
                                "properties": {"q": {"type": "string"}},
                            },
                        }
                    ]
                }
            ],
        },
        {
            "contents": [{"role": "user", "parts": [{"text": "json please"}]}],
            "generationConfig": {
                "responseMimeType": "application/json",
                "seed": 7,
                "presencePenalty": 0.5,
                "frequencyPenalty": 0.25,
            },
            "labels": {"team": "a"},
        },
        {
            "contents": [{"role": "user", "parts": [{"text": "enum"}]}],
            "generationConfig": {
                "responseMimeType": "text/x.enum",
                "responseSchema": {"type": "STRING", "enum": ["a", "b"]},
            },
            "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}},
        },
    ],
    ids=["router", "media-and-signature", "json-object-and-labels", "enum-mime-validated"],
)
def test_request_round_trip_is_lossless(body: dict[str, Any]) -> None:
    assert PROTOCOL.render_request(PROTOCOL.parse_request(copy.deepcopy(body))) == body


def test_cli_request_round_trip() -> None:
    rendered = PROTOCOL.render_request(PROTOCOL.parse_request(copy.deepcopy(CLI_TOOL_ROUND_TRIP)))
    expected = copy.deepcopy(CLI_TOOL_ROUND_TRIP)
    # Rendering always writes the cleaned `parameters` dialect and no role on systemInstruction.
    declaration = expected["tools"][0]["functionDeclarations"][0]
    declaration["parameters"] = declaration.pop("parametersJsonSchema")
    del expected["systemInstruction"]["role"]
    assert rendered == expected


def test_snake_case_fields_are_accepted() -> None:
    request = PROTOCOL.parse_request(
        {
            "contents": [
                {"parts": [{"inline_data": {"mime_type": "image/jpeg", "data": "AA"}}]},
                {
                    "role": "model",
                    "parts": [
                        {"function_call": {"name": "f", "args": {}}, "thought_signature": "c2ln"}
                    ],
                },
            ],
            "system_instruction": "be brief",
            "generation_config": {
                "max_output_tokens": 5,
                "thinking_config": {"thinking_budget": 0},
            },
            "tool_config": {"function_calling_config": {"mode": "ANY"}},
            "tools": [{"function_declarations": [{"name": "f"}]}],
        }
    )
    assert request.messages[0] == Message("user", [ImagePart(media_type="image/jpeg", data="AA")])
    assert request.messages[1].content == [ToolCallPart("call_f_0", "f", "{}", signature="c2ln")]
    assert request.system_text() == "be brief"
    assert request.max_tokens == 5
    assert request.reasoning == Reasoning(enabled=False)
    assert request.tool_choice == ToolChoice("required")
    assert request.tools == [Tool(name="f")]
    assert request.extras == {}


def test_missing_call_ids_are_synthesised_and_matched_by_name() -> None:
    request = PROTOCOL.parse_request(
        {
            "contents": [
                {"role": "user", "parts": [{"text": "go"}]},
                {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "ls", "args": {"d": "a"}}},
                        {"functionCall": {"name": "ls", "args": {"d": "b"}}},
                        {"functionCall": {"name": "cat", "args": {}}},
                    ],
                },
                {
                    "role": "function",
                    "parts": [
                        {"functionResponse": {"name": "cat", "response": {"error": "no file"}}},
                        {"functionResponse": {"name": "ls", "response": {"files": ["x"]}}},
                        {"functionResponse": {"name": "ls", "response": {"output": "y"}}},
                    ],
                },
            ]
        }
    )
    calls = request.messages[1].content
    results = request.messages[2].content
    assert [c.id for c in calls if isinstance(c, ToolCallPart)] == [
        "call_ls_0",
        "call_ls_1",
        "call_cat_2",
    ]
    assert results == [
        ToolResultPart("call_cat_2", [TextPart("no file")], name="cat", is_error=True),
        ToolResultPart("call_ls_0", [TextPart('{"files":["x"]}')], name="ls"),
        ToolResultPart("call_ls_1", [TextPart("y")], name="ls"),
    ]
    # Rendered back: ids included, responses are objects again.
    rendered = PROTOCOL.render_request(request)["contents"][2]["parts"]
    assert rendered == [
        {"functionResponse": {"name": "cat", "response": {"error": "no file"}, "id": "call_cat_2"}},
        {"functionResponse": {"name": "ls", "response": {"files": ["x"]}, "id": "call_ls_0"}},
        {"functionResponse": {"name": "ls", "response": {"output": "y"}, "id": "call_ls_1"}},
    ]


def test_render_canonical_request_from_another_protocol() -> None:
    request = Request(
        model="gemini-3.1-pro-preview",
        system=[TextPart("sys")],
        messages=[
            Message("user", [TextPart("hi")]),
            Message("user", [TextPart("again"), ImagePart(url="data:image/jpeg;base64,AAAA")]),
            Message(
                "assistant",
                [
                    ReasoningPart(text="hidden", signature="anthropic-sig", issuer="anthropic"),
                    TextPart("calling"),
                    ToolCallPart("toolu_1", "get_weather", '{"city": "Paris"}'),
                ],
            ),
            Message("user", [ToolResultPart("toolu_1", [TextPart("sunny")])]),
            Message("system", [TextPart("be terse")]),
            Message(
                "user", [ToolResultPart("toolu_x", [TextPart("boom")], name="other", is_error=True)]
            ),
        ],
        tools=[
            Tool(
                "get_weather",
                "Weather",
                {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"city": {"type": ["string", "null"], "const": "Paris"}},
                    "additionalProperties": False,
                },
                strict=True,
            ),
            Tool("no_args", "", {"type": "object", "properties": {}}),
            Tool("web_search", builtin={"type": "web_search_20250305", "name": "web_search"}),
            Tool("bash", builtin={"type": "bash_20250124"}),
        ],
        tool_choice=ToolChoice("auto"),
        max_tokens=100,
        stop=["x"],
        reasoning=Reasoning(effort="medium", include_thoughts=True),
        response_format=ResponseFormat("json_object"),
        metadata={"user_id": "u"},
    )
    body = PROTOCOL.render_request(request)
    assert "model" not in body
    assert body["systemInstruction"] == {"parts": [{"text": "sys"}]}
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "hi"},
                {"text": "again"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {"text": "calling"},
                {
                    "functionCall": {
                        "name": "get_weather",
                        "args": {"city": "Paris"},
                        "id": "toolu_1",
                    },
                    "thoughtSignature": DUMMY_SIGNATURE,
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"output": "sunny"},
                        "id": "toolu_1",
                    }
                },
                {"text": "be terse"},
                # toolu_x answers no call in this history: sent as text, not an orphan
                # functionResponse the API would refuse.
                {"text": "[tool error for call toolu_x (other)]\nboom"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "enum": ["Paris"], "nullable": True}
                        },
                    },
                },
                {"name": "no_args"},
            ]
        },
        {"googleSearch": {}},
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["generationConfig"] == {
        "maxOutputTokens": 100,
        "stopSequences": ["x"],
        "responseMimeType": "application/json",
        "thinkingConfig": {"thinkingLevel": "MEDIUM", "includeThoughts": True},
    }


@pytest.mark.parametrize(
    ("model", "reasoning", "expected"),
    [
        ("gemini-2.5-flash", Reasoning(effort="low"), {"thinkingBudget": 1024}),
        ("gemini-2.5-pro", Reasoning(effort="none"), {"thinkingBudget": 128}),
        ("gemini-2.5-flash", Reasoning(enabled=False), {"thinkingBudget": 0}),
        ("gemini-2.5-flash", Reasoning(enabled=True), {"thinkingBudget": -1}),
        ("gemini-3-flash-preview", Reasoning(effort="minimal"), {"thinkingLevel": "MINIMAL"}),
        ("gemini-3-pro-preview", Reasoning(effort="xhigh"), {"thinkingLevel": "HIGH"}),
        ("gemini-3-pro-preview", Reasoning(budget=2000), {"thinkingBudget": 2000}),
        (
            "",
            Reasoning(effort="high", include_thoughts=False),
            {"thinkingLevel": "HIGH", "includeThoughts": False},
        ),
    ],
)
def test_reasoning_rendering_depends_on_model(
    model: str, reasoning: Reasoning, expected: dict[str, Any]
) -> None:
    request = Request(model=model, messages=[Message("user", [TextPart("q")])], reasoning=reasoning)
    assert PROTOCOL.render_request(request)["generationConfig"]["thinkingConfig"] == expected


def test_signature_only_reasoning_moves_onto_following_part() -> None:
    request = Request(
        model="",
        messages=[
            Message("user", [TextPart("q")]),
            Message(
                "assistant",
                [ReasoningPart(signature="c2ln", issuer="gemini"), ToolCallPart("c1", "f", "{}")],
            ),
            Message("user", [ToolResultPart("c1", [TextPart("r")])]),
            Message(
                "assistant", [TextPart("done"), ReasoningPart(signature="dGV4dA", issuer="gemini")]
            ),
        ],
    )
    contents = PROTOCOL.render_request(request)["contents"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "f", "args": {}, "id": "c1"}, "thoughtSignature": "c2ln"}
    ]
    assert contents[3]["parts"] == [{"text": "done", "thoughtSignature": "dGV4dA"}]


BAD_REQUESTS: list[tuple[Any, str]] = [
    ([], "body"),
    ({}, "contents"),
    ({"contents": {}}, "contents"),
    ({"contents": ["x"]}, "contents[0]"),
    ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role"),
    ({"contents": [{"parts": {"text": "x"}}]}, "contents[0].parts"),
    ({"contents": [{"parts": [{"text": 3}]}]}, "contents[0].parts[0].text"),
    ({"contents": [{"parts": [{"weird": 1}]}]}, "contents[0].parts[0]"),
    (
        {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png"}}]}]},
        "contents[0].parts[0].inlineData.data",
    ),
    (
        {"contents": [{"parts": [{"functionCall": {"args": {}}}]}]},
        "contents[0].parts[0].functionCall.name",
    ),
    (
        {"contents": [{"parts": [{"functionCall": {"name": "f", "args": [1]}}]}]},
        "contents[0].parts[0].functionCall.args",
    ),
    (
        {"contents": [{"parts": [{"functionResponse": {"name": "f", "response": "x"}}]}]},
        "contents[0].parts[0].functionResponse.response",
    ),
    (
        {"contents": [], "generationConfig": {"candidateCount": 2}},
        "generationConfig.candidateCount",
    ),
    ({"contents": [], "generationConfig": {"temperature": "hot"}}, "generationConfig.temperature"),
    (
        {"contents": [], "generationConfig": {"maxOutputTokens": 1.5}},
        "generationConfig.maxOutputTokens",
    ),
    (
        {"contents": [], "generationConfig": {"stopSequences": "x"}},
        "generationConfig.stopSequences",
    ),
    (
        {"contents": [], "generationConfig": {"thinkingConfig": {"includeThoughts": "yes"}}},
        "generationConfig.thinkingConfig.includeThoughts",
    ),
    ({"contents": [], "tools": {}}, "tools"),
    (
        {"contents": [], "tools": [{"functionDeclarations": [{"description": "d"}]}]},
        "tools[0].functionDeclarations[0].name",
    ),
    (
        {"contents": [], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
        "toolConfig.functionCallingConfig.mode",
    ),
    (
        {
            "contents": [],
            "systemInstruction": {"parts": [{"inlineData": {"mimeType": "a/b", "data": ""}}]},
        },
        "systemInstruction.parts",
    ),
]


@pytest.mark.parametrize(("body", "path"), BAD_REQUESTS, ids=[p for _, p in BAD_REQUESTS])
def test_bad_request_is_invalid_with_path(body: Any, path: str) -> None:
    with pytest.raises(ProxyError) as caught:
        PROTOCOL.parse_request(body)
    assert caught.value.kind is ErrorKind.INVALID_REQUEST
    assert caught.value.message.startswith(path + ":")


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (Message("user", [FilePart(file_id="")]), "neither data nor a URL"),
    ],
)
def test_unrenderable_canonical_request_is_invalid(message: Message, text: str) -> None:
    with pytest.raises(ProxyError) as caught:
        PROTOCOL.render_request(Request(model="", messages=[message]))
    assert caught.value.kind is ErrorKind.INVALID_REQUEST and text in caught.value.message


def test_odd_tool_history_renders_instead_of_failing() -> None:
    """Arguments that are not a JSON object and results without their call are kept in a form
    Gemini accepts, rather than refused."""
    body = PROTOCOL.render_request(
        Request(
            model="",
            messages=[
                Message("user", [TextPart("go")]),
                Message("assistant", [ToolCallPart("c", "f", "{not json")]),
                Message("user", [ToolResultPart("c", [TextPart("ok")])]),
                Message("assistant", [ToolCallPart("d", "g", "[1]")]),
                Message("user", [ToolResultPart("ghost", [TextPart("r")])]),
            ],
        )
    )
    calls = [p["functionCall"] for c in body["contents"] for p in c["parts"] if "functionCall" in p]
    assert calls[0]["args"] == {"_raw": "{not json"} and calls[1]["args"] == {"_raw": "[1]"}
    texts = [p.get("text", "") for c in body["contents"] for p in c["parts"]]
    assert any("ghost" in text and "r" in text for text in texts)


def test_count_tokens_request_and_helpers() -> None:
    wrapped = {
        "generateContentRequest": {"model": "models/x", "contents": [{"parts": [{"text": "a"}]}]}
    }
    assert PROTOCOL.parse_count_tokens_request(wrapped).messages == [
        Message("user", [TextPart("a")])
    ]
    assert count_tokens_response(12) == {"totalTokens": 12}
    listing = models_list(["gemini-x"])
    assert listing["models"][0]["name"] == "models/gemini-x"
    assert listing["models"][0]["supportedGenerationMethods"] == [
        "generateContent",
        "streamGenerateContent",
        "countTokens",
    ]


# --- responses -----------------------------------------------------------------------------------

REPLY: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "thinking...", "thought": True},
                    {"text": "Hello", "thoughtSignature": "sig"},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 100,
        "candidatesTokenCount": 20,
        "totalTokenCount": 150,
        "cachedContentTokenCount": 40,
        "thoughtsTokenCount": 30,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "abc",
}


def test_parse_response() -> None:
    response = PROTOCOL.parse_response(copy.deepcopy(REPLY))
    assert response.id == "abc" and response.model == "gemini-2.5-flash"
    assert response.content == [
        ReasoningPart(text="thinking...", issuer="gemini"),
        ReasoningPart(signature="sig", issuer="gemini"),
        TextPart("Hello"),
    ]
    assert response.usage == Usage(
        input_tokens=100, output_tokens=50, cached_tokens=40, reasoning_tokens=30
    )
    assert response.finish_reason is FinishReason.STOP


def test_response_round_trip() -> None:
    assert PROTOCOL.render_response(PROTOCOL.parse_response(copy.deepcopy(REPLY))) == REPLY


def test_function_call_reply() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "ls", "args": {"d": "."}},
                            "thoughtSignature": "U0lH",
                        }
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
    }
    response = PROTOCOL.parse_response(body)
    assert response.finish_reason is FinishReason.TOOL_CALLS
    (call,) = response.content
    assert isinstance(call, ToolCallPart)
    assert (
        call.id.startswith("call_ls_")
        and call.arguments == '{"d":"."}'
        and call.signature == "U0lH"
    )
    rendered = PROTOCOL.render_response(response)
    assert rendered["candidates"][0]["content"]["parts"] == [
        {
            "functionCall": {"name": "ls", "args": {"d": "."}, "id": call.id},
            "thoughtSignature": "U0lH",
        }
    ]
    assert rendered["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize(
    ("wire", "canonical", "back"),
    [
        ("STOP", FinishReason.STOP, "STOP"),
        ("MAX_TOKENS", FinishReason.LENGTH, "MAX_TOKENS"),
        ("SAFETY", FinishReason.CONTENT_FILTER, "SAFETY"),
        ("RECITATION", FinishReason.CONTENT_FILTER, "SAFETY"),
        ("PROHIBITED_CONTENT", FinishReason.CONTENT_FILTER, "SAFETY"),
        ("SPII", FinishReason.CONTENT_FILTER, "SAFETY"),
        ("BLOCKLIST", FinishReason.CONTENT_FILTER, "SAFETY"),
        ("MALFORMED_FUNCTION_CALL", FinishReason.ERROR, "OTHER"),
        ("OTHER", FinishReason.STOP, "STOP"),
        (None, FinishReason.STOP, "STOP"),
    ],
)
def test_finish_reasons(wire: str | None, canonical: FinishReason, back: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": wire}]}
    response = PROTOCOL.parse_response(body)
    assert response.finish_reason is canonical
    assert PROTOCOL.render_response(response)["candidates"][0]["finishReason"] == back


def test_blocked_prompt_is_a_filtered_reply() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 7}}
    response = PROTOCOL.parse_response(body)
    assert response.finish_reason is FinishReason.CONTENT_FILTER
    assert response.content == [] and response.usage.input_tokens == 7


@pytest.mark.parametrize(
    "body", [{}, {"candidates": []}, [], {"candidates": [{"content": {"parts": [{"text": 1}]}}]}]
)
def test_unusable_reply_is_upstream_error(body: Any) -> None:
    with pytest.raises(ProxyError) as caught:
        PROTOCOL.parse_response(body)
    assert caught.value.kind is ErrorKind.UPSTREAM


def test_render_response_from_canonical() -> None:
    response = Response(
        id="chatcmpl-1",
        model="gpt-x",
        content=[TextPart("hi"), ToolCallPart("call_9", "f", '{"a":1}')],
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(input_tokens=10, output_tokens=4),
    )
    assert PROTOCOL.render_response(response) == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "hi"},
                        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "call_9"}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4, "totalTokenCount": 14},
        "modelVersion": "gpt-x",
        "responseId": "chatcmpl-1",
    }


# --- stream decoding -----------------------------------------------------------------------------


def _decode(frames: list[dict[str, Any] | str], close: bool = True) -> list[StreamEvent]:
    decoder = PROTOCOL.stream_decoder()
    events: list[StreamEvent] = []
    for item in frames:
        data = item if isinstance(item, str) else orjson.dumps(item).decode()
        events.extend(decoder.feed(SSEEvent(None, data)))
    if close:
        events.extend(decoder.close())
    return events


def _chunk(
    parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": "gemini-2.5-pro",
        "responseId": "r1",
    }
    if usage:
        chunk["usageMetadata"] = usage
    return chunk


def test_decode_text_reasoning_and_calls() -> None:
    events = _decode(
        [
            _chunk([{"text": "Let me", "thought": True}], usage={"promptTokenCount": 9}),
            _chunk([{"text": " think", "thought": True}]),
            _chunk([{"text": "Hel", "thoughtSignature": "sig"}]),
            _chunk([{"text": "lo"}]),
            _chunk(
                [
                    {
                        "functionCall": {"name": "f", "args": {"x": 1}, "id": "fc1"},
                        "thoughtSignature": "Y2FsbA",
                    }
                ]
            ),
            _chunk(
                [{"text": ""}],
                "STOP",
                {
                    "promptTokenCount": 9,
                    "candidatesTokenCount": 4,
                    "thoughtsTokenCount": 2,
                    "totalTokenCount": 15,
                },
            ),
        ]
    )
    assert events == [
        MessageStart("r1", "gemini-2.5-pro", Usage(input_tokens=9)),
        ReasoningStart(0, issuer="gemini"),
        ReasoningDelta(0, text="Let me"),
        ReasoningDelta(0, text=" think"),
        BlockEnd(0),
        ReasoningStart(1, issuer="gemini"),
        ReasoningDelta(1, signature="sig"),
        BlockEnd(1),
        TextStart(2),
        TextDelta(2, "Hel"),
        TextDelta(2, "lo"),
        BlockEnd(2),
        ToolCallStart(3, "fc1", "f", signature="Y2FsbA"),
        ToolArgsDelta(3, '{"x":1}'),
        BlockEnd(3),
        MessageEnd(
            FinishReason.TOOL_CALLS, Usage(input_tokens=9, output_tokens=6, reasoning_tokens=2)
        ),
    ]


def test_decode_single_chunk_with_finish_and_ignores_trailing_chunks() -> None:
    events = _decode([_chunk([{"text": "hi"}], "MAX_TOKENS"), _chunk([{"text": "late"}])])
    assert [type(e).__name__ for e in events] == [
        "MessageStart",
        "TextStart",
        "TextDelta",
        "BlockEnd",
        "MessageEnd",
    ]
    assert isinstance(events[-1], MessageEnd) and events[-1].finish_reason is FinishReason.LENGTH


def test_decode_blocked_prompt() -> None:
    events = _decode([{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}])
    assert (
        isinstance(events[-1], MessageEnd)
        and events[-1].finish_reason is FinishReason.CONTENT_FILTER
    )


@pytest.mark.parametrize(
    ("frames", "kind", "status", "text"),
    [
        ([_chunk([{"text": "partial"}])], ErrorKind.UPSTREAM, 502, "ended early"),
        ([], ErrorKind.UPSTREAM, 502, "ended early"),
        ([_chunk([{"text": "a"}]), "{not json"], ErrorKind.UPSTREAM, 502, "malformed JSON"),
        (
            [
                _chunk([{"text": "a"}]),
                {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
            ],
            ErrorKind.RATE_LIMIT,
            429,
            "quota",
        ),
        (
            [{"error": {"message": "down", "status": "UNAVAILABLE"}}],
            ErrorKind.OVERLOADED,
            503,
            "down",
        ),
    ],
)
def test_decode_failures_end_in_stream_error(
    frames: list[Any], kind: ErrorKind, status: int, text: str
) -> None:
    events = _decode(frames)
    last = events[-1]
    assert isinstance(last, StreamError)
    assert last.error.kind is kind and last.error.status == status and text in last.error.message
    assert not any(isinstance(e, MessageEnd) for e in events)
    started = {e.index for e in events if isinstance(e, TextStart)}
    ended = {e.index for e in events if isinstance(e, BlockEnd)}
    assert started == ended


# --- stream encoding -----------------------------------------------------------------------------


def _encode(events: list[StreamEvent], sse: bool = True, model: str = "gemini-x") -> bytes:
    encoder = PROTOCOL.stream_encoder(Request(model=model), sse=sse)
    return b"".join(encoder.feed(e) for e in events)


def _frames(data: bytes) -> list[dict[str, Any]]:
    parser = SSEParser()
    events = parser.feed(data) + parser.close()
    assert all(e.event is None for e in events)
    return [orjson.loads(e.data) for e in events]


SAMPLE_EVENTS: list[StreamEvent] = [
    MessageStart("r9", "upstream-model", Usage(input_tokens=12)),
    ReasoningStart(0),
    ReasoningDelta(0, text="hmm"),
    ReasoningDelta(0, signature="c2lnLWE"),
    BlockEnd(0),
    TextStart(1),
    TextDelta(1, "Hi"),
    TextDelta(1, " there"),
    BlockEnd(1),
    ToolCallStart(2, "toolu_7", "read_file"),
    ToolArgsDelta(2, '{"path"'),
    ToolArgsDelta(2, ': "a.txt"}'),
    BlockEnd(2),
    UsageUpdate(Usage(input_tokens=12, output_tokens=3)),
    MessageEnd(
        FinishReason.TOOL_CALLS, Usage(input_tokens=12, output_tokens=9, reasoning_tokens=2)
    ),
]


def test_encode_exact_frames() -> None:
    frames = _frames(_encode(SAMPLE_EVENTS))
    parts = [f["candidates"][0]["content"]["parts"] for f in frames]
    assert parts == [
        [{"text": "hmm", "thought": True}],
        [{"text": "Hi", "thoughtSignature": "c2lnLWE"}],
        [{"text": " there"}],
        [{"functionCall": {"name": "read_file", "args": {"path": "a.txt"}, "id": "toolu_7"}}],
        [{"text": ""}],
    ]
    assert all(f["modelVersion"] == "gemini-x" and f["responseId"] == "r9" for f in frames)
    assert [f["candidates"][0].get("finishReason") for f in frames] == [
        None,
        None,
        None,
        None,
        "STOP",
    ]
    assert "usageMetadata" not in frames[0]
    assert frames[-1]["usageMetadata"] == {
        "promptTokenCount": 12,
        "candidatesTokenCount": 7,
        "totalTokenCount": 21,
        "thoughtsTokenCount": 2,
    }


def test_encode_then_decode_gives_the_same_reply() -> None:
    original = collect(SAMPLE_EVENTS)
    parser = SSEParser()
    decoder = PROTOCOL.stream_decoder()
    events: list[StreamEvent] = []
    for sse_event in parser.feed(_encode(SAMPLE_EVENTS)):
        events.extend(decoder.feed(sse_event))
    events.extend(decoder.close())
    again = collect(events)
    assert again.text() == original.text() == "Hi there"
    assert [p for p in again.content if isinstance(p, ToolCallPart)] == [
        ToolCallPart("toolu_7", "read_file", '{"path":"a.txt"}')
    ]
    assert again.usage == original.usage
    assert again.finish_reason is FinishReason.TOOL_CALLS


def test_encode_json_array_mode() -> None:
    data = _encode(
        [
            MessageStart("r", "m"),
            TextStart(0),
            TextDelta(0, "a"),
            BlockEnd(0),
            MessageEnd(FinishReason.STOP),
        ],
        sse=False,
    )
    chunks = orjson.loads(data)
    assert isinstance(chunks, list) and len(chunks) == 2
    assert chunks[0]["candidates"][0]["content"]["parts"] == [{"text": "a"}]
    assert chunks[1]["candidates"][0]["finishReason"] == "STOP"
    error_only = orjson.loads(
        _encode([StreamError(ProxyError(ErrorKind.RATE_LIMIT, "slow down"))], sse=False)
    )
    assert error_only == [
        {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    ]


def test_encode_is_robust_to_missing_starts_and_open_blocks() -> None:
    frames = _frames(
        _encode(
            [
                TextDelta(0, "x"),
                ToolArgsDelta(1, '{"a": 2}'),
                MessageEnd(FinishReason.LENGTH, Usage(1, 1)),
                TextDelta(0, "ignored after the end"),
            ]
        )
    )
    parts = [f["candidates"][0]["content"]["parts"] for f in frames]
    assert parts == [
        [{"text": "x"}],
        [{"functionCall": {"name": "", "args": {"a": 2}}}],
        [{"text": ""}],
    ]
    assert frames[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert frames[0]["responseId"]  # generated when no MessageStart came


def test_encode_stream_error_is_an_error_chunk_not_an_end() -> None:
    error = ProxyError(ErrorKind.OVERLOADED, "overloaded", retry_after=2)
    frames = _frames(
        _encode([MessageStart("r", "m"), TextStart(0), TextDelta(0, "a"), StreamError(error)])
    )
    assert frames[-1] == {
        "error": {
            "code": 503,
            "message": "overloaded",
            "status": "UNAVAILABLE",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}],
        }
    }
    assert all("finishReason" not in f.get("candidates", [{}])[0] for f in frames)


def test_encode_bad_tool_arguments_become_error() -> None:
    frames = _frames(
        _encode(
            [
                ToolCallStart(0, "c", "f"),
                ToolArgsDelta(0, '{"a": '),
                BlockEnd(0),
                MessageEnd(FinishReason.TOOL_CALLS),
            ]
        )
    )
    assert len(frames) == 1 and frames[0]["error"]["code"] == 502


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status_name"),
    [
        (ErrorKind.INVALID_REQUEST, "INVALID_ARGUMENT"),
        (ErrorKind.AUTHENTICATION, "UNAUTHENTICATED"),
        (ErrorKind.PERMISSION, "PERMISSION_DENIED"),
        (ErrorKind.NOT_FOUND, "NOT_FOUND"),
        (ErrorKind.RATE_LIMIT, "RESOURCE_EXHAUSTED"),
        (ErrorKind.SERVER, "INTERNAL"),
        (ErrorKind.OVERLOADED, "UNAVAILABLE"),
        (ErrorKind.TIMEOUT, "DEADLINE_EXCEEDED"),
    ],
)
def test_render_error(kind: ErrorKind, status_name: str) -> None:
    error = ProxyError(kind, "msg")
    assert PROTOCOL.render_error(error) == {
        "error": {"code": error.status, "message": "msg", "status": status_name}
    }


@pytest.mark.parametrize(
    ("status", "body", "kind", "message", "retry"),
    [
        (
            429,
            {
                "error": {
                    "code": 429,
                    "message": "Quota exceeded",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"},
                    ],
                }
            },
            ErrorKind.RATE_LIMIT,
            "Quota exceeded",
            12.0,
        ),
        (
            429,
            [
                {
                    "error": {
                        "code": 429,
                        "message": "q",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                                "retryDelay": "1.5s",
                            }
                        ],
                    }
                }
            ],
            ErrorKind.RATE_LIMIT,
            "q",
            1.5,
        ),
        (
            400,
            {"error": {"code": 400, "message": "bad key", "status": "INVALID_ARGUMENT"}},
            ErrorKind.INVALID_REQUEST,
            "bad key",
            None,
        ),
        (503, b"Service Unavailable", ErrorKind.OVERLOADED, "Service Unavailable", None),
        (500, {"unexpected": True}, ErrorKind.SERVER, "upstream HTTP 500", None),
    ],
)
def test_parse_error(
    status: int, body: Any, kind: ErrorKind, message: str, retry: float | None
) -> None:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    error = PROTOCOL.parse_error(status, raw)
    assert (error.kind, error.status, error.message, error.retry_after) == (
        kind,
        status,
        message,
        retry,
    )


def test_rendered_error_parses_back() -> None:
    original = ProxyError(ErrorKind.RATE_LIMIT, "slow", retry_after=1.5)
    parsed = PROTOCOL.parse_error(429, orjson.dumps(PROTOCOL.render_error(original)))
    assert (parsed.kind, parsed.message, parsed.retry_after) == (ErrorKind.RATE_LIMIT, "slow", 1.5)


# --- the google-genai SDK reading our output -----------------------------------------------------

genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import types as genai_types  # noqa: E402


def _sdk_client(handler: Any) -> Any:
    transport = httpx.MockTransport(handler)
    options = genai_types.HttpOptions(
        base_url="http://sim",
        httpx_client=httpx.Client(transport=transport),
        httpx_async_client=httpx.AsyncClient(transport=transport),
        retry_options=genai_types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key="x", http_options=options)


def _stream_handler(events: list[StreamEvent], seen: list[httpx.Request]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = _encode(events, model="gemini-sim")
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return handler


def test_sdk_streams_text_calls_usage_and_finish_reason() -> None:
    seen: list[httpx.Request] = []
    client = _sdk_client(_stream_handler(SAMPLE_EVENTS, seen))
    chunks = list(client.models.generate_content_stream(model="gemini-sim", contents="hi"))
    assert seen[0].url.path.endswith("/models/gemini-sim:streamGenerateContent")
    assert (
        "".join(
            c.text or "" for c in chunks if c.candidates[0].content.parts[0].function_call is None
        )
        == "Hi there"
    )
    calls = [call for c in chunks for call in (c.function_calls or [])]
    assert [(c.name, c.args, c.id) for c in calls] == [("read_file", {"path": "a.txt"}, "toolu_7")]
    last = chunks[-1]
    assert last.candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert last.usage_metadata.prompt_token_count == 12
    assert last.usage_metadata.candidates_token_count == 7
    assert last.usage_metadata.thoughts_token_count == 2
    assert last.usage_metadata.total_token_count == 21


async def test_sdk_async_stream() -> None:
    client = _sdk_client(_stream_handler(SAMPLE_EVENTS, []))
    text = ""
    finish = None
    async for chunk in await client.aio.models.generate_content_stream(
        model="gemini-sim", contents="hi"
    ):
        if (
            chunk.candidates[0].content.parts[0].text
            and not chunk.candidates[0].content.parts[0].thought
        ):
            text += chunk.candidates[0].content.parts[0].text
        finish = chunk.candidates[0].finish_reason or finish
    assert text == "Hi there" and finish == genai_types.FinishReason.STOP


def test_sdk_raises_on_error_mid_stream() -> None:
    events: list[StreamEvent] = [
        MessageStart("r", "m"),
        TextStart(0),
        TextDelta(0, "partial"),
        StreamError(ProxyError(ErrorKind.RATE_LIMIT, "quota gone", retry_after=3)),
    ]
    client = _sdk_client(_stream_handler(events, []))
    received: list[str] = []
    with pytest.raises(genai_errors.ClientError) as caught:
        for chunk in client.models.generate_content_stream(model="gemini-sim", contents="hi"):
            received.append(chunk.text or "")
    assert received == ["partial"]
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.message == "quota gone"


def test_sdk_raises_server_error_mid_stream() -> None:
    events: list[StreamEvent] = [
        StreamError(ProxyError(ErrorKind.UPSTREAM, "upstream stream ended early"))
    ]
    client = _sdk_client(_stream_handler(events, []))
    with pytest.raises(genai_errors.ServerError) as caught:
        list(client.models.generate_content_stream(model="gemini-sim", contents="hi"))
    assert caught.value.code == 502


def test_sdk_non_streaming_reply_function_calls_and_errors() -> None:
    response = Response(
        id="resp-1",
        model="gemini-sim",
        content=[TextPart("Paris"), ToolCallPart("c1", "lookup", '{"q":"x"}')],
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(input_tokens=5, output_tokens=3),
    )

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith(":countTokens"):
            return httpx.Response(200, json=count_tokens_response(42))
        if request.method == "GET":
            return httpx.Response(200, json=models_list(["gemini-a", "gemini-b"]))
        if "bad" in path:
            error = ProxyError(ErrorKind.NOT_FOUND, "no such model")
            return httpx.Response(404, json=PROTOCOL.render_error(error))
        # The SDK's own request body parses as a canonical request.
        parsed = PROTOCOL.parse_request(orjson.loads(request.content))
        assert parsed.messages[0].text() == "capital?"
        assert parsed.system_text() == "be brief"
        return httpx.Response(200, json=PROTOCOL.render_response(response))

    client = _sdk_client(handler)
    reply = client.models.generate_content(
        model="gemini-sim",
        contents="capital?",
        config=genai_types.GenerateContentConfig(system_instruction="be brief", temperature=0.1),
    )
    assert reply.candidates[0].content.parts[0].text == "Paris"
    assert reply.function_calls[0].name == "lookup" and reply.function_calls[0].args == {"q": "x"}
    assert reply.candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert (
        reply.usage_metadata.prompt_token_count == 5 and reply.usage_metadata.total_token_count == 8
    )
    assert client.models.count_tokens(model="gemini-sim", contents="x").total_tokens == 42
    models = list(client.models.list())
    assert [m.name for m in models] == ["models/gemini-a", "models/gemini-b"]
    assert models[0].supported_actions == [
        "generateContent",
        "streamGenerateContent",
        "countTokens",
    ]
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="bad", contents="x")
    assert caught.value.code == 404 and caught.value.message == "no such model"


def test_sdk_request_with_tools_parses() -> None:
    captured: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(orjson.loads(request.content))
        return httpx.Response(
            200,
            json=PROTOCOL.render_response(Response(id="r", model="m", content=[TextPart("ok")])),
        )

    def get_weather(city: str, days: int | None = None) -> str:
        """Weather for a city."""
        return "sunny"

    client = _sdk_client(handler)
    client.models.generate_content(
        model="gemini-sim",
        contents="weather?",
        config=genai_types.GenerateContentConfig(
            tools=[get_weather],
            automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
            thinking_config=genai_types.ThinkingConfig(thinking_budget=1024, include_thoughts=True),
            response_mime_type="application/json",
            response_schema={"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
        ),
    )
    request = PROTOCOL.parse_request(captured[0])
    (tool,) = request.tools
    assert tool.name == "get_weather" and tool.parameters["properties"]["city"]["type"] == "string"
    assert request.reasoning == Reasoning(budget=1024, enabled=True, include_thoughts=True)
    assert request.response_format is not None and request.response_format.type == "json_schema"
    assert request.response_format.schema == {
        "type": "object",
        "properties": {"a": {"type": "string"}},
    }


def test_replayed_response_events_encode_for_the_sdk() -> None:
    reply = Response(id="x", model="m", content=[TextPart("abcdefgh")], usage=Usage(3, 4))
    client = _sdk_client(_stream_handler(list(response_events(reply, chunk_size=3)), []))
    chunks = list(client.models.generate_content_stream(model="gemini-sim", contents="hi"))
    assert "".join(c.text or "" for c in chunks) == "abcdefgh"
    assert chunks[-1].usage_metadata.candidates_token_count == 4


@pytest.mark.parametrize(
    ("signature", "kept"),
    [
        ("c2lnLWE=", True),
        ("ab-_", True),
        (DUMMY_SIGNATURE, True),
        ("sig-a", False),
        ("a b", False),
        ("", False),
    ],
)
def test_signatures_that_are_not_base64_are_not_sent(signature: str, kept: bool) -> None:
    frames = _frames(
        _encode(
            [
                ReasoningStart(0),
                ReasoningDelta(0, text="t", signature=signature),
                BlockEnd(0),
                ToolCallStart(1, "c1", "f", signature=signature),
                BlockEnd(1),
                MessageEnd(FinishReason.TOOL_CALLS),
            ]
        )
    )
    parts = [part for f in frames for part in f["candidates"][0]["content"]["parts"]]
    assert any("thoughtSignature" in part for part in parts) is kept
    response = Response(
        id="r", model="m", content=[ToolCallPart("c1", "f", "{}", signature=signature)]
    )
    rendered = PROTOCOL.render_response(response)["candidates"][0]["content"]["parts"][0]
    assert ("thoughtSignature" in rendered) is kept
