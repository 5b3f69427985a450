"""The Responses API over a WebSocket (`GET /v1/responses` with Upgrade), as the Codex CLI
speaks it first: turns on one socket, prewarm, previous_response_id rebuilt from the socket's
history, error frames that leave the socket open, the key check at the upgrade, a translated
upstream, fragmented frames and pings, hang-ups and cut upstream streams.

The client is the `websockets` library against the real proxy; upstreams are the simulators."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.e2e.test_outcome_events import Recorder, _wait_for
from tests.e2e.test_outcome_events import sims as sims
from tests.proxy_server import ProxyServer
from tests.simulators import Reply, Simulator
from tests.simulators.codex_backend_sim import CodexBackendSim

CLIENT_KEY = "ws-client-key"
UPSTREAM_KEY = "sim-upstream-key"
LIMITED_KEY = "ws-team-key"
CONFIG = """
api-keys: [{client_key}]
client-keys:
  - key: ws-team-key
    name: ws-team
    allowed-models: ["claude-*"]
    requests-per-minute: 2
codex-api-key:
  - api-key: {upstream}
    base-url: {resp}
    models: [{{name: up-resp, alias: resp-model}}]
  - api-key: {upstream}-2
    base-url: {resp}
    models: [{{name: up-resp, alias: resp-model}}]
claude-api-key:
  - api-key: {upstream}
    base-url: {claude}
    models: [{{name: up-claude, alias: claude-model}}]
"""
# What the Codex CLI sends on its upgrade (reference/clients.md, Codex CLI 0.169.0).
CODEX_HEADERS = {
    "authorization": f"Bearer {CLIENT_KEY}",
    "openai-beta": "responses_websockets=2026-02-06",
    "originator": "codex_exec",
    "x-codex-turn-state": "turn-state-abc",
}
TERMINAL = ("response.completed", "response.failed", "error")


@pytest.fixture(scope="module")
def proxy(sims: dict[str, Simulator]) -> Iterator[ProxyServer]:
    config = CONFIG.format(
        client_key=CLIENT_KEY,
        upstream=UPSTREAM_KEY,
        resp=sims["resp-model"].base_url,
        claude=sims["claude-model"].base_url,
    )
    with ProxyServer(config) as server:
        yield server


@pytest.fixture
def resp(sims: dict[str, Simulator], proxy: ProxyServer) -> Simulator:
    for sim in sims.values():
        sim.reset()
    proxy.state.cooldowns.clear()
    return sims["resp-model"]


def _url(proxy: ProxyServer, path: str = "/v1/responses") -> str:
    return proxy.base_url.replace("http://", "ws://") + path


def _run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _create(model: str = "resp-model", **fields: Any) -> str:
    return json.dumps({"type": "response.create", "model": model, **fields})


async def _turn(ws: ClientConnection) -> list[dict[str, Any]]:
    """The frames of one turn, through its terminal one."""
    frames = []
    while True:
        frame = json.loads(await ws.recv())
        frames.append(frame)
        if frame["type"] in TERMINAL:
            return frames


def _types(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["type"] for frame in frames]


# ----- turns -----------------------------------------------------------------------------------


def test_two_turns_on_one_socket_the_second_continuing_the_first(
    proxy: ProxyServer, resp: Simulator
) -> None:
    resp.queue(Reply.text("first answer"), Reply.text("second answer"))

    async def talk() -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            echoed = ws.response.headers.get("x-codex-turn-state")
            first = await ws.send(_create(input=[_user("hello")], store=False)) or await _turn(ws)
            previous = first[-1]["response"]["id"]
            await ws.send(
                json.dumps(
                    {
                        "type": "response.create",
                        "previous_response_id": previous,
                        "input": [_user("and now?")],
                    }
                )
            )
            second = await _turn(ws)
            return first, second, echoed

    first, second, echoed = _run(talk())
    assert echoed == "turn-state-abc"
    for frames, text in ((first, "first answer"), (second, "second answer")):
        types = _types(frames)
        assert types[0] == "response.created" and types[-1] == "response.completed", types
        assert "response.output_item.done" in types
        deltas = "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")
        assert deltas == text
    assert first[-1]["response"]["id"] and second[-1]["response"]["id"]
    assert first[-1]["response"]["id"] != second[-1]["response"]["id"]
    # The second turn went upstream as the whole conversation, without the id no upstream
    # knows, and with the model copied from the first.
    assert len(resp.requests) == 2
    sent = resp.requests[1].json
    assert "previous_response_id" not in sent and "type" not in sent
    assert sent["model"] == "up-resp" and sent["stream"] is True
    roles = [(i.get("type"), i.get("role")) for i in sent["input"]]
    assert roles == [("message", "user"), ("message", "assistant"), ("message", "user")]
    assert sent["input"][1]["content"][0]["text"] == "first answer"
    assert "id" not in sent["input"][1]  # store:false upstreams refuse ids they never kept
    # Each turn came to the upstream with the upgrade's headers, not the socket's own.
    headers = resp.requests[0].headers
    assert "sec-websocket-key" not in headers and "upgrade" not in headers


def test_a_stateful_upstream_continues_on_the_same_credential(
    proxy: ProxyServer, resp: Simulator
) -> None:
    """codex-api-key (the OpenAI platform) keeps responses unless store:false: the client's own
    continuation goes to the credential that holds the previous response, whichever the
    rotation would pick; when that upstream no longer knows the id, the whole conversation goes
    to the pool instead, and the client sees one normal turn."""
    expired = Reply.error(
        400, "Previous response with id 'x' not found.", code="previous_response_not_found"
    )
    resp.queue(Reply.text("one"), Reply.text("two"), expired, Reply.text("three"))

    async def talk() -> list[list[dict[str, Any]]]:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            turns = []
            await ws.send(_create(input=[_user("a")]))
            turns.append(await _turn(ws))
            for text in ("b", "c"):
                previous = turns[-1][-1]["response"]["id"]
                await ws.send(_create(input=[_user(text)], previous_response_id=previous))
                turns.append(await _turn(ws))
            return turns

    turns = _run(talk())
    assert [_types(t)[-1] for t in turns] == ["response.completed"] * 3
    first, second, refused, resent = resp.requests
    assert second.json["previous_response_id"] == turns[0][-1]["response"]["id"]
    assert [i["content"][0]["text"] for i in second.json["input"]] == ["b"]
    assert second.headers["authorization"] == first.headers["authorization"]
    assert refused.json["previous_response_id"] == turns[1][-1]["response"]["id"]
    assert refused.headers["authorization"] == first.headers["authorization"]
    assert "previous_response_id" not in resent.json
    texts = [i["content"][0]["text"] for i in resent.json["input"]]
    assert texts == ["a", "one", "b", "two", "c"]


def test_prewarm_is_answered_here_and_the_next_turn_continues_it(
    proxy: ProxyServer, resp: Simulator
) -> None:
    resp.queue(Reply.text("warm answer"))
    system = {"type": "message", "role": "developer", "content": "be brief"}

    async def talk() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            await ws.send(_create(input=[system], generate=False, store=False))
            warm = await _turn(ws)
            assert resp.requests == []  # answered without an upstream call
            previous = warm[0]["response"]["id"]
            await ws.send(
                json.dumps(
                    {
                        "type": "response.create",
                        "model": "resp-model",
                        "previous_response_id": previous,
                        "input": [_user("go")],
                    }
                )
            )
            return warm, await _turn(ws)

    warm, turn = _run(talk())
    assert _types(warm) == ["response.created", "response.completed"]
    assert warm[0]["sequence_number"] == 0 and warm[1]["sequence_number"] == 1
    assert warm[0]["response"]["id"].startswith("resp_prewarm_")
    assert warm[0]["response"]["status"] == "in_progress" and warm[0]["response"]["output"] == []
    assert warm[1]["response"]["usage"]["total_tokens"] == 0
    assert _types(turn)[-1] == "response.completed"
    sent = resp.last_request.json
    assert "generate" not in sent and "previous_response_id" not in sent
    assert [i.get("role") for i in sent["input"]] == ["developer", "user"]


def test_error_frames_leave_the_socket_open(proxy: ProxyServer, resp: Simulator) -> None:
    resp.queue(Reply.text("still serving"))

    async def talk() -> list[dict[str, Any]]:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            seen = []
            for frame in (
                _create(model="no-such-model", input="hi"),
                "this is not json",
                json.dumps({"type": "response.bogus"}),
                json.dumps([1, 2]),
                json.dumps({"type": "response.create", "input": "no model"}),
                _create(input="hi", previous_response_id="resp_from_elsewhere"),
            ):
                await ws.send(frame)
                seen.append(json.loads(await ws.recv()))
            await ws.send(_create(input=[_user("hello again")]))
            seen.append((await _turn(ws))[-1])
            return seen

    frames = _run(talk())
    errors, last = frames[:-1], frames[-1]
    assert [f["type"] for f in errors] == ["error"] * 6
    assert [f["status"] for f in errors] == [404, 400, 400, 400, 400, 409]
    for frame in errors:
        assert set(frame["error"]) >= {"type", "code", "message"}, frame
    assert "no-such-model" in errors[0]["error"]["message"]
    assert errors[0]["error"]["code"] == "model_not_found"
    assert all(f["error"]["code"] for f in errors)
    assert "type" in errors[2]["error"]["message"]
    assert "model" in errors[4]["error"]["message"]
    assert errors[5]["error"]["code"] == "previous_response_not_found"
    assert errors[5]["error"]["param"] == "previous_response_id"
    assert last["type"] == "response.completed"
    assert len(resp.requests) == 1  # none of the bad frames reached the upstream


def test_a_wrong_or_missing_client_key_is_refused_at_the_upgrade(proxy: ProxyServer) -> None:
    async def attempt(headers: dict[str, str]) -> InvalidStatus:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(_url(proxy), additional_headers=headers):
                pass
        return refused.value

    for headers, status, words in (
        ({}, 401, "missing API key"),
        ({"authorization": "Bearer wrong-key"}, 401, "invalid API key"),
        # A web page may open a socket to 127.0.0.1 with no CORS in the way: its Origin is
        # what gives it away.
        ({**CODEX_HEADERS, "origin": "https://evil.example"}, 403, "evil.example"),
    ):
        refused = _run(attempt(headers))
        assert refused.response.status_code == status
        body = json.loads(refused.response.body or b"{}")
        assert words in body["error"]["message"], body
        assert "wrong-key" not in (refused.response.body or b"").decode()


def test_a_plain_get_keeps_todays_reply(proxy: ProxyServer) -> None:
    reply = httpx.get(proxy.base_url + "/v1/responses", headers=CODEX_HEADERS, timeout=10)
    assert reply.status_code == 405
    assert reply.headers["allow"] == "POST"


def test_a_turn_to_an_anthropic_upstream_is_translated(
    proxy: ProxyServer, sims: dict[str, Simulator], resp: Simulator
) -> None:
    claude = sims["claude-model"]
    claude.queue(Reply.text("from claude"), Reply.text("claude again"))

    async def talk() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            await ws.send(_create(model="claude-model", input=[_user("hi claude")]))
            first = await _turn(ws)
            previous = first[-1]["response"]["id"]
            # No model: the socket's previous request names it.
            follow = {"type": "response.create", "input": [_user("more")]}
            await ws.send(json.dumps({**follow, "previous_response_id": previous}))
            return first, await _turn(ws)

    first, second = _run(talk())
    for frames, text in ((first, "from claude"), (second, "claude again")):
        assert _types(frames)[0] == "response.created"
        assert _types(frames)[-1] == "response.completed"
        deltas = "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")
        assert deltas == text
    sent = claude.last_request.json
    assert claude.last_request.path.endswith("/v1/messages")
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert resp.requests == []


def test_fragmented_frames_and_pings(proxy: ProxyServer, resp: Simulator) -> None:
    resp.queue(Reply.text("one two three four", delay=0.05))

    async def talk() -> list[dict[str, Any]]:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            latency = await asyncio.wait_for(await ws.ping(), 5)
            assert latency >= 0
            frame = _create(input=[_user("in pieces")])
            await ws.send(iter([frame[:7], frame[7:30], frame[30:]]))  # one message, 3 frames
            first = json.loads(await ws.recv())
            await asyncio.wait_for(await ws.ping(b"mid-turn"), 5)  # answered mid-stream too
            return [first, *await _turn(ws)]

    frames = _run(talk())
    assert _types(frames)[-1] == "response.completed"
    assert resp.last_request.json["input"][0]["content"][0]["text"] == "in pieces"


def test_a_client_that_leaves_mid_stream_ends_the_upstream_call(
    proxy: ProxyServer, resp: Simulator
) -> None:
    resp.queue(Reply.text("a slow answer " * 10, delay=0.3))
    recorder = Recorder()
    proxy.state.observers.subscribe(recorder)

    async def leave() -> None:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            await ws.send(_create(input=[_user("slowly")]))
            first = json.loads(await ws.recv())
            assert first["type"] == "response.created"
            assert _wait_for(lambda: resp.open_connections == 1, 2)

    try:
        started = time.monotonic()
        _run(leave())
        # The full answer would take 6 s; the upstream connection is gone well before.
        assert _wait_for(lambda: resp.open_connections == 0, 2.0)
        assert time.monotonic() - started < 4
        assert _wait_for(lambda: len(recorder.requests) == 1)
        assert recorder.requests[0].ending == "hung_up"
    finally:
        proxy.state.observers.unsubscribe(recorder)


def test_an_upstream_that_cuts_the_stream_gives_an_error_frame(
    proxy: ProxyServer, resp: Simulator
) -> None:
    resp.queue(Reply.text("one two three four five", cut_after=2), Reply.text("whole"))

    async def talk() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            await ws.send(_create(input=[_user("cut me")]))
            cut = await _turn(ws)
            await ws.send(_create(input=[_user("again")]))
            return cut, await _turn(ws)

    cut, again = _run(talk())
    assert "response.completed" not in _types(cut)
    assert _types(cut)[-1] in ("response.failed", "error")
    # One response per turn: the failure is the turn's own, not a second one opened for it.
    assert _types(cut).count("response.created") == 1
    assert cut[-1]["response"]["id"] == cut[0]["response"]["id"]
    assert _types(again)[-1] == "response.completed"


def test_each_turn_is_one_request_outcome(proxy: ProxyServer, resp: Simulator) -> None:
    resp.queue(Reply.text("one", input_tokens=7, output_tokens=3), Reply.text("two"))
    recorder = Recorder()
    proxy.state.observers.subscribe(recorder)

    async def talk() -> None:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            await ws.send(_create(input=[_user("a")], generate=False))
            await _turn(ws)
            for text in ("b", "c"):
                await ws.send(_create(input=[_user(text)]))
                await _turn(ws)
            await ws.send(_create(model="no-such-model", input="x"))
            await ws.recv()

    try:
        _run(talk())
        assert _wait_for(lambda: len(recorder.requests) == 3)
        time.sleep(0.05)
        events = recorder.requests
        assert len(events) == 3  # the prewarm asked no upstream and is no request
        first, second, unknown = events
        assert first.ending == second.ending == "completed"
        assert first.stream and first.requested_model == "resp-model"
        assert first.provider and first.path
        assert (first.input_tokens, first.output_tokens) == (7, 3)
        assert unknown.ending == "error" and unknown.status == 404
        assert all(CLIENT_KEY not in e.client_key and e.client_key for e in events)
    finally:
        proxy.state.observers.unsubscribe(recorder)


def test_the_pinned_path_and_the_codex_path_upgrade_too(
    proxy: ProxyServer, resp: Simulator
) -> None:
    async def one(path: str) -> list[dict[str, Any]]:
        async with connect(_url(proxy, path), additional_headers=CODEX_HEADERS) as ws:
            await ws.send(_create(input=[_user("hi")]))
            return await _turn(ws)

    for path in ("/api/provider/codex/v1/responses", "/backend-api/codex/responses"):
        assert _types(_run(one(path)))[-1] == "response.completed"

    async def pinned_elsewhere() -> dict[str, Any]:
        path = "/api/provider/anthropic/v1/responses"
        async with connect(_url(proxy, path), additional_headers=CODEX_HEADERS) as ws:
            await ws.send(_create(input=[_user("hi")]))
            frame: dict[str, Any] = json.loads(await ws.recv())
            return frame

    refused = _run(pinned_elsewhere())
    assert refused["type"] == "error" and refused["status"] == 404


def test_a_limited_client_key_is_held_to_its_policy_turn_by_turn(
    proxy: ProxyServer, sims: dict[str, Simulator], resp: Simulator
) -> None:
    claude = sims["claude-model"]
    headers = {**CODEX_HEADERS, "authorization": f"Bearer {LIMITED_KEY}"}
    recorder = Recorder()
    proxy.state.observers.subscribe(recorder)

    async def talk() -> list[dict[str, Any]]:
        async with connect(_url(proxy), additional_headers=headers) as ws:
            last = []
            for model in ("resp-model", "claude-model", "claude-model", "claude-model"):
                await ws.send(_create(model=model, input=[_user("hi")]))
                last.append((await _turn(ws))[-1])
            return last

    try:
        refused_model, one, two, over = _run(talk())
        assert refused_model["type"] == "error" and refused_model["status"] == 403
        assert refused_model["error"]["code"] == "model_not_allowed"
        assert one["type"] == two["type"] == "response.completed"
        assert over["type"] == "error" and over["status"] == 429  # requests-per-minute: 2
        assert resp.requests == [] and len(claude.requests) == 2
        assert _wait_for(lambda: len(recorder.requests) == 4)
        assert {e.client_key_name for e in recorder.requests} == {"ws-team"}
    finally:
        proxy.state.observers.unsubscribe(recorder)


def test_the_legacy_append_frame_continues_the_last_response(
    proxy: ProxyServer, resp: Simulator
) -> None:
    resp.queue(Reply.text("first"), Reply.text("second"))

    async def talk() -> tuple[dict[str, Any], dict[str, Any]]:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            await ws.send(json.dumps({"type": "response.append", "input": [_user("x")]}))
            premature = json.loads(await ws.recv())
            await ws.send(_create(input=[_user("a")], store=False))
            await _turn(ws)
            await ws.send(json.dumps({"type": "response.append", "input": [_user("b")]}))
            return premature, (await _turn(ws))[-1]

    premature, appended = _run(talk())
    assert premature["type"] == "error" and premature["status"] == 400
    assert appended["type"] == "response.completed"
    texts = [i["content"][0]["text"] for i in resp.last_request.json["input"]]
    assert texts == ["a", "first", "b"]


def test_a_codex_account_takes_the_socket_turns_through_pass_through(tmp_path: Path) -> None:
    """A ChatGPT (Codex) account: its backend stores nothing (store:false), so the second turn
    is the whole conversation, with the replayed items' ids left out, through its version gate
    and validation."""
    with CodexBackendSim(api_keys={"codex-at"}) as codex:
        account = {
            "type": "codex",
            "access_token": "codex-at",
            "refresh_token": "rt",
            "account_id": "acct-7",
            "email": "c@example.com",
            "expired": "2099-01-01T00:00:00Z",
            "base_url": codex.base_url,
        }
        (tmp_path / "codex-a.json").write_text(json.dumps(account))
        codex.queue(Reply.text("thought through", reasoning="hmm"), Reply.text("again"))
        headers = {
            **CODEX_HEADERS,
            "user-agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)",
            "version": "0.171.0",
        }
        config = f"auth-dir: {tmp_path}\napi-keys: [{CLIENT_KEY}]\n"
        with ProxyServer(config) as proxy:

            async def talk() -> list[list[dict[str, Any]]]:
                async with connect(_url(proxy), additional_headers=headers) as ws:
                    developer = {"type": "message", "role": "developer", "content": "be Codex"}
                    await ws.send(
                        _create(model="gpt-5.5", input=[developer], generate=False, store=False)
                    )
                    warm = await _turn(ws)
                    previous = warm[-1]["response"]["id"]
                    turns = [warm]
                    for text in ("hi", "more"):
                        # As the CLI sends each turn: the whole body but the old input.
                        frame = {"type": "response.create", "input": [_user(text)], "store": False}
                        await ws.send(json.dumps({**frame, "previous_response_id": previous}))
                        turns.append(await _turn(ws))
                        previous = turns[-1][-1]["response"]["id"]
                    return turns

            turns = _run(talk())
    assert [_types(t)[-1] for t in turns] == ["response.completed"] * 3
    assert len(codex.requests) == 2
    first, second = (r.json for r in codex.requests)
    assert first["store"] is False and "previous_response_id" not in second
    kinds = [(i.get("type"), i.get("role")) for i in second["input"]]
    assert kinds == [
        ("message", "developer"),
        ("message", "user"),
        ("reasoning", None),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert all("id" not in item for item in second["input"])
    assert codex.requests[1].headers["chatgpt-account-id"] == "acct-7"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_key_in_the_query_is_accepted_and_never_logged_whole(
    proxy: ProxyServer, resp: Simulator
) -> None:
    lines = _Lines()
    uvicorn_log = logging.getLogger("uvicorn.error")  # uvicorn's own line per upgrade
    uvicorn_log.addHandler(lines)
    level = uvicorn_log.level
    uvicorn_log.setLevel(logging.INFO)  # as `serve` runs it (log_level info)
    url = _url(proxy) + f"?key={CLIENT_KEY}&x=1"

    async def talk() -> str:
        async with connect(url) as ws:
            await ws.send(_create(input=[_user("hi")]))
            return str((await _turn(ws))[-1]["type"])

    try:
        assert _run(talk()) == "response.completed"
    finally:
        uvicorn_log.removeHandler(lines)
        uvicorn_log.setLevel(level)
    upgrades = [line for line in lines.lines if "WebSocket /v1/responses" in line]
    assert upgrades and all("key=<redacted>&x=1" in line for line in upgrades), upgrades
    assert not any(CLIENT_KEY in line for line in lines.lines)


def test_frames_sent_during_a_turn_wait_for_it(proxy: ProxyServer, resp: Simulator) -> None:
    resp.queue(Reply.text("slow one", delay=0.1), Reply.text("then two"))

    async def talk() -> list[list[dict[str, Any]]]:
        async with connect(_url(proxy), additional_headers=CODEX_HEADERS) as ws:
            await ws.send(_create(input=[_user("1")], store=False))
            await ws.send(_create(input=[_user("2")], store=False))
            return [await _turn(ws), await _turn(ws)]

    first, second = _run(talk())
    for frames, text in ((first, "slow one"), (second, "then two")):
        assert _types(frames)[-1] == "response.completed"
        deltas = "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")
        assert deltas == text
