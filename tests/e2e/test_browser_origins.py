"""Web pages the user opens must not reach the proxy: CORS only for this machine's origins and
the listed ones, Private Network Access preflights likewise, the Host check against DNS
rebinding, and management lockouts only from wrong keys presented directly."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cliproxy.config import ConfigError, parse_config_text
from tests.proxy_server import ProxyServer
from tests.simulators import OpenAIChatSim, Reply

EVIL = "https://evil.example"
CHAT = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}
SECRET = "management-secret"


def _config(extra: str, sim: OpenAIChatSim) -> str:
    return f"""
demo: true
remote-management:
  secret-key: {SECRET}
openai-compatibility:
  - name: sim
    base-url: {sim.base_url}
    api-key-entries: [{{api-key: upstream-key}}]
    models: [{{name: sim-model}}]
{extra}
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[OpenAIChatSim]:
    with OpenAIChatSim() as started:
        yield started


@pytest.fixture(scope="module")
def keyless(sim: OpenAIChatSim) -> Iterator[ProxyServer]:
    extra = "cors-allowed-origins: ['https://*.example.com', 'https://chat.lan:*',"
    extra += " 'chrome-extension://abcdef']\n"
    extra += "allowed-hosts: [proxy.lan]\n"
    with ProxyServer(_config(extra, sim)) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def keyed(sim: OpenAIChatSim) -> Iterator[ProxyServer]:
    with ProxyServer(_config("api-keys: [client-key]\ncors-allowed-origins: ['*']\n", sim)) as p:
        yield p


def _preflight(proxy: ProxyServer, origin: str, path: str = "/v1/chat/completions", **extra: str):
    headers = {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
        **extra,
    }
    return httpx.options(proxy.base_url + path, headers=headers)


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        ("/v1/chat/completions", CHAT, "openai"),
        ("/v1/responses", {"model": "sim-model", "input": "hi"}, "openai"),
        (
            "/v1/messages",
            {"model": "sim-model", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]},
            "anthropic",
        ),
        ("/v1beta/models/sim-model:generateContent", {"contents": []}, "gemini"),
        ("/v1/models", None, "openai"),
    ],
)
def test_a_foreign_page_is_refused_before_anything_goes_upstream(
    keyless: ProxyServer, sim: OpenAIChatSim, path: str, body: object, shape: str
) -> None:
    before = len(sim.requests)
    preflight = _preflight(keyless, EVIL, path)
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    method = "GET" if body is None else "POST"
    reply = httpx.request(method, keyless.base_url + path, json=body, headers={"origin": EVIL})
    assert reply.status_code == 403
    assert "access-control-allow-origin" not in reply.headers
    error = reply.json()["error"]
    assert EVIL in error["message"]
    if shape == "anthropic":
        assert reply.json()["type"] == "error"
        assert error["type"] == "permission_error"
    elif shape == "gemini":
        assert error["status"] == "PERMISSION_DENIED"
    # A page without an Origin, marked cross-site by the browser (an <img>, a navigation).
    marked = httpx.request(
        method, keyless.base_url + path, json=body, headers={"sec-fetch-site": "cross-site"}
    )
    assert marked.status_code == 403
    assert len(sim.requests) == before


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:3000",
        "http://127.0.0.1:5173",
        "http://[::1]:8080",
        "http://app.localhost:3000",
        "https://chat.example.com",
        "https://a.b.example.com",
        "https://chat.lan:8443",
        "chrome-extension://abcdef",
    ],
)
def test_this_machine_and_listed_origins_are_served(keyless: ProxyServer, origin: str) -> None:
    preflight = _preflight(keyless, origin)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    reply = httpx.post(
        keyless.base_url + "/v1/chat/completions",
        json={"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"origin": origin, "sec-fetch-site": "cross-site"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["access-control-allow-origin"] == origin
    assert "x-cliproxy-overhead-ms" in reply.headers["access-control-expose-headers"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://example.org",
        "https://example.com.evil.org",
        "null",
        "http://10.0.0.2",
        "chrome-extension://other",
        "file://",
    ],
)
def test_unlisted_origins_are_refused(keyless: ProxyServer, origin: str) -> None:
    assert _preflight(keyless, origin).status_code == 403


def test_private_network_access_preflight_only_for_allowed_origins(keyless: ProxyServer) -> None:
    pna = {"access-control-request-private-network": "true"}
    allowed = _preflight(keyless, "https://chat.example.com", **pna)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-private-network"] == "true"
    refused = _preflight(keyless, EVIL, **pna)
    assert refused.status_code == 403
    assert "access-control-allow-private-network" not in refused.headers


def test_requests_without_origin_are_unaffected(keyless: ProxyServer, sim: OpenAIChatSim) -> None:
    sim.queue(Reply.text("hello"))
    reply = httpx.post(keyless.base_url + "/v1/chat/completions", json=CHAT)
    assert reply.status_code == 200, reply.text
    assert "access-control-allow-origin" not in reply.headers


def test_without_api_keys_a_foreign_host_header_is_refused(keyless: ProxyServer) -> None:
    url = keyless.base_url + "/v1/models"
    # A DNS-rebinding page: its own name resolves to 127.0.0.1, the Host gives it away.
    rebinding = httpx.get(url, headers={"host": f"evil.example:{keyless.port}"})
    assert rebinding.status_code == 403
    assert "allowed-hosts" in rebinding.json()["error"]["message"]
    management = httpx.get(
        keyless.base_url + "/v0/management/config",
        headers={"host": "evil.example", "authorization": f"Bearer {SECRET}"},
    )
    assert management.status_code == 403
    for host in (f"localhost:{keyless.port}", "127.0.0.1", "[::1]:1", "proxy.lan:8317"):
        assert httpx.get(url, headers={"host": host}).status_code == 200, host
    # Health checks answer whatever the name.
    assert httpx.get(keyless.base_url + "/healthz", headers={"host": "box"}).status_code == 200


def test_with_api_keys_any_host_and_star_origin(keyed: ProxyServer) -> None:
    headers = {"host": "proxy.example.net", "authorization": "Bearer client-key", "origin": EVIL}
    reply = httpx.post(
        keyed.base_url + "/v1/chat/completions",
        json={"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["access-control-allow-origin"] == EVIL
    assert _preflight(keyed, EVIL).status_code == 204


def test_star_origin_needs_api_keys() -> None:
    with pytest.raises(ConfigError, match="cors-allowed-origins"):
        parse_config_text("cors-allowed-origins: ['*']\n", "c.yaml")
    with pytest.raises(ConfigError, match="not an origin"):
        parse_config_text("cors-allowed-origins: [chat.example.com]\n", "c.yaml")


def test_management_answers_panels_hosted_anywhere(keyless: ProxyServer) -> None:
    """As in CLIProxyAPI: the management API is key-gated, so any origin may call it."""
    url = keyless.base_url + "/v0/management/config"
    preflight = httpx.options(
        url,
        headers={
            "origin": "https://panel.example.org",
            "access-control-request-method": "GET",
            "access-control-request-private-network": "true",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://panel.example.org"
    reply = httpx.get(
        url, headers={"origin": "https://panel.example.org", "authorization": f"Bearer {SECRET}"}
    )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "https://panel.example.org"


def test_keyless_and_cross_site_requests_do_not_lock_the_operator_out(sim: OpenAIChatSim) -> None:
    with ProxyServer(_config("", sim)) as proxy:
        url = proxy.base_url + "/v0/management/config"
        for _ in range(10):  # what <img src=...> tags on any web page would send
            assert httpx.get(url, headers={"sec-fetch-site": "cross-site"}).status_code == 401
            assert httpx.get(url).status_code == 401
        for _ in range(10):  # a page guessing keys
            wrong = {"origin": EVIL, "authorization": "Bearer guess"}
            assert httpx.get(url, headers=wrong).status_code == 401
        ok = httpx.get(url, headers={"authorization": f"Bearer {SECRET}"})
        assert ok.status_code == 200, ok.text
        # Wrong keys presented directly still lock the address out.
        for _ in range(5):
            assert httpx.get(url, headers={"authorization": "Bearer nope"}).status_code == 401
        banned = httpx.get(url, headers={"authorization": f"Bearer {SECRET}"})
        assert banned.status_code == 403
        assert "banned" in banned.json()["error"]
