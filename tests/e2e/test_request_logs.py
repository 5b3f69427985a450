"""Request logs over HTTP: with request-log on, one file per generation request with the client
request, each upstream exchange and the reply; with it off, only failed requests, as error
files capped in number; the total size cap; the management downloads, the listing and the
read-back of one request with its chain of attempts (a model fallback's too); and no secret the
test configured reaches a file or an error body in full."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from cliproxy.config import parse_config_text
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, OpenAIChatSim, Reply

CLIENT_KEY = "client-key-7f3a9b2c4d5e6f"
UPSTREAM_KEYS = ("upstream-chat-a1b2c3d4e5", "upstream-chat-f6e5d4c3b2")
CLAUDE_KEY = "upstream-claude-0a9b8c7d6e"
MANAGEMENT_KEY = "management-key-5k4j3h2g1f"
ACCESS_TOKEN = "account-access-9z8y7x6w5v4u"
REFRESH_TOKEN = "account-refresh-1q2w3e4r5t6y"
SECRETS = (CLIENT_KEY, *UPSTREAM_KEYS, CLAUDE_KEY, MANAGEMENT_KEY, ACCESS_TOKEN, REFRESH_TOKEN)

CONFIG = """
api-keys: [{client_key}]
auth-dir: {auth_dir}
request-retry: 0
max-retry-interval: 0
remote-management:
  secret-key: {management_key}
request-log: {request_log}
error-logs-max-files: {max_files}
logs-max-total-size-mb: {cap_mb}
openai-compatibility:
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: {key_a}}}, {{api-key: {key_b}}}]
    models: [{{name: up-chat, alias: chat-model}}, {{name: up-flaky, alias: flaky-model}}]
claude-api-key:
  - api-key: {claude_key}
    base-url: {claude}
    models: [{{name: up-claude, alias: claude-model}}]
model-fallbacks:
  flaky-model: [claude-model]
"""
NAME = re.compile(r"(error-)?v1-chat-completions-\d{4}-\d{2}-\d{2}T\d{6}-([0-9a-f]{8})\.log")


@pytest.fixture(scope="module")
def sims(
    _openai_chat_sim_server: OpenAIChatSim, _anthropic_sim_server: AnthropicSim
) -> tuple[OpenAIChatSim, AnthropicSim]:
    """The session's simulators (tests/e2e/conftest.py), reset before each test (``logs``)."""
    return _openai_chat_sim_server, _anthropic_sim_server


@pytest.fixture(scope="module")
def auth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("reqlog-auth")
    account = {
        "type": "claude",
        "email": "someone@example.com",
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "expired": "2099-01-01T00:00:00Z",
    }
    (directory / "someone.json").write_bytes(orjson.dumps(account))
    return directory


Configure = Callable[..., None]


@pytest.fixture(scope="module")
def proxy(
    sims: tuple[OpenAIChatSim, AnthropicSim], auth_dir: Path
) -> Iterator[tuple[ProxyServer, Configure]]:
    chat, claude = sims

    def text(request_log: bool = True, max_files: int = 10, cap_mb: int = 0) -> str:
        return CONFIG.format(
            client_key=CLIENT_KEY,
            auth_dir=auth_dir,
            management_key=MANAGEMENT_KEY,
            request_log=str(request_log).lower(),
            max_files=max_files,
            cap_mb=cap_mb,
            chat=chat.base_url,
            key_a=UPSTREAM_KEYS[0],
            key_b=UPSTREAM_KEYS[1],
            claude_key=CLAUDE_KEY,
            claude=claude.base_url,
        )

    with ProxyServer(text()) as server:

        def configure(**options: object) -> None:
            # A hot reload: the middleware reads the config at each request.
            server.state.apply(parse_config_text(text(**options), "reload.yaml"))  # type: ignore[arg-type]

        yield server, configure


@pytest.fixture
def logs(
    proxy: tuple[ProxyServer, Configure],
    sims: tuple[OpenAIChatSim, AnthropicSim],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    monkeypatch.setenv("WRITABLE_PATH", str(tmp_path))
    for sim in sims:
        sim.reset()
    proxy[0].state.cooldowns.clear()
    proxy[1]()  # request-log on, the default caps
    return tmp_path / "logs"


def _chat(proxy: ProxyServer, content: str = "hello", **body: object) -> httpx.Response:
    return httpx.post(
        f"{proxy.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {CLIENT_KEY}", "X-Management-Key": MANAGEMENT_KEY},
        json={"model": "chat-model", "messages": [{"role": "user", "content": content}], **body},
        timeout=10,
    )


def _files(directory: Path, count: int, seconds: float = 5.0) -> list[Path]:
    """The log files once there are ``count`` of them (oldest first)."""
    deadline = time.monotonic() + seconds
    while True:
        found = sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime_ns)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _settle() -> None:
    time.sleep(0.3)  # files the writer might still add


def test_one_file_per_request_with_every_section(
    proxy: tuple[ProxyServer, Configure], sims: tuple[OpenAIChatSim, AnthropicSim], logs: Path
) -> None:
    server = proxy[0]
    chat, _ = sims
    chat.queue(Reply.text("plain answer"))
    reply = _chat(server)
    assert reply.status_code == 200
    [path] = _files(logs, 1)
    match = NAME.fullmatch(path.name)
    assert match is not None and match.group(1) is None, path.name
    text = path.read_text()
    for section in (
        "=== REQUEST ===",
        "=== UPSTREAM REQUEST 1 ===",
        "=== UPSTREAM RESPONSE 1 ===",
        "=== RESPONSE ===",
    ):
        assert section in text
    assert "URL: /v1/chat/completions" in text
    assert '"content":"hello"' in text  # the client's body
    assert f"POST {chat.base_url}" in text  # the upstream URL
    assert '"model":"up-chat"' in text  # the body sent upstream
    assert "Status: 200" in text
    assert "plain answer" in text  # the reply sent to the client
    assert "authorization: Bearer clie…5e6f" in text


def test_a_stream_and_a_failed_attempt_before_success(
    proxy: tuple[ProxyServer, Configure], sims: tuple[OpenAIChatSim, AnthropicSim], logs: Path
) -> None:
    server = proxy[0]
    chat, _ = sims
    chat.queue(Reply.error(500, "upstream broke"))
    chat.queue(Reply.text("streamed words here", chunk_size=3))
    reply = _chat(server, stream=True)
    assert reply.status_code == 200 and "[DONE]" in reply.text
    [path] = _files(logs, 1)
    text = path.read_text()
    assert "=== UPSTREAM RESPONSE 1 ===\nStatus: 500" in text
    assert "upstream broke" in text  # the error reply's body
    assert "=== UPSTREAM RESPONSE 2 ===\nStatus: 200" in text
    assert "data: " in text and "[DONE]" in text  # the bytes streamed to the client
    assert text.count("=== UPSTREAM REQUEST") == 2


def test_request_log_off_writes_only_failures_capped_in_number(
    proxy: tuple[ProxyServer, Configure], sims: tuple[OpenAIChatSim, AnthropicSim], logs: Path
) -> None:
    server, configure = proxy
    chat, _ = sims
    configure(request_log=False, max_files=2)
    chat.queue(Reply.text("fine"))
    assert _chat(server).status_code == 200
    _settle()
    assert _files(logs, 0, seconds=0) == []
    for _ in range(3):
        chat.queue(Reply.error(400, "bad request here"))
        assert _chat(server).status_code == 400
    _settle()
    found = _files(logs, 2)
    assert len(found) == 2 and all(p.name.startswith("error-") for p in found)
    # A stream cut half-way is a failure too.
    chat.queue(Reply.text("a b c d e f g h", chunk_size=1, cut_after=2))
    _chat(server, stream=True)
    _settle()
    newest = _files(logs, 2)[-1].read_text()
    assert "Stream error:" in newest


def test_the_total_size_cap_removes_the_oldest(
    proxy: tuple[ProxyServer, Configure], sims: tuple[OpenAIChatSim, AnthropicSim], logs: Path
) -> None:
    server, configure = proxy
    chat, _ = sims
    configure(cap_mb=1)
    big = "x" * 300_000
    names = []
    for _ in range(5):
        chat.queue(Reply.text("ok"))
        assert _chat(server, big).status_code == 200
        _settle()
        names.append(_files(logs, 1)[-1].name)
    left = [p.name for p in _files(logs, 1)]
    assert sum((logs / name).stat().st_size for name in left) <= 1024 * 1024
    assert names[-1] in left and names[0] not in left


def test_management_downloads(
    proxy: tuple[ProxyServer, Configure], sims: tuple[OpenAIChatSim, AnthropicSim], logs: Path
) -> None:
    server, configure = proxy
    chat, _ = sims
    api = httpx.Client(
        base_url=f"{server.base_url}/v0/management",
        headers={"Authorization": f"Bearer {MANAGEMENT_KEY}"},
        timeout=10,
    )
    with api:
        chat.queue(Reply.text("logged"))
        _chat(server)
        [path] = _files(logs, 1)
        match = NAME.fullmatch(path.name)
        assert match is not None
        request_id = match.group(2)
        for reply in (
            api.get(f"/request-log-by-id/{request_id}"),
            api.get("/request-log-by-id", params={"id": request_id}),
        ):
            assert reply.status_code == 200
            assert reply.text == path.read_text()
            assert path.name in reply.headers["content-disposition"]
        assert api.get("/request-error-logs").json() == {"files": []}  # request-log is on

        configure(request_log=False)
        chat.queue(Reply.error(429, "slow down"))
        chat.queue(Reply.error(429, "slow down"))  # both keys
        _chat(server)
        _files(logs, 2)
        listed = api.get("/request-error-logs").json()["files"]
        assert [f["name"][:6] for f in listed] == ["error-"]
        name = listed[0]["name"]
        assert listed[0]["size"] == (logs / name).stat().st_size
        assert isinstance(listed[0]["modified"], int)
        # The request id is in the main log's lines of that request (the 429 warning).
        error_id = name.removesuffix(".log").rsplit("-", 1)[1]
        lines = api.get("/logs").json()["lines"]
        assert any(f"[{error_id}] [warning]" in line for line in lines)
        got = api.get(f"/request-error-logs/{name}")
        assert got.status_code == 200 and "slow down" in got.text
        assert api.get("/request-error-logs/..%2Fsecret.log").status_code in (400, 404)
        assert api.get(f"/request-error-logs/{path.name}").status_code == 400
        # Management calls themselves are never logged.
        assert len(_files(logs, 2)) == 2


def test_no_secret_reaches_a_log_or_an_error_body(
    proxy: tuple[ProxyServer, Configure], sims: tuple[OpenAIChatSim, AnthropicSim], logs: Path
) -> None:
    server, _ = proxy
    chat, claude = sims
    bodies: list[str] = []
    chat.queue(Reply.text("fine"))
    bodies.append(_chat(server, f"my keys: {CLIENT_KEY} {UPSTREAM_KEYS[1]} {ACCESS_TOKEN}").text)
    # Upstreams that echo the key they were given, as real ones do.
    for key in UPSTREAM_KEYS:
        chat.queue(Reply.error(401, f"Incorrect API key provided: {key}"))
    failed = _chat(server, api_key=CLIENT_KEY, refresh_token=REFRESH_TOKEN)
    assert failed.status_code >= 400
    bodies.append(failed.text)
    claude.queue(Reply.error(400, f"bad key {CLAUDE_KEY}"))
    refused = httpx.post(
        f"{server.base_url}/v1/messages",
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": "claude-model",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": f"the key is {MANAGEMENT_KEY}"}],
        },
        timeout=10,
    )
    assert refused.status_code == 400
    bodies.append(refused.text)
    unauthorized = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {CLIENT_KEY}x"},
        json={"model": "chat-model", "messages": []},
        timeout=10,
    )
    bodies.append(unauthorized.text)
    files = _files(logs, 4)
    assert len(files) == 4
    texts = [p.read_text() for p in Path(os.environ["WRITABLE_PATH"]).rglob("*") if p.is_file()]
    for secret in SECRETS:
        for text in texts:
            assert secret not in text
        for body in bodies:
            assert secret not in body
    assert "Incorrect API key provided" in "".join(texts)


def _api(server: ProxyServer) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/v0/management",
        headers={"Authorization": f"Bearer {MANAGEMENT_KEY}"},
        timeout=10,
    )


def test_a_fallback_lists_every_attempt_in_the_file_and_the_routes(
    proxy: tuple[ProxyServer, Configure], sims: tuple[OpenAIChatSim, AnthropicSim], logs: Path
) -> None:
    server, _ = proxy
    chat, claude = sims
    # Both keys of flaky-model fail (a 429, then a 503): claude-model, its fallback, answers.
    chat.queue(Reply.error(429, "rate limited, slow down"), Reply.error(503, "overloaded"))
    claude.queue(Reply.text("claude answers"))
    reply = _chat(server, model="flaky-model")
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-cliproxy-model"] == "claude-model"
    [path] = _files(logs, 1)
    text = path.read_text()
    assert text.startswith("=== SUMMARY ===\nRequest: {")
    assert "\nAttempt 3: {" in text and "\n\n=== REQUEST ===\n" in text
    request_id = path.name.removesuffix(".log").rsplit("-", 1)[1]
    with _api(server) as api:
        listed = api.get("/request-logs")
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["request-log"] is True and body["total"] == 1
        [item] = body["files"]
        assert (item["id"], item["name"], item["error"]) == (request_id, path.name, False)
        assert (item["model"], item["served_model"], item["fell_back"]) == (
            "flaky-model",
            "claude-model",
            True,
        )
        assert (item["status"], item["failed"], item["attempts"]) == (200, False, 3)
        assert (item["method"], item["url"]) == ("POST", "/v1/chat/completions")
        assert item["time"].endswith("Z") and item["summary"] is True

        one = api.get(f"/request-logs/{request_id}")
        assert one.status_code == 200, one.text
        found = one.json()
        assert found["request"]["served_model"] == "claude-model"
        chain = [
            (a["number"], a["model"], a["fallback"], a["provider"], a["status"], a["result"])
            for a in found["attempts"]
        ]
        assert chain == [
            (1, "flaky-model", False, "openai-compatibility:chat-sim", 429, "failed"),
            (2, "flaky-model", False, "openai-compatibility:chat-sim", 503, "failed"),
            (3, "claude-model", True, "claude-api-key", 200, "answered"),
        ]
        first, second, third = found["attempts"]
        assert "rate limited" in first["error"] and "overloaded" in second["error"]
        assert first["error_kind"] == "rate_limit" and third["error_kind"] is None
        assert third["error"] == "" and third["upstream_model"] == "up-claude"
        # Which key: masked as the lists show it, with the auth-index they show.
        accounts = {first["account"], second["account"]}
        assert accounts == {f"{k[:4]}…{k[-4:]}" for k in UPSTREAM_KEYS}
        indexes = {
            e["auth-index"]
            for e in api.get("/openai-compatibility").json()["openai-compatibility"][0][
                "api-key-entries"
            ]
        }
        assert {first["auth_index"], second["auth_index"]} == indexes
        titles = [s["title"] for s in found["sections"]]
        assert titles == [
            "REQUEST",
            *(f"UPSTREAM {side} {n}" for n in (1, 2, 3) for side in ("REQUEST", "RESPONSE")),
            "RESPONSE",
        ]
        request, *_, response = found["sections"]
        assert '"model":"flaky-model"' in request["body"]
        assert ["authorization", "Bearer clie…5e6f"] in request["headers"]
        assert "URL: /v1/chat/completions" in request["lines"]
        assert response["lines"] == ["Status: 200"] and "claude answers" in response["body"]
        assert found["sections"][2]["lines"] == ["Status: 429"]
        assert "rate limited" in found["sections"][2]["body"]
        assert found["sections"][6]["body"] is None  # a good reply's body is the RESPONSE's
        shown = one.text
        for secret in SECRETS:
            assert secret not in shown

        assert api.get("/request-logs/0000000g").status_code == 400
        missing = api.get("/request-logs/00000000")
        assert missing.status_code == 404
        assert missing.json()["error"] == "log file not found for the given request ID"
        assert api.get("/request-logs", params={"limit": "0"}).status_code == 400


def test_the_listing_with_request_log_off_and_a_file_from_before_summaries(
    proxy: tuple[ProxyServer, Configure], sims: tuple[OpenAIChatSim, AnthropicSim], logs: Path
) -> None:
    server, configure = proxy
    chat, _ = sims
    configure(request_log=False)
    chat.queue(Reply.error(400, "bad request here"))
    assert _chat(server).status_code == 400
    [path] = _files(logs, 1)
    old = logs / "v1-messages-2026-01-02T030405-0badc0de.log"
    old.write_text(
        "=== REQUEST ===\nRequest-Id: 0badc0de\nTime: 2026-01-02T03:04:05+0000\n"
        "Method: POST\nURL: /v1/messages\nClient: 127.0.0.1:1\n\n--- headers ---\n"
        "content-type: application/json\n\n--- body ---\n{}\n\n"
        "=== RESPONSE ===\nStatus: 200\n\n--- headers ---\n\n--- body ---\nok\n"
    )
    os.utime(old, (1, 1))  # the oldest
    with _api(server) as api:
        body = api.get("/request-logs").json()
        assert body["request-log"] is False and body["total"] == 2
        error, before = body["files"]
        assert (error["name"], error["error"], error["failed"]) == (path.name, True, True)
        assert error["status"] == 400 and error["attempts"] == 1
        assert (before["id"], before["summary"], before["status"]) == ("0badc0de", False, None)
        assert (before["method"], before["url"]) == ("POST", "/v1/messages")
        assert len(api.get("/request-logs", params={"limit": "1"}).json()["files"]) == 1
        read = api.get("/request-logs/0badc0de").json()
        assert read["attempts"] == [] and read["request"]["url"] == "/v1/messages"
        assert [s["title"] for s in read["sections"]] == ["REQUEST", "RESPONSE"]
        assert read["sections"][1]["body"] == "ok"
