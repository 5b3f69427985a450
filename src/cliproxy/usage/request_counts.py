"""Per-credential request counters for the management API: totals and recent 10-minute buckets.

The auth-file listing shows, for every account, how many requests it served and how many
failed, plus the last 20 ten-minute buckets (`recent_requests`, labelled in server-local time,
as the reference's Management Center expects). Memory only: counts restart with the process.

The counters observe the forwarding core's AttemptOutcome events (``on_attempt``, subscribed on
the AppState's observer hub): one count per request sent to an upstream. The object lives on the
AppState (``state.request_counts``); ``counts_of(state)`` creates it on first use so the
management routes work whether or not the server wired it yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cliproxy.usage.events import AttemptOutcome

BUCKET_SECONDS = 600
BUCKETS = 20

Clock = Callable[[], float]  # epoch seconds


@dataclass(slots=True)
class _Tally:
    success: int = 0
    failed: int = 0
    # bucket number (epoch seconds // BUCKET_SECONDS) -> [success, failed]
    buckets: dict[int, list[int]] = field(default_factory=dict)


class RequestCounts:
    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._tallies: dict[str, _Tally] = {}
        # Management readers may run in another thread than the event loop (tests, tools).
        self._lock = threading.Lock()

    def on_attempt(self, event: AttemptOutcome) -> None:
        """An observer hook. Not counted: a call never sent (the credential refused it), and a
        401 the account answered with a token refresh (the retry that follows is counted)."""
        if event.sent and not event.reauthorized:
            self.record(event.credential_id, event.ok)

    def record(self, credential_id: str, ok: bool) -> None:
        """One upstream attempt of ``credential_id`` ended: ``ok`` when it answered < 400."""
        bucket = int(self.clock() // BUCKET_SECONDS)
        with self._lock:
            tally = self._tallies.setdefault(credential_id, _Tally())
            counts = tally.buckets.setdefault(bucket, [0, 0])
            if ok:
                tally.success += 1
                counts[0] += 1
            else:
                tally.failed += 1
                counts[1] += 1
            oldest = bucket - BUCKETS + 1
            for stale in [b for b in tally.buckets if b < oldest]:
                del tally.buckets[stale]

    def totals(self, credential_id: str) -> tuple[int, int]:
        """(success, failed) since the process started."""
        with self._lock:
            tally = self._tallies.get(credential_id)
            return (tally.success, tally.failed) if tally else (0, 0)

    def recent(self, credential_id: str) -> list[dict[str, Any]]:
        """The last BUCKETS ten-minute buckets, oldest first, empty ones included."""
        current = int(self.clock() // BUCKET_SECONDS)
        with self._lock:
            tally = self._tallies.get(credential_id)
            buckets = dict(tally.buckets) if tally else {}
        rows = []
        for number in range(current - BUCKETS + 1, current + 1):
            success, failed = buckets.get(number, (0, 0))
            rows.append({"time": _label(number), "success": success, "failed": failed})
        return rows

    def forget(self, credential_id: str) -> None:
        with self._lock:
            self._tallies.pop(credential_id, None)


def _label(bucket: int) -> str:
    start = datetime.fromtimestamp(bucket * BUCKET_SECONDS)  # server-local, as the UI expects
    end = datetime.fromtimestamp((bucket + 1) * BUCKET_SECONDS)
    return f"{start:%H:%M}-{end:%H:%M}"


def counts_of(state: Any) -> RequestCounts:
    """The state's counters, created (on the cooldown book's clock) when not wired yet."""
    counts = getattr(state, "request_counts", None)
    if not isinstance(counts, RequestCounts):
        cooldowns = getattr(state, "cooldowns", None)
        clock: Clock = cooldowns.now if cooldowns is not None else time.time
        counts = RequestCounts(clock)
        state.request_counts = counts
    return counts
