"""Which pool state a config asks for (state-store:), built once per process."""

from __future__ import annotations

from cliproxy.config.state_store import StateStoreConfig
from cliproxy.routing.cooldown import Clock
from cliproxy.routing.pool_state import PoolState, memory_pool_state


def pool_state_for(store: StateStoreConfig, clock: Clock) -> PoolState:
    """Redis when state-store.redis-url is set (routing/redis_state.py), else memory."""
    if not store.shared:
        return memory_pool_state(clock)
    # Imported here: a gateway without Redis never loads the client.
    from cliproxy.routing.redis_state import redis_pool_state

    return redis_pool_state(store.redis_url, store.key_prefix, clock)
