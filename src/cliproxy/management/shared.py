"""The management API's state across instances: lockouts and login states on the pool's
Redis link when state-store.redis-url is set, in the process otherwise (redis never loaded)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cliproxy.routing.state_store import redis_link_of

from .login_sessions import LoginSessions
from .security import Lockouts

if TYPE_CHECKING:
    from cliproxy.state import AppState


def lockouts_for(state: AppState) -> Lockouts:
    link = redis_link_of(state.pool)
    if link is None:
        return Lockouts()
    from .redis_lockouts import SharedLockouts

    return SharedLockouts(link)


def login_sessions_for(state: AppState) -> LoginSessions:
    """The server's login sessions; with a state store, also the other instances' logins."""
    sessions = LoginSessions()
    link = redis_link_of(state.pool)
    if link is not None:
        from .redis_logins import SharedLoginStates

        SharedLoginStates(link).attach(sessions)
    return sessions
