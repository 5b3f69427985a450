"""Pool state shared through a real Redis by two real cliproxy instances (docs/scaling.md).

Redis is the one at 127.0.0.1:6379 (CLIPROXY_TEST_REDIS_URL overrides); each test works under
its own key prefix and deletes its keys afterwards. The outage tests run a redis-server of
their own, so stopping it touches nothing shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from cliproxy.routing.cooldown import MemoryCooldownBook
from cliproxy.routing.pool_state import PoolState
from cliproxy.routing.redis_link import RedisLink
from cliproxy.routing.redis_state import RedisCooldownBook, RedisCounters, redis_pool_state
from tests.e2e.redis_servers import (  # noqa: F401 (pytest fixtures)
    REDIS_URL,
    OwnRedis,
    closed_port,
    own_redis_fixture,
    prefix_fixture,
    settle,
    wait_for,
)
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, Reply
from tests.simulators.core import RecordedRequest

CONFIG = """
request-retry: 1
max-retry-interval: 0
routing:
  strategy: {strategy}
  session-affinity: {affinity}
state-store:
  redis-url: {url}
  key-prefix: "{prefix}"
claude-api-key:
"""
# Two keys of one upstream, serving the same model: credentials claude-api-key[0] and [1].
KEYS = ("first-key", "second-key")
KEY_ENTRY = """  - api-key: {key}
    base-url: {claude}
    models: [{{name: up-claude, alias: pooled}}]
"""


@contextlib.contextmanager
def _pair(
    sim: AnthropicSim, prefix: str, *, url: str = REDIS_URL, **options: str
) -> Iterator[tuple[ProxyServer, ProxyServer]]:
    settings = {"strategy": "round-robin", "affinity": "false", **options}
    config = CONFIG.format(url=url, prefix=prefix, **settings)
    config += "".join(KEY_ENTRY.format(key=key, claude=sim.base_url) for key in KEYS)
    with ProxyServer(config) as first, ProxyServer(config) as second:
        yield first, second


def _ask(proxy: ProxyServer, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"model": "pooled", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"anthropic-version": "2023-06-01", **(headers or {})}
    return httpx.post(f"{proxy.base_url}/v1/messages", json=body, headers=headers, timeout=10)


def _keys(sim: AnthropicSim) -> list[str | None]:
    return [sim.presented_key(r) for r in sim.requests]


def _rate_limit(sim: AnthropicSim, key: str) -> Callable[[RecordedRequest], Reply]:
    """A reply source: 429 (retry in 120 s) to ``key``, a plain answer to any other."""

    def reply(rec: RecordedRequest) -> Reply:
        limited = sim.presented_key(rec) == key
        return Reply.error(429, retry_after=120) if limited else Reply.text("ok")

    return reply


def test_a_credential_rested_by_one_instance_is_skipped_by_the_other(
    anthropic_sim: AnthropicSim, prefix: str
) -> None:
    # fill-first: without the shared rest, B would try first-key on every request.
    with _pair(anthropic_sim, prefix, strategy="fill-first") as (a, b):
        anthropic_sim.queue(*[_rate_limit(anthropic_sim, "first-key")] * 10)
        assert _ask(a).status_code == 200
        assert _keys(anthropic_sim) == ["first-key", "second-key"]
        settle(a, b)
        assert b.state.cooldowns.available_at("claude-api-key[0]", "up-claude") is not None
        for _ in range(3):
            assert _ask(b).status_code == 200
        assert _keys(anthropic_sim)[2:] == ["second-key"] * 3


def test_an_instance_started_later_loads_the_rests_and_a_clear_reaches_all(
    anthropic_sim: AnthropicSim, prefix: str
) -> None:
    pair = ("claude-api-key[0]", "up-claude")
    with _pair(anthropic_sim, prefix, strategy="fill-first") as (a, b):
        anthropic_sim.queue(*[_rate_limit(anthropic_sim, "first-key")] * 10)
        assert _ask(a).status_code == 200
        settle(a, b)
        config = a.state.runtime.config
        with ProxyServer(config) as late:  # joins after the rest: reads it on start
            assert late.state.cooldowns.available_at(*pair) is not None
            assert _ask(late).status_code == 200
            assert _keys(anthropic_sim)[-1] == "second-key"
            b.state.cooldowns.clear(pair[0])  # as the management API's reset does
            settle(a, b, late)
            for proxy in (a, b, late):
                assert proxy.state.cooldowns.available_at(*pair) is None
            assert not redis.Redis.from_url(REDIS_URL).keys(prefix + "cooldown:*")


def test_round_robin_alternates_across_both_instances(
    anthropic_sim: AnthropicSim, prefix: str
) -> None:
    with _pair(anthropic_sim, prefix) as (a, b):
        for proxy in (a, b, a, b, a, b):
            assert _ask(proxy).status_code == 200
            settle(a, b)
        assert _keys(anthropic_sim) == ["first-key", "second-key"] * 3


def test_a_binding_made_on_one_instance_is_honoured_on_the_other(
    anthropic_sim: AnthropicSim, prefix: str
) -> None:
    session = {"x-claude-code-session-id": f"conversation-{uuid.uuid4().hex}"}
    with _pair(anthropic_sim, prefix, affinity="true") as (a, b):
        assert _ask(a, session).status_code == 200
        bound = _keys(anthropic_sim)[0]
        settle(a, b)
        # Round-robin alone would move B's requests to the other key (counters are shared).
        for _ in range(3):
            assert _ask(b, session).status_code == 200
        assert _keys(anthropic_sim) == [bound] * 4


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "cliproxy.routing.redis_link" and "unreachable" in r.getMessage()
    ]


def test_without_redis_both_instances_serve_and_say_so_once(
    anthropic_sim: AnthropicSim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cliproxy.routing.redis_link")
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    with _pair(anthropic_sim, "cliproxy-test-down:", url=url) as (a, b):
        for _ in range(3):
            for proxy in (a, b):
                assert _ask(proxy).status_code == 200
        time.sleep(2.5)  # the links retry (after 1 s, then 2 s) without logging again
        assert _ask(a).status_code == 200
        lines = _outage_lines(caplog)
        assert len(lines) == 2, lines  # one per instance
        assert all("hunter2" not in line and ":***@" in line for line in lines)


def test_rests_made_while_redis_was_away_reach_it_when_it_returns(
    anthropic_sim: AnthropicSim, own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cliproxy.routing.redis_link")
    with _pair(anthropic_sim, "cliproxy-test:", url=own_redis.url, strategy="fill-first") as (a, b):
        own_redis.stop()
        wait_for(lambda: not a.state.pool.link.connected)  # type: ignore[union-attr]
        anthropic_sim.queue(*[_rate_limit(anthropic_sim, "first-key")] * 10)
        assert _ask(a).status_code == 200  # Redis is away: A rests first-key locally
        assert _keys(anthropic_sim) == ["first-key", "second-key"]
        own_redis.start()
        # Both reconnect; A pushes its rest, B reloads it (or hears of it).
        wait_for(
            lambda: b.state.cooldowns.available_at("claude-api-key[0]", "up-claude") is not None
        )
        assert _ask(b).status_code == 200
        assert _keys(anthropic_sim)[-1] == "second-key"
        back = [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]
        assert len(back) == 2, back


def test_a_frozen_redis_slows_no_request_and_is_noticed(
    anthropic_sim: AnthropicSim, own_redis: OwnRedis
) -> None:
    with _pair(anthropic_sim, "cliproxy-test:", url=own_redis.url, strategy="fill-first") as (a, b):
        assert own_redis.process is not None
        own_redis.process.send_signal(signal.SIGSTOP)  # alive, connected, silent
        try:
            anthropic_sim.queue(*[_rate_limit(anthropic_sim, "first-key")] * 10)
            started = time.monotonic()
            for _ in range(3):
                assert _ask(a).status_code == 200
            assert time.monotonic() - started < 2  # the writes wait, the requests do not
            assert _keys(anthropic_sim) == ["first-key", "second-key", "second-key", "second-key"]
            # The rest's write times out; the link gives up on that connection.
            wait_for(lambda: not a.state.pool.link.connected)  # type: ignore[union-attr]
        finally:
            own_redis.process.send_signal(signal.SIGCONT)
        wait_for(
            lambda: b.state.cooldowns.available_at("claude-api-key[0]", "up-claude") is not None
        )


async def test_two_instances_racing_to_rest_a_pair_keep_the_later_reset(prefix: str) -> None:
    now = time.time()
    first, second = (
        redis_pool_state(REDIS_URL, prefix, time.time),
        redis_pool_state(REDIS_URL, prefix, time.time),
    )
    clients = [redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True) for _ in range(2)]
    await first.start()
    await second.start()
    try:
        books = [_book(first), _book(second)]
        for round_ in range(20):
            model = f"model-{round_}"
            later, earlier = now + 300 + round_, now + 100 + round_
            # Alternate which one is sent first, so either order of arrival is exercised.
            writes = [(0, later), (1, earlier)] if round_ % 2 else [(1, earlier), (0, later)]
            await asyncio.gather(
                *(
                    books[i].push(clients[i], "cred", model, until, "rate-limit")
                    for i, until in writes
                )
            )
            stored = await clients[0].hget(f"{prefix}cooldown:" + f'["cred","{model}"]', "until")
            assert stored is not None and float(stored) == pytest.approx(later)
        await asyncio.sleep(0.2)  # pub/sub carries the winners to both mirrors
        for book in books:
            for round_ in range(20):
                assert book.available_at("cred", f"model-{round_}") == pytest.approx(
                    now + 300 + round_
                )
    finally:
        await first.close()
        await second.close()
        for client in clients:
            await client.aclose()


def _book(state: PoolState) -> RedisCooldownBook:
    assert isinstance(state.cooldowns, RedisCooldownBook)
    assert isinstance(state.cooldowns.mirror, MemoryCooldownBook)
    return state.cooldowns


async def test_a_burst_of_rotations_is_one_write_and_every_position_is_counted(
    prefix: str,
) -> None:
    """Under load every request advances a rotation counter: while one write to Redis waits,
    later advances join it, so the writes keep up (one per key per round trip) and no position
    is lost; the other instance hears the total."""
    first = redis_pool_state(REDIS_URL, prefix, time.time)
    second = redis_pool_state(REDIS_URL, prefix, time.time)
    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    await first.start()
    await second.start()
    try:
        link, heard = first.link, second.counters
        assert isinstance(link, RedisLink) and isinstance(heard, RedisCounters)
        positions = [first.counters.advance("openai:gpt") for _ in range(500)]
        assert positions == list(range(500))
        assert len(link._pending) == 1  # 500 advances, one queued write
        deadline = time.monotonic() + 5
        key = f"{prefix}counter:openai:gpt"
        while time.monotonic() < deadline and await client.get(key) != "500":
            await asyncio.sleep(0.02)
        assert await client.get(key) == "500"
        # The other instance took the shared value from the event: it continues after 500.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and heard._values.get("openai:gpt", 0) < 500:
            await asyncio.sleep(0.02)
        assert second.counters.advance("openai:gpt") == 500
    finally:
        await first.close()
        await second.close()
        await client.aclose()
