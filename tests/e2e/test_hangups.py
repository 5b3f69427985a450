"""A client that hangs up before the first byte stops the upstream call, in every protocol,
plain and streamed: the upstream connection is closed within moments, not held until the
upstream answers (up to upstream-timeout-seconds) while the account's tokens are spent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import matrix_config
from tests.proxy_server import ProxyServer
from tests.simulators import Reply, Simulator
from tests.simulators.fixtures import own_matrix_sims

PROMPT = "please answer slowly"


def _call(protocol: str, model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    if protocol == "chat":
        body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}
        return "/v1/chat/completions", body
    if protocol == "responses":
        return "/v1/responses", {"model": model, "stream": stream, "input": PROMPT}
    if protocol == "messages":
        body = {
            "model": model,
            "stream": stream,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": PROMPT}],
        }
        return "/v1/messages", body
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{method}", {"contents": [{"parts": [{"text": PROMPT}]}]}


PROTOCOLS = ("chat", "responses", "messages", "gemini")
UPSTREAMS = ("chat-model", "resp-model", "claude-model", "gemini-model")


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Simulator]]:
    # Own simulators: the shared ones hold idle pooled connections from other tests.
    with own_matrix_sims() as started:
        yield started


@pytest.fixture(scope="module")
def proxy(sims: dict[str, Simulator]) -> Iterator[ProxyServer]:
    config = matrix_config(
        sims["chat-model"],
        sims["resp-model"],
        sims["claude-model"],
        sims["gemini-model"],  # type: ignore[arg-type]
    )
    with ProxyServer(config) as server:
        yield server


async def _hang_up(base_url: str, path: str, body: dict[str, Any]) -> None:
    """Send the request and wait for a reply that never comes; the caller cancels this, which
    closes the connection."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(60.0)) as c,
        c.stream("POST", path, json=body) as reply,
    ):
        await reply.aread()
    raise AssertionError(f"{path} was answered; its upstream was told to hang")


def _wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_early_hang_ups_close_every_upstream_call(
    stream: bool, proxy: ProxyServer, sims: dict[str, Simulator]
) -> None:
    calls = [
        (model, *_call(protocol, model, stream))
        for protocol in PROTOCOLS
        for model in UPSTREAMS
        for _ in range(2)
    ]
    for model, _, _ in calls:
        sims[model].queue(Reply.text("never sent", hang=True))

    async def everyone() -> bool:
        # Each client hangs up once every call reached its upstream (a fixed client timeout
        # raced the proxy on a slow host and left replies queued for the next test).
        clients = [
            asyncio.create_task(_hang_up(proxy.base_url, path, body)) for _, path, body in calls
        ]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(sim.pending for sim in sims.values()):
            await asyncio.sleep(0.05)
        reached = all(sim.pending == 0 for sim in sims.values())
        for client in clients:
            client.cancel()
        ended = await asyncio.gather(*clients, return_exceptions=True)
        answered = [e for e in ended if not isinstance(e, asyncio.CancelledError)]
        assert not answered, answered  # every client was still waiting
        return reached

    # Every call reached its upstream, and every upstream connection is gone within 3 s.
    assert asyncio.run(everyone())
    assert _wait_for(lambda: sum(s.open_connections for s in sims.values()) == 0, 3.0), {
        model: sim.open_connections for model, sim in sims.items()
    }
    # The proxy serves on afterwards.
    for model in UPSTREAMS:
        sims[model].queue(Reply.text("still here"))
        path, body = _call("chat", model, False)
        reply = httpx.post(proxy.base_url + path, json=body, timeout=10)
        assert reply.status_code == 200, reply.text


async def _hang_up_mid_stream(base_url: str, path: str, body: dict[str, Any]) -> bytes:
    """Read the stream's first bytes, then close the connection."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=5.0) as c,
        c.stream("POST", path, json=body) as reply,
    ):
        assert reply.status_code == 200
        async for first in reply.aiter_raw():
            return first
    return b""


def test_hang_ups_mid_stream_close_every_upstream_call(
    proxy: ProxyServer, sims: dict[str, Simulator]
) -> None:
    # The stream's response leaves the disconnect to CancelOnHangUp (respond.py RelayResponse):
    # a client leaving after the first event still closes the upstream that keeps it open.
    calls = [
        (model, *_call(protocol, model, True)) for protocol in PROTOCOLS for model in UPSTREAMS
    ]
    for model, _, _ in calls:
        sims[model].queue(Reply.text("a b c d e f", chunk_size=2, cut_after=1, hang=True))

    async def everyone() -> list[bytes]:
        return await asyncio.gather(
            *(_hang_up_mid_stream(proxy.base_url, path, body) for _, path, body in calls)
        )

    assert all(asyncio.run(everyone()))  # each client had its first bytes
    assert _wait_for(lambda: sum(s.open_connections for s in sims.values()) == 0, 3.0), {
        model: sim.open_connections for model, sim in sims.items()
    }
