"""Official SDK x upstream simulator: what a client asks for arrives in the upstream's own wire
format, and what the upstream streams arrives in the client's.

- Image input, base64 and by URL, as each SDK sends it → the upstream's image parts.
- Structured output (a JSON schema) → response_format / text.format / output_config /
  generationConfig.responseMimeType + schema.
- A streamed tool call: the argument deltas the SDK sees, in its own format, concatenate to valid
  JSON equal to what the upstream sent; the stream also ends with the tool-call stop reason and
  usage.
"""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import openai
import orjson
import pytest
from google import genai
from google.genai import types as gtypes

from tests.e2e.clients import CLIENTS, WEATHER_SCHEMA
from tests.protocols.test_cross_protocol_corpus import PNG
from tests.protocols.wire_readers import entries, read_format, read_turns
from tests.proxy_server import ProxyServer
from tests.simulators import Reply, Simulator

UPSTREAMS = {
    "chat-model": ("openai_chat_sim", "openai_chat"),
    "resp-model": ("responses_sim", "openai_responses"),
    "claude-model": ("anthropic_sim", "anthropic"),
    "gemini-model": ("gemini_sim", "gemini"),
}
IMAGE_URL = "https://example.com/cat.png"
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
ARGS = {"city": "Paris", "units": "celsius", "days": [1, 2, 3], "note": 'say "hi" ⛅'}


def _openai(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0)


def _anthropic(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key="k", max_retries=0)


def _gemini(base_url: str) -> genai.Client:
    options = gtypes.HttpOptions(
        base_url=base_url, retry_options=gtypes.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key="k", http_options=options)


@pytest.fixture
def upstream(request: pytest.FixtureRequest) -> tuple[Simulator, str]:
    fixture, protocol = UPSTREAMS[request.param]
    return request.getfixturevalue(fixture), protocol


# ---------------------------------------------------------------------------------------------
# Image input


def send_images(client: str, base_url: str, model: str) -> None:
    data_url = f"data:image/png;base64,{PNG}"
    if client == "openai_chat":
        content: Any = [
            {"type": "text", "text": "Compare"},
            {"type": "image_url", "image_url": {"url": data_url}},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
        ]
        _openai(base_url).chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}]
        )
    elif client == "openai_responses":
        content = [
            {"type": "input_text", "text": "Compare"},
            {"type": "input_image", "image_url": data_url, "detail": "auto"},
            {"type": "input_image", "image_url": IMAGE_URL, "detail": "auto"},
        ]
        _openai(base_url).responses.create(
            model=model, input=[{"role": "user", "content": content}]
        )
    elif client == "anthropic":
        content = [
            {"type": "text", "text": "Compare"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
        ]
        _anthropic(base_url).messages.create(
            model=model, max_tokens=64, messages=[{"role": "user", "content": content}]
        )
    else:
        parts = [
            gtypes.Part(text="Compare"),
            gtypes.Part.from_bytes(data=base64.b64decode(PNG), mime_type="image/png"),
            gtypes.Part.from_uri(file_uri=IMAGE_URL, mime_type="image/png"),
        ]
        gemini = _gemini(base_url)  # a genai.Client closes its transport when collected
        gemini.models.generate_content(
            model=model, contents=[gtypes.Content(role="user", parts=parts)]
        )


@pytest.mark.parametrize("upstream", list(UPSTREAMS), indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
def test_image_input_base64_and_url(
    client: str,
    upstream: tuple[Simulator, str],
    matrix_proxy: ProxyServer,
    request: pytest.FixtureRequest,
) -> None:
    sim, protocol = upstream
    sim.queue(Reply.text("Two cats."))
    model = request.node.callspec.params["upstream"]
    send_images(client, matrix_proxy.base_url, model)
    images = entries(read_turns(protocol, sim.last_request.json), "image")
    assert [(i["image"], i["ref"]) for i in images] == [("base64", PNG), ("url", IMAGE_URL)]
    if protocol in ("anthropic", "gemini"):
        assert images[0]["media_type"] == "image/png"


# ---------------------------------------------------------------------------------------------
# Structured output


def ask_structured(client: str, base_url: str, model: str) -> str:
    prompt = "Reply in JSON"
    if client == "openai_chat":
        fmt: Any = {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": ANSWER_SCHEMA, "strict": True},
        }
        chat = _openai(base_url).chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], response_format=fmt
        )
        return chat.choices[0].message.content or ""
    if client == "openai_responses":
        text: Any = {
            "format": {
                "type": "json_schema",
                "name": "reply",
                "schema": ANSWER_SCHEMA,
                "strict": True,
            }
        }
        return _openai(base_url).responses.create(model=model, input=prompt, text=text).output_text
    if client == "anthropic":
        config: Any = {"format": {"type": "json_schema", "schema": ANSWER_SCHEMA}}
        message = _anthropic(base_url).messages.create(
            model=model,
            max_tokens=64,
            messages=[{"role": "user", "content": prompt}],
            output_config=config,
        )
        return "".join(b.text for b in message.content if b.type == "text")
    # google-genai's response_schema is Gemini's own OpenAPI dialect (responseSchema on the wire).
    schema = gtypes.Schema(
        type=gtypes.Type.OBJECT,
        properties={"answer": gtypes.Schema(type=gtypes.Type.STRING)},
        required=["answer"],
    )
    gemini = _gemini(base_url)
    reply = gemini.models.generate_content(
        model=model,
        contents=prompt,
        config=gtypes.GenerateContentConfig(
            response_mime_type="application/json", response_schema=schema
        ),
    )
    return reply.text or ""


@pytest.mark.parametrize("upstream", list(UPSTREAMS), indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
def test_structured_output_json_schema(
    client: str,
    upstream: tuple[Simulator, str],
    matrix_proxy: ProxyServer,
    request: pytest.FixtureRequest,
) -> None:
    sim, protocol = upstream
    sim.queue(Reply.text('{"answer": "42"}'))
    model = request.node.callspec.params["upstream"]
    assert orjson.loads(ask_structured(client, matrix_proxy.base_url, model)) == {"answer": "42"}
    kind, schema = read_format(protocol, sim.last_request.json)
    assert kind == "json_schema" and schema is not None
    assert schema["properties"]["answer"]["type"].lower() == "string"
    assert schema["required"] == ["answer"]


# ---------------------------------------------------------------------------------------------
# Streamed tool-call arguments


def stream_tool_call(client: str, base_url: str, model: str) -> tuple[list[str], str, int]:
    """(argument pieces as the SDK saw them, finish in neutral words, output tokens)."""
    prompt = "Weather?"
    if client == "openai_chat":
        tools: Any = [
            {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
        ]
        chunks = list(
            _openai(base_url).chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": prompt}],
                tools=tools,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        pieces = [
            call.function.arguments
            for c in chunks
            if c.choices
            for call in c.choices[0].delta.tool_calls or []
            if call.function and call.function.arguments
        ]
        finish = [
            c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
        ]
        usage = chunks[-1].usage
        return pieces, finish[-1], usage.completion_tokens if usage else -1
    if client == "openai_responses":
        tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA}]
        events = list(
            _openai(base_url).responses.create(model=model, input=prompt, tools=tools, stream=True)
        )
        pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
        done = [e for e in events if e.type == "response.function_call_arguments.done"]
        assert len(done) == 1 and done[0].arguments == "".join(pieces)
        final = events[-1]
        assert final.type == "response.completed"
        calls = [i for i in final.response.output if i.type == "function_call"]
        finish = "tool_calls" if calls else final.response.status
        usage = final.response.usage
        return pieces, finish, usage.output_tokens if usage else -1
    if client == "anthropic":
        tools = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]
        raw = list(
            _anthropic(base_url).messages.create(
                model=model,
                max_tokens=256,
                messages=[{"role": "user", "content": prompt}],
                tools=tools,
                stream=True,
            )
        )
        pieces = [
            e.delta.partial_json
            for e in raw
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        (end,) = [e for e in raw if e.type == "message_delta"]
        finish = {"tool_use": "tool_calls"}.get(end.delta.stop_reason or "", "other")
        return pieces, finish, end.usage.output_tokens
    config = gtypes.GenerateContentConfig(
        tools=[
            gtypes.Tool(
                function_declarations=[
                    gtypes.FunctionDeclaration(
                        name="get_weather", parameters_json_schema=WEATHER_SCHEMA
                    )
                ]
            )
        ],
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
    )
    gemini = _gemini(base_url)
    stream = list(
        gemini.models.generate_content_stream(model=model, contents=prompt, config=config)
    )
    # Gemini streams whole function calls (args as an object), never argument fragments.
    pieces = [
        orjson.dumps(p.function_call.args).decode()
        for c in stream
        if c.candidates and c.candidates[0].content
        for p in c.candidates[0].content.parts or []
        if p.function_call
    ]
    last = stream[-1]
    reason = last.candidates[0].finish_reason if last.candidates else None
    finish = "tool_calls" if reason == gtypes.FinishReason.STOP and pieces else str(reason)
    meta = last.usage_metadata
    return pieces, finish, (meta.candidates_token_count or 0) if meta else -1


@pytest.mark.parametrize("upstream", list(UPSTREAMS), indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
def test_streamed_tool_arguments_concatenate_to_valid_json(
    client: str,
    upstream: tuple[Simulator, str],
    matrix_proxy: ProxyServer,
    request: pytest.FixtureRequest,
) -> None:
    sim, _ = upstream
    sim.queue(Reply.tool_call("get_weather", ARGS, chunk_size=4, output_tokens=23))
    model = request.node.callspec.params["upstream"]
    pieces, finish, output_tokens = stream_tool_call(client, matrix_proxy.base_url, model)
    assert orjson.loads("".join(pieces)) == ARGS
    if client == "gemini":
        assert len(pieces) == 1  # Gemini's stream carries whole calls
    elif UPSTREAMS[model][1] != "gemini":
        # The upstream sent the arguments in 4-character pieces; they stay deltas on the way.
        assert len(pieces) > 3
    assert finish == "tool_calls"
    assert output_tokens == 23
