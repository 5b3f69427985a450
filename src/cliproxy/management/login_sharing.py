"""What a login looks like from an instance that did not start it (docs/scaling.md).

The instance that starts a login owns it: it alone holds the PKCE verifier and runs the token
exchange. With a state store, it announces the login (provider, phase, outcome; never the
verifier) and the other instances keep a RemoteLogin per announced state. A callback or a
status poll that reaches another instance is answered from that record, and the code is
handed to the owner (management/redis_logins.py), which finishes the login as if the callback
had reached it and announces how it ended.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Protocol


class Phase(enum.Enum):
    WAITING = "waiting"  # for the authorization code
    EXCHANGING = "exchanging"  # code received; tokens and the auth file on their way
    DONE = "done"
    FAILED = "failed"


class LoginView(Protocol):
    """What the status reply and the callback page read of a login, local or remote."""

    provider: str
    phase: Phase
    error: str
    account: str
    finished: asyncio.Event


class OwnLogin(LoginView, Protocol):
    """A login this instance started (a LoginSession), as it is announced to the others."""

    state: str


@dataclass(eq=False)
class RemoteLogin:
    """A login another instance (``owner``) started, as last announced."""

    state: str
    provider: str
    owner: str
    expires_at: float  # wall time; the record in Redis expires with it
    phase: Phase = Phase.WAITING
    error: str = ""
    account: str = ""
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    # When this instance handed the owner a callback the owner has not answered yet.
    handed_over: float | None = None

    @property
    def open(self) -> bool:
        return self.phase in (Phase.WAITING, Phase.EXCHANGING)


class SharedLogins(Protocol):
    """The other instances' logins, and the way to reach them (None: this process only)."""

    def announce(self, session: OwnLogin) -> None:
        """Tell the others about a login this instance owns (started, or its phase moved)."""
        ...

    def withdraw(self, state: str) -> None:
        """A login this instance owned is gone (cancelled, or the server is stopping)."""
        ...

    def find(self, state: str) -> RemoteLogin | None: ...

    def forward(self, login: RemoteLogin, *, code: str, error: str) -> None:
        """Hand a callback's code (or error) to the login's owner."""
        ...

    def forward_cancel(self, login: RemoteLogin) -> None: ...
