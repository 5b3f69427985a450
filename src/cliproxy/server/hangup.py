"""A client that hangs up stops its upstream call, whenever it hangs up.

Starlette notices a disconnect only while it streams a response. Before the first byte the
route is still waiting for the upstream, which may take minutes (up to
``upstream-timeout-seconds``) and spends the account's tokens for nobody. So once the route has
read the whole body, this middleware keeps listening on the connection and cancels the route
the moment the client goes away; cancelling closes the upstream connection, which is how an
upstream learns to stop generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cliproxy.server.listener import CONNECTION, HeaderDeadlineProtocol

log = logging.getLogger(__name__)

# Set in the scope of a request this layer watches: a stream's response need not listen for
# the disconnect itself (respond.py RelayResponse), the watcher cancels the route on it.
WATCHED = "cliproxy.hangup_watched"


class CancelOnHangUp:
    def __init__(self, app: ASGIApp, applies: Callable[[Scope], bool]) -> None:
        self.app = app
        self.applies = applies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        scope[WATCHED] = True
        await _Watched(scope, receive, send).run(self.app)


class _Watched:
    """One request: the route runs in the server's own task for it (a task of its own per
    request cost more than the rest of this layer); a watcher reads the connection after the
    body and cancels that task when the client goes away."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.task: asyncio.Task[object] | None = None
        self.watcher: asyncio.Task[None] | None = None
        self.connection: HeaderDeadlineProtocol | None = None
        # What the watcher heard after the body; later receive() calls of the route get the
        # same message.
        self.after_body: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.body_done = False
        self.response_done = False
        self.running = False
        self.hung_up = False

    async def run(self, app: ASGIApp) -> None:
        self.task = task = asyncio.current_task()
        self.running = True
        try:
            await app(self.scope, self._receive, self._send)
        except asyncio.CancelledError:
            # Ours when the watcher cancelled for a hang-up and nobody else asked the task to
            # stop (a server shutdown does; its cancellation goes on up).
            if self.hung_up and task is not None and task.uncancel() == 0:
                log.info(
                    "client hung up before the answer on %s; upstream call cancelled",
                    self.scope["path"],
                )
                return
            raise
        finally:
            self.running = False
            if self.connection is not None and self.connection.on_lost == self._connection_lost:
                self.connection.on_lost = None
            if self.watcher is not None:
                self.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.watcher
            if not self.after_body.done():
                self.after_body.cancel()

    async def _receive(self) -> Message:
        if self.body_done:
            return await asyncio.shield(self.after_body)
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self._hang_up()
        elif not message.get("more_body", False):
            self.body_done = True
            named = self.scope.get(CONNECTION)
            connection = named() if isinstance(named, weakref.ref) else None
            if isinstance(connection, HeaderDeadlineProtocol):
                # cliproxy's own server protocol calls back when the connection goes.
                self.connection = connection
                connection.on_lost = self._connection_lost
            else:
                self.watcher = asyncio.create_task(self._watch())
        return message

    def _connection_lost(self) -> None:
        if not self.after_body.done():
            self.after_body.set_result({"type": "http.disconnect"})
        self._hang_up()

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.response_done = True
        await self.send(message)

    async def _watch(self) -> None:
        message = await self.receive()
        if not self.after_body.done():
            self.after_body.set_result(message)
        if message["type"] == "http.disconnect":
            self._hang_up()

    def _hang_up(self) -> None:
        if self.response_done or self.task is None or not self.running or self.hung_up:
            return
        self.hung_up = True
        self.task.cancel()
