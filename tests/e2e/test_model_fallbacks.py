"""model-fallbacks over HTTP: a model whose every credential fails is answered by the next model
of its chain, in any provider and protocol, plain and streamed; the reply keeps the client's
model name and says which model answered; nothing falls back once a byte reached the client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.core import Simulator
from tests.simulators.fixtures import own_matrix_sims

CONFIG = """
demo: false
request-retry: 0
max-retry-interval: 0
openai-compatibility:
  - name: dead
    base-url: http://127.0.0.1:9/v1
    api-key-entries: [{{api-key: dead-key}}]
    models: [{{name: gone, alias: broken-model}}, {{name: gone, alias: dead-model}}]
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: up-chat-key}}]
    models: [{{name: up-chat, alias: chat-model}}, {{name: up-flaky, alias: flaky-model}}]
codex-api-key:
  - api-key: up-resp-key
    base-url: {resp}
    models: [{{name: up-resp, alias: resp-model}}]
claude-api-key:
  - api-key: up-claude-key
    base-url: {claude}
    models: [{{name: up-claude, alias: claude-model}}]
gemini-api-key:
  - api-key: up-gemini-key
    base-url: {gemini}
    models: [{{name: up-gemini, alias: gemini-model}}]
model-fallbacks:
  to-chat: [dead-model, chat-model]
  to-resp: [dead-model, resp-model]
  to-claude: [dead-model, claude-model]
  to-gemini: [dead-model, gemini-model]
  broken-model: [not-served-here, chat-model]
  flaky-model: [claude-model]
"""

TARGETS = {"to-chat": "chat-model", "to-resp": "resp-model", "to-claude": "claude-model"}
TARGETS["to-gemini"] = "gemini-model"


def _call(protocol: str, model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    user = [{"role": "user", "content": "hello"}]
    if protocol == "chat":
        return "/v1/chat/completions", {"model": model, "stream": stream, "messages": user}
    if protocol == "responses":
        return "/v1/responses", {"model": model, "stream": stream, "input": "hello"}
    if protocol == "messages":
        body = {"model": model, "stream": stream, "max_tokens": 64, "messages": user}
        return "/v1/messages", body
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{method}", {"contents": [{"parts": [{"text": "hello"}]}]}


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Simulator]]:
    with own_matrix_sims() as started:
        yield started


@pytest.fixture(scope="module")
def proxy(sims: dict[str, Simulator]) -> Iterator[ProxyServer]:
    config = CONFIG.format(
        chat=sims["chat-model"].base_url,
        resp=sims["resp-model"].base_url,
        claude=sims["claude-model"].base_url,
        gemini=sims["gemini-model"].base_url,
    )
    with ProxyServer(config) as server:
        yield server


@pytest.fixture
def http(proxy: ProxyServer, sims: dict[str, Simulator]) -> Iterator[httpx.Client]:
    for sim in sims.values():
        sim.reset()
    proxy.state.cooldowns.clear()
    with httpx.Client(base_url=proxy.base_url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("requested", list(TARGETS))
@pytest.mark.parametrize("protocol", ["chat", "responses", "messages", "gemini"])
def test_a_failing_model_is_answered_by_its_fallback(
    protocol: str,
    requested: str,
    stream: bool,
    http: httpx.Client,
    sims: dict[str, Simulator],
) -> None:
    target = TARGETS[requested]
    sims[target].queue(Reply.text("answered by the fallback", chunk_size=100))
    path, body = _call(protocol, requested, stream)
    reply = http.post(path, json=body)
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-cliproxy-model"] == target
    assert "answered by the fallback" in reply.text
    if protocol != "gemini":  # Gemini's replies name the model in modelVersion
        assert requested in reply.text  # the client's own name, not the fallback's
    assert len(sims[target].requests) == 1


def test_a_chain_is_followed_through_and_skips_models_not_served(
    http: httpx.Client, sims: dict[str, Simulator]
) -> None:
    # broken-model fails, its own chain names a model not served here, then chat-model.
    sims["chat-model"].queue(Reply.text("through the chain"))
    reply = http.post("/v1/chat/completions", json=_call("chat", "broken-model", False)[1])
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-cliproxy-model"] == "chat-model"
    assert reply.json()["model"] == "broken-model"


def test_no_fallback_header_when_the_model_itself_answers(
    http: httpx.Client, sims: dict[str, Simulator]
) -> None:
    sims["chat-model"].queue(Reply.text("myself"))
    reply = http.post("/v1/chat/completions", json=_call("chat", "chat-model", False)[1])
    assert reply.status_code == 200
    assert "x-cliproxy-model" not in reply.headers


def test_an_upstream_error_reply_falls_back_and_the_ledger_keeps_both_models(
    http: httpx.Client, proxy: ProxyServer, sims: dict[str, Simulator]
) -> None:
    sims["chat-model"].queue(Reply.error(503, "overloaded"))
    sims["claude-model"].queue(Reply.text("claude answers"))
    reply = http.post("/v1/chat/completions", json=_call("chat", "flaky-model", False)[1])
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-cliproxy-model"] == "claude-model"
    assert reply.json()["choices"][0]["message"]["content"] == "claude answers"
    assert sims["chat-model"].last_request.json["model"] == "up-flaky"
    assert sims["claude-model"].last_request.json["model"] == "up-claude"


def test_nothing_falls_back_once_the_stream_began(
    http: httpx.Client, sims: dict[str, Simulator]
) -> None:
    sims["chat-model"].queue(Reply.text("a long answer cut short", chunk_size=3, cut_after=2))
    path, body = _call("chat", "flaky-model", True)
    reply = http.post(path, json=body)
    assert reply.status_code == 200
    assert "error" in reply.text  # the stream ends with the protocol's error frame
    assert sims["claude-model"].requests == []


def test_when_every_model_of_the_chain_fails_the_client_hears_the_last_error(
    http: httpx.Client, sims: dict[str, Simulator]
) -> None:
    sims["chat-model"].queue(Reply.error(503, "chat is down"))
    sims["claude-model"].queue(Reply.error(529, "claude is overloaded too"))
    reply = http.post("/v1/chat/completions", json=_call("chat", "flaky-model", False)[1])
    assert reply.status_code >= 500
    assert "claude is overloaded too" in reply.text
