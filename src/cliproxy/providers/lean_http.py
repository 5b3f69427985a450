"""A lean HTTP/1.1 client for the common upstream call (http or https, no proxy): one
connection's protocol and the reply it delivers; the pool that sends through them is
lean_pool.py.

Why not aiohttp here: at an LLM's pace (one small chunk every few milliseconds per stream) the
proxy's CPU goes per chunk, and aiohttp's response parser, stream reader, flow control and timer
per read were about a quarter of what relaying one chunk costs (docs/benchmark.md). This is an
asyncio protocol around httptools' C parser: a body chunk is parsed, decompressed if need be
and handed to the one waiting reader, nothing more. Where a caller could tell, it behaves as
aiohttp did:

- the request head: ``Host`` first, then the caller's headers as given, then aiohttp's defaults
  for those missing (``Accept: */*``, ``Accept-Encoding: gzip, deflate``, aiohttp's
  ``User-Agent``), then ``Content-Length``; the URL is requoted by yarl, as aiohttp does;
- gzip and deflate replies are decompressed, their headers kept as sent;
- the read timeout runs from the last bytes received, armed once per stall;
- failures raise what aiohttp's would for the callers' ``except`` clauses: ``OSError`` before a
  reply, ``aiohttp.ClientPayloadError`` for a body cut short, ``TimeoutError`` for a stall.
"""

from __future__ import annotations

import asyncio
import copy
import zlib
from collections import deque
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any, Protocol

import aiohttp
import httptools
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

HIGH_WATER = 256 * 1024  # unread body bytes at which reading from the upstream pauses
_DEFAULT_HEADERS = (
    ("accept", "Accept: */*"),
    ("accept-encoding", "Accept-Encoding: gzip, deflate"),
    ("user-agent", f"User-Agent: {SERVER_SOFTWARE}"),
)
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})


class Pool(Protocol):
    """Where a connection goes back when its reply is done (lean_pool.LeanPool)."""

    def put(self, connection: Connection) -> None: ...


class UpstreamClosed(ConnectionResetError):
    """The upstream closed the connection before its reply's status line."""


class Target:
    """Where a URL goes: the pool key, the Host header and the request target."""

    __slots__ = ("host", "host_header", "key", "path", "port", "tls")

    def __init__(self, url: str) -> None:
        parsed = URL(url)
        self.tls = parsed.scheme == "https"
        self.host = parsed.raw_host or ""
        self.port = parsed.port or (443 if self.tls else 80)
        self.host_header = parsed.host_port_subcomponent or self.host
        self.path = parsed.raw_path_qs or "/"
        self.key = (self.tls, self.host, self.port)


@lru_cache(maxsize=1024)
def target_of(url: str) -> Target:
    return Target(url)


def request_head(method: str, target: Target, headers: dict[str, str], body: bytes | None) -> bytes:
    given = {name.lower() for name in headers}
    lines = [f"{method} {target.path} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {target.host_header}")
    for name, value in headers.items():
        if name.lower() in _FRAMING and name.lower() != "host":
            continue  # the body below decides its own framing
        line = f"{name}: {value}"
        if "\n" in line or "\r" in line:  # would end the header early: a smuggled header
            raise ValueError(f"the header {name!r} for the upstream holds a line break")
        lines.append(line)
    lines.extend(line for lower, line in _DEFAULT_HEADERS if lower not in given)
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode() + b"\r\n\r\n"


def _decompressor(encoding: str) -> Any:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Deflate()
    return None  # identity, or an encoding not asked for: the bytes as they came


class _Deflate:
    """``deflate`` is meant to be zlib-wrapped, but some servers send raw deflate."""

    def __init__(self) -> None:
        self._inner: Any = None

    def decompress(self, data: bytes) -> bytes:
        if self._inner is None:
            raw = bool(data) and (data[0] & 0x0F) != 8
            self._inner = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        return bytes(self._inner.decompress(data))

    def flush(self) -> bytes:
        return bytes(self._inner.flush()) if self._inner is not None else b""


class Connection(asyncio.Protocol):
    """One keep-alive connection to one upstream; one exchange at a time."""

    def __init__(self, pool: Pool, key: tuple[bool, str, int], read_timeout: float) -> None:
        self.pool = pool
        self.key = key
        self.read_timeout = read_timeout
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reply: LeanReply | None = None
        # The parser calls back into this protocol: a cycle, dropped when the connection is
        # lost, so a closed connection is freed at once rather than by the garbage collector.
        self._parser: Any = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[LeanReply] | None = None
        self._names: list[bytes] = []
        self._values: list[bytes] = []
        self.received_any = False
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False

    # asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        self._last_read = self.loop.time()
        if self._head is None and (self.reply is None or self.reply.finished):
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        try:
            if self._parser is not None:
                self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(
                aiohttp.ClientResponseError(blank_request_info(), (), message="upstream upgraded")
            )
        except httptools.HttpParserError as exc:
            self._fail(_invalid(exc))

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._parser = None
        self._cancel_timer()
        if self._head is not None and not self._head.done():
            closed = UpstreamClosed("the upstream closed the connection before answering")
            self._head.set_exception(exc if isinstance(exc, OSError) else closed)
        reply = self.reply
        if reply is not None and not reply.finished:
            if reply.until_eof:
                reply.finish()
            else:
                reply.fail(
                    aiohttp.ClientPayloadError("the upstream closed the connection mid-body")
                )
        self.reply = None  # its reader keeps what it needs; this connection is done
        self.transport = None

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._names.append(name)
        self._values.append(value)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        names, values = self._names, self._values
        self._names, self._values = [], []
        if 100 <= status < 200:
            return  # an interim reply (100 Continue, 103 Early Hints): the real one follows
        if self.reply is not None:
            # A second reply to one request (bytes pipelined behind the first one's end):
            # nothing to give it to, and the connection cannot be trusted with another.
            self.close()
            return
        headers: CIMultiDict[str] = CIMultiDict(
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in zip(names, values, strict=True)
        )
        reply = LeanReply(self, status, headers)
        # llhttp answers this only while the head is current, not once the body is done.
        reply.keep_alive = self._parser.should_keep_alive()
        self.reply = reply
        if self._head is not None and not self._head.done():
            self._head.set_result(reply)

    def on_body(self, body: bytes) -> None:
        reply = self.reply
        if reply is not None and not reply.finished:
            reply.feed(body)

    def on_message_complete(self) -> None:
        reply = self.reply
        if reply is None or reply.finished:
            return  # the end of an interim reply, or of one that came unasked
        reply.finish()
        self._cancel_timer()

    # exchanges

    async def exchange(self, head: bytes, body: bytes | None) -> LeanReply:
        assert self.transport is not None
        self._head = self.loop.create_future()
        self.received_any = False
        self._last_read = self.loop.time()
        self._arm_timer()
        self.transport.write(head + body if body else head)
        try:
            return await self._head
        except asyncio.CancelledError:
            self.close()  # the reply still on its way would arrive for nobody
            raise
        finally:
            self._head = None

    def done_with(self, reply: LeanReply) -> None:
        """The reader let go of ``reply``: pool the connection if it can carry another."""
        if self.reply is not reply:
            return
        self.reply = None
        self._cancel_timer()
        self.resume()
        if (
            reply.finished
            and reply.error is None
            and not reply.until_eof
            and not self.closed
            and reply.keep_alive
        ):
            self.pool.put(self)
        else:
            self.close()

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def _fail(self, exc: BaseException) -> None:
        if self._head is not None and not self._head.done():
            self._head.set_exception(exc)
        elif self.reply is not None and not self.reply.finished:
            self.reply.fail(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    # The read timeout: one timer per stall, re-armed for what is left when it fires early.

    def _arm_timer(self) -> None:
        if self.read_timeout and self._timer is None:
            self._timer = self.loop.call_at(self._last_read + self.read_timeout, self._timer_fired)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timer_fired(self) -> None:
        self._timer = None
        if self._head is None and (self.reply is None or self.reply.finished):
            return
        if self._paused:  # the reader is behind, not the upstream
            self._last_read = self.loop.time()
        due = self._last_read + self.read_timeout
        if self.loop.time() < due:
            self._timer = self.loop.call_at(due, self._timer_fired)
            return
        self._fail(TimeoutError("the upstream sent nothing for the read timeout"))


def blank_request_info() -> aiohttp.RequestInfo:
    """aiohttp's response errors name the request they answer; these name none."""
    return aiohttp.RequestInfo(URL(), "POST", CIMultiDictProxy(CIMultiDict()), URL())


def _invalid(exc: BaseException) -> aiohttp.ClientResponseError:
    return aiohttp.ClientResponseError(
        blank_request_info(), (), message=f"invalid HTTP reply: {exc}"
    )


class LeanReply:
    """An upstream's reply (the UpstreamReply interface): status and headers in, the body
    read once whole (``read()``, kept for a second read) or as it comes (``iter_any()``)."""

    def __init__(self, connection: Connection, status: int, headers: CIMultiDict[str]) -> None:
        self._connection = connection
        self.status = status
        self.headers = CIMultiDictProxy(headers)
        media = headers.get("content-type", "")
        self.content_type = media.split(";", 1)[0].strip().lower() or "application/octet-stream"
        framed = (
            "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
        )
        self.until_eof = not framed and status not in (204, 304)
        self.keep_alive = False
        self.finished = False
        self.error: BaseException | None = None
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._decoder = _decompressor(headers.get("content-encoding", ""))
        self._body: bytes | None = None
        self._released = False

    @property
    def content(self) -> LeanReply:
        return self

    # fed by the connection

    def feed(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                self._connection._fail(aiohttp.ClientPayloadError(f"cannot decompress: {exc}"))
                return
            if not data:
                return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER:
            self._connection.pause()
        self._wake()

    def finish(self) -> None:
        if self._decoder is not None:
            try:
                tail = self._decoder.flush()
            except zlib.error:
                tail = b""
            if tail:
                self._chunks.append(tail)
        self.finished = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self.finished = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # read by the server

    async def iter_any(self) -> AsyncIterator[bytes]:
        chunks = self._chunks
        while True:
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                if self._size > HIGH_WATER:
                    self._connection.resume()
                self._size = 0
                yield data
            elif self.error is not None:
                # A copy: the stored one, raised, would hold this read's frames (and through
                # them this reply) on its traceback, a cycle left for the garbage collector.
                raise copy.copy(self.error)
            elif self.finished:
                return
            else:
                self._waiter = self._connection.loop.create_future()
                await self._waiter

    async def read(self) -> bytes:
        if self._body is None:
            self._body = b"".join([chunk async for chunk in self.iter_any()])
        return self._body

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._connection.done_with(self)
