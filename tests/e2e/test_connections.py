"""Connections a client holds too long are closed, a body that never finishes gets 408, the
connection limit answers 503, and the access log never prints a client key."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest

from tests.e2e.waiting import wait_until
from tests.proxy_server import ProxyServer

LIMITS = """
header-read-timeout-seconds: 1
body-read-timeout-seconds: 1
max-connections: 40
"""


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_connections_dribbling_headers_are_closed() -> None:
    with ProxyServer(LIMITS) as proxy:
        slow = []
        for _ in range(30):
            sock = socket.create_connection(("127.0.0.1", proxy.port))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)
        silent = socket.create_connection(("127.0.0.1", proxy.port))  # never sends a byte
        started = time.monotonic()
        # Another header line every 0.3 s does not buy more time.
        for _ in range(3):
            for sock in slow:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            time.sleep(0.3)
        assert all(_closed_by_server(sock, 3.0) for sock in [*slow, silent])
        assert time.monotonic() - started < 4.0
        # Meanwhile and afterwards, normal clients are served.
        assert httpx.get(proxy.base_url + "/healthz").status_code == 200
        for sock in [*slow, silent]:
            sock.close()


def test_a_body_that_never_finishes_gets_408_in_the_protocol_shape() -> None:
    with ProxyServer(LIMITS) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port))
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{"model": '
        )
        sock.settimeout(5)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        sock.close()
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b'"type":"error"' in reply  # Anthropic's error shape
        assert b"body-read-timeout-seconds" in reply


def test_max_connections_clients_are_served_and_the_next_gets_503() -> None:
    with ProxyServer(LIMITS) as proxy:
        idle = [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(39)]
        time.sleep(0.2)
        assert httpx.get(proxy.base_url + "/healthz").status_code == 200  # the 40th client
        idle.append(socket.create_connection(("127.0.0.1", proxy.port)))
        time.sleep(0.2)
        reply = httpx.get(proxy.base_url + "/healthz")
        assert reply.status_code == 503
        for sock in idle:
            sock.close()
        time.sleep(0.3)
        assert httpx.get(proxy.base_url + "/healthz").status_code == 200


def test_access_log_redacts_keys_in_the_query(caplog: pytest.LogCaptureFixture) -> None:
    key = "AIzaSyTHISKEYMUSTNEVERAPPEARINFULL"
    with (
        ProxyServer("debug: true\napi-keys: [" + key + "]\n") as proxy,
        caplog.at_level(logging.INFO),
    ):
        reply = httpx.post(
            proxy.base_url + f"/v1beta/models/demo-echo:generateContent?key={key}&alt=json",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
        )
        assert reply.status_code == 200, reply.text
        wrong = httpx.get(proxy.base_url + "/v1beta/models?key=wrong-key-in-full-123")
        assert wrong.status_code == 401

        def access_lines() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.name == "cliproxy.access"]

        # The access line is written once the reply has gone out, so it may trail the reply.
        wait_until(lambda: any(" 401 " in line for line in access_lines()), 5.0)
    lines = access_lines()
    assert any(
        "generateContent?key=<redacted>&alt=json" in line and " 200 " in line for line in lines
    )
    assert any("key=<redacted>" in line and " 401 " in line for line in lines)
    # Everything the proxy logged (httpx's lines are the test client's own).
    everything = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert key not in everything
    assert "wrong-key-in-full-123" not in everything
    assert not [r for r in caplog.records if r.name == "uvicorn.access"]
