"""The mirrors of the books shared through Redis, without Redis: what an instance decides from
its own writes and the other instances' events (routing/redis_limits.py, management/
redis_lockouts.py, management/redis_logins.py). A link that is never started only queues its
writes, so these run no I/O; the e2e tests (tests/e2e/test_redis_shared_limits.py) run the
same books against a real Redis."""

from __future__ import annotations

import pytest

from cliproxy.config.client_keys import ClientKey
from cliproxy.management.login_sessions import LoginError, LoginSessions
from cliproxy.management.login_sharing import Phase, RemoteLogin
from cliproxy.management.redis_lockouts import SharedLockouts
from cliproxy.management.redis_logins import SharedLoginStates
from cliproxy.management.security import BAN_SECONDS
from cliproxy.model import ProxyError
from cliproxy.routing.redis_limits import RUNNING_TTL, SharedKeyLimits
from cliproxy.routing.redis_link import RedisLink
from cliproxy.usage.prices import Prices

OTHER = "other-instance"
MINUTE = 29_000_000  # some minute since the epoch


def _link() -> RedisLink:
    return RedisLink("redis://127.0.0.1:1/0", "unit:")


def _limits(at: float) -> SharedKeyLimits:
    return SharedKeyLimits(_link(), Prices({}), clock=lambda: at)


def _share(limits: SharedKeyLimits, minute: int, value: int) -> None:
    """Another instance announced it admitted ``value`` requests in ``minute``."""
    event = {"o": OTHER, "t": "share", "k": "rpm", "n": "team", "p": minute, "f": OTHER}
    limits.totals.apply({**event, "v": str(value)})


def test_the_other_instances_admissions_fill_the_minute() -> None:
    policy = ClientKey(key="sk-team-000000", name="team", requests_per_minute=5)
    limits = _limits(MINUTE * 60 + 30)
    _share(limits, MINUTE, 3)
    limits.admit(policy)
    limits.admit(policy)
    with pytest.raises(ProxyError) as refused:
        limits.admit(policy)
    assert "5 requests per minute" in refused.value.message
    assert limits.requests_last_minute("team") == 5
    # An older announcement of the same instance (out of order) never lowers its share.
    _share(limits, MINUTE, 1)
    assert limits.requests_last_minute("team") == 5


def test_the_previous_minute_weighs_what_is_left_of_it() -> None:
    policy = ClientKey(key="sk-team-000000", name="team", requests_per_minute=10)
    # A quarter into this minute: three quarters of the last one are within the past 60 s.
    limits = _limits(MINUTE * 60 + 15)
    _share(limits, MINUTE - 1, 8)  # weighs 6
    for _ in range(4):
        limits.admit(policy)
    with pytest.raises(ProxyError):
        limits.admit(policy)
    # Twenty last minute weigh 15: none fits until they weigh less than 10, 15 s from now.
    busier = _limits(MINUTE * 60 + 15)
    _share(busier, MINUTE - 1, 20)
    with pytest.raises(ProxyError) as refused:
        busier.admit(policy)
    assert refused.value.retry_after == 15


def test_a_full_minute_waits_into_the_next_one() -> None:
    policy = ClientKey(key="sk-team-000000", name="team", requests_per_minute=4)
    limits = _limits(MINUTE * 60 + 45)
    _share(limits, MINUTE, 8)
    with pytest.raises(ProxyError) as refused:
        limits.admit(policy)
    # 15 s to the next minute, then until 8 * (1 - share) < 4: half of it.
    assert refused.value.retry_after == 45


def test_running_requests_elsewhere_count_until_their_instance_goes_quiet() -> None:
    policy = ClientKey(key="sk-team-000000", name="team", max_concurrent_requests=2)
    limits = _limits(MINUTE * 60)
    heard = [100.0]
    limits.shared_running.clock = lambda: heard[0]
    limits.shared_running.apply({"o": OTHER, "t": "running", "n": "team", "c": 1})
    limits.admit(policy)
    with pytest.raises(ProxyError):
        limits.admit(policy)
    heard[0] += RUNNING_TTL + 1  # no refresh from it for a minute: it stopped
    limits.admit(policy)
    assert limits.running_count("team") == 2


def test_the_ledger_floor_holds_until_the_instances_count_more() -> None:
    limits = _limits(MINUTE * 60)
    limits.seed({"team": (500, 0.0)}, {"team": (0, 2.5)}, MINUTE * 60)
    assert limits.tokens_today("team") == 500 and limits.cost_this_month("team") == 2.5
    limits.add("team", 100, 0.5, MINUTE * 60)
    assert limits.tokens_today("team") == 500  # the ledger already held more
    day = MINUTE // 1440
    event = {"o": OTHER, "t": "share", "k": "tokens", "n": "team", "p": day, "f": OTHER}
    limits.totals.apply({**event, "v": "450"})
    assert limits.tokens_today("team") == 550


def test_a_ban_announced_by_another_instance_holds_here() -> None:
    lockouts = SharedLockouts(_link())
    now = 1_000_000.0
    lockouts.failed("198.51.100.7", now)
    event = {"o": OTHER, "t": "lockout", "a": "198.51.100.7", "n": now}
    lockouts.apply({**event, "f": 0, "b": str(now + BAN_SECONDS)})
    assert lockouts.banned_until("198.51.100.7") == now + BAN_SECONDS
    # A late count from before the ban does not lift it.
    lockouts.apply({**event, "f": 3, "b": "0"})
    assert lockouts.banned_until("198.51.100.7") == now + BAN_SECONDS
    lockouts.apply({**event, "a": "203.0.113.9", "f": 2, "b": "0"})
    assert lockouts.attempts["203.0.113.9"].failures == 2


async def test_another_instances_login_is_reported_and_refuses_a_second_callback() -> None:
    shared = SharedLoginStates(_link())
    sessions = LoginSessions()
    shared.attach(sessions)
    login = {"o": OTHER, "t": "login", "s": "state-1", "provider": "codex", "owner": OTHER}
    shared.apply({**login, "phase": "waiting"})
    assert sessions.status("state-1") == {"status": "wait"}
    sessions.submit("state-1", provider="codex", code="the-code")
    pending = shared.link._pending
    assert len(pending) == 1  # the code, on its way to the owner
    with pytest.raises(LoginError, match="already received its callback"):
        sessions.submit("state-1", code="again")
    shared.apply({**login, "phase": "done", "account": "codex-a@example.com.json"})
    view = sessions.view("state-1")
    assert view is not None and view.phase is Phase.DONE and view.finished.is_set()
    assert sessions.status("state-1") == {"status": "ok"}
    shared.apply({"o": OTHER, "t": "login-gone", "s": "state-1"})
    assert sessions.status("state-1")["status"] == "error"


def _handed_over(state: str) -> tuple[SharedLoginStates, LoginSessions, RemoteLogin, float]:
    """Another instance's login whose callback reached this one and went to the owner."""
    shared = SharedLoginStates(_link())
    sessions = LoginSessions()
    shared.attach(sessions)
    login = {"o": OTHER, "t": "login", "s": state, "provider": "claude", "owner": OTHER}
    shared.apply({**login, "phase": "waiting"})
    sessions.submit(state, code="the-code")
    view = shared.find(state)
    assert view is not None and view.handed_over is not None
    return shared, sessions, view, view.handed_over


async def test_a_callback_the_owner_never_takes_fails_the_login_here() -> None:
    shared, sessions, view, handed_over = _handed_over("state-2")
    shared._unanswered(view, handed_over)  # what the timer does when the owner is silent
    status = sessions.status("state-2")
    assert status["status"] == "error" and "did not take its callback" in status["error"]
    assert view.finished.is_set()


async def test_the_owner_taking_the_callback_stops_the_timer() -> None:
    shared, sessions, view, handed_over = _handed_over("state-3")
    event = {"o": OTHER, "t": "login", "s": "state-3", "provider": "claude", "owner": OTHER}
    shared.apply({**event, "phase": "exchanging"})
    shared._unanswered(view, handed_over)
    assert sessions.status("state-3") == {"status": "wait"}
