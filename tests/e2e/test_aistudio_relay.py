"""AI Studio Build relays over `GET /v1/ws`: a simulated relay page (tests/e2e/relay_app.py)
connects to the real proxy, becomes an `aistudio` credential, and answers the requests the
official SDKs send, plain and streamed; a relay that goes away mid-stream fails the stream and
takes its credential with it; ws-auth decides who may connect."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from cliproxy.config import load_config, parse_config_text
from cliproxy.server.access import relay_refusal
from cliproxy.state import build_runtime
from tests.e2e.clients import ask
from tests.e2e.relay_app import ANSWER, RelayApp
from tests.proxy_server import ProxyServer, management_client

CLIENT_KEY = "relay-client-key"
MGMT_KEY = "relay-mgmt-secret"
NAME = "aistudio-abcdefgh12345678"


def _wait(condition: Callable[[], object], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _ws(proxy: ProxyServer, query: str = "") -> str:
    return proxy.base_url.replace("http://", "ws://") + "/v1/ws" + query


def _credentials(proxy: ProxyServer) -> set[str]:
    return {c for c in proxy.state.runtime.registry.credentials() if c.startswith("aistudio-")}


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyServer]:
    with ProxyServer(f"api-keys: [{CLIENT_KEY}]\n") as server:
        yield server


@pytest.fixture
def relay(proxy: ProxyServer) -> Iterator[RelayApp]:
    app = RelayApp(_ws(proxy, f"?id={NAME}")).connect()
    _wait(lambda: NAME in _credentials(proxy))
    yield app
    app.close()
    _wait(lambda: not _credentials(proxy))


# ----- requests routed to the relay ------------------------------------------------------------


@pytest.mark.parametrize("client", ["openai_chat", "gemini", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_sdk_requests_are_answered_by_the_relay(
    proxy: ProxyServer, relay: RelayApp, client: str, stream: bool
) -> None:
    answer = ask(client, proxy.base_url, "gemini-2.5-flash", "say hello", stream, CLIENT_KEY)

    assert answer.text == ANSWER
    assert (answer.input_tokens, answer.output_tokens, answer.finish) == (3, 4, "stop")
    (frame,) = relay.requests
    payload = frame["payload"]
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    assert payload["url"] == (
        f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:{method}"
    )
    assert payload["method"] == "POST"
    assert frame["id"].startswith(NAME)
    body = json.loads(payload["body"])
    assert body["contents"][-1]["parts"][0]["text"] == "say hello"
    assert "model" not in body
    # The relay calls Google with the user's own session: no key of ours goes to the page.
    assert not any("key" in name.lower() for name in payload["headers"])
    assert payload["sent_at"].endswith("Z")


def test_a_gemini_family_name_is_routed_too(proxy: ProxyServer, relay: RelayApp) -> None:
    answer = ask("gemini", proxy.base_url, "gemini-9-experimental", "hi", False, CLIENT_KEY)
    assert answer.text == ANSWER
    assert relay.requests[0]["payload"]["url"].endswith("/gemini-9-experimental:generateContent")


def test_the_provider_can_be_pinned(proxy: ProxyServer, relay: RelayApp) -> None:
    base = proxy.base_url + "/api/provider/aistudio"
    answer = ask("openai_chat", base, "gemini-2.5-flash", "hi", False, CLIENT_KEY)
    assert answer.text == ANSWER and len(relay.requests) == 1


def test_count_tokens_goes_through_the_relay(proxy: ProxyServer, relay: RelayApp) -> None:
    reply = httpx.post(
        proxy.base_url + "/v1beta/models/gemini-2.5-pro:countTokens",
        headers={"x-goog-api-key": CLIENT_KEY},
        json={"contents": [{"role": "user", "parts": [{"text": "count me"}]}]},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["totalTokens"] == 5
    assert relay.requests[0]["payload"]["url"].endswith("/gemini-2.5-pro:countTokens")


def test_models_lists_the_relay_while_it_is_connected(proxy: ProxyServer) -> None:
    def listed() -> dict[str, str]:
        reply = httpx.get(
            proxy.base_url + "/v1/models", headers={"authorization": f"Bearer {CLIENT_KEY}"}
        )
        return {m["id"]: m["owned_by"] for m in reply.json()["data"]}

    assert "gemini-2.5-flash" not in listed()
    app = RelayApp(_ws(proxy)).connect()
    try:
        _wait(lambda: _credentials(proxy))
        (name,) = _credentials(proxy)
        assert len(name) == len("aistudio-") + 16 and name[9:].isalnum() and name.islower()
        assert listed()["gemini-2.5-flash"] == "aistudio"
    finally:
        app.close()
    _wait(lambda: not _credentials(proxy))
    assert "gemini-2.5-flash" not in listed()
    with pytest.raises(openai.NotFoundError):
        ask("openai_chat", proxy.base_url, "gemini-2.5-flash", "hi", False, CLIENT_KEY)


def test_a_relay_error_frame_is_the_upstream_error(proxy: ProxyServer, relay: RelayApp) -> None:
    relay.mode = "error"
    with pytest.raises(openai.RateLimitError) as raised:
        ask("openai_chat", proxy.base_url, "gemini-2.5-flash", "hi", False, CLIENT_KEY)
    assert "quota exhausted" in str(raised.value)
    proxy.state.cooldowns.clear()


# ----- the relay going away --------------------------------------------------------------------


def test_disconnect_mid_stream_ends_the_stream_with_an_error(proxy: ProxyServer) -> None:
    app = RelayApp(_ws(proxy)).connect()
    _wait(lambda: _credentials(proxy))
    app.mode = "cut"
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    texts = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            texts.extend(c.delta.content or "" for c in chunk.choices)
    assert "stream was cut off" in str(raised.value)
    assert "".join(texts) == "hello"  # what came before the cut
    _wait(lambda: not _credentials(proxy))
    app.close()


def test_disconnect_before_answering_fails_the_attempt(proxy: ProxyServer) -> None:
    silent = RelayApp(_ws(proxy)).connect()
    _wait(lambda: _credentials(proxy))
    silent.mode = "silent"  # takes the request, answers nothing, then leaves

    future = silent.leave_after_a_request()
    with pytest.raises(openai.APIStatusError) as raised:
        ask("openai_chat", proxy.base_url, "gemini-2.5-flash", "hi", False, CLIENT_KEY)
    future.result(5)
    assert raised.value.status_code == 502
    assert "disconnected" in str(raised.value)
    _wait(lambda: not _credentials(proxy))
    silent.close()


def test_the_pool_moves_on_when_a_relay_leaves_before_answering(proxy: ProxyServer) -> None:
    silent = RelayApp(_ws(proxy)).connect()
    _wait(lambda: len(_credentials(proxy)) == 1)
    silent.mode = "silent"
    other = RelayApp(_ws(proxy)).connect()
    _wait(lambda: len(_credentials(proxy)) == 2)

    leaving = silent.leave_after_a_request()
    try:
        # Round-robin: within two requests the silent relay is asked once, and leaves.
        for _ in range(2):
            answer = ask("openai_chat", proxy.base_url, "gemini-2.5-flash", "hi", False, CLIENT_KEY)
            assert answer.text == ANSWER
        leaving.result(5)
        assert len(silent.requests) == 1 and len(other.requests) == 2
        _wait(lambda: len(_credentials(proxy)) == 1)
    finally:
        other.close()
        silent.close()
    _wait(lambda: not _credentials(proxy))


def test_a_second_connection_with_the_same_id_replaces_the_first(proxy: ProxyServer) -> None:
    first = RelayApp(_ws(proxy, f"?id={NAME}")).connect()
    _wait(lambda: NAME in _credentials(proxy))
    second = RelayApp(_ws(proxy, f"?id={NAME}")).connect()
    try:
        assert first.closed.wait(5)  # the proxy closed the old socket
        time.sleep(0.1)
        assert _credentials(proxy) == {NAME}  # the new one kept the name
        answer = ask("gemini", proxy.base_url, "gemini-2.5-flash", "hi", False, CLIENT_KEY)
        assert answer.text == ANSWER
        assert (len(first.requests), len(second.requests)) == (0, 1)
    finally:
        second.close()
        first.close()
    _wait(lambda: not _credentials(proxy))


def test_a_bad_id_is_refused_with_a_reason(proxy: ProxyServer) -> None:
    async def talk() -> tuple[dict[str, object], int | None]:
        async with connect(_ws(proxy, "?id=not-a-relay")) as ws:
            frame = json.loads(await ws.recv())
            await ws.wait_closed()
            return frame, ws.close_code

    frame, code = asyncio.run(talk())
    assert frame["type"] == "error"
    assert "not-a-relay" in str(frame["payload"]) and "aistudio-<16" in str(frame["payload"])
    assert code == 1008
    assert not _credentials(proxy)


# ----- frames ----------------------------------------------------------------------------------


def test_app_level_ping_is_answered_and_bad_frames_are_named(
    proxy: ProxyServer, relay: RelayApp
) -> None:
    relay.send({"id": "p-1", "type": "ping"})
    relay.send("{not json")
    relay.send({"id": "x", "type": "stream_chunk", "payload": {"data": "?"}})
    relay.send({"id": "y", "type": "mystery"})
    _wait(lambda: len(relay.received) >= 4)
    pong, *errors = relay.received[:4]
    assert pong == {"id": "p-1", "type": "pong"}
    messages = [e["payload"]["error"] for e in errors]
    assert [e["type"] for e in errors] == ["error"] * 3
    assert messages[0].startswith("not JSON")
    assert "'x' answers no outstanding request" in messages[1]
    assert "unknown frame type 'mystery'" in messages[2]
    # The socket stays up and serving after bad frames.
    assert ask("gemini", proxy.base_url, "gemini-2.5-flash", "hi", False, CLIENT_KEY).text == ANSWER


def test_the_proxy_pings_and_closes_a_silent_relay(proxy: ProxyServer) -> None:
    hub = proxy.state.relays
    hub.ping_interval, hub.read_deadline = 0.1, 0.6
    try:
        app = RelayApp(_ws(proxy)).connect()
        _wait(lambda: sum(f["type"] == "ping" for f in app.received) >= 3)
        assert app.received[0]["id"] == "ping-1"
        assert not app.closed.is_set()  # its pongs keep it alive past the read deadline
        app.close()
        _wait(lambda: not _credentials(proxy))
        # A relay that never answers (here: its pings go unanswered, it sends nothing).
        hub.ping_interval = 30

        async def mute() -> int | None:
            async with connect(_ws(proxy)) as ws:
                await ws.wait_closed()
                return ws.close_code

        assert asyncio.run(asyncio.wait_for(mute(), 5)) == 1001
    finally:
        hub.ping_interval, hub.read_deadline = 30.0, 60.0
    _wait(lambda: not _credentials(proxy))


# ----- who may connect -------------------------------------------------------------------------


def test_the_relay_admission_decision() -> None:
    keyed = build_runtime(parse_config_text(f"api-keys: [{CLIENT_KEY}]\n", "c"))
    keyless = build_runtime(parse_config_text("port: 1\n", "c"))
    # ws-auth off: this machine only, key or not.
    assert relay_refusal(False, keyed, None, "127.0.0.1") is None
    assert relay_refusal(False, keyed, None, "::1") is None
    for peer in ("192.168.1.20", "10.0.0.5", None):
        refusal = relay_refusal(False, keyed, CLIENT_KEY, peer)
        assert refusal is not None and refusal.status == 403 and "ws-auth" in refusal.message
    # ws-auth on: a valid client key, from anywhere.
    assert relay_refusal(True, keyed, CLIENT_KEY, "192.168.1.20") is None
    refused = relay_refusal(True, keyed, None, "127.0.0.1")
    assert refused is not None and refused.status == 401
    refused = relay_refusal(True, keyed, "wrong", "127.0.0.1")
    assert refused is not None and refused.status == 401
    refused = relay_refusal(True, keyless, None, "127.0.0.1")
    assert refused is not None and refused.status == 403 and "no api-keys" in refused.message


def test_ws_auth_off_refuses_pages_of_other_sites(proxy: ProxyServer) -> None:
    async def attempt(origin: str) -> None:
        async with connect(_ws(proxy), origin=origin) as ws:  # type: ignore[arg-type]
            await ws.close()

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(attempt("https://evil.example"))
    assert refused.value.response.status_code == 403
    asyncio.run(attempt("http://localhost:5173"))  # a page on this machine may


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"api-keys: [{CLIENT_KEY}]\nremote-management:\n  secret-key: {MGMT_KEY}\n"
        f"auth-dir: {tmp_path / 'auths'}\nws-auth: false\n"
    )
    with ProxyServer(load_config(path), config_path=path) as server:
        yield server


def test_ws_auth_on_needs_the_client_key_and_closes_keyless_sessions(keyed: ProxyServer) -> None:
    old = RelayApp(_ws(keyed)).connect()  # admitted while ws-auth is off
    _wait(lambda: _credentials(keyed))
    (name,) = _credentials(keyed)
    with management_client(keyed, MGMT_KEY) as api:
        # A config change rebuilds the registry; the relay's credential stays while it lives.
        assert api.put("/debug", json={"value": True}).status_code == 200
        _wait(lambda: keyed.state.runtime.config.debug)
        assert _credentials(keyed) == {name}
        keyed.state.rebuild()  # as an auth-dir change does
        assert _credentials(keyed) == {name}
        assert api.get("/ws-auth").json() == {"ws-auth": False}
        assert api.put("/ws-auth", json={"value": True}).status_code == 200
        assert api.get("/ws-auth").json() == {"ws-auth": True}
    assert old.closed.wait(5)  # turning ws-auth on closed it
    _wait(lambda: not _credentials(keyed))
    old.close()

    async def attempt(url: str, headers: dict[str, str], origin: str | None = None) -> None:
        async with connect(url, additional_headers=headers, origin=origin) as ws:  # type: ignore[arg-type]
            await ws.close()

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(attempt(_ws(keyed), {}))
    assert refused.value.response.status_code == 401
    assert b"missing API key" in refused.value.response.body
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(attempt(_ws(keyed), {"authorization": "Bearer wrong"}))
    assert refused.value.response.status_code == 401
    # The key as a bearer token, as x-api-key or as ?key=; from AI Studio's origin too.
    asyncio.run(attempt(_ws(keyed), {"authorization": f"Bearer {CLIENT_KEY}"}))
    asyncio.run(attempt(_ws(keyed), {"x-api-key": CLIENT_KEY}, "https://aistudio.google.com"))
    page = RelayApp(_ws(keyed, f"?key={CLIENT_KEY}")).connect()
    try:
        _wait(lambda: _credentials(keyed))
        answer = ask("openai_chat", keyed.base_url, "gemini-2.5-flash", "hi", True, CLIENT_KEY)
        assert answer.text == ANSWER
    finally:
        page.close()
