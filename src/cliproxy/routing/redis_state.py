"""The pool state shared through Redis, for several cliproxy processes behind one gateway.

Each book keeps a local mirror (the in-memory book) that answers the synchronous reads the pool
makes on every request, so no request waits on Redis. A write lands in the mirror at once and
goes to Redis in the background (redis_link.py), which tells the other instances over the
``<prefix>events`` channel; their mirrors apply it. Keys, all under the prefix:

- ``cooldown:["<credential>","<model>"]``: a hash (credential, model, until, reason) expiring
  at the reset (PEXPIREAT). Written by a Lua script that keeps the later reset, so two
  instances racing to rest one pair agree on the longer rest.
- ``affinity:["<session>","<model>"]``: the bound credential, expiring with the binding.
- ``counter:<key>``: a rotation counter (INCR). The mirror hands out positions at once and
  takes the shared value when the INCR answers or another instance publishes one, so requests
  spread over instances still rotate through the credentials together.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from redis.asyncio import Redis

from cliproxy.routing.affinity import MemoryAffinityBook
from cliproxy.routing.cooldown import Clock, Cooldown, MemoryCooldownBook
from cliproxy.routing.pool_state import PoolState
from cliproxy.routing.redis_link import Event, RedisLink

# Keep the later of the stored and the new reset; publish only when the new one wins. Returns
# the reset that stands (until, reason), which the writer's mirror takes.
COOL_SCRIPT = """
local current = redis.call('HMGET', KEYS[1], 'until', 'reason')
if current[1] and tonumber(current[1]) >= tonumber(ARGV[3]) then
  return current
end
redis.call('HSET', KEYS[1], 'credential', ARGV[1], 'model', ARGV[2], 'until', ARGV[3],
           'reason', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return {ARGV[3], ARGV[5]}
"""

# INCRBY and tell the others the new value, in one step. ARGV[2] is the event with a 0 for the
# value, which the script fills in; ARGV[3] the positions handed out since the last write.
COUNT_SCRIPT = """
local value = redis.call('INCRBY', KEYS[1], ARGV[3])
local event = cjson.decode(ARGV[2])
event['v'] = value
redis.call('PUBLISH', ARGV[1], cjson.encode(event))
return value
"""


def _pair(a: str, b: str) -> str:
    return orjson.dumps([a, b]).decode()


async def _scan(client: Redis, pattern: str) -> AsyncIterator[str]:
    async for key in client.scan_iter(match=pattern, count=500):
        yield key


class RedisCooldownBook:
    def __init__(self, link: RedisLink, mirror: MemoryCooldownBook) -> None:
        self.link = link
        self.mirror = mirror

    @property
    def clock(self) -> Clock:
        return self.mirror.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.mirror.clock = clock

    def now(self) -> float:
        return self.mirror.now()

    def available_at(self, credential_id: str, model: str) -> float | None:
        return self.mirror.available_at(credential_id, model)

    def snapshot(self) -> list[Cooldown]:
        return self.mirror.snapshot()

    def persist_to(self, path: Path | None) -> None:
        """Redis keeps the rests across restarts already (save-cooldown-status is moot)."""

    def cool(self, credential_id: str, model: str, until: float, reason: str) -> None:
        self.mirror.cool(credential_id, model, until, reason)
        self.link.submit(lambda client: self.push(client, credential_id, model, until, reason))

    async def push(
        self, client: Redis, credential_id: str, model: str, until: float, reason: str
    ) -> None:
        event = self.link.event("cool", c=credential_id, m=model, u=until, r=reason)
        args = [credential_id, model, repr(until), str(int(until * 1000)), reason]
        key = self.link.key("cooldown", _pair(credential_id, model))
        standing = await client.eval(COOL_SCRIPT, 1, key, *args, self.link.channel, event)
        if standing and standing[0] is not None:
            self.mirror.cool(credential_id, model, float(standing[0]), str(standing[1] or ""))

    def clear(self, credential_id: str | None = None, model: str | None = None) -> None:
        self.mirror.clear(credential_id, model)
        self.link.submit(lambda client: self._clear(client, credential_id, model))

    async def _clear(self, client: Redis, credential_id: str | None, model: str | None) -> None:
        if credential_id is not None and model is not None:
            doomed = [self.link.key("cooldown", _pair(credential_id, model))]
        else:
            doomed = []
            async for key in _scan(client, self.link.pattern("cooldown")):
                owner = await client.hget(key, "credential")
                if credential_id is None or owner == credential_id:
                    doomed.append(key)
        async with client.pipeline(transaction=True) as pipe:
            if doomed:
                pipe.delete(*doomed)
            pipe.publish(self.link.channel, self.link.event("uncool", c=credential_id, m=model))
            await pipe.execute()

    async def sync(self, client: Redis) -> None:
        """Push this instance's rests (made while Redis was away), then take everyone's."""
        for rest in self.mirror.snapshot():
            await self.push(client, rest.credential_id, rest.model, rest.until, rest.reason)
        async for key in _scan(client, self.link.pattern("cooldown")):
            fields = await client.hgetall(key)
            try:
                credential_id, model = str(fields["credential"]), str(fields["model"])
                until, reason = float(fields["until"]), str(fields.get("reason", ""))
                self.mirror.cool(credential_id, model, until, reason)
            except (KeyError, ValueError):
                continue  # expired between SCAN and HGETALL, or not written by us

    def apply(self, event: Event) -> None:
        if event["t"] == "cool":
            self.mirror.cool(event["c"], event["m"], float(event["u"]), str(event["r"]))
        elif event["t"] == "uncool":
            self.mirror.clear(event["c"], event["m"])


class RedisAffinityBook:
    def __init__(self, link: RedisLink, mirror: MemoryAffinityBook) -> None:
        self.link = link
        self.mirror = mirror

    def now(self) -> float:
        return self.mirror.now()

    def bound(self, session: str, model: str) -> str | None:
        return self.mirror.bound(session, model)

    def __len__(self) -> int:
        return len(self.mirror)

    def bind(self, session: str, model: str, credential_id: str, ttl: float) -> None:
        self.mirror.bind(session, model, credential_id, ttl)
        until = self.mirror.now() + ttl

        async def write(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                key = self.link.key("affinity", _pair(session, model))
                pipe.set(key, credential_id, pxat=int(until * 1000))
                event = self.link.event("bind", s=session, m=model, c=credential_id, u=until)
                pipe.publish(self.link.channel, event)
                await pipe.execute()

        self.link.submit(write)

    def clear(self) -> None:
        self.mirror.clear()

        async def write(client: Redis) -> None:
            doomed = [key async for key in _scan(client, self.link.pattern("affinity"))]
            async with client.pipeline(transaction=True) as pipe:
                if doomed:
                    pipe.delete(*doomed)
                pipe.publish(self.link.channel, self.link.event("unbind"))
                await pipe.execute()

        self.link.submit(write)

    async def sync(self, client: Redis) -> None:
        prefix = self.link.key("affinity", "")
        async for key in _scan(client, self.link.pattern("affinity")):
            credential_id, ttl_ms = await client.get(key), await client.pttl(key)
            if credential_id is None or ttl_ms <= 0:
                continue
            session, model = orjson.loads(key[len(prefix) :])
            self.mirror.bind(session, model, str(credential_id), ttl_ms / 1000)

    def apply(self, event: Event) -> None:
        if event["t"] == "bind":
            ttl = float(event["u"]) - self.mirror.now()
            if ttl > 0:
                self.mirror.bind(event["s"], event["m"], event["c"], ttl)
        elif event["t"] == "unbind":
            self.mirror.clear()


class RedisCounters:
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        # The number of positions handed out so far, as far as this instance knows.
        self._values: dict[str, int] = {}
        # Positions handed out here that Redis has not counted yet: one write adds them all.
        self._unsent: dict[str, int] = {}
        self._lock = threading.Lock()

    def advance(self, key: str) -> int:
        with self._lock:
            position = self._values.get(key, 0)
            self._values[key] = position + 1
            self._unsent[key] = self._unsent.get(key, 0) + 1
        self.link.submit(lambda client: self._write(client, key), coalesce=("counter", key))
        return position

    async def _write(self, client: Redis, key: str) -> None:
        with self._lock:
            count = self._unsent.pop(key, 0)
        if not count:
            return
        event = self.link.event("count", k=key, v=0)
        counter = self.link.key("counter", key)
        try:
            value = await client.eval(COUNT_SCRIPT, 1, counter, self.link.channel, event, count)
        except BaseException:
            with self._lock:  # counted again when the write is retried
                self._unsent[key] = self._unsent.get(key, 0) + count
            raise
        self.seen(key, int(value))

    def seen(self, key: str, value: int) -> None:
        """Another instance (or Redis) counted ``value`` positions: never go back."""
        with self._lock:
            if value > self._values.get(key, 0):
                self._values[key] = value

    async def sync(self, client: Redis) -> None:
        prefix = self.link.key("counter", "")
        async for key in _scan(client, self.link.pattern("counter")):
            value = await client.get(key)
            if value is not None and value.isdigit():
                self.seen(key[len(prefix) :], int(value))

    def apply(self, event: Event) -> None:
        if event["t"] == "count":
            self.seen(str(event["k"]), int(event["v"]))


def redis_pool_state(
    url: str, prefix: str, clock: Clock, link: RedisLink | None = None
) -> PoolState:
    """The pool's books on ``link`` (a new one to ``url`` under ``prefix`` when None); other
    books (client-key limits, lockouts, logins) may join the same link."""
    link = link or RedisLink(url, prefix)
    cooldowns = RedisCooldownBook(link, MemoryCooldownBook(clock))
    affinity = RedisAffinityBook(link, MemoryAffinityBook(cooldowns.now))
    counters = RedisCounters(link)
    for book in (cooldowns, affinity, counters):
        link.join(book.apply, book.sync)
    return PoolState(cooldowns, affinity, counters, link=link)
