"""What the limits of `client-keys` count, per key name (server/key_policy.py applies them).

Per name: the admission times of the last 60 seconds (requests-per-minute, a sliding window),
the requests running (max-concurrent-requests), the tokens of the current UTC day and the cost
of the current UTC month. The last two come from the usage ledger at start (``seed``: they hold
across restarts) and are kept up to date from the RequestOutcome events after that (this is an
observer). ``admit`` checks every limit and reserves the slots with no await in between, so on
the one event loop concurrent requests are counted exactly. Kept across config reloads.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from cliproxy.config.client_keys import ClientKey
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.usage.events import RequestOutcome
from cliproxy.usage.ledger import Ledger, LedgerUnavailable
from cliproxy.usage.prices import Prices, Tokens

log = logging.getLogger(__name__)

WINDOW = 60.0
DAY = 86400.0
# The ledger's (tokens, cost) per key name over a period.
LedgerTotals = dict[str, tuple[int, float]]


def month_start(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def next_month_start(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def utc_day(now: float) -> int:
    return int(now // DAY)


def utc_month(now: float) -> int:
    moment = datetime.fromtimestamp(now, UTC)
    return moment.year * 12 + moment.month


def _limited(policy: ClientKey, what: str, retry_after: float) -> ProxyError:
    seconds = max(1, math.ceil(retry_after))
    return ProxyError(
        ErrorKind.RATE_LIMIT,
        f"client key '{policy.name}' reached its {what}; retry in {seconds} s",
        retry_after=seconds,
        code="rate_limit_exceeded",
    )


class KeyLimits:
    """What the limits count, per key name (kept across config reloads)."""

    def __init__(
        self, prices: Callable[[], Prices], clock: Callable[[], float] = time.time
    ) -> None:
        self.prices = prices
        self.clock = clock
        self.admitted: dict[str, deque[float]] = {}
        self.running: dict[str, int] = {}
        self.tokens: dict[str, tuple[int, int]] = {}  # name -> (UTC day, tokens that day)
        self.costs: dict[str, tuple[int, float]] = {}  # name -> (UTC month, USD that month)

    # ----- reading ------------------------------------------------------------------------

    def tokens_today(self, name: str, now: float | None = None) -> int:
        day, used = self.tokens.get(name, (0, 0))
        return used if day == utc_day(self.clock() if now is None else now) else 0

    def cost_this_month(self, name: str, now: float | None = None) -> float:
        month, spent = self.costs.get(name, (0, 0.0))
        return spent if month == utc_month(self.clock() if now is None else now) else 0.0

    def requests_last_minute(self, name: str, now: float | None = None) -> int:
        window = self.admitted.get(name)
        if not window:
            return 0
        since = (self.clock() if now is None else now) - WINDOW
        return sum(1 for moment in window if moment > since)

    # ----- admission ----------------------------------------------------------------------

    def admit(self, policy: ClientKey) -> None:
        """Check every limit of ``policy`` and reserve the request's slots, or raise the 429.
        Synchronous on purpose: nothing else runs between the checks and the reservation."""
        now = self.clock()
        name = policy.name
        running = self.running_count(name)
        if policy.max_concurrent_requests is not None and running >= policy.max_concurrent_requests:
            raise _limited(
                policy,
                f"limit of {policy.max_concurrent_requests} requests at a time "
                "(max-concurrent-requests)",
                1,
            )
        rpm = policy.requests_per_minute
        wait = self.minute_wait(policy, now)
        if rpm is not None and wait is not None:
            raise _limited(
                policy, f"limit of {rpm} requests per minute (requests-per-minute)", wait
            )
        if policy.tokens_per_day is not None:
            used = self.tokens_today(name, now)
            if used >= policy.tokens_per_day:
                raise _limited(
                    policy,
                    f"limit of {policy.tokens_per_day} tokens per day (tokens-per-day; "
                    f"{used} used today, UTC)",
                    (utc_day(now) + 1) * DAY - now,
                )
        budget = policy.max_budget_usd_per_month
        if budget is not None:
            spent = self.cost_this_month(name, now)
            if spent >= budget:
                raise _limited(
                    policy,
                    f"budget of ${budget:.2f} per month (max-budget-usd-per-month; "
                    f"${spent:.4f} spent this month, UTC)",
                    next_month_start(now) - now,
                )
        self.note_admission(policy, now)
        self.note_start(policy)

    # The counting the limits read, overridden by the shared counters (routing/redis_limits.py).

    def running_count(self, name: str) -> int:
        return self.running.get(name, 0)

    def minute_wait(self, policy: ClientKey, now: float) -> float | None:
        """Seconds until the key may make another request under its requests-per-minute
        (None: it may now)."""
        rpm = policy.requests_per_minute
        window = self.admitted.get(policy.name)
        if window is None:
            return None
        while window and window[0] <= now - WINDOW:
            window.popleft()
        if rpm is None or len(window) < rpm:
            return None
        # The slot that frees first is that of the rpm-th newest admission.
        return window[len(window) - rpm] + WINDOW - now

    def note_admission(self, policy: ClientKey, now: float) -> None:
        self.admitted.setdefault(policy.name, deque()).append(now)

    def note_start(self, policy: ClientKey) -> None:
        self.running[policy.name] = self.running.get(policy.name, 0) + 1

    def release(self, name: str) -> None:
        """A request admitted for ``name`` has ended."""
        left = self.running.get(name, 0) - 1
        if left > 0:
            self.running[name] = left
        else:
            self.running.pop(name, None)

    # ----- counting -----------------------------------------------------------------------

    def add(self, name: str, tokens: int, cost: float | None, now: float) -> None:
        if tokens:
            day = utc_day(now)
            known_day, used = self.tokens.get(name, (day, 0))
            self.tokens[name] = (day, (used if known_day == day else 0) + tokens)
        if cost:
            month = utc_month(now)
            known_month, spent = self.costs.get(name, (month, 0.0))
            self.costs[name] = (month, (spent if known_month == month else 0.0) + cost)

    def on_request(self, event: RequestOutcome) -> None:
        name = event.client_key_name
        if not name:
            return
        tokens = event.input_tokens + event.output_tokens
        if not tokens:
            return
        cost = self.prices().cost(
            event.requested_model,
            event.upstream_model,
            event.provider,
            Tokens(event.input_tokens, event.output_tokens, event.cached_tokens),
        )
        self.add(name, tokens, cost, self.clock())

    def seed(self, today: LedgerTotals, this_month: LedgerTotals, now: float) -> None:
        """Start from the ledger's totals per key name: (tokens, cost) since the start of the
        UTC day and of the UTC month. A count already higher is kept: seeded late (a ledger
        that opened after the start), the events counted meanwhile may not all be written."""
        day, month = utc_day(now), utc_month(now)
        for name, (tokens, _cost) in today.items():
            known_day, used = self.tokens.get(name, (day, 0))
            self.tokens[name] = (day, max(tokens, used if known_day == day else 0))
        for name, (_tokens, cost) in this_month.items():
            known_month, spent = self.costs.get(name, (month, 0.0))
            self.costs[name] = (month, max(cost, spent if known_month == month else 0.0))

    async def load(self, ledger: Ledger) -> None:
        """Seed the day's tokens and the month's cost from the ledger (at start, and again
        when a ledger that could not be opened at start opens)."""
        now = self.clock()
        try:
            today = await ledger.totals(utc_day(now) * DAY)
            this_month = await ledger.totals(month_start(now))
        except LedgerUnavailable as error:
            log.warning("client-keys limits start from zero: %s", error)
            return
        self.seed(today, this_month, now)
