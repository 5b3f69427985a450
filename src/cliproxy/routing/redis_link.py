"""The one connection a Redis-backed pool state keeps: writes go out in the background, other
instances' changes come in over pub/sub, and an outage never reaches a request.

The books (redis_state.py) answer every read from a local mirror and hand each write here as
an operation; this link runs them in order on its own task. When Redis is unreachable the
operations wait (bounded), the books keep serving from the mirror, the outage is logged once,
and the link retries; on every (re)connection it subscribes first (so nothing published from
then on is missed), runs what waited, has the books push their state and reload Redis's.

Several books share one link (the pool's, client-key limits, management lockouts, login
states): each joins with what it does with an event, how it resynchronises on (re)connection
and, if it must, what it refreshes every few seconds while connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError, ResponseError

from cliproxy.config.state_store import masked_url

log = logging.getLogger(__name__)

Operation = Callable[[Redis], Awaitable[None]]
Event = dict[str, Any]
Sync = Callable[[Redis], Awaitable[None]]

# Long enough for a loopback or LAN Redis, short enough that a hung one is noticed quickly.
SOCKET_TIMEOUT = 3.0
# A connection idle this long is PINGed before its next use (the pub/sub one included), so a
# Redis that vanished without closing the socket is noticed, not waited on forever.
HEALTH_CHECK_SECONDS = 10
# How long start() waits for the first attempt to connect and synchronise, so an instance
# joining a running gateway serves its first request with the shared state; a refused
# connection ends the wait at once, a silent host after this long.
FIRST_SYNC_WAIT = 3.0


@dataclass(frozen=True)
class Book:
    """One user of the link: ``apply`` takes another instance's event (every book sees every
    event and ignores the kinds it does not know), ``sync`` pushes the book's local state and
    reloads Redis's on each (re)connection, ``tick`` refreshes what must not expire while
    this instance lives (run every TICK_SECONDS while connected)."""

    apply: Callable[[Event], None]
    sync: Sync | None = None
    tick: Sync | None = None


# How often the books' ticks run while connected.
TICK_SECONDS = 10.0


class RedisLink:
    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 30.0,
        max_pending: int = 10_000,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.channel = prefix + "events"
        # Each instance tags what it publishes, so it skips its own events (already applied).
        self.origin = uuid.uuid4().hex
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        # The oldest writes go first past the bound: the resync pushes the mirror anyway.
        self.max_pending = max_pending
        self._pending: deque[tuple[Hashable | None, Operation]] = deque()
        # The coalescing keys of the writes waiting in _pending (see submit).
        self._queued: set[Hashable] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self.connected = False
        self._outage_logged = False
        # The books sharing this link (join), in the order they joined.
        self.books: list[Book] = []
        self._last_tick = 0.0

    def join(
        self, apply: Callable[[Event], None], sync: Sync | None = None, tick: Sync | None = None
    ) -> None:
        """Add a book; one that joins after the link started resynchronises at once."""
        self.books.append(Book(apply, sync, tick))
        if sync is not None and self._loop is not None:
            self.submit(sync)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def pattern(self, kind: str) -> str:
        """A SCAN pattern for every key of ``kind`` under our prefix (glob characters in the
        prefix escaped, so a prefix never matches another's keys)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return f"{escaped}{kind}:*"

    def event(self, kind: str, **fields: Any) -> str:
        return orjson.dumps({"o": self.origin, "t": kind, **fields}).decode()

    def describe(self) -> str:
        return f"redis {masked_url(self.url)} (key prefix {self.prefix!r})"

    # --- writes ------------------------------------------------------------------------

    def submit(self, operation: Operation, coalesce: Hashable | None = None) -> None:
        """Queue a write; never blocks and never raises, whatever state Redis is in.

        A write made on every request (a rotation counter, a rate-limit share) names what it
        writes in ``coalesce`` and reads the value when it runs, not when it was queued: while
        one such write waits, another with the same key adds nothing, so a busy instance sends
        one write per key per round trip instead of one per request. (One per request, in
        order, fell behind at a few thousand requests a second and worked off its backlog for
        seconds after the load ended.)"""
        if coalesce is not None:
            if coalesce in self._queued:
                return
            self._queued.add(coalesce)
        if len(self._pending) >= self.max_pending:
            dropped, _ = self._pending.popleft()
            self._queued.discard(dropped)
        self._pending.append((coalesce, operation))
        loop = self._loop
        if loop is None:
            return  # not started yet: start() runs what queued up
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:  # a management call or a test on another thread
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake.set)

    async def _run_pending(self, client: Redis) -> None:
        while self._pending:
            entry = self._pending.popleft()
            coalesce, operation = entry
            # From here on a new write of the same key queues anew: this one may have read
            # its value already.
            self._queued.discard(coalesce)
            try:
                await operation(client)
            except ResponseError as exc:
                # Redis refused this one write (not a connection problem): retrying it
                # would refuse again and hold up every write behind it.
                log.warning("state store refused a write and it was dropped: %s", exc)
            except BaseException:
                # The connection went (or the link is stopping): the write waits for the next.
                self._pending.appendleft(entry)
                if coalesce is not None:
                    self._queued.add(coalesce)
                raise

    async def _drain(self, client: Redis) -> None:
        while True:
            await self._run_pending(client)
            await self._tick(client)
            self._wake.clear()
            if not self._pending:
                try:
                    await asyncio.wait_for(self._wake.wait(), TICK_SECONDS)
                except TimeoutError:
                    await client.ping()  # idle: make sure Redis is still there

    async def _tick(self, client: Redis) -> None:
        now = time.monotonic()
        if now - self._last_tick < TICK_SECONDS:
            return
        self._last_tick = now
        for book in self.books:
            if book.tick is not None:
                await book.tick(client)

    def _apply(self, event: Event) -> None:
        for book in self.books:
            try:
                book.apply(event)
            except (KeyError, TypeError, ValueError) as exc:
                # The kind only: an event may carry a login's authorization code.
                log.debug("state store event %r ignored (%s)", event.get("t"), exc)

    async def _sync(self, client: Redis) -> None:
        for book in self.books:
            if book.sync is not None:
                await book.sync(client)

    # --- reads from other instances ----------------------------------------------------

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None or message.get("type") != "message":
                continue
            try:
                event = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("o") != self.origin:
                self._apply(event)

    # --- the connection ------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="state store link")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), FIRST_SYNC_WAIT)
        if not self.connected:
            self._report_outage("no answer yet")

    async def close(self) -> None:
        if self._task is None:
            return
        if self.connected and self._pending:
            # Best effort: let the writes of the last requests reach the others.
            for _ in range(20):
                if not self._pending:
                    break
                await asyncio.sleep(0.05)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None

    async def _run(self) -> None:
        delay = self.retry_seconds
        while True:
            client = Redis.from_url(
                self.url,
                decode_responses=True,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                health_check_interval=HEALTH_CHECK_SECONDS,
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                # The writes that waited go before the reload: a rest cleared during an
                # outage must be cleared in Redis too, or the reload would bring it back.
                await self._run_pending(client)
                await self._sync(client)
                self._report_back()
                delay = self.retry_seconds
                await self._serve(client, pubsub)
            except (RedisError, OSError, TimeoutError) as exc:
                self._report_outage(str(exc) or type(exc).__name__)
            except Exception as exc:  # a bug here must not end the link (and sharing) silently
                log.exception("state store link failed; it starts over")
                self._report_outage(type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_retry_seconds)

    async def _serve(self, client: Redis, pubsub: PubSub) -> None:
        tasks = [
            asyncio.create_task(self._listen(pubsub), name="state store events"),
            asyncio.create_task(self._drain(client), name="state store writes"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raises the connection error that ended it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _report_outage(self, why: str) -> None:
        # Once per outage, not once per retry (nor per request: requests never see Redis).
        was_connected, self.connected = self.connected, False
        if was_connected or not self._outage_logged:
            log.warning(
                "state store %s unreachable (%s): serving from this instance's pool state, "
                "retrying in the background",
                masked_url(self.url),
                why,
            )
            self._outage_logged = True
        self._first_attempt.set()

    def _report_back(self) -> None:
        if self._outage_logged:
            log.warning(
                "state store %s reachable again: pool state resynchronised", masked_url(self.url)
            )
        else:
            log.info("state store: %s", self.describe())
        self._outage_logged = False
        self.connected = True
        self._first_attempt.set()
