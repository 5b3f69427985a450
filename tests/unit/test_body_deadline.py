"""The body deadline's one timer per request (server/listener.py): a body that stops coming is
refused with 408, a read after the deadline gets bytes already there, and a cancellation from
elsewhere is no timeout."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from cliproxy.model import ProxyError
from cliproxy.server.listener import _BodyClock

PART: Message = {"type": "http.request", "body": b"{", "more_body": True}
LAST: Message = {"type": "http.request", "body": b"}", "more_body": False}


def feeder(queue: asyncio.Queue[Message]):
    async def receive() -> Message:
        return await queue.get()

    return receive


async def test_a_body_that_stops_coming_is_refused_with_408() -> None:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    queue.put_nowait(PART)
    clock = _BodyClock(feeder(queue), timeout=0.05)
    assert await clock.receive() == PART
    with pytest.raises(ProxyError) as refused:
        await clock.receive()  # nothing more comes
    assert refused.value.status == 408
    assert "body-read-timeout-seconds" in refused.value.message
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_read_after_the_deadline_gets_bytes_already_there() -> None:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    queue.put_nowait(PART)
    clock = _BodyClock(feeder(queue), timeout=0.05)
    assert await clock.receive() == PART
    await asyncio.sleep(0.1)  # the route was busy elsewhere while the deadline passed
    queue.put_nowait(LAST)
    assert await clock.receive() == LAST
    assert clock.body_done


async def test_a_whole_body_stops_the_clock() -> None:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    queue.put_nowait(LAST)
    clock = _BodyClock(feeder(queue), timeout=0.05)
    assert await clock.receive() == LAST
    assert clock.timer is not None and clock.timer.cancelled()


async def test_a_cancellation_from_elsewhere_is_no_timeout() -> None:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    clock = _BodyClock(feeder(queue), timeout=30)
    reading = asyncio.create_task(clock.receive())
    await asyncio.sleep(0.01)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
