"""The lazy sock_read timer (providers/read_timer.py): a stream that keeps sending outlives
many timeouts' worth of time, and one that stalls is still cut off, with aiohttp's own error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from cliproxy.providers.read_timer import LazyReadTimeout, install

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
EVENT = b"data: {}\n\n"
TIMEOUT = 0.3


async def drip(writer: asyncio.StreamWriter, beats: int, stall: bool) -> None:
    writer.write(HEAD)
    for _ in range(beats):
        await asyncio.sleep(TIMEOUT / 3)
        writer.write(b"%x\r\n%s\r\n" % (len(EVENT), EVENT))
    if stall:
        await asyncio.sleep(30)
    writer.write(b"0\r\n\r\n")
    await writer.drain()


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, dict[str, bool]]]:
    how = {"stall": False}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            await drip(writer, beats=9, stall=how["stall"])  # 3 timeouts' worth of dripping
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/", how
    server.close()


async def read_all(url: str) -> list[bytes]:
    connector = aiohttp.TCPConnector()
    install(connector)
    assert connector._factory.func is LazyReadTimeout  # installed, not silently skipped
    timeout = aiohttp.ClientTimeout(total=None, sock_read=TIMEOUT)
    session = aiohttp.ClientSession(connector=connector, timeout=timeout)
    async with session, session.get(url) as reply:
        return [chunk async for chunk in reply.content.iter_any()]


async def test_a_stream_that_keeps_sending_is_not_cut(
    upstream: tuple[str, dict[str, bool]],
) -> None:
    url, _ = upstream
    assert b"".join(await read_all(url)) == EVENT * 9


async def test_a_stream_that_stalls_is_cut_with_aiohttps_timeout(
    upstream: tuple[str, dict[str, bool]],
) -> None:
    url, how = upstream
    how["stall"] = True
    with pytest.raises(aiohttp.SocketTimeoutError):
        await read_all(url)
