"""Kimi and xAI accounts (auth files in the reference's layout) and xai-api-key entries end to
end: every official SDK through the real proxy to each vendor's simulator in its own wire
format and with its CLI's headers, refreshes, 429 reset hints, `using_api`, and broken auth
files reported and left on disk."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.clients import CLIENTS, ask
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.kimi_sim import KimiSim
from tests.simulators.xai_sim import XaiSim

TEXT = "Hello from a device-login account, in small pieces."
XAI_KEY = "xai-key-123"
DEVICE_ID = "dev-0123456789abcdef"


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[KimiSim, XaiSim]]:
    with KimiSim() as kimi, XaiSim() as xai:
        xai.chat.api_keys = {XAI_KEY}
        xai.chat.models = ["grok-4.6"]
        yield kimi, xai


@pytest.fixture(scope="module")
def kimi(sims: tuple[KimiSim, XaiSim]) -> KimiSim:
    return sims[0]


@pytest.fixture(scope="module")
def xai(sims: tuple[KimiSim, XaiSim]) -> XaiSim:
    return sims[1]


def write(directory: Path, name: str, raw: dict[str, Any] | bytes) -> Path:
    path = directory / name
    path.write_bytes(raw if isinstance(raw, bytes) else orjson.dumps(raw))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def auth_dir(tmp_path_factory: pytest.TempPathFactory, kimi: KimiSim, xai: XaiSim) -> Path:
    directory = tmp_path_factory.mktemp("auths")
    write(directory, "kimi-1760000000000.json", kimi.auth_file(DEVICE_ID))
    write(directory, "xai-grok.user@example.com.json", xai.auth_file())
    return directory


@pytest.fixture(scope="module")
def proxy(auth_dir: Path, kimi: KimiSim, xai: XaiSim) -> Iterator[ProxyServer]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in {**kimi.env(), **xai.env()}.items():
            env.setenv(name, value)
        config = (
            f'auth-dir: "{auth_dir}"\nrequest-retry: 0\nmax-retry-interval: 0\n'
            f"xai-api-key:\n  - api-key: {XAI_KEY}\n    base-url: {xai.api_url}\n"
            "    models: [{name: grok-4.6, alias: grok-by-key}]\n"
        )
        with ProxyServer(config) as server:
            yield server


@pytest.fixture(autouse=True)
def _rested(proxy: ProxyServer) -> None:
    proxy.state.cooldowns.clear()


# ----- every SDK x each account ---------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_sdk_through_kimi(client: str, stream: bool, proxy: ProxyServer, kimi: KimiSim) -> None:
    # Messages clients take the Messages path, everyone else Chat Completions.
    target = kimi if client == "anthropic" else kimi.chat
    target.queue(Reply.text(TEXT, input_tokens=31, output_tokens=17, chunk_size=7))
    answer = ask(client, proxy.base_url, "kimi-k2.5", "What do you say?", stream)
    assert answer.text == TEXT
    assert (answer.input_tokens, answer.output_tokens) == (31, 17)
    upstream = target.last_request
    path = "/coding/v1/messages" if client == "anthropic" else "/coding/v1/chat/completions"
    assert upstream.path == path and upstream.json["model"] == "kimi-k2.5"
    assert upstream.headers["x-msh-device-id"] == DEVICE_ID
    assert upstream.headers["x-msh-platform"] == "kimi_cli"
    assert upstream.headers["user-agent"].startswith("KimiCLI/")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_sdk_through_xai(client: str, stream: bool, proxy: ProxyServer, xai: XaiSim) -> None:
    xai.queue(Reply.text(TEXT, input_tokens=23, output_tokens=9, chunk_size=5))
    answer = ask(client, proxy.base_url, "grok-4.6", "What do you say?", stream)
    assert answer.text == TEXT
    assert (answer.input_tokens, answer.output_tokens) == (23, 9)
    upstream = xai.last_request
    assert upstream.path == "/v1/responses" and upstream.json["model"] == "grok-4.6"
    assert upstream.headers["x-xai-token-auth"] == "xai-grok-cli"
    assert upstream.headers["x-grok-client-identifier"] == "grok-shell"
    assert upstream.headers["x-grok-client-version"] == "0.2.120"


@pytest.mark.parametrize("client", CLIENTS)
def test_xai_api_key_routes_to_chat_completions(
    client: str, proxy: ProxyServer, xai: XaiSim
) -> None:
    xai.chat.queue(Reply.text("from the API key", output_tokens=4))
    answer = ask(client, proxy.base_url, "grok-by-key", "hi", False)
    assert answer.text == "from the API key"
    upstream = xai.chat.last_request
    assert upstream.path == "/api/v1/chat/completions"
    assert upstream.headers["authorization"] == f"Bearer {XAI_KEY}"
    assert upstream.json["model"] == "grok-4.6"


def test_models_are_listed(proxy: ProxyServer) -> None:
    listed = httpx.get(proxy.base_url + "/v1/models", timeout=10).json()
    names = {m["id"] for m in listed["data"]}
    assert {"kimi-k2.5", "kimi-k3", "grok-4.6", "grok-3-mini", "grok-by-key"} <= names


# ----- limits ---------------------------------------------------------------------------------


def chat(proxy: ProxyServer, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(proxy.base_url + "/v1/chat/completions", json=body, timeout=10)


@pytest.mark.parametrize("model", ["kimi-k2.5", "grok-4.6"])
def test_429_reset_hint_reaches_the_client_and_rests_the_account(
    model: str, proxy: ProxyServer, kimi: KimiSim, xai: XaiSim
) -> None:
    sim = kimi.chat if model.startswith("kimi") else xai
    sim.queue(Reply.error(429, "rate limited", retry_after=120))
    reply = chat(proxy, model)
    assert reply.status_code == 429
    assert abs(int(reply.headers["retry-after"]) - 120) <= 2
    sent = len(sim.requests)
    again = chat(proxy, model)  # the account rests: nothing goes upstream
    assert again.status_code == 429 and len(sim.requests) == sent


def test_a_403_from_the_vendor_is_not_retried_as_success(proxy: ProxyServer, kimi: KimiSim) -> None:
    kimi.chat.queue(Reply.error(403, "this endpoint is for Kimi CLI"))
    assert chat(proxy, "kimi-k2.5").status_code == 403


# ----- refresh --------------------------------------------------------------------------------


def wait_until(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["kimi", "xai"])
def test_an_expired_account_is_refreshed_before_use(
    kind: str, proxy: ProxyServer, auth_dir: Path, kimi: KimiSim, xai: XaiSim
) -> None:
    sim = kimi if kind == "kimi" else xai
    name = f"{kind}-refresh-me.json"
    raw = kimi.auth_file("dev-refresh") if kind == "kimi" else xai.auth_file(sub="refresh-sub")
    raw["expired"] = "2020-01-01T00:00:00Z"
    raw["prefix"] = "old"  # only this account answers "old/<model>"
    path = write(auth_dir, name, raw)
    wait_until(lambda: proxy.state.auth_store.get(name) is not None)
    before = sim.auth.refresh_calls
    model = "old/kimi-k2.5" if kind == "kimi" else "old/grok-4.6"
    wait_until(lambda: chat(proxy, model).status_code != 404)
    reply = chat(proxy, model)
    assert reply.status_code == 200, reply.text
    assert sim.auth.refresh_calls == before + 1
    saved = orjson.loads(path.read_bytes())
    assert saved["access_token"] != raw["access_token"] and saved["expired"] > "2026"
    assert saved["prefix"] == "old" and saved["type"] == kind
    grant = sim.auth.token_requests[-1]
    assert grant.form["grant_type"] == "refresh_token"
    if kind == "kimi":
        assert grant.headers["x-msh-device-id"] == "dev-refresh"
    os.remove(path)


def test_using_api_accounts_call_the_public_api(
    proxy: ProxyServer, auth_dir: Path, xai: XaiSim
) -> None:
    name = "xai-api-user.json"
    path = write(auth_dir, name, xai.auth_file(sub="api-user", using_api=True, prefix="api"))
    wait_until(lambda: proxy.state.auth_store.get(name) is not None)
    wait_until(lambda: chat(proxy, "api/grok-4.6").status_code != 404)
    assert chat(proxy, "api/grok-4.6").status_code == 200
    upstream = xai.last_request
    assert upstream.path == "/api/v1/responses"
    assert "x-xai-token-auth" not in upstream.headers
    os.remove(path)


# ----- broken files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"type": "kimi", "access_tok', "not valid JSON"),
        (orjson.dumps({"type": "kimi", "access_token": 7}), "access_token"),
        (orjson.dumps({"type": "xai", "access_token": "a", "expired": "soon"}), "expired"),
        (orjson.dumps({"type": "kimi", "device_id": ["x"]}), "device_id"),
    ],
)
def test_broken_auth_files_are_reported_and_kept(
    proxy: ProxyServer, auth_dir: Path, content: bytes, words: str
) -> None:
    name = "kimi-broken.json"
    path = write(auth_dir, name, content)
    store = proxy.state.auth_store

    def reported() -> bool:
        return any(p.name == name and words in p.reason for p in store.errors())

    wait_until(reported)
    assert chat(proxy, "kimi-k2.5").status_code == 200  # the good account still serves
    assert path.read_bytes() == content
    os.remove(path)
    wait_until(lambda: not any(p.name == name for p in store.errors()))
