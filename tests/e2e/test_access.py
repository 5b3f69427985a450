"""Client access: api-keys in every spelling the SDKs use, 401s in each protocol's own error JSON,
and the loopback-only rule when no api-keys are configured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from cliproxy.app import build_app
from cliproxy.config import default_config, parse_config_text
from cliproxy.server.access import is_loopback, presented_key
from tests.proxy_server import ProxyServer

RIGHT = "sk-right-key"
OTHER = "second-key"
WRONG = "sk-wrong-key"

CHAT_BODY = {"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES_BODY = {**CHAT_BODY, "max_tokens": 50}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyServer]:
    with ProxyServer(f"api-keys: [{RIGHT}, {OTHER}]\n") as server:
        yield server


# --- the official SDKs ------------------------------------------------------------------------


def test_openai_sdk_right_key_works_wrong_key_is_authentication_error(proxy: ProxyServer) -> None:
    good = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=RIGHT, max_retries=0)
    reply = good.chat.completions.create(
        model="demo-echo", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "Echo: hi"
    assert good.responses.create(model="demo-echo", input="yo").output_text == "Echo: yo"

    bad = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=WRONG, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="demo-echo", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 401
    body = caught.value.response.json()
    assert set(body) == {"error"} and body["error"]["message"] == "invalid API key"
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_anthropic_sdk_accepts_x_api_key_and_bearer(proxy: ProxyServer) -> None:
    by_x_api_key = anthropic.Anthropic(base_url=proxy.base_url, api_key=RIGHT, max_retries=0)
    reply = by_x_api_key.messages.create(
        model="demo-echo", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content[0].text == "Echo: hi"
    by_bearer = anthropic.Anthropic(base_url=proxy.base_url, auth_token=RIGHT, max_retries=0)
    reply = by_bearer.messages.create(
        model="demo-echo", max_tokens=50, messages=[{"role": "user", "content": "bearer"}]
    )
    assert reply.content[0].text == "Echo: bearer"

    bad = anthropic.Anthropic(base_url=proxy.base_url, api_key=WRONG, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(
            model="demo-echo", max_tokens=50, messages=[{"role": "user", "content": "x"}]
        )
    body = caught.value.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.AuthenticationError):
        bad.models.list()


@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21"])
def test_anthropic_any_version_header_is_served(proxy: ProxyServer, version: str) -> None:
    client = anthropic.Anthropic(
        base_url=proxy.base_url,
        api_key=RIGHT,
        max_retries=0,
        default_headers={"anthropic-version": version},
    )
    reply = client.messages.create(
        model="demo-echo", max_tokens=50, messages=[{"role": "user", "content": version}]
    )
    assert reply.content[0].text == f"Echo: {version}"


def test_gemini_sdk_right_key_works_wrong_key_is_401(proxy: ProxyServer) -> None:
    options = gtypes.HttpOptions(base_url=proxy.base_url)
    good = genai.Client(api_key=RIGHT, http_options=options)
    assert good.models.generate_content(model="demo-echo", contents="hi").text == "Echo: hi"

    bad = genai.Client(api_key=WRONG, http_options=options)
    with pytest.raises(genai_errors.ClientError) as caught:
        bad.models.generate_content(model="demo-echo", contents="hi")
    assert caught.value.code == 401
    assert caught.value.status == "UNAUTHENTICATED"
    with pytest.raises(genai_errors.ClientError) as caught:
        list(bad.models.list())
    assert caught.value.code == 401


# --- raw HTTP: every key spelling, every protocol's error shape ------------------------------


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"authorization": f"Bearer {RIGHT}"}, {}),
        ({"authorization": f"bearer {OTHER}"}, {}),
        ({"x-api-key": RIGHT}, {}),
        ({"x-goog-api-key": OTHER}, {}),
        ({}, {"key": RIGHT}),
    ],
    ids=["bearer", "bearer-lowercase-second-key", "x-api-key", "x-goog-api-key", "query-key"],
)
def test_every_key_spelling_is_accepted_on_every_protocol(
    proxy: ProxyServer, headers: dict[str, str], params: dict[str, str]
) -> None:
    with httpx.Client(base_url=proxy.base_url, headers=headers, params=params) as client:
        assert client.post("/v1/chat/completions", json=CHAT_BODY).status_code == 200
        assert client.post("/v1/messages", json=MESSAGES_BODY).status_code == 200
        gemini = client.post("/v1beta/models/demo-echo:generateContent", json=GEMINI_BODY)
        assert gemini.status_code == 200, gemini.text
        assert client.get("/v1/models").status_code == 200


def _assert_openai_error(body: dict[str, Any]) -> None:
    assert set(body) == {"error"}
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == "invalid_api_key"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def _assert_anthropic_error(body: dict[str, Any]) -> None:
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["message"]


def _assert_gemini_error(body: dict[str, Any]) -> None:
    assert set(body["error"]) >= {"code", "message", "status"}
    assert body["error"]["code"] == 401
    assert body["error"]["status"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("key", [None, WRONG], ids=["missing", "wrong"])
@pytest.mark.parametrize(
    ("method", "path", "body", "extra_headers", "check"),
    [
        ("POST", "/v1/chat/completions", CHAT_BODY, {}, _assert_openai_error),
        ("POST", "/v1/responses", {"model": "demo-echo", "input": "x"}, {}, _assert_openai_error),
        ("POST", "/v1/messages", MESSAGES_BODY, {}, _assert_anthropic_error),
        ("POST", "/v1/messages/count_tokens", MESSAGES_BODY, {}, _assert_anthropic_error),
        ("POST", "/v1beta/models/demo-echo:generateContent", GEMINI_BODY, {}, _assert_gemini_error),
        ("POST", "/v1/models/demo-echo:generateContent", GEMINI_BODY, {}, _assert_gemini_error),
        ("GET", "/v1/models", None, {}, _assert_openai_error),
        ("GET", "/v1/models", None, {"anthropic-version": "2023-06-01"}, _assert_anthropic_error),
        ("GET", "/v1beta/models", None, {}, _assert_gemini_error),
    ],
)
def test_missing_or_wrong_key_is_401_in_the_callers_protocol(
    proxy: ProxyServer,
    key: str | None,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    extra_headers: dict[str, str],
    check: Any,
) -> None:
    headers = dict(extra_headers)
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    reply = httpx.request(method, proxy.base_url + path, json=body, headers=headers)
    assert reply.status_code == 401, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    check(reply.json())


def test_open_paths_need_no_key(proxy: ProxyServer) -> None:
    assert httpx.get(proxy.base_url + "/healthz").json()["status"] == "ok"
    assert httpx.get(proxy.base_url + "/").status_code == 200


def test_a_key_is_not_a_prefix_match(proxy: ProxyServer) -> None:
    for almost in (RIGHT[:-1], RIGHT + "x", RIGHT.upper(), ""):
        reply = httpx.post(
            proxy.base_url + "/v1/chat/completions", json=CHAT_BODY, headers={"x-api-key": almost}
        )
        assert reply.status_code == 401, almost


# --- no api-keys: loopback only (decided in-process; never any traffic to other hosts) --------


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.8.9.10")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    # A dual-stack socket reports local IPv4 clients as IPv4-mapped IPv6 addresses.
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("10.0.0.5")
    assert not is_loopback("192.168.1.20")
    assert not is_loopback("::ffff:10.0.0.5")
    assert not is_loopback("example.com")
    assert not is_loopback("")
    assert not is_loopback(None)


def test_presented_key_spellings() -> None:
    assert presented_key({"authorization": "Bearer abc"}, b"") == "abc"
    assert presented_key({"x-api-key": "abc"}, b"") == "abc"
    assert presented_key({"x-goog-api-key": "abc"}, b"") == "abc"
    assert presented_key({}, b"alt=sse&key=abc") == "abc"
    assert presented_key({"authorization": "Basic Zm9vOmJhcg=="}, b"") is None
    assert presented_key({}, b"") is None


async def _asgi_client(config_text: str | None, client: tuple[str, int]) -> httpx.AsyncClient:
    config = parse_config_text(config_text, "t.yaml") if config_text else default_config()
    transport = httpx.ASGITransport(app=build_app(config), client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8317")


async def test_without_api_keys_a_remote_client_is_refused_in_its_protocol() -> None:
    async with await _asgi_client(None, ("10.0.0.5", 1234)) as client:
        chat = await client.post("/v1/chat/completions", json=CHAT_BODY)
        assert chat.status_code == 403
        assert "only clients on this machine" in chat.json()["error"]["message"]
        messages = await client.post("/v1/messages", json=MESSAGES_BODY)
        assert messages.status_code == 403
        assert messages.json()["type"] == "error"
        assert messages.json()["error"]["type"] == "permission_error"
        gemini = await client.post("/v1beta/models/demo-echo:generateContent", json=GEMINI_BODY)
        assert gemini.status_code == 403
        assert gemini.json()["error"]["status"] == "PERMISSION_DENIED"
        # A key does not help when none are configured: there is nothing to check it against.
        keyed = await client.post(
            "/v1/chat/completions", json=CHAT_BODY, headers={"authorization": "Bearer anything"}
        )
        assert keyed.status_code == 403
        # Health checks still answer.
        assert (await client.get("/healthz")).status_code == 200


async def test_without_api_keys_a_loopback_client_is_served() -> None:
    for address in ("127.0.0.1", "::1"):
        async with await _asgi_client(None, (address, 5555)) as client:
            reply = await client.post("/v1/chat/completions", json=CHAT_BODY)
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"][0]["message"]["content"] == "Echo: hi"


async def test_with_api_keys_a_remote_client_with_the_key_is_served() -> None:
    async with await _asgi_client(f"api-keys: [{RIGHT}]\n", ("10.0.0.5", 1234)) as client:
        ok = await client.post(
            "/v1/chat/completions", json=CHAT_BODY, headers={"authorization": f"Bearer {RIGHT}"}
        )
        assert ok.status_code == 200
        refused = await client.post("/v1/chat/completions", json=CHAT_BODY)
        assert refused.status_code == 401


def test_browser_preflight_is_answered_without_a_key() -> None:
    with ProxyServer("api-keys: [browser-key]\n") as proxy:
        preflight = httpx.options(
            proxy.base_url + "/v1/chat/completions",
            headers={
                "origin": "http://localhost:3000",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
        refused = httpx.post(
            proxy.base_url + "/v1/chat/completions",
            json={"model": "demo-echo", "messages": []},
            headers={"origin": "http://localhost:3000"},
        )
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "http://localhost:3000"
