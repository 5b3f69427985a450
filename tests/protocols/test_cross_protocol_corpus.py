"""Cross-protocol corpus: for every ordered pair (client C → upstream U), a client's wire request
goes through C.parse_request and U.render_request, and U's wire body is checked against the wire
facts of /work/shared/reference/protocols.md: tool definitions, tool_choice, call ids meeting their
results, images, structured output, system placement and role alternation, built-in tools, and
the named failure cases (a Responses function_call_output without its call, tool arguments that
are not a JSON object).

The assertions read U's body with small per-vendor readers (below), never with U.parse_request,
so a renderer bug cannot hide behind the matching parser bug.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.protocols.base import WireProtocol
from cliproxy.protocols.registry import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES
from tests.protocols.wire_readers import (
    JSON,
    assert_alternates,
    assert_calls_answered_next,
    assert_results_meet_calls,
    entries,
    maybe_json,
    read_choice,
    read_format,
    read_system,
    read_tools,
    read_turns,
)

PROTOCOLS: dict[str, WireProtocol] = {
    p.name: p for p in (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI)
}
NAMES = list(PROTOCOLS)
PAIRS = [(c, u) for c in NAMES for u in NAMES]

# A tool schema carrying keywords some upstreams refuse (Gemini: $schema, additionalProperties,
# strict-only extras); the renderers must clean them where needed and keep the meaning.
SCHEMA: JSON = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
    "additionalProperties": False,
}
GEMINI_REFUSED = ("$schema", "additionalProperties", "strict", "$ref", "$defs", "const")
ANSWER_SCHEMA: JSON = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
IMAGE_URL = "https://example.com/cat.png"


def translate(client: str, upstream: str, body: JSON) -> JSON:
    request = PROTOCOLS[client].parse_request(body)
    if not request.model:
        request.model = "m"  # Gemini carries the model in the URL
    return PROTOCOLS[upstream].render_request(request)


# ---------------------------------------------------------------------------------------------
# Client wire requests


def tool_def(client: str) -> JSON:
    description = "Current weather"
    if client == "openai_chat":
        function = {"name": "get_weather", "description": description, "parameters": SCHEMA}
        return {"type": "function", "function": {**function, "strict": True}}
    if client == "openai_responses":
        return {
            "type": "function",
            "name": "get_weather",
            "description": description,
            "parameters": SCHEMA,
            "strict": True,
        }
    if client == "anthropic":
        return {"name": "get_weather", "description": description, "input_schema": SCHEMA}
    return {
        "functionDeclarations": [
            {"name": "get_weather", "description": description, "parametersJsonSchema": SCHEMA}
        ]
    }


def with_tools(client: str, body: JSON) -> JSON:
    body["tools"] = [tool_def(client)]
    return body


def simple(client: str, prompt: str = "Hi") -> JSON:
    """A one-question request in the client's format."""
    if client == "openai_chat":
        return {"model": "m", "messages": [{"role": "user", "content": prompt}]}
    if client == "openai_responses":
        return {"model": "m", "input": prompt}
    if client == "anthropic":
        return {"model": "m", "max_tokens": 256, "messages": [{"role": "user", "content": prompt}]}
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


def agent_history(client: str, gemini_ids: bool = True) -> JSON:
    """System prompt, a question, an assistant turn with text and two parallel calls, both
    results (plain text and JSON), and a follow-up question, with the tool still offered."""
    args = [{"city": "Paris"}, {"city": "Rome"}]
    ids = ["call_1", "call_2"]
    results = ["18C", '{"temp": 21}']
    question, follow_up = "Weather in Paris and Rome?", "And tomorrow?"
    if client == "openai_chat":
        calls = [
            {
                "id": i,
                "type": "function",
                "function": {"name": "get_weather", "arguments": orjson.dumps(a).decode()},
            }
            for i, a in zip(ids, args, strict=True)
        ]
        messages: list[JSON] = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": question},
            {"role": "assistant", "content": "Checking.", "tool_calls": calls},
            *[
                {"role": "tool", "tool_call_id": i, "content": r}
                for i, r in zip(ids, results, strict=True)
            ],
            {"role": "user", "content": follow_up},
        ]
        return with_tools(client, {"model": "m", "messages": messages})
    if client == "openai_responses":
        items: list[JSON] = [
            {"role": "user", "content": [{"type": "input_text", "text": question}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Checking."}],
            },
            *[
                {
                    "type": "function_call",
                    "call_id": i,
                    "name": "get_weather",
                    "arguments": orjson.dumps(a).decode(),
                }
                for i, a in zip(ids, args, strict=True)
            ],
            *[
                {"type": "function_call_output", "call_id": i, "output": r}
                for i, r in zip(ids, results, strict=True)
            ],
            {"role": "user", "content": follow_up},
        ]
        return with_tools(client, {"model": "m", "instructions": "Be brief.", "input": items})
    if client == "anthropic":
        uses = [
            {"type": "tool_use", "id": f"toolu_{n}", "name": "get_weather", "input": a}
            for n, a in enumerate(args)
        ]
        answers = [
            {"type": "tool_result", "tool_use_id": "toolu_0", "content": results[0]},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": [{"type": "text", "text": results[1]}],
            },
        ]
        messages = [
            {"role": "user", "content": question},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, *uses]},
            {"role": "user", "content": [*answers, {"type": "text", "text": follow_up}]},
        ]
        system = [{"type": "text", "text": "Be brief."}]
        return with_tools(
            client, {"model": "m", "max_tokens": 256, "system": system, "messages": messages}
        )
    calls_wire = []
    responses = []
    for n, (a, r) in enumerate(zip(args, [{"output": "18C"}, {"temp": 21}], strict=True)):
        call: JSON = {"name": "get_weather", "args": a}
        response: JSON = {"name": "get_weather", "response": r}
        if gemini_ids:
            call["id"] = response["id"] = f"g{n}"
        calls_wire.append({"functionCall": call})
        responses.append({"functionResponse": response})
    contents = [
        {"role": "user", "parts": [{"text": question}]},
        {"role": "model", "parts": [{"text": "Checking."}, *calls_wire]},
        {"role": "user", "parts": responses},
        {"role": "user", "parts": [{"text": follow_up}]},
    ]
    return with_tools(
        client, {"systemInstruction": {"parts": [{"text": "Be brief."}]}, "contents": contents}
    )


# ---------------------------------------------------------------------------------------------
# 1. Tools: definitions, tool_choice, calls and results


@pytest.mark.parametrize(("client", "upstream"), PAIRS)
def test_tool_definition_survives_and_is_cleaned(client: str, upstream: str) -> None:
    body = translate(client, upstream, with_tools(client, simple(client)))
    tools = read_tools(upstream, body)
    assert list(tools) == ["get_weather"]
    description, params = tools["get_weather"]
    assert description == "Current weather"
    assert params["properties"]["city"]["type"].lower() == "string"
    assert params["required"] == ["city"]
    if upstream == "gemini" and "parameters" in body["tools"][0]["functionDeclarations"][0]:
        assert not any(k in orjson.dumps(params).decode() for k in GEMINI_REFUSED), params


CHOICES: dict[str, dict[str, Any]] = {
    "openai_chat": {
        "auto": "auto",
        "none": "none",
        "required": "required",
        "named": {"type": "function", "function": {"name": "get_weather"}},
    },
    "openai_responses": {
        "auto": "auto",
        "none": "none",
        "required": "required",
        "named": {"type": "function", "name": "get_weather"},
    },
    "anthropic": {
        "auto": {"type": "auto"},
        "none": {"type": "none"},
        "required": {"type": "any"},
        "named": {"type": "tool", "name": "get_weather"},
    },
    "gemini": {
        "auto": {"functionCallingConfig": {"mode": "AUTO"}},
        "none": {"functionCallingConfig": {"mode": "NONE"}},
        "required": {"functionCallingConfig": {"mode": "ANY"}},
        "named": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
        },
    },
}


@pytest.mark.parametrize("mode", ["auto", "none", "required", "named"])
@pytest.mark.parametrize(("client", "upstream"), PAIRS)
def test_tool_choice_modes(client: str, upstream: str, mode: str) -> None:
    body = with_tools(client, simple(client))
    body["toolConfig" if client == "gemini" else "tool_choice"] = CHOICES[client][mode]
    wire = translate(client, upstream, body)
    expected = ("tool", "get_weather") if mode == "named" else mode
    assert read_choice(upstream, wire) == expected


@pytest.mark.parametrize(("client", "upstream"), PAIRS)
def test_agent_history_calls_meet_results(client: str, upstream: str) -> None:
    wire = translate(client, upstream, agent_history(client))
    turns = read_turns(upstream, wire)
    calls = entries(turns, "call")
    assert [(c["name"], c["args"]) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert len({c["call"] for c in calls}) == 2  # two distinct ids
    results = assert_results_meet_calls(upstream, wire)
    if upstream != "openai_responses":
        assert_calls_answered_next(upstream, wire)
    assert [r["value"] for r in results] == ["18C", {"temp": 21}]
    # Each result answers its own call, in order (Paris → 18C, Rome → 21).
    if upstream != "gemini" or results[0]["result"] is not None:
        assert [r["result"] for r in results] == [c["call"] for c in calls]
    assert read_system(upstream, wire) == "Be brief."
    assert_alternates(upstream, wire)
    texts = [e["text"] for e in entries(turns, "text")]
    assert "Checking." in texts and texts[-1] == "And tomorrow?"


def test_gemini_results_without_ids_meet_their_calls_by_order() -> None:
    for upstream in NAMES:
        wire = translate("gemini", upstream, agent_history("gemini", gemini_ids=False))
        calls = entries(read_turns(upstream, wire), "call")
        results = assert_results_meet_calls(upstream, wire)
        assert [r["value"] for r in results] == ["18C", {"temp": 21}]
        if upstream != "gemini":
            assert [r["result"] for r in results] == [c["call"] for c in calls]


ERROR_RESULT = {
    "anthropic": lambda: {
        "model": "m",
        "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": "boom",
                        "is_error": True,
                    }
                ],
            },
        ],
    },
    "gemini": lambda: {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"error": "boom"}}}
                ],
            },
        ]
    },
}


@pytest.mark.parametrize("upstream", NAMES)
@pytest.mark.parametrize("client", list(ERROR_RESULT))
def test_error_results_keep_their_flag_where_the_upstream_has_one(
    client: str, upstream: str
) -> None:
    wire = translate(client, upstream, ERROR_RESULT[client]())
    (result,) = assert_results_meet_calls(upstream, wire)
    assert result["value"] == "boom"
    if upstream in ("anthropic", "gemini"):  # the OpenAI APIs have no error flag
        assert result["error"] is True


@pytest.mark.parametrize("upstream", NAMES)
def test_tool_result_with_an_image_reaches_every_upstream(upstream: str) -> None:
    body = ERROR_RESULT["anthropic"]()
    body["messages"][2]["content"][0] = {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [
            {"type": "text", "text": "screenshot"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ],
    }
    wire = translate("anthropic", upstream, body)
    turns = read_turns(upstream, wire)
    (result,) = assert_results_meet_calls(upstream, wire)
    assert result["value"] == "screenshot"
    images = entries(turns, "image") + [
        m for r in entries(turns, "result") for m in r.get("media", [])
    ]
    assert images and PNG in orjson.dumps(images).decode()


# ---------------------------------------------------------------------------------------------
# Named failure cases


ORPHAN_OUTPUT = {
    "model": "m",
    "previous_response_id": None,
    "input": [
        {"type": "function_call_output", "call_id": "call_gone", "output": "42 degrees"},
        {"role": "user", "content": "So?"},
    ],
}


@pytest.mark.parametrize("upstream", [n for n in NAMES if n != "openai_responses"])
def test_orphan_function_call_output_becomes_text(upstream: str) -> None:
    """A Responses client that relies on server-side state sends a function_call_output whose
    function_call is not in the input. Every other vendor refuses a result without its call
    (400), so it is sent as user text that still carries the output."""
    body = dict(ORPHAN_OUTPUT)
    body.pop("previous_response_id")
    wire = translate("openai_responses", upstream, body)
    turns = read_turns(upstream, wire)
    assert entries(turns, "result") == []
    text = " ".join(e["text"] for e in entries(turns, "text"))
    assert "42 degrees" in text and "call_gone" in text and "So?" in text
    assert_alternates(upstream, wire)


def test_orphan_output_stays_an_output_for_responses_with_server_state() -> None:
    body = {**ORPHAN_OUTPUT, "previous_response_id": "resp_1"}
    wire = translate("openai_responses", "openai_responses", body)
    assert wire["input"][0] == {
        "type": "function_call_output",
        "call_id": "call_gone",
        "output": "42 degrees",
    }


BAD_ARGUMENTS = ["not json at all", "[1, 2]", '"a string"']


@pytest.mark.parametrize("arguments", BAD_ARGUMENTS)
@pytest.mark.parametrize("upstream", NAMES)
@pytest.mark.parametrize("client", ["openai_chat", "openai_responses"])
def test_tool_arguments_that_are_not_an_object(client: str, upstream: str, arguments: str) -> None:
    """Chat and Responses carry arguments as a string, so a model's broken JSON can come back in
    history. Anthropic and Gemini need an object: the text is kept under "_raw"."""
    body = agent_history(client)
    if client == "openai_chat":
        body["messages"][2]["tool_calls"][0]["function"]["arguments"] = arguments
    else:
        body["input"][2]["arguments"] = arguments
    wire = translate(client, upstream, body)
    first = entries(read_turns(upstream, wire), "call")[0]
    if upstream in ("anthropic", "gemini"):
        assert first["args"] == {"_raw": arguments}
    else:
        assert first["args"] == maybe_json(arguments)
    assert_results_meet_calls(upstream, wire)


# ---------------------------------------------------------------------------------------------
# 2. Multimodal input


def image_request(client: str) -> JSON:
    """One user turn: text, a base64 PNG, an image by URL."""
    if client == "openai_chat":
        content: list[JSON] = [
            {"type": "text", "text": "Compare"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
        ]
        return {"model": "m", "messages": [{"role": "user", "content": content}]}
    if client == "openai_responses":
        content = [
            {"type": "input_text", "text": "Compare"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
            {"type": "input_image", "image_url": IMAGE_URL},
        ]
        return {"model": "m", "input": [{"role": "user", "content": content}]}
    if client == "anthropic":
        content = [
            {"type": "text", "text": "Compare"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
        ]
        return {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": content}]}
    parts = [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/png", "fileUri": IMAGE_URL}},
    ]
    return {"contents": [{"role": "user", "parts": parts}]}


@pytest.mark.parametrize(("client", "upstream"), PAIRS)
def test_images_base64_and_url(client: str, upstream: str) -> None:
    wire = translate(client, upstream, image_request(client))
    images = entries(read_turns(upstream, wire), "image")
    assert [(i["image"], i["ref"]) for i in images] == [("base64", PNG), ("url", IMAGE_URL)]
    if upstream in ("anthropic", "gemini"):
        assert images[0]["media_type"] == "image/png"


PDF = "JVBERi0xLjQK"


def pdf_request(client: str) -> JSON:
    if client == "openai_chat":
        file = {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"}
        content = [{"type": "text", "text": "Sum up"}, {"type": "file", "file": file}]
        return {"model": "m", "messages": [{"role": "user", "content": content}]}
    if client == "openai_responses":
        part = {
            "type": "input_file",
            "file_data": f"data:application/pdf;base64,{PDF}",
            "filename": "a.pdf",
        }
        content = [{"type": "input_text", "text": "Sum up"}, part]
        return {"model": "m", "input": [{"role": "user", "content": content}]}
    if client == "anthropic":
        source = {"type": "base64", "media_type": "application/pdf", "data": PDF}
        content = [{"type": "text", "text": "Sum up"}, {"type": "document", "source": source}]
        return {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": content}]}
    parts = [{"text": "Sum up"}, {"inlineData": {"mimeType": "application/pdf", "data": PDF}}]
    return {"contents": [{"role": "user", "parts": parts}]}


def read_pdf(upstream: str, body: JSON) -> str | None:
    """The base64 PDF data as the upstream's own file part carries it."""
    text = orjson.dumps(body).decode()
    if upstream == "openai_chat":
        part = body["messages"][-1]["content"][1]
        assert part["type"] == "file", part
        return str(part["file"]["file_data"]).removeprefix("data:application/pdf;base64,")
    if upstream == "openai_responses":
        part = body["input"][-1]["content"][1]
        assert part["type"] == "input_file", part
        return str(part["file_data"]).removeprefix("data:application/pdf;base64,")
    if upstream == "anthropic":
        block = body["messages"][-1]["content"][1]
        assert block["type"] == "document" and block["source"]["media_type"] == "application/pdf"
        return str(block["source"]["data"])
    assert '"mimeType":"application/pdf"' in text
    return str(body["contents"][-1]["parts"][1]["inlineData"]["data"])


@pytest.mark.parametrize(("client", "upstream"), PAIRS)
def test_pdf_documents(client: str, upstream: str) -> None:
    assert read_pdf(upstream, translate(client, upstream, pdf_request(client))) == PDF


WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEA"


def audio_request(client: str) -> JSON:
    if client == "openai_chat":
        content = [
            {"type": "text", "text": "Transcribe"},
            {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
        ]
        return {"model": "m", "messages": [{"role": "user", "content": content}]}
    parts = [{"text": "Transcribe"}, {"inlineData": {"mimeType": "audio/wav", "data": WAV}}]
    return {"contents": [{"role": "user", "parts": parts}]}


@pytest.mark.parametrize("upstream", NAMES)
@pytest.mark.parametrize("client", ["openai_chat", "gemini"])
def test_audio_goes_where_it_is_understood_and_is_a_clear_400_elsewhere(
    client: str, upstream: str
) -> None:
    if upstream in ("anthropic", "openai_responses"):
        with pytest.raises(ProxyError) as refused:
            translate(client, upstream, audio_request(client))
        assert refused.value.kind is ErrorKind.INVALID_REQUEST and refused.value.status == 400
        assert "audio/wav" in refused.value.message and upstream in refused.value.message
        return
    wire = translate(client, upstream, audio_request(client))
    if upstream == "openai_chat":
        part = wire["messages"][-1]["content"][1]
        assert part == {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}
    else:
        part = wire["contents"][-1]["parts"][1]
        assert part == {"inlineData": {"mimeType": "audio/wav", "data": WAV}}


# ---------------------------------------------------------------------------------------------
# 4. Structured output


def structured(client: str, kind: str) -> JSON:
    body = simple(client, "Answer in JSON")
    if client == "openai_chat":
        body["response_format"] = (
            {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": ANSWER_SCHEMA, "strict": True},
            }
            if kind == "json_schema"
            else {"type": "json_object"}
        )
    elif client == "openai_responses":
        fmt: JSON = {"type": kind}
        if kind == "json_schema":
            fmt.update(name="reply", schema=ANSWER_SCHEMA, strict=True)
        body["text"] = {"format": fmt}
    elif client == "anthropic":
        body["output_config"] = {"format": {"type": "json_schema", "schema": ANSWER_SCHEMA}}
    else:
        config: JSON = {"responseMimeType": "application/json"}
        if kind == "json_schema":
            config["responseJsonSchema"] = ANSWER_SCHEMA
        body["generationConfig"] = config
    return body


@pytest.mark.parametrize(("client", "upstream"), PAIRS)
def test_structured_output_json_schema(client: str, upstream: str) -> None:
    wire = translate(client, upstream, structured(client, "json_schema"))
    kind, schema = read_format(upstream, wire)
    assert kind == "json_schema"
    assert schema is not None and schema["properties"]["answer"]["type"].lower() == "string"
    assert schema["required"] == ["answer"]
    if upstream == "openai_responses":
        assert wire["text"]["format"]["name"] == (
            "reply" if client.startswith("openai") else "response"
        )


@pytest.mark.parametrize("upstream", [n for n in NAMES if n != "anthropic"])
@pytest.mark.parametrize("client", ["openai_chat", "openai_responses", "gemini"])
def test_structured_output_json_object(client: str, upstream: str) -> None:
    """json_object has no Anthropic form (output_config takes a schema only): documented gap."""
    wire = translate(client, upstream, structured(client, "json_object"))
    assert read_format(upstream, wire) == ("json_object", None)


# ---------------------------------------------------------------------------------------------
# 5. System and roles


def mid_system_request(client: str) -> JSON:
    """A system prompt, then a user turn, then a system entry inside the conversation (OpenAI
    developer turn; Claude Code's role:system entry), then two user turns in a row."""
    if client == "openai_chat":
        messages = [
            {"role": "developer", "content": "Top rules."},
            {"role": "user", "content": "One"},
            {"role": "system", "content": "Mid rule."},
            {"role": "user", "content": "Two"},
            {"role": "user", "content": "Three"},
        ]
        return {"model": "m", "messages": messages}
    if client == "openai_responses":
        items = [
            {"role": "developer", "content": "Top rules."},
            {"role": "user", "content": "One"},
            {"role": "system", "content": "Mid rule."},
            {"role": "user", "content": "Two"},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Three"}],
            },
        ]
        return {"model": "m", "input": items}
    if client == "anthropic":
        messages = [
            {"role": "user", "content": "One"},
            {"role": "system", "content": "Mid rule."},
            {"role": "user", "content": "Two"},
            {"role": "user", "content": [{"type": "text", "text": "Three"}]},
        ]
        system = [{"type": "text", "text": "Top rules.", "cache_control": {"type": "ephemeral"}}]
        return {"model": "m", "max_tokens": 64, "system": system, "messages": messages}
    contents = [
        {"role": "user", "parts": [{"text": "One"}]},
        {"role": "user", "parts": [{"text": "Two"}]},
        {"role": "user", "parts": [{"text": "Three"}]},
    ]
    return {"systemInstruction": {"parts": [{"text": "Top rules."}]}, "contents": contents}


@pytest.mark.parametrize(("client", "upstream"), PAIRS)
def test_system_placement_and_alternation(client: str, upstream: str) -> None:
    wire = translate(client, upstream, mid_system_request(client))
    assert read_system(upstream, wire) == "Top rules."
    assert_alternates(upstream, wire)
    texts = " ".join(e["text"] for e in entries(read_turns(upstream, wire), "text"))
    order = [texts.find(t) for t in ("One", "Two", "Three")]
    assert -1 not in order and order == sorted(order), texts
    if client != "gemini":  # Gemini has no mid-conversation system entry to send
        mid = texts.find("Mid rule.") if upstream != "openai_chat" else None
        if upstream == "openai_chat":
            roles = [m["role"] for m in wire["messages"]]
            assert roles.count("system") == 2
        else:
            assert mid is not None and order[0] < mid < order[1], texts
    if upstream == "anthropic" and client == "anthropic":
        assert wire["system"][0]["cache_control"] == {"type": "ephemeral"}


# ---------------------------------------------------------------------------------------------
# Built-in tools: passed to upstreams that have them, dropped with a log line elsewhere


BUILTINS: dict[str, JSON] = {
    "openai_responses": {"type": "web_search"},
    "anthropic": {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    "gemini": {"googleSearch": {}},
}


def read_web_search(upstream: str, body: JSON) -> JSON | None:
    for tool in body.get("tools") or []:
        if upstream == "gemini" and ("googleSearch" in tool or "google_search" in tool):
            return tool
        if str(tool.get("type", "")).startswith("web_search"):
            return tool
    return None


@pytest.mark.parametrize("upstream", NAMES)
@pytest.mark.parametrize("client", list(BUILTINS))
def test_builtin_web_search(client: str, upstream: str, caplog: pytest.LogCaptureFixture) -> None:
    body = with_tools(client, simple(client))
    body["tools"].append(BUILTINS[client])
    with caplog.at_level(logging.INFO, logger="cliproxy"):
        wire = translate(client, upstream, body)
    assert list(read_tools(upstream, wire)) == ["get_weather"]  # the function tool stays
    search = read_web_search(upstream, wire)
    if client == upstream:
        assert search == BUILTINS[client]
    elif upstream == "openai_chat":
        # Chat Completions has no hosted tools: the tool is dropped, and that is logged once.
        assert search is None
        dropped = [r for r in caplog.records if "built-in" in r.getMessage()]
        assert len(dropped) == 1 and "openai_chat" in dropped[0].getMessage()
    else:
        assert search is not None, wire.get("tools")
    tools_json = orjson.dumps(wire.get("tools")).decode()
    if upstream == "anthropic":
        assert "googleSearch" not in tools_json and '"type":"web_search"' not in tools_json
    if upstream == "openai_responses":
        assert "googleSearch" not in tools_json and "20250305" not in tools_json


@pytest.mark.parametrize("upstream", [n for n in NAMES if n != "openai_responses"])
def test_foreign_builtin_without_equivalent_is_dropped_with_a_log_line(
    upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = with_tools("openai_responses", simple("openai_responses"))
    body["tools"] += [
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "namespace", "name": "ns", "tools": []},
    ]
    with caplog.at_level(logging.INFO, logger="cliproxy"):
        wire = translate("openai_responses", upstream, body)
    assert list(read_tools(upstream, wire)) == ["get_weather"]
    assert len(wire["tools"]) == 1
    dropped = [r for r in caplog.records if "built-in" in r.getMessage()]
    assert len(dropped) == 1, [r.getMessage() for r in caplog.records]
    assert "code_interpreter" in dropped[0].getMessage() and "namespace" in dropped[0].getMessage()
