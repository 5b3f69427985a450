"""The request shapes real CLIs send go through pass-through untouched and without error, and
through translation to every other upstream without error."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.shapes import (
    CLAUDE_CODE_HEADERS,
    CODEX_HEADERS,
    GEMINI_CLI_HEADERS,
    claude_code_body,
    codex_body,
    gemini_cli_router_body,
)
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, GeminiSim, Reply, ResponsesSim, Simulator

UPSTREAMS = {
    "chat-model": "openai_chat_sim",
    "resp-model": "responses_sim",
    "claude-model": "anthropic_sim",
    "gemini-model": "gemini_sim",
}


def _sse_events(text: str) -> list[tuple[str | None, dict]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
        if data and data != "[DONE]":
            events.append((name, json.loads(data)))
    return events


def test_claude_code_request_passes_through_untouched(
    matrix_proxy: ProxyServer, anthropic_sim: AnthropicSim
) -> None:
    body = claude_code_body("claude-model")
    anthropic_sim.queue(Reply.text("hi from claude"))
    reply = httpx.post(
        matrix_proxy.base_url + "/v1/messages?beta=true", json=body, headers=CLAUDE_CODE_HEADERS
    )
    assert reply.status_code == 200, reply.text
    names = [name for name, _ in _sse_events(reply.text)]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(names)
    upstream = anthropic_sim.last_request
    assert upstream.json == {**body, "model": "up-claude"}
    assert upstream.query.get("beta") == "true"
    assert upstream.headers["anthropic-beta"] == CLAUDE_CODE_HEADERS["anthropic-beta"]


def test_codex_request_passes_through_untouched(
    matrix_proxy: ProxyServer, responses_sim: ResponsesSim
) -> None:
    body = codex_body("resp-model")
    responses_sim.queue(Reply.text("hi from codex upstream"))
    reply = httpx.post(matrix_proxy.base_url + "/v1/responses", json=body, headers=CODEX_HEADERS)
    assert reply.status_code == 200, reply.text
    types = [data["type"] for _, data in _sse_events(reply.text)]
    assert "response.output_item.done" in types and types[-1] == "response.completed"
    assert responses_sim.last_request.json == {**body, "model": "up-resp"}


@pytest.mark.parametrize("prefix", ["/v1beta", "/v1"])
def test_gemini_cli_router_call_passes_through_untouched(
    prefix: str, matrix_proxy: ProxyServer, gemini_sim: GeminiSim
) -> None:
    body = gemini_cli_router_body()
    answer = '{"complexity_reasoning": "simple", "complexity_score": 1}'
    gemini_sim.queue(Reply.text(answer))
    reply = httpx.post(
        f"{matrix_proxy.base_url}{prefix}/models/gemini-model:generateContent",
        json=body,
        headers=GEMINI_CLI_HEADERS,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["candidates"][0]["content"]["parts"][0]["text"] == answer
    assert gemini_sim.last_request.json == body
    assert gemini_sim.last_request.path.endswith("/models/up-gemini:generateContent")


@pytest.mark.parametrize("model", [m for m in UPSTREAMS if m != "claude-model"])
def test_claude_code_request_translates_to_other_upstreams(
    model: str, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    sim: Simulator = request.getfixturevalue(UPSTREAMS[model])
    sim.queue(Reply.text("translated hi"))
    reply = httpx.post(
        matrix_proxy.base_url + "/v1/messages?beta=true",
        json=claude_code_body(model),
        headers=CLAUDE_CODE_HEADERS,
    )
    assert reply.status_code == 200, reply.text
    events = _sse_events(reply.text)
    text = "".join(d["delta"].get("text", "") for n, d in events if n == "content_block_delta")
    assert text == "translated hi"
    assert sim.last_request.json is not None


@pytest.mark.parametrize("model", [m for m in UPSTREAMS if m != "resp-model"])
def test_codex_request_translates_to_other_upstreams(
    model: str, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    sim: Simulator = request.getfixturevalue(UPSTREAMS[model])
    sim.queue(Reply.text("translated hi"))
    reply = httpx.post(
        matrix_proxy.base_url + "/v1/responses", json=codex_body(model), headers=CODEX_HEADERS
    )
    assert reply.status_code == 200, reply.text
    events = [d for _, d in _sse_events(reply.text)]
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert done and done[0]["item"]["content"][0]["text"] == "translated hi"
    assert events[-1]["type"] == "response.completed"


@pytest.mark.parametrize("model", [m for m in UPSTREAMS if m != "gemini-model"])
def test_gemini_cli_router_call_translates_to_other_upstreams(
    model: str, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    sim: Simulator = request.getfixturevalue(UPSTREAMS[model])
    sim.queue(Reply.text('{"complexity_reasoning": "x", "complexity_score": 3}'))
    reply = httpx.post(
        f"{matrix_proxy.base_url}/v1beta/models/{model}:generateContent",
        json=gemini_cli_router_body(),
        headers=GEMINI_CLI_HEADERS,
    )
    assert reply.status_code == 200, reply.text
    candidate = reply.json()["candidates"][0]
    assert json.loads(candidate["content"]["parts"][0]["text"])["complexity_score"] == 3
    assert candidate["finishReason"] == "STOP"


def test_count_tokens_is_asked_of_the_upstream_that_can_count(
    matrix_proxy: ProxyServer, anthropic_sim: AnthropicSim, gemini_sim: GeminiSim
) -> None:
    anthropic_sim.token_count = 42
    reply = httpx.post(
        matrix_proxy.base_url + "/v1/messages/count_tokens",
        json={"model": "claude-model", "messages": [{"role": "user", "content": "count me"}]},
        headers={"anthropic-version": "2023-06-01"},
    )
    assert reply.json() == {"input_tokens": 42}
    gemini_sim.token_count = 17
    reply = httpx.post(
        matrix_proxy.base_url + "/v1beta/models/gemini-model:countTokens",
        json={"contents": [{"role": "user", "parts": [{"text": "count me"}]}]},
    )
    assert reply.json()["totalTokens"] == 17
    # An upstream that cannot count gets a local estimate in the client's shape.
    reply = httpx.post(
        matrix_proxy.base_url + "/v1/messages/count_tokens",
        json={"model": "chat-model", "messages": [{"role": "user", "content": "count me"}]},
    )
    assert reply.json()["input_tokens"] > 0


def test_foreign_signature_in_history_is_not_forwarded_by_pass_through(
    matrix_proxy: ProxyServer, anthropic_sim: AnthropicSim
) -> None:
    """An Anthropic client whose earlier turn was served by Gemini holds a wrapped Gemini
    signature; Anthropic must never receive it (it would refuse the request)."""
    from cliproxy.protocols.signatures import wrap

    foreign = wrap("gemini", "Z2VtaW5pLXNpZ25hdHVyZQ==")
    body = {
        "model": "claude-model",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "first"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "thought elsewhere", "signature": foreign},
                    {"type": "text", "text": "answer from gemini"},
                ],
            },
            {"role": "user", "content": "second"},
        ],
    }
    anthropic_sim.queue(Reply.text("fine"))
    reply = httpx.post(
        matrix_proxy.base_url + "/v1/messages",
        json=body,
        headers={"anthropic-version": "2023-06-01"},
    )
    assert reply.status_code == 200, reply.text
    sent = anthropic_sim.last_request.body
    assert foreign.encode() not in sent and b"Z2VtaW5pLXNpZ25hdHVyZQ==" not in sent
    assert b"answer from gemini" in sent
