"""Antigravity accounts end to end: an auth file in the reference's layout, the real proxy, the
official SDKs of all four client protocols, and the Antigravity simulator enforcing the IDE's
envelope and headers; the daily-then-prod host fallback, refresh ahead of expiry, the quota
read-out, and broken files reported without being touched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from google import genai
from google.genai import types as gtypes
from typer.testing import CliRunner

from cliproxy.cli_auth import auth_app
from tests.e2e.clients import CLIENTS, ask
from tests.e2e.waiting import wait_until
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.antigravity_sim import AntigravitySim, no_capacity

ACCOUNT = "antigravity-agy.user@example.com.json"
SECRET = "agy-mgmt"
TEXT = "Hello from Antigravity, in small pieces."


@pytest.fixture(scope="module")
def daily() -> Iterator[AntigravitySim]:
    with AntigravitySim() as sim:
        yield sim


@pytest.fixture(scope="module")
def prod(daily: AntigravitySim) -> Iterator[AntigravitySim]:
    with AntigravitySim() as sim:
        sim.share_tokens_with(daily)
        yield sim


@pytest.fixture(scope="module")
def auth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agy-auths")


@pytest.fixture(scope="module")
def proxy(daily: AntigravitySim, prod: AntigravitySim, auth_dir: Path) -> Iterator[ProxyServer]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in daily.env().items():
            env.setenv(name, value)
        # The IDE's two hosts, in its order: the daily one, then prod.
        env.setenv("CLIPROXY_ANTIGRAVITY_BASE_URLS", f"{daily.root_url},{prod.root_url}")
        (auth_dir / ACCOUNT).write_bytes(orjson.dumps(daily.auth_file()))
        config = (
            f"auth-dir: {auth_dir}\nrequest-retry: 0\nmax-retry-interval: 0\n"
            f"quota-refresh-seconds: 1\nremote-management:\n  secret-key: {SECRET}\n"
        )
        with ProxyServer(config) as server:
            yield server


@pytest.fixture(autouse=True)
def _fresh(daily: AntigravitySim, prod: AntigravitySim) -> None:
    for sim in (daily, prod):
        sim.reset()


def _account(auth_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((auth_dir / ACCOUNT).read_bytes())
    return data


# ----- every client protocol reaches the backend in the IDE's envelope ------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_sdk_through_antigravity(
    client: str, stream: bool, proxy: ProxyServer, daily: AntigravitySim, auth_dir: Path
) -> None:
    daily.queue(Reply.text(TEXT, input_tokens=21, output_tokens=9, chunk_size=6))

    answer = ask(client, proxy.base_url, "gemini-3-flash", "What do you say?", stream)

    assert answer.text == TEXT
    assert (answer.input_tokens, answer.output_tokens) == (21, 9)
    upstream = daily.last_request
    assert upstream.path == (
        "/v1internal:streamGenerateContent" if stream else "/v1internal:generateContent"
    )
    assert (upstream.query == {"alt": "sse"}) is stream
    body = upstream.json
    assert body["model"] == "gemini-3-flash" and body["userAgent"] == "antigravity"
    assert body["requestType"] == "agent" and body["project"] == "agy-proj-1"
    assert body["requestId"].startswith("agent-")
    assert body["request"]["sessionId"] and body["request"]["contents"]
    assert upstream.headers["user-agent"] == "antigravity/hub/2.9.1 darwin/arm64"
    assert upstream.headers["authorization"] == f"Bearer {_account(auth_dir)['access_token']}"


def test_claude_target_gets_validated_calls_and_a_capped_output(
    proxy: ProxyServer, daily: AntigravitySim
) -> None:
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
    tool = {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    with client.messages.stream(  # the SDK streams an ask this large
        model="claude-sonnet-4-6",
        max_tokens=100000,
        tools=[tool],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as events:
        assert events.get_final_message().content
    inner = daily.last_request.json["request"]
    assert inner["toolConfig"]["functionCallingConfig"]["mode"] == "VALIDATED"
    assert inner["generationConfig"]["maxOutputTokens"] == 64000


def test_gemini_target_loses_safety_settings_and_max_output(
    proxy: ProxyServer, daily: AntigravitySim
) -> None:
    client = genai.Client(
        api_key="k",
        http_options=gtypes.HttpOptions(
            base_url=proxy.base_url, retry_options=gtypes.HttpRetryOptions(attempts=1)
        ),
    )
    safety = gtypes.SafetySetting(
        category=gtypes.HarmCategory.HARM_CATEGORY_HARASSMENT,
        threshold=gtypes.HarmBlockThreshold.BLOCK_NONE,
    )
    config = gtypes.GenerateContentConfig(
        max_output_tokens=77, temperature=0.2, safety_settings=[safety]
    )
    client.models.generate_content(model="gemini-3-flash", contents="hi", config=config)
    inner = daily.last_request.json["request"]
    assert "safetySettings" not in inner and "safety_settings" not in inner
    assert "maxOutputTokens" not in inner["generationConfig"]
    assert inner["generationConfig"]["temperature"] == 0.2


def test_session_id_is_stable_across_turns_of_a_conversation(
    proxy: ProxyServer, daily: AntigravitySim
) -> None:
    url = proxy.base_url + "/v1/chat/completions"
    first = [{"role": "user", "content": "Plan a trip to Lyon."}]
    httpx.post(url, json={"model": "gemini-3-flash", "messages": first}, timeout=10)
    turn = [*first, {"role": "assistant", "content": "Sure."}, {"role": "user", "content": "Go"}]
    httpx.post(url, json={"model": "gemini-3-flash", "messages": turn}, timeout=10)
    sessions = [r.json["request"]["sessionId"] for r in daily.requests[-2:]]
    assert sessions[0] == sessions[1]
    ids = [r.json["requestId"] for r in daily.requests[-2:]]
    assert ids[0] != ids[1]  # one per request


def test_count_tokens(proxy: ProxyServer, daily: AntigravitySim) -> None:
    daily.token_count = 17
    url = proxy.base_url + "/v1beta/models/gemini-3-flash:countTokens"
    body = {"contents": [{"role": "user", "parts": [{"text": "count me"}]}]}
    assert httpx.post(url, json=body, timeout=10).json() == {"totalTokens": 17}
    assert daily.last_request.json["request"]["model"] == "models/gemini-3-flash"


def test_models_are_listed(proxy: ProxyServer) -> None:
    listed = {m["id"] for m in httpx.get(proxy.base_url + "/v1/models").json()["data"]}
    assert {"gemini-3-flash", "claude-sonnet-4-6"} <= listed
    assert "chat_20706" not in listed  # the backend's internal models are not offered


def test_a_stale_client_version_is_refused_readably(
    proxy: ProxyServer, daily: AntigravitySim, prod: AntigravitySim
) -> None:
    daily.min_version = prod.min_version = "99.0.0"
    body = {"model": "gemini-3-flash", "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(proxy.base_url + "/v1/chat/completions", json=body, timeout=10)
    assert reply.status_code == 400
    assert "no longer supported" in reply.text


# ----- the daily host, then prod ---------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        Reply.error(429, "Resource has been exhausted (e.g. check quota).", retry_after=30),
        Reply.error(503, body=no_capacity("gemini-3-flash")),
    ],
    ids=["429", "no-capacity"],
)
def test_daily_host_unable_moves_on_to_prod(
    failure: Reply, proxy: ProxyServer, daily: AntigravitySim, prod: AntigravitySim
) -> None:
    daily.queue(failure)
    prod.queue(Reply.text("from prod"))
    answer = ask("openai_chat", proxy.base_url, "gemini-3-flash", "hi", False)
    assert answer.text == "from prod"
    assert len(daily.requests) == 1 and len(prod.requests) == 1
    # The same envelope went to both hosts.
    assert daily.last_request.json["requestId"] == prod.last_request.json["requestId"]
    # Served by prod, so the account is not resting: the next request goes to daily again.
    assert ask("openai_chat", proxy.base_url, "gemini-3-flash", "again", False).text
    assert len(daily.requests) == 2


def test_other_errors_do_not_move_on(
    proxy: ProxyServer, daily: AntigravitySim, prod: AntigravitySim
) -> None:
    daily.queue(Reply.error(400, "Invalid JSON payload received."))
    body = {"model": "gemini-3-flash", "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(proxy.base_url + "/v1/chat/completions", json=body, timeout=10)
    assert reply.status_code == 400 and not prod.requests


def test_both_hosts_exhausted_is_the_quota_error(
    proxy: ProxyServer, daily: AntigravitySim, prod: AntigravitySim
) -> None:
    daily.exhaust(model="gemini-3.1-pro-low", retry_after=40)
    prod.exhaust(model="gemini-3.1-pro-low", retry_after=40)
    body = {"model": "gemini-3.1-pro-low", "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(proxy.base_url + "/v1/chat/completions", json=body, timeout=10)
    assert reply.status_code == 429
    assert 30 <= float(reply.headers["retry-after"]) <= 40  # Gemini's RetryInfo, read as ever


def test_unreachable_daily_host_moves_on(proxy: ProxyServer, prod: AntigravitySim) -> None:
    provider: Any = proxy.state.account_providers["antigravity"]
    hosts = provider.base_urls
    provider.base_urls = ("http://127.0.0.1:9", prod.root_url)  # nothing listens on port 9
    try:
        prod.queue(Reply.text("prod answered"))
        assert ask("anthropic", proxy.base_url, "gemini-3-flash", "hi", False).text == (
            "prod answered"
        )
    finally:
        provider.base_urls = hosts


def test_a_file_base_url_is_the_only_host(
    proxy: ProxyServer, daily: AntigravitySim, prod: AntigravitySim, auth_dir: Path
) -> None:
    own = {**daily.auth_file(project="own-proj"), "email": "own@example.com"}
    own["base_url"] = prod.root_url
    path = auth_dir / "antigravity-own@example.com.json"
    path.write_bytes(orjson.dumps({**own, "prefix": "own"}))
    try:
        assert wait_until(lambda: _served_by_prefix(proxy))
        prod.queue(Reply.error(429, "exhausted"))
        body = {"model": "own/gemini-3-flash", "messages": [{"role": "user", "content": "hi"}]}
        reply = httpx.post(proxy.base_url + "/v1/chat/completions", json=body, timeout=10)
        assert reply.status_code == 429
        assert not [r for r in daily.requests if r.json.get("project") == "own-proj"]
    finally:
        path.unlink()


def _served_by_prefix(proxy: ProxyServer) -> bool:
    listed = {m["id"] for m in httpx.get(proxy.base_url + "/v1/models").json()["data"]}
    return "own/gemini-3-flash" in listed


# ----- the account's file: refresh, quota, broken files ----------------------------------------


def test_refresh_fifty_minutes_ahead(
    proxy: ProxyServer, daily: AntigravitySim, auth_dir: Path
) -> None:
    soon = daily.auth_file(expires_in=2000)  # within Antigravity's 3000 s lead
    (auth_dir / ACCOUNT).write_bytes(orjson.dumps({**soon, "note": "kept"}))
    assert wait_until(
        lambda: proxy.state.auth_store.get(ACCOUNT).access_token == soon["access_token"]
    )
    calls = daily.refresh_calls
    assert ask("openai_responses", proxy.base_url, "gemini-3-flash", "hi", False).text
    assert daily.refresh_calls == calls + 1
    data = _account(auth_dir)
    assert data["access_token"] != soon["access_token"]
    assert data["refresh_token"] == soon["refresh_token"]  # Google does not rotate it
    assert data["expires_in"] == 3600 and data["timestamp"] > soon["timestamp"]
    assert data["note"] == "kept" and data["project_id"] == "agy-proj-1"
    assert daily.last_request.headers["authorization"] == f"Bearer {data['access_token']}"
    # A token good for longer than the lead is left alone.
    assert ask("openai_chat", proxy.base_url, "gemini-3-flash", "hi", False).text
    assert daily.refresh_calls == calls + 1


def test_quota_read_out_from_fetch_available_models(
    proxy: ProxyServer, daily: AntigravitySim
) -> None:
    daily.exhaust(model="claude-sonnet-4-6")
    assert ask("openai_chat", proxy.base_url, "gemini-3-flash", "hi", False).text

    def windows() -> dict[str, Any]:
        view = httpx.get(
            proxy.base_url + "/v0/management/quota",
            headers={"authorization": f"Bearer {SECRET}"},
        ).json()
        entry = next(a for a in view["accounts"] if a["name"] == ACCOUNT)
        quota = entry.get("vendor_quota") or {"windows": []}
        return {w["name"]: w for w in quota["windows"]}

    def spent() -> bool:
        return windows().get("claude-sonnet-4-6", {}).get("used_percent") == 100.0

    assert wait_until(spent)  # read again within the second quota-refresh-seconds allows
    found = windows()
    assert found["gemini-3-flash"]["used_percent"] == 40.0
    assert found["gemini-3-flash"]["resets_at"] > time.time()
    assert "chat_20706" not in found
    read = next(r for r in daily.reads if r.path == "/v1internal:fetchAvailableModels")
    assert read.json == {"project": "agy-proj-1"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"type": "antigravity", "access_token": "ya29.x", "refre', "not valid JSON"),
        (b'{"type": "antigravity", "access_token": "a", "project_id": 42}', "project_id"),
        (b'{"type": "antigravity", "expired": "soon"}', "expired"),
    ],
    ids=["truncated", "project-not-a-string", "bad-expiry"],
)
def test_a_broken_file_is_reported_and_kept(
    tmp_path: Path, daily: AntigravitySim, content: bytes, reason: str
) -> None:
    good = tmp_path / "antigravity-good@example.com.json"
    good.write_bytes(orjson.dumps(daily.auth_file()))
    broken = tmp_path / "antigravity-broken@example.com.json"
    broken.write_bytes(content)
    for path in (good, broken):
        path.chmod(0o600)

    listing = CliRunner().invoke(
        auth_app, ["accounts", "--auth-dir", str(tmp_path)], env={"COLUMNS": "250"}
    )
    assert listing.exit_code == 1, listing.output
    out = listing.output.replace("\n", "")
    assert "antigravity-broken@example.com.json" in out and reason in out
    assert "agy.user@example.com" in out  # the good account is still listed

    config = f"auth-dir: {tmp_path}\nremote-management:\n  secret-key: {SECRET}\n"
    with ProxyServer(config) as server:
        files = httpx.get(
            server.base_url + "/v0/management/auth-files",
            headers={"authorization": f"Bearer {SECRET}"},
        ).json()["files"]
        names = {f["name"] for f in files}
        assert "antigravity-good@example.com.json" in names
    assert broken.read_bytes() == content  # reported, never deleted or rewritten
