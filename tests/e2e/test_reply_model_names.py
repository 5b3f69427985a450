"""Pass-through replies name the model the client asked for, as translated replies do: a client
that logs usage per model sees its alias (``chat-model``), never the upstream's name
(``up-chat``), in JSON replies and in every stream event that names a model. When the names are
equal the stream is the upstream's, byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from cliproxy.providers.base import Credential
from cliproxy.providers.gemini_cli import GeminiCLIProvider
from cliproxy.routing.registry import Candidate
from tests.proxy_server import ProxyServer
from tests.simulators import Reply, Simulator
from tests.simulators.code_assist_sim import CodeAssistSim
from tests.simulators.core import Frame, Turn

# client protocol -> (client model in the matrix proxy, upstream model, simulator fixture)
ALIASES = {
    "openai_chat": ("chat-model", "up-chat", "openai_chat_sim"),
    "openai_responses": ("resp-model", "up-resp", "responses_sim"),
    "anthropic": ("claude-model", "up-claude", "anthropic_sim"),
    "gemini": ("gemini-model", "up-gemini", "gemini_sim"),
}
# Where each protocol names the model (the translated path renders the same key).
MODEL_KEY = {
    "openai_chat": "model",
    "openai_responses": "model",
    "anthropic": "model",
    "gemini": "modelVersion",
}
TEXT = "Named by the upstream, sent in small pieces."
ASSIST_TOKEN = "assist-token"


def _post(
    base_url: str, protocol: str, model: str, stream: bool, text: str = "hi", **extra: Any
) -> httpx.Response:
    """One raw call in ``protocol`` (raw, so the reply's own bytes are what the test reads)."""
    user = [{"role": "user", "content": text}]
    if protocol == "openai_chat":
        url = "/v1/chat/completions"
        body = {"model": model, "messages": user, "stream": stream, **extra}
    elif protocol == "openai_responses":
        url, body = "/v1/responses", {"model": model, "input": text, "stream": stream}
    elif protocol == "anthropic":
        url = "/v1/messages"
        body = {"model": model, "max_tokens": 64, "messages": user, "stream": stream}
    else:
        verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"/v1beta/models/{model}:{verb}"
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    reply = httpx.post(base_url + url, json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply


def _events(raw: bytes) -> list[dict[str, Any]]:
    """The JSON data of each SSE event (OpenAI's ``[DONE]`` left out)."""
    events = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(
            line[5:].lstrip() for line in block.split(b"\n") if line.startswith(b"data:")
        )
        if data and data != b"[DONE]":
            events.append(orjson.loads(data))
    return events


def _stream_models(protocol: str, events: list[dict[str, Any]]) -> list[str]:
    """The model names the stream's events carry where the protocol puts them."""
    if protocol == "openai_chat":
        return [event["model"] for event in events]  # every chunk names it
    if protocol == "openai_responses":
        return [event["response"]["model"] for event in events if "response" in event]
    if protocol == "anthropic":
        return [e["message"]["model"] for e in events if e["type"] == "message_start"]
    return [event["modelVersion"] for event in events]


def _stream_text(protocol: str, events: list[dict[str, Any]]) -> str:
    if protocol == "openai_chat":
        return "".join(
            e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"]
        )
    if protocol == "openai_responses":
        return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    if protocol == "anthropic":
        return "".join(
            e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta"
        )
    return "".join(
        part.get("text", "") for e in events for part in e["candidates"][0]["content"]["parts"]
    )


@pytest.mark.parametrize("protocol", list(ALIASES))
def test_json_pass_through_names_the_clients_model(
    protocol: str, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    alias, upstream_model, fixture = ALIASES[protocol]
    sim: Simulator = request.getfixturevalue(fixture)
    sim.queue(Reply.text(TEXT))

    reply = _post(matrix_proxy.base_url, protocol, alias, stream=False)

    assert reply.json()[MODEL_KEY[protocol]] == alias
    assert upstream_model.encode() not in reply.content
    assert upstream_model in (sim.last_request.json or {}).get("model", sim.last_request.path)


@pytest.mark.parametrize("protocol", list(ALIASES))
def test_streamed_pass_through_names_the_clients_model(
    protocol: str, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    alias, upstream_model, fixture = ALIASES[protocol]
    sim: Simulator = request.getfixturevalue(fixture)
    sim.queue(Reply.text(TEXT, chunk_size=5))

    reply = _post(matrix_proxy.base_url, protocol, alias, stream=True)

    events = _events(reply.content)
    models = _stream_models(protocol, events)
    assert models and set(models) == {alias}
    assert upstream_model.encode() not in reply.content
    assert _stream_text(protocol, events) == TEXT


@pytest.mark.parametrize("protocol", list(ALIASES))
def test_the_upstream_name_elsewhere_in_a_stream_is_left_alone(
    protocol: str, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    """Only the model key's value is renamed: the same words inside generated text (JSON-escaped
    in the event) reach the client as the upstream wrote them."""
    alias, upstream_model, fixture = ALIASES[protocol]
    sim: Simulator = request.getfixturevalue(fixture)
    text = f'{{"model": "{upstream_model}", "modelVersion":"{upstream_model}"}} {upstream_model}'
    sim.queue(Reply.text(text, chunk_size=len(text)))

    events = _events(_post(matrix_proxy.base_url, protocol, alias, stream=True).content)

    assert _stream_text(protocol, events) == text
    assert set(_stream_models(protocol, events)) == {alias}


# ----- names equal, prefixes and Code Assist (a proxy of this module's own) --------------------


@pytest.fixture(scope="module")
def assist_sim() -> Iterator[CodeAssistSim]:
    with CodeAssistSim(api_keys={ASSIST_TOKEN}) as sim:
        yield sim


@pytest.fixture(scope="module")
def own_proxy(
    _openai_chat_sim_server: Simulator,
    _responses_sim_server: Simulator,
    _anthropic_sim_server: Simulator,
    _gemini_sim_server: Simulator,
    assist_sim: CodeAssistSim,
) -> Iterator[ProxyServer]:
    key = "sim-upstream-key"
    config = f"""
openai-compatibility:
  - name: chat-sim
    base-url: {_openai_chat_sim_server.base_url}
    api-key-entries: [{{api-key: {key}}}]
    models: [{{name: same-chat}}]
codex-api-key:
  - {{api-key: {key}, base-url: {_responses_sim_server.base_url}, models: [{{name: same-resp}}]}}
claude-api-key:
  - {{api-key: {key}, base-url: {_anthropic_sim_server.base_url}, models: [{{name: same-claude}}]}}
  - api-key: {key}
    base-url: {_anthropic_sim_server.base_url}
    prefix: team
    models: [{{name: prefixed-claude}}]
gemini-api-key:
  - {{api-key: {key}, base-url: {_gemini_sim_server.base_url}, models: [{{name: same-gemini}}]}}
"""
    with ProxyServer(config) as proxy:
        credential = Credential(
            f"gemini:{ASSIST_TOKEN}",
            ASSIST_TOKEN,
            assist_sim.base_url,
            account={"project_id": "proj-1", "email": "a@example.com"},
        )
        proxy.state.runtime.registry.add(
            "assist-alias", Candidate(GeminiCLIProvider(), credential, "gemini-2.5-pro")
        )
        yield proxy


SAME = {
    "openai_chat": ("same-chat", "openai_chat_sim"),
    "openai_responses": ("same-resp", "responses_sim"),
    "anthropic": ("same-claude", "anthropic_sim"),
    "gemini": ("same-gemini", "gemini_sim"),
}


@pytest.mark.parametrize("protocol", list(SAME))
def test_equal_names_relay_the_upstreams_stream_byte_for_byte(
    protocol: str,
    own_proxy: ProxyServer,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, fixture = SAME[protocol]
    sim: Simulator = request.getfixturevalue(fixture)
    sent: list[Frame] = []
    render = sim.render_stream

    def recording(reply: Reply, turn: Turn) -> list[Frame]:
        frames = render(reply, turn)
        sent.extend(frames)
        return frames

    monkeypatch.setattr(sim, "render_stream", recording)
    sim.queue(Reply.text(TEXT, chunk_size=5))

    # A Chat client that does not ask for usage gets the upstream's stream without the usage
    # chunk cliproxy asked for on its behalf (test_outcome_events); one that asks gets it all.
    extra = {"stream_options": {"include_usage": True}} if protocol == "openai_chat" else {}
    reply = _post(own_proxy.base_url, protocol, model, stream=True, **extra)

    assert sent and reply.content == b"".join(data for data, _ in sent)
    assert model in _stream_models(protocol, _events(reply.content))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_prefixed_name_comes_back_as_asked(
    stream: bool, own_proxy: ProxyServer, anthropic_sim: Simulator
) -> None:
    anthropic_sim.queue(Reply.text(TEXT))
    reply = _post(own_proxy.base_url, "anthropic", "team/prefixed-claude", stream)
    assert anthropic_sim.last_request.json["model"] == "prefixed-claude"
    if stream:
        assert _stream_models("anthropic", _events(reply.content)) == ["team/prefixed-claude"]
    else:
        assert reply.json()["model"] == "team/prefixed-claude"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_code_assist_replies_are_renamed_after_unwrapping(
    stream: bool, own_proxy: ProxyServer, assist_sim: CodeAssistSim
) -> None:
    assist_sim.reset()
    assist_sim.queue(Reply.text(TEXT, chunk_size=9))
    reply = _post(own_proxy.base_url, "gemini", "assist-alias", stream)
    assert assist_sim.last_request.json["model"] == "gemini-2.5-pro"
    if stream:
        events = _events(reply.content)
        assert all("response" not in event for event in events)
        assert set(_stream_models("gemini", events)) == {"assist-alias"}
        assert _stream_text("gemini", events) == TEXT
    else:
        assert reply.json()["modelVersion"] == "assist-alias"
    assert b"gemini-2.5-pro" not in reply.content
