"""`proxy-url` end to end: official SDKs -> cliproxy -> an outbound proxy -> upstream simulator.

Loopback HTTP and SOCKS5 proxies (tests/e2e/loopback_proxies.py) count what they relay, so each
test proves which path a request took: the entry's own proxy, the global one, or none at all.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
from collections.abc import Iterator

import anthropic
import pytest

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.base import UpstreamRequest
from cliproxy.providers.transport import UpstreamClient
from tests.e2e.clients import ask
from tests.e2e.loopback_proxies import HttpProxy, Socks5Proxy
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, GeminiSim, OpenAIChatSim, Reply, ResponsesSim

KEY = "sim-upstream-key"
# 127.0.0.2 is loopback too (so nothing leaves the machine even if a proxy were skipped), but
# the loopback proxies only dial 127.0.0.1 and refuse it.
REFUSED_UPSTREAM = "http://127.0.0.2:9"


@pytest.fixture(scope="module")
def entry_http() -> Iterator[HttpProxy]:
    with HttpProxy() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def global_http() -> Iterator[HttpProxy]:
    with HttpProxy() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def socks() -> Iterator[Socks5Proxy]:
    with Socks5Proxy() as proxy:
        yield proxy


@pytest.fixture
def proxies(
    entry_http: HttpProxy, global_http: HttpProxy, socks: Socks5Proxy
) -> tuple[HttpProxy, HttpProxy, Socks5Proxy]:
    for proxy in (entry_http, global_http, socks):
        proxy.reset()
    return entry_http, global_http, socks


@pytest.fixture(scope="module")
def server(
    entry_http: HttpProxy,
    global_http: HttpProxy,
    socks: Socks5Proxy,
    _anthropic_sim_server: AnthropicSim,
    _openai_chat_sim_server: OpenAIChatSim,
    _responses_sim_server: ResponsesSim,
    _gemini_sim_server: GeminiSim,
) -> Iterator[ProxyServer]:
    claude = _anthropic_sim_server.base_url
    # socks5h: the upstream is named "localhost" so the proxy, not cliproxy, has to resolve it.
    resp = f"http://localhost:{_responses_sim_server.port}{_responses_sim_server.base_path}"
    auth_proxy = entry_http.url.replace("://", "://alice:s3cret@")
    config = f"""
proxy-url: {global_http.url}
request-retry: 0
claude-api-key:
  - {{api-key: {KEY}, base-url: {claude}, proxy-url: {entry_http.url},
      models: [{{name: up-claude, alias: claude-via-http}}]}}
  - {{api-key: {KEY}, base-url: {claude}, proxy-url: "{auth_proxy}",
      models: [{{name: up-claude, alias: claude-via-http-auth}}]}}
  - {{api-key: {KEY}, base-url: {claude}, proxy-url: direct,
      models: [{{name: up-claude, alias: claude-direct}}]}}
  - {{api-key: {KEY}, base-url: {REFUSED_UPSTREAM}, proxy-url: {socks.url},
      models: [{{name: up-claude, alias: claude-refused-by-socks}}]}}
openai-compatibility:
  - name: chat-socks
    base-url: {_openai_chat_sim_server.base_url}
    api-key-entries: [{{api-key: {KEY}, proxy-url: {socks.url}}}]
    models: [{{name: up-chat, alias: chat-via-socks}}]
codex-api-key:
  - {{api-key: {KEY}, base-url: "{resp}", proxy-url: "socks5h://127.0.0.1:{socks.port}",
      models: [{{name: up-resp, alias: resp-via-socks5h}}]}}
gemini-api-key:
  - {{api-key: {KEY}, base-url: {_gemini_sim_server.base_url},
      models: [{{name: up-gemini, alias: gemini-via-global}}]}}
  - {{api-key: {KEY}, base-url: {_gemini_sim_server.base_url}, proxy-url: none,
      models: [{{name: up-gemini, alias: gemini-none}}]}}
"""
    with ProxyServer(config) as proxy:
        yield proxy


STREAMS = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


@STREAMS
def test_entry_http_proxy_forwards_absolute_uri_requests(
    stream: bool,
    server: ProxyServer,
    proxies: tuple[HttpProxy, HttpProxy, Socks5Proxy],
    anthropic_sim: AnthropicSim,
) -> None:
    entry_http, global_http, socks = proxies
    anthropic_sim.queue(Reply.text("answer over the http proxy", output_tokens=5))
    answer = ask("anthropic", server.base_url, "claude-via-http", "hello", stream)
    assert answer.text == "answer over the http proxy"
    assert len(anthropic_sim.requests) == 1
    [hop] = entry_http.used
    assert (hop.kind, hop.method, hop.target) == ("forward", "POST", "/v1/messages")
    assert (hop.host, hop.port) == ("127.0.0.1", anthropic_sim.port)
    assert hop.proxy_authorization is None
    # The entry's own proxy wins over the global one.
    assert global_http.count == 0 and socks.count == 0


def test_http_proxy_credentials_in_the_url_are_sent(
    server: ProxyServer,
    proxies: tuple[HttpProxy, HttpProxy, Socks5Proxy],
    anthropic_sim: AnthropicSim,
) -> None:
    entry_http, _, _ = proxies
    answer = ask("anthropic", server.base_url, "claude-via-http-auth", "with auth", False)
    assert answer.text == "echo: with auth"
    [hop] = entry_http.used
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert hop.proxy_authorization == expected
    # The proxy's credentials are for the proxy only, never for the upstream.
    assert "proxy-authorization" not in anthropic_sim.last_request.headers


@STREAMS
def test_entry_socks5_proxy_carries_requests(
    stream: bool,
    server: ProxyServer,
    proxies: tuple[HttpProxy, HttpProxy, Socks5Proxy],
    openai_chat_sim: OpenAIChatSim,
) -> None:
    entry_http, global_http, socks = proxies
    openai_chat_sim.queue(Reply.text("answer over socks", chunk_size=4))
    answer = ask("openai_chat", server.base_url, "chat-via-socks", "hello", stream)
    assert answer.text == "answer over socks"
    assert openai_chat_sim.last_request.json["model"] == "up-chat"
    [hop] = socks.used
    assert (hop.kind, hop.target, hop.host, hop.port) == (
        "socks",
        "ipv4",
        "127.0.0.1",
        openai_chat_sim.port,
    )
    assert entry_http.count == 0 and global_http.count == 0


@STREAMS
def test_socks5h_leaves_name_resolution_to_the_proxy(
    stream: bool,
    server: ProxyServer,
    proxies: tuple[HttpProxy, HttpProxy, Socks5Proxy],
    responses_sim: ResponsesSim,
) -> None:
    _, global_http, socks = proxies
    responses_sim.queue(Reply.text("answer over socks5h"))
    answer = ask("openai_responses", server.base_url, "resp-via-socks5h", "hello", stream)
    assert answer.text == "answer over socks5h"
    [hop] = socks.used
    assert (hop.target, hop.host, hop.port) == ("domain", "localhost", responses_sim.port)
    assert global_http.count == 0


@STREAMS
def test_global_proxy_applies_to_entries_without_their_own(
    stream: bool,
    server: ProxyServer,
    proxies: tuple[HttpProxy, HttpProxy, Socks5Proxy],
    gemini_sim: GeminiSim,
) -> None:
    entry_http, global_http, socks = proxies
    gemini_sim.queue(Reply.text("answer over the global proxy"))
    answer = ask("gemini", server.base_url, "gemini-via-global", "hello", stream)
    assert answer.text == "answer over the global proxy"
    [hop] = global_http.used
    verb = "streamGenerateContent" if stream else "generateContent"
    assert hop.kind == "forward" and hop.target.startswith(f"/v1beta/models/up-gemini:{verb}")
    assert entry_http.count == 0 and socks.count == 0


@pytest.mark.parametrize(
    ("client", "model", "sim_name"),
    [("anthropic", "claude-direct", "anthropic_sim"), ("gemini", "gemini-none", "gemini_sim")],
)
@STREAMS
def test_direct_and_none_bypass_the_global_proxy(
    client: str,
    model: str,
    sim_name: str,
    stream: bool,
    server: ProxyServer,
    proxies: tuple[HttpProxy, HttpProxy, Socks5Proxy],
    request: pytest.FixtureRequest,
) -> None:
    sim = request.getfixturevalue(sim_name)
    answer = ask(client, server.base_url, model, "straight through", stream)
    assert answer.text == "echo: straight through"
    assert len(sim.requests) == 1
    assert [p.count for p in proxies] == [0, 0, 0]


def test_socks_refusal_is_a_clean_upstream_error(
    server: ProxyServer, proxies: tuple[HttpProxy, HttpProxy, Socks5Proxy]
) -> None:
    _, _, socks = proxies
    client = anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(
            model="claude-refused-by-socks",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
        )
    assert caught.value.status_code == 502
    [refusal] = socks.refused
    assert (refusal.host, refusal.port) == ("127.0.0.2", 9)
    assert socks.count == 0


def test_global_socks5_proxy_and_direct_entry(
    socks: Socks5Proxy, openai_chat_sim: OpenAIChatSim, anthropic_sim: AnthropicSim
) -> None:
    socks.reset()
    config = f"""
proxy-url: {socks.url}
openai-compatibility:
  - name: chat
    base-url: {openai_chat_sim.base_url}
    api-key-entries: [{{api-key: {KEY}}}]
    models: [{{name: up-chat, alias: chat-global}}]
claude-api-key:
  - {{api-key: {KEY}, base-url: {anthropic_sim.base_url}, proxy-url: DIRECT,
      models: [{{name: up-claude, alias: claude-direct}}]}}
"""
    with ProxyServer(config) as server:
        assert ask("openai_chat", server.base_url, "chat-global", "a", True).text == "echo: a"
        assert [(h.host, h.port) for h in socks.used] == [("127.0.0.1", openai_chat_sim.port)]
        assert ask("anthropic", server.base_url, "claude-direct", "b", True).text == "echo: b"
    assert socks.count == 1
    assert len(anthropic_sim.requests) == 1


# ----- UpstreamClient directly: cases the simulators (plain http) cannot show ---------------


async def test_https_upstream_is_tunnelled_with_connect(
    entry_http: HttpProxy, openai_chat_sim: OpenAIChatSim
) -> None:
    entry_http.reset()
    upstream = UpstreamClient(global_proxy=entry_http.url)
    # The simulator behind the tunnel speaks plain HTTP, so the TLS handshake fails; the
    # CONNECT is the point.
    port = openai_chat_sim.port
    request = UpstreamRequest(f"https://localhost:{port}/v1/messages", {}, b"{}")
    try:
        with pytest.raises(ProxyError):
            await upstream.send(request)
    finally:
        await upstream.close()
    assert [(r.method, r.host, r.port) for r in entry_http.relayed] == [
        ("CONNECT", "localhost", port)
    ]


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "http"])
async def test_unreachable_proxy_is_a_proxy_error(scheme: str) -> None:
    upstream = UpstreamClient()
    request = UpstreamRequest("http://127.0.0.1:9/v1/messages", {}, b"{}")
    try:
        with pytest.raises(ProxyError) as caught:
            await upstream.send(request, f"{scheme}://127.0.0.1:{_closed_port()}")
    finally:
        await upstream.close()
    assert caught.value.kind is ErrorKind.UPSTREAM


@pytest.mark.parametrize("scheme", ["HTTP", "Socks5", "SOCKS5H"])
async def test_scheme_case_does_not_bypass_the_proxy(
    scheme: str, entry_http: HttpProxy, socks: Socks5Proxy, openai_chat_sim: OpenAIChatSim
) -> None:
    proxy = entry_http if scheme.lower() == "http" else socks
    proxy.reset()
    upstream = UpstreamClient()
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    request = UpstreamRequest(f"{openai_chat_sim.base_url}/chat/completions", headers, body)
    try:
        response = await upstream.send(request, f"{scheme}://127.0.0.1:{proxy.port}")
        assert response.status == 200
        response.release()
    finally:
        await upstream.close()
    assert proxy.count == 1 and len(openai_chat_sim.requests) == 1


@pytest.mark.parametrize(
    ("entry", "global_proxy", "expected"),
    [
        (None, None, None),
        (None, "socks5://g:1", "socks5://g:1"),
        ("http://e:1", "socks5://g:1", "http://e:1"),
        ("direct", "socks5://g:1", None),
        (" None ", "socks5://g:1", None),
        ("", "direct", None),
        (None, " http://g:1 ", "http://g:1"),
    ],
)
def test_effective_proxy(entry: str | None, global_proxy: str | None, expected: str | None) -> None:
    assert UpstreamClient(global_proxy).effective_proxy(entry) == expected


async def test_unknown_proxy_scheme_is_refused_not_ignored() -> None:
    upstream = UpstreamClient("ftp://127.0.0.1:21")
    with pytest.raises(ProxyError) as caught:
        await upstream.send(UpstreamRequest("http://127.0.0.1:9/", {}, b""))
    await upstream.close()
    assert caught.value.kind is ErrorKind.SERVER


# ----- the loopback proxies themselves never leave 127.0.0.1 -------------------------------


async def test_http_proxy_refuses_other_hosts_and_tunnels_loopback(
    entry_http: HttpProxy, openai_chat_sim: OpenAIChatSim
) -> None:
    entry_http.reset()
    reader, writer = await asyncio.open_connection("127.0.0.1", entry_http.port)
    writer.write(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 403")
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", entry_http.port)
    target = f"127.0.0.1:{openai_chat_sim.port}"
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    writer.write(f"GET /v1/models HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n".encode())
    assert (await reader.read()).startswith(b"HTTP/1.1 ")  # the simulator answered
    writer.close()
    assert [r.host for r in entry_http.refused] == ["example.com"]
    assert [(r.kind, r.port) for r in entry_http.relayed] == [("connect", openai_chat_sim.port)]


async def test_socks_proxy_refuses_other_hosts(socks: Socks5Proxy) -> None:
    socks.reset()
    for address_type, address in [(1, bytes([10, 0, 0, 1])), (3, b"\x0bexample.com")]:
        reader, writer = await asyncio.open_connection("127.0.0.1", socks.port)
        writer.write(b"\x05\x01\x00")
        assert await reader.readexactly(2) == b"\x05\x00"
        writer.write(bytes([5, 1, 0, address_type]) + address + struct.pack("!H", 443))
        assert (await reader.readexactly(10))[:2] == b"\x05\x02"  # not allowed by ruleset
        writer.close()
    assert [r.host for r in socks.refused] == ["10.0.0.1", "example.com"]
    assert socks.count == 0


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
