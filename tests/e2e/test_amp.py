"""The Amp CLI through cliproxy (docs/amp.md), over HTTP against a real server: Amp's control
plane goes to the Amp simulator with Amp's key in place of the client's; model calls are
answered here when a local credential serves the model (or a mapping names one), and go on
to Amp's upstream otherwise; replies served here are rewritten the way Amp needs."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, GeminiSim, Reply
from tests.simulators.amp_sim import UPSTREAM_KEY, AmpSim

CLIENT_KEY = "amp-client-key"
MAPPED_CLIENT = "amp-mapped-client"
MAPPED_UPSTREAM = "amp-mapped-upstream"
CONFIG = """
demo: false
request-retry: 0
api-keys: [{client}, {mapped_client}]
claude-api-key:
  - api-key: local-claude-key
    base-url: {local}
    models:
      - {{name: claude-sonnet-4-5, alias: claude-local}}
      - {{name: claude-haiku-4-5, alias: local-target}}
gemini-api-key:
  - api-key: local-gemini-key
    base-url: {gemini}
    models: [{{name: gemini-2.5-flash, alias: gem-local}}]
ampcode:
  upstream-url: {amp}
  upstream-api-key: {upstream}
  upstream-api-keys:
    - upstream-api-key: {mapped_upstream}
      api-keys: [{mapped_client}]
  model-mappings:
    - {{from: "claude-opus-.*", to: local-target}}
    - {{from: gemini-3-mapped, to: gem-local}}
"""
TOOLS = [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}]


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[AnthropicSim, AmpSim]]:
    with (
        AnthropicSim(api_keys={"local-claude-key"}) as local,
        AmpSim(upstream_keys={UPSTREAM_KEY, MAPPED_UPSTREAM}) as amp,
    ):
        yield local, amp


@pytest.fixture(scope="module")
def gemini() -> Iterator[GeminiSim]:
    with GeminiSim(api_keys={"local-gemini-key"}) as sim:
        yield sim


@pytest.fixture(scope="module")
def proxy(sims: tuple[AnthropicSim, AmpSim], gemini: GeminiSim) -> Iterator[ProxyServer]:
    local, amp = sims
    text = CONFIG.format(
        client=CLIENT_KEY,
        mapped_client=MAPPED_CLIENT,
        mapped_upstream=MAPPED_UPSTREAM,
        upstream=UPSTREAM_KEY,
        local=local.base_url,
        gemini=gemini.base_url,
        amp=amp.base_url,
    )
    with ProxyServer(text) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(sims: tuple[AnthropicSim, AmpSim]) -> None:
    for sim in sims:
        sim.reset()


def _client(proxy: ProxyServer, key: str = CLIENT_KEY) -> httpx.Client:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=proxy.base_url, headers=headers, timeout=10)


def _sdk(proxy: ProxyServer) -> anthropic.Anthropic:
    base = proxy.base_url + "/api/provider/anthropic"
    return anthropic.Anthropic(base_url=base, api_key=CLIENT_KEY, max_retries=0)


def _ask(proxy: ProxyServer, model: str) -> anthropic.types.Message:
    return _sdk(proxy).messages.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )


def _text(message: anthropic.types.Message) -> str:
    block = message.content[0]
    assert block.type == "text"
    return block.text


def _assert_amp_auth(headers: dict[str, str], key: str = UPSTREAM_KEY) -> None:
    assert headers["x-api-key"] == key
    assert headers["authorization"] == f"Bearer {key}"
    assert CLIENT_KEY not in " ".join(headers.values())
    assert "x-goog-api-key" not in headers


# --- control plane ---------------------------------------------------------------------


def test_control_plane_goes_upstream_with_amps_key(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    _, amp = sims
    with _client(proxy) as client:
        reply = client.get("/api/user", params={"a": "1"}, headers={"x-goog-api-key": CLIENT_KEY})
        posted = client.post("/api/threads/T-1/messages", json={"text": "hi"})
        google = client.get("/api/provider/google/v1beta1/projects/p/locations")
    assert reply.status_code == 200, reply.text
    assert reply.json()["path"] == "/api/user" and reply.json()["query"] == {"a": "1"}
    assert reply.headers["x-amp-sim"] == "control"
    # The upstream's CORS headers are blanked; cliproxy answers CORS itself.
    assert not [name for name in reply.headers if name.startswith("access-control-")]
    assert posted.json()["body"] == {"text": "hi"}
    assert google.json()["path"] == "/api/provider/google/v1beta1/projects/p/locations"
    assert [r.path for r in amp.requests] == [
        "/api/user",
        "/api/threads/T-1/messages",
        "/api/provider/google/v1beta1/projects/p/locations",
    ]
    for rec in amp.requests:
        _assert_amp_auth(rec.headers)


def test_gzip_body_without_content_encoding_is_unpacked(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    packed = gzip.compress(orjson.dumps({"event": "started"}))
    with _client(proxy) as client:
        reply = client.post(
            "/api/telemetry", content=packed, headers={"content-type": "application/json"}
        )
    assert reply.status_code == 200
    assert sims[1].last_request.json == {"event": "started"}


def test_each_client_key_may_have_its_own_upstream_key(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    with _client(proxy, MAPPED_CLIENT) as client:
        assert client.get("/api/user").status_code == 200
    headers = sims[1].last_request.headers
    _assert_amp_auth(headers, MAPPED_UPSTREAM)
    assert MAPPED_CLIENT not in " ".join(headers.values())


def test_browser_pages_need_no_client_key_the_api_does(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    with _client(proxy, key="") as browser:
        page = browser.get("/threads/T-42")
        settings = browser.get("/settings")
        api = browser.get("/api/user")
        wrong = browser.get("/api/user", headers={"authorization": "Bearer nope"})
        redirect = browser.get("/auth/sign-in")
    assert page.status_code == 200 and page.json()["path"] == "/threads/T-42"
    assert settings.status_code == 200
    assert api.status_code == 401 and wrong.status_code == 401
    # Amp's redirect reaches the browser; cliproxy does not follow it.
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "https://ampcode.com/welcome"
    assert [r.path for r in sims[1].requests] == ["/threads/T-42", "/settings", "/auth/sign-in"]
    _assert_amp_auth(sims[1].requests[0].headers)


# --- model calls -----------------------------------------------------------------------


def test_a_model_served_here_never_reaches_amp(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    local, amp = sims
    local.queue(Reply.tool_call("bash", {"cmd": "ls"}))
    message = _sdk(proxy).messages.create(
        model="claude-local",
        max_tokens=64,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "list files"}],
    )
    assert not amp.requests
    assert local.last_request.json["model"] == "claude-sonnet-4-5"
    (block,) = [b for b in message.content if b.type == "tool_use"]
    # Re-cased to the casing Amp declared, with the empty signature Amp's TUI reads.
    assert block.name == "Bash"
    assert block.model_extra == {"signature": ""} or getattr(block, "signature", None) == ""
    assert message.model == "claude-local"


def _events(raw: bytes) -> list[dict[str, Any]]:
    return [
        orjson.loads(line[5:])
        for line in raw.splitlines()
        if line.startswith(b"data:") and line[5:].strip().startswith(b"{")
    ]


def test_a_stream_served_here_is_rewritten_too(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    local, amp = sims
    local.queue(Reply.tool_call("bash", {"cmd": "ls"}))
    body = {
        "model": "claude-opus-4-5",  # mapped to local-target
        "max_tokens": 64,
        "stream": True,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "list files"}],
    }
    headers = {"anthropic-version": "2023-06-01"}
    with _client(proxy) as client:
        reply = client.post("/api/provider/anthropic/v1/messages", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert not amp.requests
    assert local.last_request.json["model"] == "claude-haiku-4-5"
    events = _events(reply.content)
    start = next(e for e in events if e["type"] == "message_start")
    assert start["message"]["model"] == "claude-opus-4-5"
    blocks = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    (tool,) = [b for b in blocks if b["type"] == "tool_use"]
    assert tool["name"] == "Bash" and tool["signature"] == ""


def test_a_mapped_model_is_answered_here_under_its_own_name(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    local, amp = sims
    local.queue(Reply.text("mapped"))
    message = _ask(proxy, "claude-opus-4-1")
    assert not amp.requests
    assert local.last_request.json["model"] == "claude-haiku-4-5"
    assert message.model == "claude-opus-4-1"
    assert _text(message) == "mapped"


def test_a_model_nobody_here_serves_goes_to_amp_unchanged(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    local, amp = sims
    amp.queue(Reply.text("from amp"))
    message = _ask(proxy, "claude-fable-9")
    assert not local.requests
    rec = amp.last_request
    assert rec.path == "/api/provider/anthropic/v1/messages"
    assert rec.json["model"] == "claude-fable-9"
    _assert_amp_auth(rec.headers)
    assert _text(message) == "from amp"


def test_plain_routes_are_not_amps(proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]) -> None:
    """Only Amp's paths fall back: /v1/messages for an unknown model stays cliproxy's 404."""
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="claude-fable-9", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert not sims[1].requests


def test_a_fallback_stream_is_relayed_as_it_comes(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    local, amp = sims
    amp.queue(Reply.text("streamed by amp", chunk_size=4))
    with _sdk(proxy).messages.stream(
        model="claude-fable-9", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        pieces = list(stream.text_stream)
    assert "".join(pieces) == "streamed by amp" and len(pieces) > 1
    assert amp.last_request.json["stream"] is True
    assert not local.requests


def test_amps_gemini_calls_fall_back_on_their_own_path(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim]
) -> None:
    """A Gemini model nobody here serves: the Vertex-style path Amp used goes upstream as is."""
    path = "/api/provider/google/v1beta1/publishers/google/models/gemini-9-pro:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    with _client(proxy, key="") as client:
        # The Gemini SDK's habit: the client key as ?key=, which must not reach Amp.
        reply = client.post(path, json=body, params={"key": CLIENT_KEY, "alt": "sse"})
        counted = client.post(
            "/api/provider/anthropic/v1/messages/count_tokens",
            json={"model": "claude-fable-9", "messages": [{"role": "user", "content": "x"}]},
            headers={"anthropic-version": "2023-06-01", "x-api-key": CLIENT_KEY},
        )
    assert reply.status_code == 200, reply.text
    assert sims[1].requests[0].query == {"alt": "sse"}
    assert [r.path for r in sims[1].requests] == [
        path,
        "/api/provider/anthropic/v1/messages/count_tokens",
    ]
    assert sims[1].requests[0].json == body
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    _assert_amp_auth(sims[1].requests[0].headers)


def test_a_mapped_gemini_call_is_answered_here(
    proxy: ProxyServer, sims: tuple[AnthropicSim, AmpSim], gemini: GeminiSim
) -> None:
    """On Amp's Vertex-style Gemini path the model is in the path: the mapping rewrites it
    there, and the reply's modelVersion names the model Amp asked for."""
    gemini.reset()
    gemini.queue(Reply.text("from gemini"))
    path = "/api/provider/google/v1beta1/publishers/google/models/gemini-3-mapped:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    with _client(proxy) as client:
        reply = client.post(path, json=body)
    assert reply.status_code == 200, reply.text
    assert not sims[1].requests
    assert gemini.last_request.path.endswith("/models/gemini-2.5-flash:generateContent")
    answer = reply.json()
    assert answer["modelVersion"] == "gemini-3-mapped"
    assert answer["candidates"][0]["content"]["parts"][0]["text"] == "from gemini"
