"""Cooldowns: which (credential, model) pairs rest after an upstream asked us to back off.

A 429 (or a vendor's quota error, which the protocols map to a rate limit with a reset hint)
cools the pair until the reset; a 408 or 5xx cools it briefly. Requests skip cooling pairs, and
a cooldown ends exactly at its reset: the next request after that moment uses the pair again.

The book lives in AppState, outside the config-derived Runtime, so a reload keeps it. Its
interface is deliberately small and synchronous: candidates are filtered on every request, so a
shared (e.g. Redis) book should keep a local mirror updated by pub/sub rather than make a round
trip per candidate. The clock is injected so tests move time without sleeping.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from cliproxy.model import ErrorKind

log = logging.getLogger(__name__)

Clock = Callable[[], float]  # epoch seconds

RATE_LIMIT = "rate-limit"
TRANSIENT = "transient-error"


@dataclass(frozen=True, slots=True)
class Cooldown:
    credential_id: str
    model: str
    until: float  # epoch seconds; the pair is usable again from this moment on
    reason: str


class CooldownBook(Protocol):
    """Where cooldowns are kept. ``now()`` is the book's clock, so every reader agrees on time."""

    def now(self) -> float: ...

    def cool(self, credential_id: str, model: str, until: float, reason: str) -> None: ...

    def available_at(self, credential_id: str, model: str) -> float | None:
        """When the pair can be used again, or None when it can be used now."""
        ...

    def clear(self, credential_id: str | None = None, model: str | None = None) -> None:
        """Forget cooldowns: all of them, one credential's, or one pair's."""
        ...

    def snapshot(self) -> list[Cooldown]:
        """Every cooldown still running, soonest reset first."""
        ...

    def persist_to(self, path: Path | None) -> None:
        """Also keep the book in ``path`` (save-cooldown-status); None stops. A store that is
        durable already may ignore it."""
        ...


class MemoryCooldownBook:
    """The in-process book. Thread-safe: the server is one event loop, but tests and the
    management side may read it from other threads."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._entries: dict[tuple[str, str], Cooldown] = {}
        self._lock = threading.Lock()
        self._saved_to: Path | None = None

    # --- save-cooldown-status -------------------------------------------------------------

    def persist_to(self, path: Path | None) -> None:
        """Keep the book in ``path`` (save-cooldown-status), so a restart does not forget a
        rate limit and hammer an upstream that asked us to wait. Rests already in the file
        are read back (expired ones dropped); None stops saving."""
        self._saved_to = path
        if path is None:
            return
        for entry in _read_saved(path, self.clock()):
            self.cool(entry.credential_id, entry.model, entry.until, entry.reason)
        self._save()

    def _save(self) -> None:
        path = self._saved_to
        if path is None:
            return
        from cliproxy.auth.files import AuthWriteError, write_atomic

        rows = [
            {"credential": e.credential_id, "model": e.model, "until": e.until, "reason": e.reason}
            for e in self.snapshot()
        ]
        try:
            write_atomic(path, orjson.dumps({"cooldowns": rows}, option=orjson.OPT_INDENT_2))
        except AuthWriteError as exc:
            log.warning("cooldowns not saved to %s: %s", path, exc)

    def now(self) -> float:
        return self.clock()

    def cool(self, credential_id: str, model: str, until: float, reason: str) -> None:
        key = (credential_id, model)
        with self._lock:
            current = self._entries.get(key)
            # A shorter hint must not cut a longer cooldown short (e.g. a 5xx during a 429 rest).
            if current is None or current.until < until or current.until <= self.clock():
                self._entries[key] = Cooldown(credential_id, model, until, reason)
        self._save()

    def available_at(self, credential_id: str, model: str) -> float | None:
        key = (credential_id, model)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.until <= self.clock():
                del self._entries[key]
                return None
            return entry.until

    def clear(self, credential_id: str | None = None, model: str | None = None) -> None:
        with self._lock:
            if credential_id is None:
                self._entries.clear()
            else:
                for key in list(self._entries):
                    if key[0] == credential_id and (model is None or key[1] == model):
                        del self._entries[key]
        self._save()

    def snapshot(self) -> list[Cooldown]:
        now = self.clock()
        with self._lock:
            live = [entry for entry in self._entries.values() if entry.until > now]
        return sorted(live, key=lambda entry: entry.until)


def _read_saved(path: Path, now: float) -> list[Cooldown]:
    """The rests saved in ``path`` that are still running; a missing file is an empty book,
    and a damaged one is reported and ignored (never a reason not to start)."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("saved cooldowns in %s are unreadable and were ignored: %s", path, exc)
        return []
    rows = data.get("cooldowns") if isinstance(data, dict) else None
    found: list[Cooldown] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        credential, model, until = row.get("credential"), row.get("model"), row.get("until")
        reason = row.get("reason")
        if (
            isinstance(credential, str)
            and isinstance(model, str)
            and isinstance(until, (int, float))
            and until > now
        ):
            found.append(Cooldown(credential, model, float(until), str(reason or "")))
    return found


@dataclass(frozen=True, slots=True)
class CoolingPolicy:
    """How long to rest after a failure; built from the config on every request."""

    enabled: bool = True
    rate_limit_seconds: float = 60.0  # a 429 without a reset hint
    transient_seconds: float = 5.0  # a 408 or 5xx
    max_seconds: float = 6 * 3600.0  # cap on any hint

    def duration(
        self,
        status: int,
        kind: ErrorKind,
        retry_after: float | None,
        enabled: bool | None = None,
    ) -> float | None:
        """Seconds to cool after an upstream answered ``status``, or None to not cool.
        ``enabled`` is a credential's own override of the global switch."""
        if not (self.enabled if enabled is None else enabled):
            return None
        if status == 429 or kind is ErrorKind.RATE_LIMIT:
            seconds = retry_after if retry_after is not None else self.rate_limit_seconds
        elif status == 408 or status >= 500:
            if self.transient_seconds < 0:  # transient-error-cooldown-seconds: -1 turns it off
                return None
            seconds = retry_after if retry_after is not None else self.transient_seconds
        else:
            return None
        seconds = min(max(seconds, 0.0), self.max_seconds)
        return seconds if seconds > 0 else None


def seconds_until(moment: float, now: float) -> int:
    """Whole seconds a client should wait so that retrying at once after them succeeds."""
    return max(1, math.ceil(moment - now))
