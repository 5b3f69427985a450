"""Which shared state a config asks for (state-store:), built once per process.

Without ``redis-url`` everything stays in the process and the redis client is never imported.
With it, one RedisLink carries every shared book: the pool's (cooldowns, rotation counters,
affinity), the client-key limits' counters, and the management lockouts and login states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cliproxy.config.state_store import StateStoreConfig
from cliproxy.routing.cooldown import Clock
from cliproxy.routing.pool_state import PoolState, memory_pool_state
from cliproxy.usage.key_limits import KeyLimits
from cliproxy.usage.prices import Prices

if TYPE_CHECKING:
    from cliproxy.routing.redis_link import RedisLink


def pool_state_for(store: StateStoreConfig, clock: Clock) -> PoolState:
    """Redis when state-store.redis-url is set (routing/redis_state.py), else memory."""
    if not store.shared:
        return memory_pool_state(clock)
    # Imported here: a gateway without Redis never loads the client.
    from cliproxy.routing.redis_state import redis_pool_state

    return redis_pool_state(store.redis_url, store.key_prefix, clock)


def redis_link_of(pool: PoolState) -> RedisLink | None:
    """The pool's Redis link, which the other shared books join; None for a memory pool."""
    if pool.link is None:
        return None
    from cliproxy.routing.redis_link import RedisLink

    return pool.link if isinstance(pool.link, RedisLink) else None


def key_limits_for(pool: PoolState, prices: Callable[[], Prices]) -> KeyLimits:
    """client-keys' counters: across instances on the pool's Redis link, else in memory."""
    link = redis_link_of(pool)
    if link is None:
        return KeyLimits(prices)
    from cliproxy.routing.redis_limits import SharedKeyLimits

    return SharedKeyLimits(link, prices)
