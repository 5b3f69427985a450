"""Management lockouts shared through Redis: a wrong secret key counts on every instance, and
an address banned by one is refused by all (docs/scaling.md).

Key, under the prefix: ``lockout:<address>``, a hash (failures, banned_until) expiring when
nothing more is to be remembered (the ban's end, or two hours after the last failure). A
failure is counted by a Lua script that adds it, bans at the fifth and publishes the outcome,
so failures sent to two instances at once all count. The guard reads a local mirror (the
in-memory Lockouts), which takes its own failures at once and Redis's totals as they come
back or are published; a request never waits on Redis, and while Redis is away each instance
still locks out on its own count.
"""

from __future__ import annotations

from redis.asyncio import Redis

from cliproxy.management.security import (
    BAN_SECONDS,
    FORGET_AFTER_SECONDS,
    MAX_FAILURES,
    Attempts,
    Lockouts,
)
from cliproxy.routing.redis_link import Event, RedisLink

# ARGV: now (s), failures that ban, ban (s), forget after (s), channel, event. The times come
# from the guard's clock, so the expiry is relative (PEXPIRE).
FAIL_SCRIPT = """
local now = tonumber(ARGV[1])
local banned = tonumber(redis.call('HGET', KEYS[1], 'banned_until') or '0')
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[2]) then
  failures = 0
  banned = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'failures', 0, 'banned_until', tostring(banned))
end
local keep = math.max(tonumber(ARGV[4]), banned - now)
redis.call('PEXPIRE', KEYS[1], math.ceil(keep * 1000))
local event = cjson.decode(ARGV[6])
event['f'] = failures
event['b'] = tostring(banned)
redis.call('PUBLISH', ARGV[5], cjson.encode(event))
return {failures, tostring(banned)}
"""

# The right key: forget the failures, keep a ban another instance may just have set.
FORGIVE_SCRIPT = """
local banned = tonumber(redis.call('HGET', KEYS[1], 'banned_until') or '0')
if banned > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'failures', 0)
else
  redis.call('DEL', KEYS[1])
  banned = 0
end
local event = cjson.decode(ARGV[3])
event['f'] = 0
event['b'] = tostring(banned)
redis.call('PUBLISH', ARGV[2], cjson.encode(event))
return tostring(banned)
"""


class SharedLockouts(Lockouts):
    def __init__(self, link: RedisLink) -> None:
        super().__init__()
        self.link = link
        link.join(self.apply, self.sync)

    def failed(self, address: str, now: float) -> None:
        super().failed(address, now)
        args = [repr(now), str(MAX_FAILURES), str(BAN_SECONDS), str(FORGET_AFTER_SECONDS)]

        async def write(client: Redis) -> None:
            event = self.link.event("lockout", a=address, n=now)
            found = await client.eval(
                FAIL_SCRIPT, 1, self._key(address), *args, self.link.channel, event
            )
            self.take(address, int(found[0]), float(found[1]), now)

        self.link.submit(write)

    def succeeded(self, address: str, now: float) -> None:
        super().succeeded(address, now)

        async def write(client: Redis) -> None:
            event = self.link.event("lockout", a=address, n=now)
            banned = await client.eval(
                FORGIVE_SCRIPT, 1, self._key(address), repr(now), self.link.channel, event
            )
            self.take(address, 0, float(banned), now)

        self.link.submit(write)

    def take(self, address: str, failures: int, banned_until: float, seen: float) -> None:
        """Redis's count for ``address`` (which includes ours) as of ``seen``; a ban only
        ever lengthens. Nothing to remember (no failures, no ban) forgets the address."""
        known = self.attempts.get(address)
        if known is not None:
            banned_until = max(banned_until, known.banned_until)
            seen = max(seen, known.last_seen)
        if failures == 0 and banned_until == 0:
            self.attempts.pop(address, None)
            return
        self.attempts[address] = Attempts(failures, banned_until, seen)

    def _key(self, address: str) -> str:
        return self.link.key("lockout", address)

    async def sync(self, client: Redis) -> None:
        """Load every lockout (our failures made while Redis was away ran just before)."""
        prefix = self.link.key("lockout", "")
        async for key in client.scan_iter(match=self.link.pattern("lockout"), count=500):
            fields = await client.hgetall(key)
            try:
                failures = int(fields.get("failures", 0))
                banned_until = float(fields.get("banned_until", 0))
            except ValueError:
                continue
            self.take(key[len(prefix) :], failures, banned_until, 0.0)

    def apply(self, event: Event) -> None:
        if event["t"] == "lockout":
            self.take(str(event["a"]), int(event["f"]), float(event["b"]), float(event["n"]))
