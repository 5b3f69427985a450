"""Application state: built once at start; the config-derived part is swapped whole on reload."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from cliproxy.auth.catalog import catalog
from cliproxy.auth.files import write_atomic
from cliproxy.auth.key_names import KeyNames
from cliproxy.auth.records import AccountState, AuthRecord
from cliproxy.auth.refresher import Refresher
from cliproxy.auth.store import AuthStore
from cliproxy.config.client_keys import ClientKey
from cliproxy.config.schema import Config
from cliproxy.providers.aistudio import (
    AISTUDIO_MODELS,
    AISTUDIO_PREFIXES,
    AIStudioProvider,
    relay_credential,
)
from cliproxy.providers.aistudio_relay import RelayHub
from cliproxy.providers.base import Provider
from cliproxy.providers.client_profiles import ClientIdentities, HeaderDefaults
from cliproxy.providers.transport import UpstreamClient
from cliproxy.routing.affinity import AffinityBook
from cliproxy.routing.build import RuntimeCredential, build_registry
from cliproxy.routing.cooldown import Clock, CooldownBook, CoolingPolicy
from cliproxy.routing.payload import PayloadRules
from cliproxy.routing.pool_state import PoolState, RotationCounters
from cliproxy.routing.registry import ModelRegistry, Selector, make_selector
from cliproxy.routing.state_store import key_limits_for, pool_state_for
from cliproxy.usage.ledger import Ledger
from cliproxy.usage.metrics import Metrics
from cliproxy.usage.observers import Observers
from cliproxy.usage.otel import Tracing, start_tracing
from cliproxy.usage.prices import Prices
from cliproxy.usage.request_counts import RequestCounts


@dataclass(frozen=True)
class Runtime:
    """Everything derived from one config. A request reads ``state.runtime`` once and keeps
    using that snapshot, so a reload never changes a request half-way."""

    config: Config
    registry: ModelRegistry
    selector: Selector
    api_keys: tuple[bytes, ...]  # those of api-keys and of client-keys
    payload: PayloadRules
    client_keys: tuple[tuple[bytes, ClientKey], ...] = ()

    @property
    def request_retry(self) -> int:
        return self.config.request_retry

    @property
    def cooling(self) -> CoolingPolicy:
        config = self.config
        return CoolingPolicy(
            enabled=not config.disable_cooling,
            rate_limit_seconds=config.rate_limit_cooldown_seconds,
            transient_seconds=config.transient_error_cooldown_seconds,
            max_seconds=config.max_cooldown_seconds,
        )

    def key_allowed(self, presented: str) -> bool:
        """Constant-time comparison against every configured key."""
        candidate = presented.encode()
        allowed = False
        for key in self.api_keys:
            allowed |= hmac.compare_digest(candidate, key)
        return allowed

    def policy_for(self, presented: str) -> ClientKey | None:
        """The client-keys entry of an accepted key (None for a plain api-keys key); every
        entry is compared, in constant time."""
        candidate = presented.encode()
        found: ClientKey | None = None
        for key, entry in self.client_keys:
            if hmac.compare_digest(candidate, key):
                found = entry
        return found


def build_runtime(
    config: Config,
    accounts: Sequence[AuthRecord] = (),
    account_providers: Mapping[str, Provider] | None = None,
    counters: RotationCounters | None = None,
    runtime_credentials: Sequence[RuntimeCredential] = (),
) -> Runtime:
    return Runtime(
        config=config,
        registry=build_registry(config, accounts, account_providers, runtime_credentials),
        # Selectors keep no state of their own (the counters do), so a new one per config
        # carries the rotation on where the last one left it.
        selector=make_selector(config.routing.strategy, counters),
        api_keys=tuple(key.encode() for key in config.client_key_values),
        payload=PayloadRules.from_config(config.payload),
        client_keys=tuple((entry.key.encode(), entry) for entry in config.client_keys),
    )


def account_providers(identities: ClientIdentities | None = None) -> dict[str, Provider]:
    """One provider instance per auth-file type, kept for the process's life (they hold
    per-account usage snapshots), sharing one set of client identities."""
    identities = identities or ClientIdentities()
    return {entry.kind: entry.account_provider(identities) for entry in catalog().entries}


COOLDOWN_FILE = "cliproxy-cooldowns.cds"
# Versions adopted from genuine CLIs; beside the auth files, not *.json (the store would take
# it for an account).
CLIENT_VERSIONS_FILE = "cliproxy-client-versions.state"


def header_overrides(config: Config) -> dict[str, HeaderDefaults]:
    """The config's *-header-defaults sections in the providers' terms, per vendor."""
    return {entry.vendor: entry.header_defaults(config) for entry in catalog().entries}


def _read_adopted(path: Path) -> dict[str, str]:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("ignoring %s (%s); adopted client versions start over", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


log = logging.getLogger(__name__)


class AppState:
    def __init__(
        self, config: Config, clock: Clock = time.time, pool: PoolState | None = None
    ) -> None:
        # The pool's memory (cooldowns, rotation counters, session bindings) outlives config
        # reloads and registry rebuilds: a reload must not forgive a rate limit. In memory
        # unless state-store.redis-url names a Redis (or a store is handed in). Tests swap the
        # clock (``state.cooldowns.clock``) to move time; bindings read the same clock.
        self.pool = pool or pool_state_for(config.state_store, clock)
        # How many processes serve this server (`workers`): fixed at start, whatever a reload
        # or the command line's --workers says later.
        self.processes = config.workers
        self.cooldowns: CooldownBook = self.pool.cooldowns
        self.affinity: AffinityBook = self.pool.affinity
        # How a request waits for a credential's reset (max-retry-interval); tests swap it for
        # one that moves the fake clock instead of sleeping.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        # Outcome events (usage/events.py) go to the observers subscribed here.
        self.observers = Observers()
        # Per-credential outcomes for the management listing (memory only): an observer.
        self.request_counts = RequestCounts(self.cooldowns.now)
        self.observers.subscribe(self.request_counts)
        # The persisted usage ledger (usage/ledger.py): opened by the server's lifespan; the
        # application sets its resolver (credential id -> the auth-index the lists show).
        self.ledger = Ledger(
            config.usage_database_url,
            retention_days=config.usage_retention_days,
            prices=Prices(config.model_prices),
            enabled=lambda: self.runtime.config.usage_statistics_enabled,
        )
        self.observers.subscribe(self.ledger)
        # What client-keys' limits count (usage/key_limits.py): seeded from the ledger by the
        # server's lifespan, then kept from the outcome events; outlives config reloads. With
        # a state store, counted across instances (routing/redis_limits.py).
        self.key_limits = key_limits_for(self.pool, lambda: self.ledger.prices)
        self.observers.subscribe(self.key_limits)
        # Names for client keys (api-key-names.json beside the config file; the application
        # points it there): what the ledger shows for a key without a client-keys entry.
        self.key_names = KeyNames()
        self.upstream = UpstreamClient(config.proxy_url or None, config.upstream_timeout_seconds)
        self.retired_clients: list[UpstreamClient] = []
        versions_path = config.auth_dir / CLIENT_VERSIONS_FILE
        self.identities = ClientIdentities(
            _read_adopted(versions_path),
            saved=lambda adopted: write_atomic(versions_path, orjson.dumps(adopted)),
        )
        self.identities.configure(header_overrides(config))
        self.account_providers = account_providers(self.identities)
        # Prometheus metrics (GET /metrics): an observer, with a registry of its own.
        self.metrics = Metrics(
            lambda: self.runtime.registry,
            {kind: provider.name for kind, provider in self.account_providers.items()},
        )
        self._metrics_on = False
        self._configure_metrics(config)
        # OpenTelemetry spans, when otel.endpoint is set (and the extra installed); read at
        # start only: a reload does not start or stop the exporter.
        self._addresses: tuple[object, dict[str, tuple[str, int | None]]] = (None, {})
        self.tracing: Tracing | None = start_tracing(config.otel, self.upstream_address)
        if self.tracing is not None:
            self.observers.subscribe(self.tracing)
        self._configure_providers(config)
        self.auth_store = AuthStore(config.auth_dir)
        self.auth_store.load()
        self._save_cooldowns(config)
        self.refresher = Refresher(
            self.auth_store,
            sender=self.upstream,
            identities=self.identities,
            recent_use_window=config.background_refresh_hours * 3600,
            report=self.observers.emit,
            # The workers of one server (`workers: N`) share the auth directory.
            across_processes=self.processes > 1,
        )
        # AI Studio Build relays (server/aistudio_ws.py): each connected socket is a credential
        # of its own, kept here (not in config or the auth dir) while the socket lives.
        self.relays = RelayHub()
        self.aistudio = AIStudioProvider(self.relays)
        self.runtime_credentials: dict[str, RuntimeCredential] = {}
        self.runtime = self._build(config)
        self.auth_store.subscribe(lambda change: self.rebuild())

    def _build(self, config: Config) -> Runtime:
        return build_runtime(
            config,
            self._usable_accounts(),
            self.account_providers,
            self.pool.counters,
            tuple(self.runtime_credentials.values()),
        )

    def add_relay(self, name: str) -> None:
        """An AI Studio relay connected as ``name``: it serves Gemini models from now on."""
        self.runtime_credentials[name] = RuntimeCredential(
            self.aistudio, relay_credential(name), AISTUDIO_PREFIXES, AISTUDIO_MODELS
        )
        self.rebuild()

    def remove_relay(self, name: str) -> None:
        if self.runtime_credentials.pop(name, None) is not None:
            self.cooldowns.clear(name)
            self.rebuild()

    def client_key_name(self, key: str, policy: ClientKey | None) -> str:
        """What the ledger and the logs call an accepted client key: its client-keys entry's
        name, else the name api-key-names gives it ("" for none)."""
        if policy is not None:
            return policy.name
        return self.key_names.name_for(key)

    def upstream_address(self, credential_id: str) -> tuple[str, int | None] | None:
        """(host, port) of the upstream a routed credential calls (read once per registry)."""
        registry = self.runtime.registry
        built, addresses = self._addresses
        if built is not registry:
            addresses = {}
            for found_id, credential in registry.credentials().items():
                parts = urlsplit(credential.base_url)
                if parts.hostname:
                    try:
                        port = parts.port
                    except ValueError:
                        port = None
                    addresses[found_id] = (parts.hostname, port)
            self._addresses = (registry, addresses)
        return addresses.get(credential_id)

    def _configure_providers(self, config: Config) -> None:
        for kind, provider in self.account_providers.items():
            if entry := catalog().get(kind):
                entry.configure(provider, config)

    def _usable_accounts(self) -> list[AuthRecord]:
        """Accounts that can serve requests now: enabled and not waiting for a new login."""
        return [
            record
            for record in self.auth_store.records()
            if not record.disabled
            and self.auth_store.status(record).state is not AccountState.NEEDS_LOGIN
        ]

    def rebuild(self) -> None:
        """Rebuild the registry from the current config and accounts (auth dir changed)."""
        self.runtime = self._build(self.runtime.config)

    def _save_cooldowns(self, config: Config) -> None:
        # Beside the auth files, as CLIProxyAPI keeps its .cds files; not *.json, so the auth
        # store never takes it for an account.
        path = config.auth_dir / COOLDOWN_FILE if config.save_cooldown_status else None
        self.cooldowns.persist_to(path)

    def _follow_moved_credentials(self, before: ModelRegistry) -> None:
        """Config keys are named by position ("claude-api-key[1]"): after an edit the same key
        may have another id, and an id another key. A key's rests move with it to its new id;
        an id whose key left keeps nothing, so no key is charged with another's rate limit."""

        def by_identity(registry: ModelRegistry) -> dict[tuple[str, str], str]:
            return {
                (credential.secret, credential.base_url): credential_id
                for credential_id, credential in registry.credentials().items()
                if not credential.account  # accounts are named by their file, not by position
            }

        now = by_identity(self.runtime.registry)
        moved = {
            old_id: now.get(identity)
            for identity, old_id in by_identity(before).items()
            if now.get(identity) != old_id
        }
        if not moved:
            return
        running = self.cooldowns.snapshot()
        for old_id in moved:
            self.cooldowns.clear(old_id)
            self.request_counts.forget(old_id)
        for rest in running:
            new_id = moved.get(rest.credential_id)
            if new_id is not None:
                self.cooldowns.cool(new_id, rest.model, rest.until, rest.reason)

    def apply(self, config: Config) -> None:
        """Swap in a new config (hot reload)."""
        old = self.runtime.config
        if (old.save_cooldown_status, old.auth_dir) != (
            config.save_cooldown_status,
            config.auth_dir,
        ):
            self._save_cooldowns(config)
        self.identities.configure(header_overrides(config))
        self._configure_providers(config)
        self.refresher.recent_use_window = config.background_refresh_hours * 3600
        self._configure_ledger(old, config)
        self._configure_metrics(config)
        before = self.runtime.registry
        self.runtime = self._build(config)
        self._follow_moved_credentials(before)
        if config.ws_auth and not old.ws_auth:
            # Relays admitted without a key must not stay on once a key is required.
            self.relays.close_all("ws-auth was turned on; reconnect with a client key")
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

    def _configure_metrics(self, config: Config) -> None:
        # Subscribed once while on: a reload that keeps it on must not count events twice.
        if config.metrics_enabled and not self._metrics_on:
            self.observers.subscribe(self.metrics)
        elif not config.metrics_enabled and self._metrics_on:
            self.observers.unsubscribe(self.metrics)
        self._metrics_on = config.metrics_enabled

    def _configure_ledger(self, old: Config, config: Config) -> None:
        self.ledger.retention_days = config.usage_retention_days
        if old.model_prices != config.model_prices:
            self.ledger.prices = Prices(config.model_prices)
        if old.state_store != config.state_store:
            log.warning(
                "state-store changed; the pool state stays in %s until a restart",
                self.pool.describe(),
            )
        if config.workers != old.workers and config.workers != self.processes:
            log.warning(
                "workers changed to %d; this server keeps its %d process(es) until a restart",
                config.workers,
                self.processes,
            )
        if old.usage_database_url != config.usage_database_url:
            log.warning(
                "usage-database changed; the ledger keeps writing to %s until a restart",
                self.ledger.where,
            )

    async def close(self) -> None:
        await self.observers.close()
        await self.pool.close()
        await self.ledger.close()
        if self.tracing is not None:
            # Exports what is still queued; the SDK's worker joins, so off the event loop.
            await asyncio.to_thread(self.tracing.shutdown)
        self.auth_store.stop()
        await self.refresher.close()
        await self.upstream.close()
        for client in self.retired_clients:
            await client.close()
