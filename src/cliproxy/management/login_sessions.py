"""Logins started from the management API: pending sessions keyed by their OAuth state.

A session is created by a `*-auth-url` call (PKCE verifier, the vendor's fixed loopback
redirect), receives its authorization code once (public callback route, the pasted callback
URL, or the loopback listener of `is_webui`), then exchanges it in the background with the
same code as `cliproxy login` (auth.login.finish_login). Sessions live in memory: 30 minutes
to receive the code, then one minute after the outcome so the page polling
`get-auth-status` sees it. The state is the capability of the unauthenticated callback
routes, so it is long, random, single use and checked against its provider.

With a state store the instances share their logins (login_sharing.py): one started here can
be polled and finished on another, and the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cliproxy.auth.catalog import catalog
from cliproxy.auth.device_login import DeviceLogin, begin_device_login, finish_device_login
from cliproxy.auth.files import AuthWriteError
from cliproxy.auth.flows import OAuthFlow, oauth_flow
from cliproxy.auth.login import finish_login
from cliproxy.auth.login_common import LoginResult
from cliproxy.auth.oauth import OAuthError, authorize_url, new_pkce, new_state

from .login_sharing import LoginView, Phase, RemoteLogin, SharedLogins

if TYPE_CHECKING:
    from cliproxy.state import AppState

log = logging.getLogger(__name__)

SESSION_TTL = 30 * 60.0
KEEP_FINISHED = 60.0  # how long get-auth-status still reports a finished login
_STATE_CHARS = re.compile(r"[A-Za-z0-9._-]{1,128}")


def canonical_provider(name: str) -> str | None:
    """The session provider (the reference's login name, from the catalog) for a name or
    alias (case-insensitive); None when unknown."""
    entry = catalog().by_login(name.strip().lower())
    return entry.login if entry else None


def valid_state(state: str) -> bool:
    return bool(_STATE_CHARS.fullmatch(state)) and ".." not in state


class LoginError(Exception):
    """A refused callback or status call: the HTTP status and a message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(eq=False)
class LoginSession:
    state: str
    provider: str
    flow: OAuthFlow
    verifier: str
    redirect_uri: str
    url: str
    app_state: AppState
    project: str | None
    created: float
    phase: Phase = Phase.WAITING
    error: str = ""
    account: str = ""  # the auth file written, once DONE
    finished_at: float | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    exchange: asyncio.Task[None] | None = None
    listener: asyncio.Task[None] | None = None
    # Device-code logins (kimi, xai): what the user types on the verification page, and how
    # long the code lives; the session polls from the start instead of waiting for a code.
    user_code: str = ""
    expires_in: float = 0.0

    @property
    def open(self) -> bool:
        return self.phase in (Phase.WAITING, Phase.EXCHANGING)


class LoginSessions:
    """Every pending or recently finished login of one server. `clock` (seconds, monotonic)
    and `flows` are attributes so tests can move time and point the flows elsewhere."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        flows: Callable[[str], OAuthFlow] = oauth_flow,
    ) -> None:
        self.clock = clock
        self.flows = flows
        self.onboard_poll_interval = 2.0
        self._sessions: dict[str, LoginSession] = {}
        # Loopback listeners (is_webui) by port: a new login on a port replaces the old one's.
        self.listening: dict[int, LoginSession] = {}
        # The other instances' logins, with a state store (management/redis_logins.py).
        self.shared: SharedLogins | None = None

    def share(self, shared: SharedLogins) -> None:
        self.shared = shared

    def _announce(self, session: LoginSession) -> None:
        if self.shared is not None:
            self.shared.announce(session)

    def forwarded(self, state: str, provider: str, code: str, error: str) -> None:
        """Another instance received the callback of a login this one owns."""
        if state not in self._sessions:
            return  # gone meanwhile (cancelled, expired)
        try:
            self.submit(state, provider=provider, code=code, error=error)
        except LoginError as exc:
            log.warning("a callback another instance received was refused: %s", exc.message)

    def forwarded_cancel(self, state: str) -> None:
        if state in self._sessions:
            self.cancel(state)

    # ----- starting ---------------------------------------------------------------------------

    def start(self, provider: str, app_state: AppState, project: str | None = None) -> LoginSession:
        """A new session; `provider` is a canonical name (see canonical_provider)."""
        self._prune()
        entry = catalog().by_login(provider)
        if entry is None:
            raise KeyError(provider)
        flow = self.flows(entry.kind)  # the auth-file type whose flow the session runs
        pkce, state = new_pkce(), new_state()
        # The vendor's fixed loopback redirect, as its own CLI sends: the client ids are
        # registered for exactly that URI.
        redirect_uri = flow.redirect_uri()
        session = LoginSession(
            state=state,
            provider=provider,
            flow=flow,
            verifier=pkce.verifier,
            redirect_uri=redirect_uri,
            url=authorize_url(flow, redirect_uri, state, pkce),
            app_state=app_state,
            project=project or None,
            created=self.clock(),
        )
        self._sessions[state] = session
        self._announce(session)
        return session

    async def start_device(self, provider: str, app_state: AppState) -> LoginSession:
        """A device-code login: ask the vendor for a code now (the reply carries the user
        code and verification URL), poll for the tokens in the background. Raises
        LoginError(502) when the vendor cannot be asked."""
        self._prune()
        entry = catalog().by_login(provider)
        if entry is None:
            raise KeyError(provider)
        flow = self.flows(entry.kind)
        proxy_url = app_state.runtime.config.proxy_url or None
        try:
            login = await begin_device_login(
                flow, identities=app_state.identities, proxy_url=proxy_url
            )
        except OAuthError as exc:
            raise LoginError(502, str(exc)) from None
        # The reference's state for device logins: "<prefix>-<nanoseconds>".
        state = f"{flow.state_prefix or entry.kind}-{time.time_ns()}"
        session = LoginSession(
            state=state,
            provider=provider,
            flow=login.flow,
            verifier="",
            redirect_uri="",
            url=login.code.url,
            app_state=app_state,
            project=None,
            created=self.clock(),
            phase=Phase.EXCHANGING,  # no callback comes: the poll is the exchange
            user_code=login.code.user_code,
            expires_in=min(login.code.expires_in, flow.poll_timeout),
        )
        self._sessions[state] = session
        session.exchange = asyncio.create_task(
            self._poll(session, login, proxy_url), name=f"login {provider}"
        )
        self._announce(session)
        return session

    async def _poll(self, session: LoginSession, login: DeviceLogin, proxy_url: str | None) -> None:
        await self._settle(
            session, finish_device_login(login, session.app_state.auth_store, proxy_url=proxy_url)
        )

    # ----- receiving the code ------------------------------------------------------------------

    def submit(self, state: str, *, provider: str = "", code: str = "", error: str = "") -> None:
        """Hand a callback's result to its session: the code starts the exchange, an error
        ends the login. Raises LoginError with the reference's statuses."""
        if not valid_state(state):
            raise LoginError(400, "invalid state")
        if not code and not error:
            raise LoginError(400, "code or error is required")
        view = self.view(state)
        if view is None:
            raise LoginError(404, "unknown or expired state")
        if view.phase is Phase.FAILED:
            raise LoginError(409, f"this login already failed: {view.error}")
        if view.phase is not Phase.WAITING:
            raise LoginError(409, "this login already received its callback")
        if provider:
            wanted = canonical_provider(provider)
            if wanted != view.provider:
                raise LoginError(400, f"provider {provider!r} does not match this login")
        if isinstance(view, RemoteLogin):
            if self.shared is not None:
                view.phase = Phase.EXCHANGING  # claimed: a second callback here is refused
                self.shared.forward(view, code=code, error=error)
            return
        session = view
        if error:
            self._fail(session, f"the provider refused the login: {error}")
            return
        self.accept_code(session, code)

    def accept_code(self, session: LoginSession, code: str) -> None:
        session.phase = Phase.EXCHANGING
        task = asyncio.create_task(self._exchange(session, code), name=f"login {session.provider}")
        session.exchange = task
        self._announce(session)

    async def _exchange(self, session: LoginSession, code: str) -> None:
        store = session.app_state.auth_store
        proxy_url = session.app_state.runtime.config.proxy_url or None
        await self._settle(
            session,
            finish_login(
                session.flow,
                store,
                code=code,
                verifier=session.verifier,
                redirect_uri=session.redirect_uri,
                state=session.state,
                project=session.project,
                proxy_url=proxy_url,
                progress=lambda message: log.info("%s login: %s", session.provider, message),
                onboard_poll_interval=self.onboard_poll_interval,
            ),
        )

    async def _settle(self, session: LoginSession, finishing: Awaitable[LoginResult]) -> None:
        """Run a login's last step and record how it ended (a background task: never raises)."""
        try:
            result = await finishing
        except (OAuthError, AuthWriteError) as exc:
            self._fail(session, str(exc))
        except Exception as exc:  # a background task: report, never raise
            log.exception("%s login failed unexpectedly", session.provider)
            self._fail(session, f"the login failed: {type(exc).__name__}: {exc}")
        else:
            log.info("%s login saved %s", session.provider, result.record.id)
            session.account = result.record.id
            self._finish(session, Phase.DONE)

    def _fail(self, session: LoginSession, message: str) -> None:
        log.info("%s login failed: %s", session.provider, message)
        session.error = message
        self._finish(session, Phase.FAILED)

    def _finish(self, session: LoginSession, phase: Phase) -> None:
        session.phase = phase
        session.finished_at = self.clock()
        session.finished.set()  # a loopback listener sees this and closes after its reply
        self._announce(session)

    # ----- looking up, status, cancel ---------------------------------------------------------

    def find(self, state: str) -> LoginSession | None:
        self._prune()
        return self._sessions.get(state)

    def owned(self) -> list[LoginSession]:
        """The logins this instance started and still keeps."""
        return list(self._sessions.values())

    def view(self, state: str) -> LoginSession | RemoteLogin | None:
        """The login of ``state``: this instance's, else another's (with a state store)."""
        session = self.find(state)
        if session is None and self.shared is not None:
            return self.shared.find(state)
        return session

    def status(self, state: str) -> dict[str, Any]:
        """The get-auth-status reply; LoginError(400) for a malformed state."""
        if not state:
            return {"status": "ok"}  # what the reference answers; its page relies on it
        if not valid_state(state):
            raise LoginError(400, "invalid state")
        view: LoginView | None = self.view(state)
        if view is None:
            return {"status": "error", "error": "unknown or expired state"}
        if view.phase is Phase.DONE:
            return {"status": "ok"}
        if view.phase is Phase.FAILED:
            return {"status": "error", "error": view.error}
        return {"status": "wait"}

    def cancel(self, state: str) -> bool:
        """Forget a session; True when it was still open (its exchange, if any, is stopped
        before it saves)."""
        if not valid_state(state):
            raise LoginError(400, "invalid state")
        session = self.find(state)
        if session is None:
            view, shared = self.view(state), self.shared
            if not isinstance(view, RemoteLogin) or shared is None:
                return False
            was_open = view.open
            view.phase, view.error = Phase.FAILED, "cancelled"
            shared.forward_cancel(view)  # the owner stops its exchange and forgets it
            return was_open
        was_open = session.open
        if session.exchange is not None and not session.exchange.done():
            session.exchange.cancel()
        if was_open:
            session.error = "cancelled"
            self._finish(session, Phase.FAILED)
        del self._sessions[state]
        if self.shared is not None:
            self.shared.withdraw(state)
        return was_open

    def _prune(self) -> None:
        now = self.clock()
        for state, session in list(self._sessions.items()):
            if session.phase is Phase.WAITING and now - session.created > SESSION_TTL:
                expired = True
            elif session.phase is Phase.EXCHANGING:
                expired = False  # it ends by itself (token calls have their own timeouts)
            else:
                expired = (
                    session.finished_at is not None and now - session.finished_at > KEEP_FINISHED
                )
            if expired:
                stop_listener(session)
                del self._sessions[state]

    async def close(self) -> None:
        """Stop every background task (server shutdown, tests)."""
        for session in list(self._sessions.values()):
            stop_listener(session)
            if session.exchange is not None:
                session.exchange.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await session.exchange
            if self.shared is not None:
                self.shared.withdraw(session.state)  # nobody is left to finish it
        self._sessions.clear()


def stop_listener(session: LoginSession) -> None:
    listener = session.listener
    # The listener itself may be what ends the session; it then closes on its own way out.
    if listener is not None and not listener.done() and listener is not asyncio.current_task():
        listener.cancel()
