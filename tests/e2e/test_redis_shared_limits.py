"""client-keys limits, management lockouts and OAuth login states shared through one real
Redis by two real cliproxy instances (docs/scaling.md, "What is shared").

Each test works under its own key prefix and deletes its keys afterwards (tests/e2e/
redis_servers.py); the outage test runs a redis-server of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from cliproxy.management.app import ManagementMount
from cliproxy.management.redis_lockouts import SharedLockouts
from cliproxy.routing.redis_limits import SharedKeyLimits
from cliproxy.routing.redis_link import RedisLink
from cliproxy.usage.prices import Prices
from tests.e2e.redis_servers import (  # noqa: F401 (pytest fixtures)
    REDIS_URL,
    OwnRedis,
    own_redis_fixture,
    prefix_fixture,
    wait_for,
)
from tests.proxy_server import ProxyServer, management_client
from tests.simulators import AnthropicSim, Reply
from tests.simulators.oauth_sim import (  # noqa: F401 (pytest fixtures)
    OAuthSim,
    callback_location,
    oauth_sim_fixture,
    oauth_sim_server_fixture,
)

TEAM = "sk-team-shared-123456"
MGMT = "shared-management-key"

CONFIG = """
request-retry: 0
max-retry-interval: 0
remote-management:
  secret-key: {mgmt}
state-store:
  redis-url: {url}
  key-prefix: "{prefix}"
claude-api-key:
  - api-key: up-claude-key
    base-url: {claude}
    models: [{{name: up-claude, alias: pooled}}]
client-keys:
  - key: {team}
    name: team-a
{policy}
"""


@contextlib.contextmanager
def pair(
    sim: AnthropicSim, prefix: str, policy: str = "", *, url: str = REDIS_URL, extra: str = ""
) -> Iterator[tuple[ProxyServer, ProxyServer]]:
    lines = "".join(f"    {line}\n" for line in policy.splitlines())
    config = extra + CONFIG.format(
        mgmt=MGMT, url=url, prefix=prefix, claude=sim.base_url, team=TEAM, policy=lines
    )
    with ProxyServer(config) as first, ProxyServer(config) as second:
        yield first, second


def ask(proxy: ProxyServer) -> httpx.Response:
    body = {"model": "pooled", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"anthropic-version": "2023-06-01", "x-api-key": TEAM}
    return httpx.post(f"{proxy.base_url}/v1/messages", json=body, headers=headers, timeout=10)


def both_counted(admitted: int, *proxies: ProxyServer, seconds: float = 10) -> None:
    """Wait until every instance counts ``admitted`` requests this minute for team-a (its own
    at once, the others' once their announcements arrived)."""

    def counted() -> bool:
        return all(p.state.key_limits.requests_last_minute("team-a") == admitted for p in proxies)

    wait_for(counted, seconds)


def mid_minute(*proxies: ProxyServer) -> float:
    """Pin the limits' clock half-way through the current minute, so the two-minute window
    arithmetic cannot move under the test."""
    moment = (time.time() // 60) * 60 + 30
    for proxy in proxies:
        assert isinstance(proxy.state.key_limits, SharedKeyLimits)
        proxy.state.key_limits.clock = lambda: moment
    return moment


# ----- client-keys limits -----------------------------------------------------------------------


def test_requests_per_minute_count_across_both_instances(
    anthropic_sim: AnthropicSim, prefix: str
) -> None:
    with pair(anthropic_sim, prefix, "requests-per-minute: 3") as (a, b):
        moment = mid_minute(a, b)
        statuses = []
        for proxy in (a, b, a, b, a, b):
            statuses.append(ask(proxy).status_code)
            both_counted(statuses.count(200), a, b)
        # Counted per instance, each would admit three (six in all).
        assert statuses == [200, 200, 200, 429, 429, 429]
        refused = ask(a)
        assert "requests-per-minute" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 1
        key = f'{prefix}limit:rpm:["team-a",{int(moment // 60)}]'
        stored = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        # One field per instance, each holding what that instance admitted.
        shares = stored.hgetall(key)
        assert sorted(shares.values()) == ["1", "2"] and len(shares) == 2
        assert 60_000 <= stored.pttl(key) <= 150_000  # gone after the following minute
        assert a.state.key_limits.requests_last_minute("team-a") == 3
        assert len(anthropic_sim.requests) == 3


def test_tokens_per_day_spent_on_one_instance_stop_the_other(
    anthropic_sim: AnthropicSim, prefix: str
) -> None:
    with pair(anthropic_sim, prefix, "tokens-per-day: 100") as (a, b):
        anthropic_sim.queue(Reply.text("big", input_tokens=60, output_tokens=50))
        assert ask(a).status_code == 200
        wait_for(lambda: b.state.key_limits.tokens_today("team-a") == 110)
        refused = ask(b)
        assert refused.status_code == 429
        assert "110 used today" in refused.json()["error"]["message"]


def test_max_concurrent_requests_count_the_other_instances_running_ones(
    anthropic_sim: AnthropicSim, prefix: str
) -> None:
    with pair(anthropic_sim, prefix, "max-concurrent-requests: 1") as (a, b):
        anthropic_sim.queue(Reply.text("slow", hang=True))

        async def run() -> tuple[int, int]:
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"model": "pooled", "max_tokens": 16, "messages": []}
                body["messages"] = [{"role": "user", "content": "hi"}]
                headers = {"anthropic-version": "2023-06-01", "x-api-key": TEAM}
                held = asyncio.ensure_future(
                    client.post(f"{a.base_url}/v1/messages", json=body, headers=headers)
                )
                await asyncio.to_thread(
                    wait_for, lambda: b.state.key_limits.running_count("team-a") == 1
                )
                during = (await asyncio.to_thread(ask, b)).status_code
                held.cancel()  # A's request hangs up: its slot is free everywhere
                await asyncio.gather(held, return_exceptions=True)
                await asyncio.to_thread(
                    wait_for, lambda: b.state.key_limits.running_count("team-a") == 0
                )
                return during, (await asyncio.to_thread(ask, b)).status_code

        during, after = asyncio.run(run())
        assert (during, after) == (429, 200)


def test_redis_stopped_and_restarted_loses_no_request_and_the_counts_resume(
    anthropic_sim: AnthropicSim, own_redis: OwnRedis
) -> None:
    prefix = "cliproxy-test:"
    with pair(anthropic_sim, prefix, "requests-per-minute: 5", url=own_redis.url) as (a, b):
        moment = mid_minute(a, b)
        for admitted, proxy in enumerate((a, b), 1):
            assert ask(proxy).status_code == 200
            both_counted(admitted, a, b)
        links = [proxy.state.pool.link for proxy in (a, b)]
        own_redis.stop()  # and it comes back empty: it keeps nothing on disk
        wait_for(lambda: not any(link.connected for link in links))  # type: ignore[union-attr]
        for proxy in (a, b):  # served from each instance's own counts meanwhile
            assert ask(proxy).status_code == 200
        own_redis.start()
        # Each instance writes its share back; both count the four again.
        both_counted(4, a, b, seconds=40)
        assert ask(a).status_code == 200
        both_counted(5, a, b)
        assert ask(b).status_code == 429
        assert len(anthropic_sim.requests) == 5  # every admitted request was served
        key = f'{prefix}limit:rpm:["team-a",{int(moment // 60)}]'
        shares = redis.Redis.from_url(own_redis.url, decode_responses=True).hgetall(key)
        assert sorted(shares.values()) == ["2", "3"]


# ----- management lockouts ----------------------------------------------------------------------


def failures_seen(proxy: ProxyServer) -> tuple[int, bool]:
    """(failures counted, banned) for 127.0.0.1, as this instance's guard sees them."""
    mount = next(r for r in proxy.app.routes if isinstance(r, ManagementMount))
    lockouts = mount.management.guard.lockouts
    found = lockouts.attempts.get("127.0.0.1")
    failures = found.failures if found is not None else 0
    return failures, lockouts.banned_until("127.0.0.1") > time.time()


def both_see(expected: tuple[int, bool], *proxies: ProxyServer) -> None:
    wait_for(lambda: all(failures_seen(proxy) == expected for proxy in proxies))


def management_get(proxy: ProxyServer, key: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    return httpx.get(f"{proxy.base_url}/v0/management/config", headers=headers, timeout=10)


def test_failures_on_both_instances_add_up_to_one_lockout_seen_by_both(
    anthropic_sim: AnthropicSim, prefix: str
) -> None:
    with pair(anthropic_sim, prefix) as (a, b):
        assert management_get(a, MGMT).status_code == 200
        # Five wrong keys in all, never five on one instance.
        for failures, proxy in enumerate((a, b, a, b, a), 1):
            assert management_get(proxy, "wrong").status_code == 401
            both_see((failures % 5, failures == 5), a, b)  # the fifth bans, counting anew
        for proxy in (a, b):
            refused = management_get(proxy, MGMT)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"].startswith("IP banned due to too many failed")
        stored = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        ban = stored.hgetall(f"{prefix}lockout:127.0.0.1")
        assert float(ban["banned_until"]) == pytest.approx(time.time() + 30 * 60, abs=60)
        # Kept as long as the guard remembers failures (two hours), which outlasts the ban.
        assert 119 * 60_000 < stored.pttl(f"{prefix}lockout:127.0.0.1") <= 120 * 60_000


def test_the_right_key_forgives_the_failures_everywhere(
    anthropic_sim: AnthropicSim, prefix: str
) -> None:
    with pair(anthropic_sim, prefix) as (a, b):
        for _ in range(4):
            assert management_get(a, "wrong").status_code == 401
        both_see((4, False), a, b)
        assert management_get(b, MGMT).status_code == 200  # forgives the four
        both_see((0, False), a, b)
        for failures, proxy in enumerate((a, b, a, b), 1):
            assert management_get(proxy, "wrong").status_code == 401
            both_see((failures, False), a, b)
        assert management_get(a, MGMT).status_code == 200  # four since: no ban


# ----- OAuth login states -----------------------------------------------------------------------


@pytest.fixture
def oauth_env(oauth_sim: OAuthSim, monkeypatch: pytest.MonkeyPatch) -> OAuthSim:
    """Both instances' login flows point at the OAuth simulator (read when a login starts)."""
    for name, value in oauth_sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    return oauth_sim


def login_status(api: httpx.Client, state: str) -> dict[str, str]:
    reply = api.get("/get-auth-status", params={"state": state})
    assert reply.status_code == 200, reply.text
    status: dict[str, str] = reply.json()
    return status


def start_on(api: httpx.Client, path: str) -> tuple[str, str]:
    reply = api.get(path)
    assert reply.status_code == 200, reply.text
    return reply.json()["url"], reply.json()["state"]


Apis = tuple[ProxyServer, httpx.Client, httpx.Client]


@contextlib.contextmanager
def login_pair(sim: AnthropicSim, prefix: str, extra: str = "") -> Iterator[Apis]:
    """Two instances, and a management client of each; the second instance is yielded."""
    with (
        pair(sim, prefix, extra=extra) as (a, b),
        management_client(a, MGMT) as api_a,
        management_client(b, MGMT) as api_b,
    ):
        yield b, api_a, api_b


def test_a_login_started_on_one_instance_is_finished_by_a_paste_on_the_other(
    anthropic_sim: AnthropicSim, prefix: str, oauth_env: OAuthSim, tmp_path: Path
) -> None:
    with login_pair(anthropic_sim, prefix, f"auth-dir: {tmp_path}\n") as (b, api_a, api_b):
        url, state = start_on(api_a, "/codex-auth-url")
        wait_for(lambda: login_status(api_b, state) == {"status": "wait"})
        location = callback_location(url)  # what the user pastes, into B's page
        done = httpx.post(
            f"{b.base_url}/v0/management/oauth-callback",
            json={"provider": "codex", "redirect_url": location},
            timeout=10,
        )
        assert done.status_code == 200 and done.json() == {"status": "ok"}, done.text
        wait_for(lambda: login_status(api_b, state) == {"status": "ok"})
        assert login_status(api_a, state) == {"status": "ok"}
        # A ran the exchange (it alone held the verifier) and wrote the account.
        assert (tmp_path / "codex-coder@example.com.json").is_file()
        assert oauth_env.token_requests[-1]["grant_type"] == "authorization_code"
        again = httpx.post(
            f"{b.base_url}/v0/management/oauth-callback",
            json={"provider": "codex", "redirect_url": location},
            timeout=10,
        )
        assert again.status_code == 409  # single use, on the other instance too
        stored = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        record = stored.hgetall(f"{prefix}login:{state}")
        assert record["phase"] == "done" and "verifier" not in str(record)
        assert 0 < stored.pttl(f"{prefix}login:{state}") <= 60_000


def test_the_provider_callback_reaching_the_other_instance_finishes_the_login(
    anthropic_sim: AnthropicSim, prefix: str, oauth_env: OAuthSim, tmp_path: Path
) -> None:
    with login_pair(anthropic_sim, prefix, f"auth-dir: {tmp_path}\n") as (b, api_a, api_b):
        url, state = start_on(api_a, "/anthropic-auth-url")
        wait_for(lambda: login_status(api_b, state) == {"status": "wait"})
        query = urlsplit(callback_location(url)).query
        page = httpx.get(f"{b.base_url}/anthropic/callback?{query}", timeout=40)
        assert page.status_code == 200, page.text
        assert "Saved claude-claude.user@example.com.json" in page.text
        assert login_status(api_a, state) == {"status": "ok"}


def test_a_login_cancelled_on_the_other_instance_ends_on_its_owner(
    anthropic_sim: AnthropicSim, prefix: str, oauth_env: OAuthSim
) -> None:
    with login_pair(anthropic_sim, prefix) as (_, api_a, api_b):
        _, state = start_on(api_a, "/codex-auth-url")
        wait_for(lambda: login_status(api_b, state) == {"status": "wait"})
        cancelled = api_b.delete("/oauth-session", params={"state": state})
        assert cancelled.json() == {"status": "ok", "cancelled": True}
        gone = {"status": "error", "error": "unknown or expired state"}
        wait_for(lambda: login_status(api_a, state) == gone)
        wait_for(lambda: login_status(api_b, state) == gone)


# ----- two instances writing at once ------------------------------------------------------------


async def test_two_instances_counting_at_once_lose_nothing(prefix: str) -> None:
    links = [RedisLink(REDIS_URL, prefix), RedisLink(REDIS_URL, prefix)]
    books = [SharedKeyLimits(link, Prices({})) for link in links]
    lockouts = [SharedLockouts(link) for link in links]
    for link in links:
        await link.start()
    try:
        now = time.time()
        day = int(now // 86400)
        for _ in range(100):  # interleaved: both links write while the other does
            for book in books:
                book.add("team-a", 7, None, now)
        # Three wrong keys on one instance and two on the other, sent at the same moment.
        for _ in range(3):
            lockouts[0].failed("192.0.2.1", now)
        for _ in range(2):
            lockouts[1].failed("192.0.2.1", now)
        await asyncio.to_thread(
            wait_for, lambda: all(book.tokens_today("team-a") == 1400 for book in books)
        )
        await asyncio.to_thread(
            wait_for, lambda: all(book.banned_until("192.0.2.1") > now for book in lockouts)
        )
        stored = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            shares = await stored.hgetall(f'{prefix}limit:tokens:["team-a",{day}]')
            assert sorted(shares.values()) == ["700", "700"]
            ban = await stored.hgetall(f"{prefix}lockout:192.0.2.1")
            # The fifth failure, whichever instance sent it, banned; the count starts over.
            assert ban["failures"] == "0" and float(ban["banned_until"]) > now
        finally:
            await stored.aclose()
    finally:
        for link in links:
            await link.close()
