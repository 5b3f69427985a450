"""Application state: built once at start; the config-derived part is swapped whole on reload."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cliproxy.config.schema import Config
from cliproxy.providers.transport import UpstreamClient
from cliproxy.routing.build import build_registry
from cliproxy.routing.registry import ModelRegistry, Selector, make_selector


@dataclass(frozen=True)
class Runtime:
    """Everything derived from one config. A request reads ``state.runtime`` once and keeps
    using that snapshot, so a reload never changes a request half-way."""

    config: Config
    registry: ModelRegistry
    selector: Selector
    api_keys: tuple[bytes, ...]

    @property
    def request_retry(self) -> int:
        return self.config.request_retry

    def key_allowed(self, presented: str) -> bool:
        """Constant-time comparison against every configured key."""
        candidate = presented.encode()
        allowed = False
        for key in self.api_keys:
            allowed |= hmac.compare_digest(candidate, key)
        return allowed


def build_runtime(config: Config, previous: Runtime | None = None) -> Runtime:
    selector = previous.selector if previous and _same_strategy(previous.config, config) else None
    return Runtime(
        config=config,
        registry=build_registry(config),
        selector=selector or make_selector(config.routing.strategy),
        api_keys=tuple(key.encode() for key in config.api_keys),
    )


def _same_strategy(old: Config, new: Config) -> bool:
    return old.routing.strategy == new.routing.strategy


class AppState:
    def __init__(self, config: Config) -> None:
        self.runtime = build_runtime(config)
        self.upstream = UpstreamClient(config.proxy_url or None, config.upstream_timeout_seconds)
        self.retired_clients: list[UpstreamClient] = []

    def apply(self, config: Config) -> None:
        """Swap in a new config (hot reload)."""
        old = self.runtime.config
        self.runtime = build_runtime(config, self.runtime)
        if (old.proxy_url, old.upstream_timeout_seconds) != (
            config.proxy_url,
            config.upstream_timeout_seconds,
        ):
            retired = self.upstream
            self.upstream = UpstreamClient(
                config.proxy_url or None, config.upstream_timeout_seconds
            )
            # Streams still running keep their sessions; those close with the process.
            self.retired_clients.append(retired)

    async def close(self) -> None:
        await self.upstream.close()
        for client in self.retired_clients:
            await client.close()
