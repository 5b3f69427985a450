"""Session affinity: keep a conversation on the credential that served its previous turn.

Upstreams cache prompts per account, so a conversation that hops between credentials pays for
its whole history again on every hop. With ``routing.session-affinity`` on, a request carrying
a session key goes first to the credential bound to (session, client model), as long as that
credential is still a candidate and not cooling; otherwise the normal order applies and the
binding moves to whichever credential answers.

Like the cooldown book, the binding book lives in AppState (a reload keeps it) behind a small
synchronous interface, so a shared store can replace the in-memory one. Its clock is the
cooldown book's, so tests move one clock for both.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

# Re-exported: the key the affinity book binds (it moved beside the protocols it reads).
from cliproxy.protocols.conversation import session_key as session_key

if TYPE_CHECKING:
    from cliproxy.config.schema import RoutingConfig
    from cliproxy.routing.cooldown import Clock


class AffinityBook(Protocol):
    """Where bindings are kept: (session key, client model) -> credential id, until expiry."""

    def now(self) -> float: ...

    def bound(self, session: str, model: str) -> str | None:
        """The credential bound to the pair, or None when there is none or it expired."""
        ...

    def bind(self, session: str, model: str, credential_id: str, ttl: float) -> None:
        """Bind (or re-bind) the pair for ``ttl`` seconds from now."""
        ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...


class MemoryAffinityBook:
    """The in-process book. Every bind refreshes the expiry, so an active conversation keeps
    its credential; expired entries are swept now and then and the oldest dropped past
    ``max_entries`` so a flood of one-off sessions cannot grow memory without bound."""

    SWEEP_EVERY = 1024

    def __init__(self, clock: Clock, max_entries: int = 100_000) -> None:
        self.clock = clock
        self.max_entries = max_entries
        # Insertion order is recency order: bind() re-inserts.
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._binds_since_sweep = 0

    def now(self) -> float:
        return self.clock()

    def bound(self, session: str, model: str) -> str | None:
        key = (session, model)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= self.clock():
                del self._entries[key]
                return None
            return entry[0]

    def bind(self, session: str, model: str, credential_id: str, ttl: float) -> None:
        key = (session, model)
        now = self.clock()
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (credential_id, now + ttl)
            self._binds_since_sweep += 1
            if self._binds_since_sweep >= self.SWEEP_EVERY:
                self._binds_since_sweep = 0
                for stale in [k for k, (_, until) in self._entries.items() if until <= now]:
                    del self._entries[stale]
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def is_subagent(headers: Mapping[str, str], body: Mapping[str, Any]) -> bool:
    """A child session naming its parent: Codex subagents send ``x-openai-subagent`` (e.g.
    "collab_spawn", "review") and ``x-codex-parent-thread-id``, while keeping the root's
    ``session-id``; the same marks may ride in the body's ``client_metadata``."""
    marker = headers.get("x-openai-subagent", "").strip().lower()
    if marker and marker not in ("false", "0"):
        return True
    if headers.get("x-codex-parent-thread-id", "").strip():
        return True
    metadata = body.get("client_metadata")
    return isinstance(metadata, dict) and bool(
        metadata.get("parent_thread_id") or metadata.get("x-openai-subagent")
    )


def affinity_session(
    routing: RoutingConfig, headers: Mapping[str, str], body: Mapping[str, Any]
) -> str | None:
    """The session a request keeps its credential for, or None when affinity does not apply.
    Off by default: then no header scan and no body hashing on the hot path."""
    if not routing.session_affinity:
        return None
    if not routing.session_affinity_subagents and is_subagent(headers, body):
        return None
    return session_key(headers, body)
