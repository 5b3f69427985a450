"""The pool's shared state behind one interface: cooldowns, rotation counters, affinity bindings.

Everything the pool remembers between requests lives here, and nowhere else: the selectors
keep no counters of their own, the forwarding core asks the cooldown book, affinity asks the
binding book. A store shared by several cliproxy processes (Redis: INCR for the counters, a
hash with expiries for cooldowns and bindings, pub/sub to keep a local mirror for the
synchronous reads) implements these three protocols and is handed to AppState in place of the
in-memory one; no caller changes.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Protocol

from cliproxy.routing.affinity import AffinityBook, MemoryAffinityBook
from cliproxy.routing.cooldown import Clock, CooldownBook, MemoryCooldownBook


class RotationCounters(Protocol):
    """Monotonic per-key counters: the only state round-robin and weighted rotation need."""

    def advance(self, key: str) -> int:
        """The key's next position (0, 1, 2, ...), each handed out once."""
        ...


class MemoryCounters:
    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def advance(self, key: str) -> int:
        counter = self._counters.get(key)
        if counter is None:
            with self._lock:
                counter = self._counters.setdefault(key, itertools.count())
        # next() on itertools.count is atomic under the GIL.
        return next(counter)


class StateLink(Protocol):
    """A shared store's connection, which keeps the books' local mirrors in sync; started and
    closed with the server (the books serve from their mirrors before, during and after)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def describe(self) -> str:
        """Where the state lives, for the banner and logs (no secrets)."""
        ...


@dataclass(frozen=True, slots=True)
class PoolState:
    cooldowns: CooldownBook
    affinity: AffinityBook
    counters: RotationCounters
    link: StateLink | None = None  # None: in this process only

    def describe(self) -> str:
        return self.link.describe() if self.link is not None else "memory (this process only)"

    async def start(self) -> None:
        if self.link is not None:
            await self.link.start()

    async def close(self) -> None:
        if self.link is not None:
            await self.link.close()


def memory_pool_state(clock: Clock) -> PoolState:
    """The in-process state. The binding book reads the cooldown book's clock, so a test that
    moves one clock moves both."""
    cooldowns = MemoryCooldownBook(clock)
    return PoolState(cooldowns, MemoryAffinityBook(cooldowns.now), MemoryCounters())
