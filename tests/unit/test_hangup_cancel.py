"""CancelOnHangUp: a hang-up cancels the route and the
layer returns normally; a cancellation from outside (a server shutdown) still goes on up."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send

from cliproxy.server.hangup import CancelOnHangUp

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions"}


def connection(after_body: asyncio.Future[Message]) -> Receive:
    """The body in one message, then whatever ``after_body`` becomes."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"{}", "more_body": False}
        return await after_body

    return receive


async def no_send(message: Message) -> None:
    pass


def waiting_route(reached: list[str]):
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        reached.append("body read")
        try:
            await asyncio.sleep(30)  # the upstream call
        except asyncio.CancelledError:
            reached.append("cancelled")
            raise

    return route


async def test_a_hang_up_cancels_the_route_and_the_layer_returns() -> None:
    reached: list[str] = []
    layer = CancelOnHangUp(waiting_route(reached), applies=lambda scope: True)
    after_body: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(layer(SCOPE, connection(after_body), no_send))
    await asyncio.sleep(0.01)
    after_body.set_result({"type": "http.disconnect"})
    assert await asyncio.wait_for(task, 5) is None
    assert reached == ["body read", "cancelled"]
    assert task.cancelling() == 0


async def test_a_cancellation_from_outside_goes_on_up() -> None:
    reached: list[str] = []
    layer = CancelOnHangUp(waiting_route(reached), applies=lambda scope: True)
    after_body: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(layer(SCOPE, connection(after_body), no_send))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reached == ["body read", "cancelled"]


async def test_a_shutdown_during_a_hang_up_still_goes_on_up() -> None:
    reached: list[str] = []
    layer = CancelOnHangUp(waiting_route(reached), applies=lambda scope: True)
    after_body: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(layer(SCOPE, connection(after_body), no_send))
    await asyncio.sleep(0.01)
    after_body.set_result({"type": "http.disconnect"})
    task.cancel()  # the server stops in the same loop turn
    with pytest.raises(asyncio.CancelledError):
        await task
