"""The embedded default: every official SDK talks to the offline demo provider."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from tests.proxy_server import ProxyServer


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyServer]:
    with ProxyServer() as server:
        yield server


def test_openai_chat_echo(proxy: ProxyServer) -> None:
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="unused")
    reply = client.chat.completions.create(
        model="demo-echo", messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "Echo: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_openai_chat_stream_echo(proxy: ProxyServer) -> None:
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="demo-echo",
        messages=[{"role": "user", "content": "a longer message to split in pieces"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: a longer message to split in pieces"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0


def test_openai_chat_tools(proxy: ProxyServer) -> None:
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="unused")
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    reply = client.chat.completions.create(
        model="demo-tools", messages=[{"role": "user", "content": "Paris"}], tools=tools
    )
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'
    follow_up = client.chat.completions.create(
        model="demo-tools",
        tools=tools,
        messages=[
            {"role": "user", "content": "Paris"},
            reply.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert "sunny" in (follow_up.choices[0].message.content or "")


def test_openai_responses_echo_and_stream(proxy: ProxyServer) -> None:
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="unused")
    reply = client.responses.create(model="demo-echo", input="hi responses")
    assert reply.output_text == "Echo: hi responses"
    with client.responses.stream(model="demo-echo", input="streamed responses") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Echo: streamed responses"
    assert final.usage is not None and final.usage.output_tokens > 0


def test_anthropic_echo_and_stream(proxy: ProxyServer) -> None:
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key="unused")
    reply = client.messages.create(
        model="demo-echo", max_tokens=100, messages=[{"role": "user", "content": "hi claude"}]
    )
    assert reply.content[0].text == "Echo: hi claude"
    assert reply.stop_reason == "end_turn"
    with client.messages.stream(
        model="demo-echo", max_tokens=100, messages=[{"role": "user", "content": "streamed"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "Echo: streamed"
    assert final.usage.output_tokens > 0


def test_anthropic_tools_stream(proxy: ProxyServer) -> None:
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key="unused")
    tools = [
        {
            "name": "read_file",
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        }
    ]
    with client.messages.stream(
        model="demo-tools",
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": "hello.txt"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    block = final.content[0]
    assert block.type == "tool_use" and block.input == {"path": "hello.txt"}


def test_gemini_echo_and_stream(proxy: ProxyServer) -> None:
    client = genai.Client(
        api_key="unused", http_options=gtypes.HttpOptions(base_url=proxy.base_url)
    )
    reply = client.models.generate_content(model="demo-echo", contents="hi gemini")
    assert reply.text == "Echo: hi gemini"
    assert reply.candidates[0].finish_reason == gtypes.FinishReason.STOP
    pieces = list(client.models.generate_content_stream(model="demo-echo", contents="streamed"))
    assert "".join(p.text or "" for p in pieces) == "Echo: streamed"
    assert pieces[-1].usage_metadata is not None
    assert pieces[-1].usage_metadata.candidates_token_count > 0


def test_models_listing_follows_the_asking_sdk(proxy: ProxyServer) -> None:
    oa = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="unused")
    assert {m.id for m in oa.models.list()} >= {"demo-echo", "demo-tools"}
    an = anthropic.Anthropic(base_url=proxy.base_url, api_key="unused")
    assert {m.id for m in an.models.list()} >= {"demo-echo", "demo-tools"}
    gc = genai.Client(api_key="unused", http_options=gtypes.HttpOptions(base_url=proxy.base_url))
    names = {m.name for m in gc.models.list()}
    assert "models/demo-echo" in names


def test_healthz_and_overhead_header(proxy: ProxyServer) -> None:
    assert httpx.get(proxy.base_url + "/healthz").json()["status"] == "ok"
    reply = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": "demo-echo", "messages": [{"role": "user", "content": "x"}]},
    )
    assert float(reply.headers["x-cliproxy-overhead-ms"]) >= 0


def test_legacy_completions(proxy: ProxyServer) -> None:
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="unused")
    reply = client.completions.create(model="demo-echo", prompt="legacy prompt")
    assert reply.choices[0].text == "Echo: legacy prompt"
    assert reply.choices[0].finish_reason == "stop"
    pieces = list(client.completions.create(model="demo-echo", prompt="streamed", stream=True))
    assert "".join(p.choices[0].text for p in pieces if p.choices) == "Echo: streamed"


def test_gemini_json_array_stream_without_alt_sse(proxy: ProxyServer) -> None:
    reply = httpx.post(
        proxy.base_url + "/v1beta/models/demo-echo:streamGenerateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "array please"}]}]},
    )
    assert reply.status_code == 200
    chunks = reply.json()
    assert isinstance(chunks, list)
    text = "".join(
        part.get("text", "") for c in chunks for part in c["candidates"][0]["content"]["parts"]
    )
    assert text == "Echo: array please"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_demo_echoes_what_the_person_typed_in_cli_shaped_requests(proxy: ProxyServer) -> None:
    """Coding CLIs send context blocks before the typed prompt; the echo is the prompt."""
    from tests.e2e.shapes import CODEX_HEADERS, codex_body

    body = {**codex_body("demo-echo"), "stream": False}
    reply = httpx.post(proxy.base_url + "/v1/responses", json=body, headers=CODEX_HEADERS)
    assert reply.json()["output"][0]["content"][0]["text"] == "Echo: say hi"
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key="unused")
    message = client.messages.create(
        model="demo-echo",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                    {"type": "text", "text": "say hi"},
                ],
            }
        ],
    )
    assert message.content[0].text == "Echo: say hi"
