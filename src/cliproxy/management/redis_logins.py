"""OAuth login states shared through Redis, so a login started on one instance can be polled
and finished on any (docs/scaling.md, login_sharing.py).

Key, under the prefix: ``login:<state>``, a hash (provider, phase, error, account, owner)
written by the owner whenever the login moves, expiring with it (30 minutes to receive the
code, one minute after the outcome). Every change is published; the other instances keep a
mirror of the records, so a poll or a callback never waits on Redis. A callback that reaches
another instance is published to the owner (``login-code``, addressed to it), which runs the
exchange with the verifier it never shares. The authorization code itself is single use and
worthless without that verifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from cliproxy.routing.redis_link import Event, RedisLink

from .login_sessions import KEEP_FINISHED, SESSION_TTL, LoginSessions
from .login_sharing import OwnLogin, Phase, RemoteLogin

log = logging.getLogger(__name__)

# How long the owner has to announce that it took a callback handed to it, before the login
# is reported failed here (the owner stopped, or Redis is away).
OWNER_ANSWER_SECONDS = 15.0
OWNER_SILENT = (
    "the cliproxy instance that started this login did not take its callback "
    "(it stopped, or the state store is unreachable); start the login again"
)


def _ttl(phase: Phase) -> float:
    """How long a login's record stands: until it may still end, or to report its outcome."""
    if phase in (Phase.WAITING, Phase.EXCHANGING):
        return SESSION_TTL + KEEP_FINISHED
    return KEEP_FINISHED


class SharedLoginStates:
    def __init__(self, link: RedisLink, clock: Callable[[], float] = time.time) -> None:
        self.link = link
        self.clock = clock
        self.records: dict[str, RemoteLogin] = {}  # the other instances' logins
        self.sessions: LoginSessions | None = None  # ours (set by attach)
        link.join(self.apply, self.sync)

    def attach(self, sessions: LoginSessions) -> None:
        self.sessions = sessions
        sessions.share(self)

    # ----- the logins this instance owns ---------------------------------------------------

    def announce(self, session: OwnLogin) -> None:
        fields = self._fields(session)
        self.link.submit(lambda client: self._write(client, session.state, fields))

    async def _write(self, client: Redis, state: str, fields: dict[str, str]) -> None:
        ttl = _ttl(Phase(fields["phase"]))
        async with client.pipeline(transaction=True) as pipe:
            mapping: dict[FieldT, EncodableT] = dict(fields.items())
            pipe.hset(self._key(state), mapping=mapping)
            pipe.pexpire(self._key(state), int(ttl * 1000))
            pipe.publish(self.link.channel, self.link.event("login", s=state, **fields))
            await pipe.execute()

    def withdraw(self, state: str) -> None:
        async def write(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(self._key(state))
                pipe.publish(self.link.channel, self.link.event("login-gone", s=state))
                await pipe.execute()

        self.link.submit(write)

    # ----- the others' logins --------------------------------------------------------------

    def find(self, state: str) -> RemoteLogin | None:
        now = self.clock()
        for gone in [s for s, login in self.records.items() if login.expires_at <= now]:
            del self.records[gone]
        return self.records.get(state)

    def forward(self, login: RemoteLogin, *, code: str, error: str) -> None:
        event = self.link.event(
            "login-code", s=login.state, to=login.owner, p=login.provider, c=code, e=error
        )
        self.link.submit(lambda client: self._publish(client, event))
        login.handed_over = self.clock()
        with contextlib.suppress(RuntimeError):  # no running loop: nobody waits on it
            loop = asyncio.get_running_loop()
            loop.call_later(OWNER_ANSWER_SECONDS, self._unanswered, login, login.handed_over)

    def _unanswered(self, login: RemoteLogin, handed_over: float) -> None:
        if login.handed_over == handed_over and login.open:
            log.warning("%s login: %s", login.provider, OWNER_SILENT)
            login.phase, login.error = Phase.FAILED, OWNER_SILENT
            login.finished.set()

    def forward_cancel(self, login: RemoteLogin) -> None:
        event = self.link.event("login-cancel", s=login.state, to=login.owner)
        self.link.submit(lambda client: self._publish(client, event))

    async def _publish(self, client: Redis, event: str) -> None:
        await client.publish(self.link.channel, event)

    def _key(self, state: str) -> str:
        return self.link.key("login", state)

    def take(self, state: str, fields: dict[str, str], ttl: float) -> None:
        if fields.get("owner") == self.link.origin:
            return  # our own, as Redis remembers it
        phase = Phase(fields["phase"])
        login = self.records.get(state)
        if login is None:
            login = RemoteLogin(state, fields["provider"], fields["owner"], 0.0)
            self.records[state] = login
        login.phase, login.error = phase, fields.get("error", "")
        if phase is not Phase.WAITING:
            login.handed_over = None  # the owner took the callback (or ended the login)
        login.account = fields.get("account", "")
        login.expires_at = self.clock() + ttl
        if not login.open:
            login.finished.set()  # a callback page waiting on this login can say how it ended

    async def sync(self, client: Redis) -> None:
        """Announce ours (started while Redis was away), then load everyone's."""
        sessions = self.sessions
        if sessions is not None:
            for session in sessions.owned():
                await self._write(client, session.state, self._fields(session))
        prefix = self.link.key("login", "")
        async for key in client.scan_iter(match=self.link.pattern("login"), count=500):
            found, ttl_ms = await client.hgetall(key), await client.pttl(key)
            fields = {str(name): str(value) for name, value in found.items()}
            if ttl_ms > 0 and {"provider", "phase", "owner"} <= fields.keys():
                try:
                    self.take(key[len(prefix) :], fields, ttl_ms / 1000)
                except ValueError:
                    continue  # a phase we do not know

    def _fields(self, session: OwnLogin) -> dict[str, str]:
        return {
            "provider": session.provider,
            "phase": session.phase.value,
            "error": session.error,
            "account": session.account,
            "owner": self.link.origin,
        }

    def apply(self, event: Event) -> None:
        kind = event["t"]
        if kind == "login":
            fields = {name: str(event[name]) for name in ("provider", "phase", "owner")}
            fields.update(error=str(event.get("error", "")), account=str(event.get("account", "")))
            self.take(str(event["s"]), fields, _ttl(Phase(fields["phase"])))
        elif kind == "login-gone":
            self.records.pop(str(event["s"]), None)
        elif kind in ("login-code", "login-cancel") and event["to"] == self.link.origin:
            sessions = self.sessions
            if sessions is None:
                return
            if kind == "login-code":
                state = str(event["s"])
                sessions.forwarded(state, str(event["p"]), str(event["c"]), str(event["e"]))
            else:
                sessions.forwarded_cancel(str(event["s"]))
