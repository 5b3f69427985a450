"""`/api/provider/{provider}/...` over HTTP with the official SDKs: one model name served by
every provider here, and the pinned path decides which answers; listings show only the pinned
provider's models; a model it does not serve, or an unknown provider word, is 404 in the
protocol's shape with no upstream asked; the client-key check applies as on the plain routes."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.core import Simulator
from tests.simulators.fixtures import matrix_urls, own_matrix_sims

KEY = "sk-pinned-client"
# "shared" is served by all four upstreams; each has one model of its own besides.
CONFIG = """
demo: false
request-retry: 0
api-keys: [{key}]
openai-compatibility:
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: up-chat-key}}]
    models: [{{name: up-chat, alias: shared}}, {{name: up-chat, alias: chat-only}}]
codex-api-key:
  - api-key: up-resp-key
    base-url: {resp}
    models: [{{name: up-resp, alias: shared}}, {{name: up-resp, alias: openai-only}}]
claude-api-key:
  - api-key: up-claude-key
    base-url: {claude}
    models: [{{name: up-claude, alias: shared}}, {{name: up-claude, alias: claude-only}}]
gemini-api-key:
  - api-key: up-gemini-key
    base-url: {gemini}
    models: [{{name: up-gemini, alias: shared}}, {{name: up-gemini, alias: gemini-only}}]
"""


@pytest.fixture(scope="module")
def started() -> Iterator[tuple[dict[str, Simulator], ProxyServer]]:
    with (
        own_matrix_sims() as matrix,
        ProxyServer(CONFIG.format(key=KEY, **matrix_urls(matrix))) as server,
    ):
        names = {"chat-model": "chat", "resp-model": "openai", "claude-model": "anthropic"}
        names["gemini-model"] = "google"
        yield {names[model]: sim for model, sim in matrix.items()}, server


@pytest.fixture(scope="module")
def sims(started: tuple[dict[str, Simulator], ProxyServer]) -> dict[str, Simulator]:
    return started[0]


@pytest.fixture(scope="module")
def proxy(started: tuple[dict[str, Simulator], ProxyServer]) -> ProxyServer:
    return started[1]


@pytest.fixture(autouse=True)
def fresh(sims: dict[str, Simulator]) -> None:
    for name, sim in sims.items():
        sim.reset()
        sim.queue(*[Reply.text(f"from {name}")] * 3)


def answered_by(sims: dict[str, Simulator]) -> list[str]:
    return [name for name, sim in sims.items() if sim.requests]


def pinned(proxy: ProxyServer, word: str, tail: str = "") -> str:
    return f"{proxy.base_url}/api/provider/{word}{tail}"


@pytest.mark.parametrize("word", ["anthropic", "claude"])
def test_anthropic_messages_pinned_to_claude(proxy, sims, word: str) -> None:
    client = anthropic.Anthropic(base_url=pinned(proxy, word), api_key=KEY, max_retries=0)
    reply = client.messages.create(
        model="shared", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content[0].text == "from anthropic"  # type: ignore[union-attr]
    assert answered_by(sims) == ["anthropic"]
    with client.messages.stream(
        model="shared", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert stream.get_final_text() == "from anthropic"


@pytest.mark.parametrize("word", ["openai", "codex"])
def test_openai_chat_pinned_to_codex_keys(proxy, sims, word: str) -> None:
    client = openai.OpenAI(base_url=pinned(proxy, word, "/v1"), api_key=KEY, max_retries=0)
    reply = client.chat.completions.create(
        model="shared", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "from openai"
    assert answered_by(sims) == ["openai"]
    # The same through Responses, and through the path form without /v1.
    bare = openai.OpenAI(base_url=pinned(proxy, word), api_key=KEY, max_retries=0)
    assert bare.responses.create(model="shared", input="hi").output_text == "from openai"


def test_an_openai_compatibility_entry_is_pinned_by_its_name(proxy, sims) -> None:
    client = openai.OpenAI(base_url=pinned(proxy, "chat-sim"), api_key=KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="shared", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "from chat"
    assert answered_by(sims) == ["chat"]


@pytest.mark.parametrize("word", ["google", "gemini"])
def test_gemini_pinned_to_google(proxy, sims, word: str) -> None:
    client = genai.Client(
        api_key=KEY,
        http_options=genai_types.HttpOptions(base_url=pinned(proxy, word)),
    )
    reply = client.models.generate_content(model="shared", contents="hi")
    assert reply.text == "from google"
    assert answered_by(sims) == ["google"]


def test_a_pinned_listing_shows_only_that_providers_models(proxy) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    for word, own in (("anthropic", "claude-only"), ("openai", "openai-only")):
        for tail in ("/v1/models", "/models"):
            listed = httpx.get(pinned(proxy, word, tail), headers=headers).json()
            ids = {m["id"] for m in listed["data"]}
            assert ids == {"shared", own}, (word, tail, ids)
    gemini = httpx.get(pinned(proxy, "google", "/v1beta/models"), headers=headers).json()
    assert {m["name"] for m in gemini["models"]} == {"models/shared", "models/gemini-only"}
    one = httpx.get(pinned(proxy, "anthropic", "/v1/models/claude-only"), headers=headers)
    assert one.status_code == 200
    other = httpx.get(pinned(proxy, "anthropic", "/v1/models/openai-only"), headers=headers)
    assert other.status_code == 404


def test_a_model_the_pin_does_not_serve_is_404_and_no_upstream_is_asked(proxy, sims) -> None:
    client = anthropic.Anthropic(base_url=pinned(proxy, "anthropic"), api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as refused:
        client.messages.create(
            model="openai-only", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    body = refused.value.body
    assert isinstance(body, dict) and body["type"] == "error"  # Anthropic's shape
    assert "not served by provider 'anthropic'" in body["error"]["message"]
    assert answered_by(sims) == []


def test_an_unknown_provider_word_is_404_naming_the_known_ones(proxy, sims) -> None:
    client = openai.OpenAI(base_url=pinned(proxy, "nosuch", "/v1"), api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model="shared", messages=[{"role": "user", "content": "x"}])
    message = refused.value.message
    assert "no provider 'nosuch'" in message and "anthropic" in message and "chat-sim" in message
    assert answered_by(sims) == []
    # A pinned path that stands for no route is a plain 404.
    headers = {"authorization": f"Bearer {KEY}"}
    assert httpx.get(pinned(proxy, "anthropic", "/nothing"), headers=headers).status_code == 404


def test_the_client_key_check_applies_to_pinned_paths(proxy, sims) -> None:
    body = {"model": "shared", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    refused = httpx.post(pinned(proxy, "anthropic", "/v1/messages"), json=body)
    assert refused.status_code == 401
    assert refused.json()["type"] == "error"  # the Anthropic shape: the route is /v1/messages
    assert answered_by(sims) == []


def test_count_tokens_pinned(proxy, sims) -> None:
    client = anthropic.Anthropic(base_url=pinned(proxy, "claude"), api_key=KEY, max_retries=0)
    counted = client.messages.count_tokens(
        model="shared", messages=[{"role": "user", "content": "hi"}]
    )
    assert counted.input_tokens > 0
    assert answered_by(sims) in ([], ["anthropic"])  # counted upstream or locally, never others
