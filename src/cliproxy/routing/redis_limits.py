"""client-keys' limits counted across instances through Redis (docs/scaling.md).

The limits' decisions stay synchronous and local (KeyLimits.admit never awaits): each instance
answers from a mirror of the shared totals and sends its own additions in the background over
the shared RedisLink. Keys, all under the prefix:

- ``limit:rpm:["<name>",<minute>]``: the requests admitted in that minute (since the epoch),
  expiring at the end of the following minute. requests-per-minute reads the current and the
  previous minute, the previous one weighted by how much of it still lies within the last 60
  seconds (a sliding window from two counters, as exact as the one-process deque to within
  a request or so).
- ``limit:tokens:["<name>",<UTC day>]`` and ``limit:cost:["<name>",<UTC month>]`` (USD): what
  tokens-per-day and max-budget-usd-per-month read, expiring after their period; never below
  what the ledger held when an instance started (the ``floor`` field).
- ``running:["<name>","<instance>"]``: the requests an instance is running for a key with
  max-concurrent-requests, refreshed while non-zero and expiring a minute after the instance
  stops refreshing it (one that crashed stops counting against the others).

Each total is a hash with a field per instance (a grow-only counter, see SharedTotals): an
instance raises its own field with one Lua script that also sets the expiry and publishes the
new value, so every mirror learns it. The window in which the gateway can admit more than a
limit is the time an admission takes to reach the other instances (a pub/sub hop after the
write; milliseconds on a LAN): requests reaching two instances within it may both take the
last free slot. While Redis is away each instance counts only what it hears of, its own
requests and what it knew before; its shares reach Redis when it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from redis.asyncio import Redis

from cliproxy.config.client_keys import ClientKey
from cliproxy.routing.redis_link import Event, RedisLink
from cliproxy.usage.key_limits import (
    DAY,
    WINDOW,
    KeyLimits,
    LedgerTotals,
    next_month_start,
    utc_day,
    utc_month,
)
from cliproxy.usage.prices import Prices

# Raise one field (an instance's share, or the floor) to ARGV[2] if that is more, set the
# expiry (ms since the epoch) and tell the others, in one step. A smaller or equal value (a
# replay, a write queued behind one that already carried it) changes and publishes nothing.
SHARE_SCRIPT = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 0
"""

RPM, TOKENS, COST = "rpm", "tokens", "cost"
FLOOR = "floor"  # the field holding the ledger's count, beside the instances' own
# How long an instance's running count stands without a refresh (the link refreshes it every
# few seconds while it is not zero), in Redis and in the others' mirrors.
RUNNING_TTL = 60.0

Period = tuple[str, str, int]  # (kind, key name, minute / day / month)


def _amount(kind: str, value: float) -> str:
    return f"{value:.10f}" if kind == COST else str(int(value))


def _expires_ms(kind: str, period: int) -> int:
    """When a period's total may go: a minute is still read during the next one; a day or a
    month when it is over (a minute later, for clocks a little apart)."""
    if kind == RPM:
        return int((period + 2) * WINDOW * 1000)
    if kind == TOKENS:
        return int((period + 1) * DAY * 1000) + 60_000
    year, month = divmod(period - 1, 12)  # utc_month: year * 12 + month (1 to 12)
    first = datetime(year, month + 1, 1, tzinfo=UTC).timestamp()
    return int(next_month_start(first) * 1000) + 60_000


class SharedTotals:
    """Totals per (kind, key name, period), shared through Redis, read from a local mirror.

    Each total is a hash with one field per instance (what that instance added) and a
    ``floor`` (the ledger's count at start): the total is the sum of the instances' fields,
    and never less than the floor. An instance writes only its own field, and only upwards
    (a script keeps the larger value), so instances never race on one value, a write replayed
    after a lost reply counts once, and a Redis that restarted empty is refilled exactly by
    the instances' next synchronisation.
    """

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.shares: dict[Period, dict[str, float]] = {}  # field (instance, floor) -> value
        self._latest: dict[str, int] = {}

    def value(self, kind: str, name: str, period: int) -> float:
        shares = self.shares.get((kind, name, period))
        if not shares:
            return 0.0
        added = sum(value for field, value in shares.items() if field != FLOOR)
        return max(added, shares.get(FLOOR, 0.0))

    def add(self, kind: str, name: str, period: int, amount: float) -> None:
        at = (kind, name, period)
        self._forget_before(kind, period)
        shares = self.shares.setdefault(at, {})
        shares[self.link.origin] = shares.get(self.link.origin, 0.0) + amount
        self.link.submit(
            lambda client: self._push(client, at, self.link.origin),
            coalesce=("share", at, self.link.origin),
        )

    def raise_to(self, kind: str, name: str, period: int, total: float) -> None:
        """At least ``total`` (the ledger's count at start) for the whole gateway."""
        at = (kind, name, period)
        self.seen(at, FLOOR, total)
        self.link.submit(
            lambda client: self._push(client, at, FLOOR), coalesce=("share", at, FLOOR)
        )

    async def _push(self, client: Redis, at: Period, field: str) -> None:
        # The value as it is when the write runs: writes queued behind it send nothing new.
        value = self.shares.get(at, {}).get(field)
        if value is None:
            return  # forgotten meanwhile (its period is over)
        kind, name, period = at
        event = self.link.event("share", k=kind, n=name, p=period, f=field, v=value)
        expires = str(_expires_ms(kind, period))
        args = [field, _amount(kind, value), expires, self.link.channel, event]
        await client.eval(SHARE_SCRIPT, 1, self._key(at), *args)

    def seen(self, at: Period, field: str, value: float) -> None:
        shares = self.shares.setdefault(at, {})
        if value > shares.get(field, 0.0):
            shares[field] = value

    def _forget_before(self, kind: str, period: int) -> None:
        """Drop the mirror's totals older than the previous period (Redis expires its own)."""
        if period <= self._latest.get(kind, period - 1):
            return
        self._latest[kind] = period
        for at in [at for at in self.shares if at[0] == kind and at[2] < period - 1]:
            del self.shares[at]

    def _key(self, at: Period) -> str:
        kind, name, period = at
        return self.link.key("limit", kind, orjson.dumps([name, period]).decode())

    async def sync(self, client: Redis) -> None:
        """Push our fields (Redis may have lost them), then take everyone's."""
        for at, shares in list(self.shares.items()):
            for field in [f for f in shares if f in (self.link.origin, FLOOR)]:
                await self._push(client, at, field)
        prefix = self.link.key("limit", "")
        async for key in client.scan_iter(match=self.link.pattern("limit"), count=500):
            found = await client.hgetall(key)
            kind, _, rest = key[len(prefix) :].partition(":")
            try:
                name, period = orjson.loads(rest)
                for owner, value in found.items():
                    self.seen((kind, str(name), int(period)), str(owner), float(value))
            except (orjson.JSONDecodeError, TypeError, ValueError):
                continue  # not a key we wrote

    def apply(self, event: Event) -> None:
        if event["t"] == "share":
            at = (str(event["k"]), str(event["n"]), int(event["p"]))
            self.seen(at, str(event["f"]), float(event["v"]))


class SharedRunning:
    """Requests running per key name on every instance (max-concurrent-requests)."""

    def __init__(self, link: RedisLink, clock: Callable[[], float] = time.monotonic) -> None:
        self.link = link
        self.clock = clock
        # name -> instance -> (running there, when we last heard of it)
        self.others: dict[str, dict[str, tuple[int, float]]] = {}
        # name -> requests running here, as last published
        self._here: dict[str, int] = {}

    def elsewhere(self, name: str) -> int:
        fresh_since = self.clock() - RUNNING_TTL
        found = self.others.get(name, {})
        return sum(count for count, heard in found.values() if heard > fresh_since)

    def publish(self, name: str, count: int) -> None:
        self._here[name] = count
        self.link.submit(lambda client: self._write(client, name), coalesce=("running", name))

    async def _write(self, client: Redis, name: str, count: int | None = None) -> None:
        if count is None:  # the latest: a queued write sends it, not the one of its time
            count = self._here.get(name, 0)
        key = self.link.key("running", orjson.dumps([name, self.link.origin]).decode())
        async with client.pipeline(transaction=True) as pipe:
            if count > 0:
                pipe.set(key, count, px=int(RUNNING_TTL * 1000))
            else:
                pipe.delete(key)
            pipe.publish(self.link.channel, self.link.event("running", n=name, c=count))
            await pipe.execute()

    async def refresh(self, client: Redis, ours: dict[str, int]) -> None:
        for name, count in list(ours.items()):
            await self._write(client, name, count)

    async def sync(self, client: Redis) -> None:
        prefix = self.link.key("running", "")
        now = self.clock()
        async for key in client.scan_iter(match=self.link.pattern("running"), count=500):
            count = await client.get(key)
            try:
                name, origin = orjson.loads(key[len(prefix) :])
                if origin != self.link.origin and count is not None:
                    self.others.setdefault(str(name), {})[str(origin)] = (int(count), now)
            except (orjson.JSONDecodeError, TypeError, ValueError):
                continue

    def apply(self, event: Event) -> None:
        if event["t"] == "running":
            found = self.others.setdefault(str(event["n"]), {})
            count = int(event["c"])
            if count > 0:
                found[str(event["o"])] = (count, self.clock())
            else:
                found.pop(str(event["o"]), None)


class SharedKeyLimits(KeyLimits):
    """KeyLimits whose counts are the whole gateway's (every instance on one Redis)."""

    def __init__(
        self,
        link: RedisLink,
        prices: Callable[[], Prices],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(prices, clock)
        self.totals = SharedTotals(link)
        self.shared_running = SharedRunning(link)
        # Names whose running count the others need (their key has max-concurrent-requests).
        self._concurrency_limited: set[str] = set()
        link.join(self.totals.apply, self.totals.sync)
        link.join(self.shared_running.apply, self._sync_running, self._refresh_running)

    # ----- requests per minute -------------------------------------------------------------

    def minute_wait(self, policy: ClientKey, now: float) -> float | None:
        rpm = policy.requests_per_minute
        if rpm is None:
            return None
        minute, into = divmod(now, WINDOW)
        share = into / WINDOW  # of the current minute gone by
        previous = self.totals.value(RPM, policy.name, int(minute) - 1)
        current = self.totals.value(RPM, policy.name, int(minute))
        if previous * (1 - share) + current < rpm:
            return None
        if current < rpm:  # the previous minute's weight falls below the limit first
            return (1 - (rpm - current) / previous - share) * WINDOW
        # This minute is full: into the next one, until this one weighs less than the limit.
        return (1 - share) * WINDOW + (1 - rpm / current) * WINDOW

    def note_admission(self, policy: ClientKey, now: float) -> None:
        if policy.requests_per_minute is not None:
            minute = int(now // WINDOW)
            self.totals.add(RPM, policy.name, minute, 1)

    def requests_last_minute(self, name: str, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        minute, into = divmod(now, WINDOW)
        previous = self.totals.value(RPM, name, int(minute) - 1)
        current = self.totals.value(RPM, name, int(minute))
        return round(previous * (1 - into / WINDOW) + current)

    # ----- requests at a time --------------------------------------------------------------

    def running_count(self, name: str) -> int:
        return super().running_count(name) + self.shared_running.elsewhere(name)

    def note_start(self, policy: ClientKey) -> None:
        super().note_start(policy)
        if policy.max_concurrent_requests is not None:
            self._concurrency_limited.add(policy.name)
            self.shared_running.publish(policy.name, self.running.get(policy.name, 0))

    def release(self, name: str) -> None:
        super().release(name)
        if name in self._concurrency_limited:
            self.shared_running.publish(name, self.running.get(name, 0))

    async def _refresh_running(self, client: Redis) -> None:
        ours = {name: self.running.get(name, 0) for name in self._concurrency_limited}
        await self.shared_running.refresh(client, {n: c for n, c in ours.items() if c})

    async def _sync_running(self, client: Redis) -> None:
        await self._refresh_running(client)
        await self.shared_running.sync(client)

    # ----- tokens per day, cost per month --------------------------------------------------

    def tokens_today(self, name: str, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        return int(self.totals.value(TOKENS, name, utc_day(now)))

    def cost_this_month(self, name: str, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        return self.totals.value(COST, name, utc_month(now))

    def add(self, name: str, tokens: int, cost: float | None, now: float) -> None:
        if tokens:
            self.totals.add(TOKENS, name, utc_day(now), tokens)
        if cost:
            self.totals.add(COST, name, utc_month(now), cost)

    def seed(self, today: LedgerTotals, this_month: LedgerTotals, now: float) -> None:
        """The ledger's totals raise the shared ones (an instance whose ledger is its own
        knows only its share; one on a shared ledger knows them all)."""
        for name, (tokens, _cost) in today.items():
            if tokens:
                self.totals.raise_to(TOKENS, name, utc_day(now), tokens)
        for name, (_tokens, cost) in this_month.items():
            if cost:
                self.totals.raise_to(COST, name, utc_month(now), cost)
