"""The lean upstream client (providers/lean_http.py, lean_pool.py) against upstreams that
misbehave on the wire: raw asyncio servers on 127.0.0.1 that close, cut, stall, compress,
pipeline garbage and answer over TLS, since a simulator speaking proper HTTP would never show
these faults."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import trustme

from cliproxy.providers import lean_pool
from cliproxy.providers.lean_http import Target, request_head
from cliproxy.providers.lean_pool import LeanPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Upstream:
    """A TCP server that runs ``handler`` for each connection and counts the connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self.url = ""

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Upstream]]]:
    servers: list[asyncio.Server] = []

    async def start(
        handler: Callable[..., Awaitable[None]], tls: ssl.SSLContext | None = None
    ) -> Upstream:
        upstream = Upstream()

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream.connections += 1
            try:
                await handler(upstream, reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(on_connection, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        upstream.port = server.sockets[0].getsockname()[1]
        scheme = "https" if tls else "http"
        upstream.url = f"{scheme}://127.0.0.1:{upstream.port}/v1/chat/completions"
        return upstream

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def pool() -> AsyncIterator[LeanPool]:
    pool = LeanPool(read_timeout=5.0)
    yield pool
    await pool.close()


async def keep_alive_json(
    upstream: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    while True:
        await upstream.read_request(reader)
        body = b'{"ok": %d}' % len(upstream.requests)
        writer.write(JSON_HEAD % len(body) + body)
        await writer.drain()


async def test_a_kept_alive_connection_carries_the_next_request(serve, pool: LeanPool) -> None:
    upstream = await serve(keep_alive_json)
    for number in (1, 2, 3):
        reply = await pool.send("POST", upstream.url, {"content-type": "application/json"}, b"{}")
        assert reply.status == 200
        assert reply.content_type == "application/json"
        assert await reply.read() == b'{"ok": %d}' % number
        assert await reply.read() == b'{"ok": %d}' % number  # kept for a second read
        reply.release()
    assert upstream.connections == 1


async def test_the_request_head_is_the_one_aiohttp_would_send(serve) -> None:
    upstream = await serve(keep_alive_json)
    heads: list[bytes] = []
    for lean in (True, False):
        headers = {"Authorization": "Bearer k", "content-type": "application/json", "X-Foo": "b"}
        url = upstream.url + "?alt=sse"
        if lean:
            pool = LeanPool(5.0)
            reply = await pool.send("POST", url, headers, b'{"a":1}')
            await reply.read()
            reply.release()
            await pool.close()
        else:
            session = aiohttp.ClientSession()
            async with session, session.post(url, data=b'{"a":1}', headers=headers) as answer:
                await answer.read()
        heads.append(upstream.requests[-1])
    assert heads[0] == heads[1]
    assert heads[0].startswith(b"POST /v1/chat/completions?alt=sse HTTP/1.1\r\nHost: 127.0.0.1:")


def test_a_header_with_a_line_break_is_refused_not_smuggled() -> None:
    target = Target("http://up.example/v1/x")
    with pytest.raises(ValueError, match="line break"):
        request_head("POST", target, {"x-note": "a\r\nX-Evil: 1"}, b"")
    head = request_head("GET", target, {"user-agent": "mine"}, None)
    assert head == (
        b"GET /v1/x HTTP/1.1\r\nHost: up.example\r\nuser-agent: mine\r\n"
        b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n\r\n"
    )


async def answer_empty(upstream: Upstream, reader, writer) -> None:
    """Read one request and answer it with an empty JSON object."""
    await upstream.read_request(reader)
    writer.write(JSON_HEAD % 2 + b"{}")
    await writer.drain()


async def test_a_connection_the_upstream_closed_while_idle_is_not_reused(
    serve, pool: LeanPool
) -> None:
    async def one_then_close(upstream: Upstream, reader, writer) -> None:
        await answer_empty(upstream, reader, writer)
        await asyncio.sleep(0.05)  # then the server's keep-alive timeout: FIN

    upstream = await serve(one_then_close)
    for _ in range(2):
        reply = await pool.send("POST", upstream.url, {}, b"{}")
        assert await reply.read() == b"{}"
        reply.release()
        await asyncio.sleep(0.2)
    assert upstream.connections == 2


async def test_a_request_lost_on_a_reused_connection_is_retried_only_when_idempotent(
    serve, pool: LeanPool
) -> None:
    async def answers_once_then_drops(upstream: Upstream, reader, writer) -> None:
        await answer_empty(upstream, reader, writer)
        await upstream.read_request(reader)  # the next request is read, never answered

    upstream = await serve(answers_once_then_drops)
    reply = await pool.send("POST", upstream.url, {}, b"{}")
    await reply.read()
    reply.release()
    with pytest.raises(ConnectionError):  # a POST may have been acted on: never sent twice
        await pool.send("POST", upstream.url, {}, b"{}")
    reply = await pool.send("GET", upstream.url, {}, None)
    await reply.read()
    reply.release()
    reply = await pool.send("GET", upstream.url, {}, None)  # reused, dropped, retried fresh
    assert await reply.read() == b"{}"
    assert upstream.connections == 3


async def test_a_stream_cut_mid_body_raises_a_payload_error(serve, pool: LeanPool) -> None:
    async def cut(upstream: Upstream, reader, writer) -> None:
        await upstream.read_request(reader)
        writer.write(SSE_HEAD + chunk(b"data: 1\n\n") + b"40\r\ndata: half")
        await writer.drain()

    upstream = await serve(cut)
    reply = await pool.send("POST", upstream.url, {}, b"{}")
    seen = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async for data in reply.iter_any():
            seen.append(data)
    assert b"".join(seen).startswith(b"data: 1\n\n")
    reply.release()


async def test_a_short_sized_body_raises_and_an_unsized_one_ends_at_close(
    serve, pool: LeanPool
) -> None:
    async def short(upstream: Upstream, reader, writer) -> None:
        await upstream.read_request(reader)
        writer.write(JSON_HEAD % 100 + b'{"partial"')

    async def until_close(upstream: Upstream, reader, writer) -> None:
        await upstream.read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
        )
        writer.write(b'{"whole": true}')

    cut = await serve(short)
    reply = await pool.send("POST", cut.url, {}, b"{}")
    with pytest.raises(aiohttp.ClientPayloadError):
        await reply.read()
    reply.release()
    eof = await serve(until_close)
    reply = await pool.send("POST", eof.url, {}, b"{}")
    assert await reply.read() == b'{"whole": true}'
    reply.release()


async def test_the_read_timeout_cuts_a_stall_but_not_a_slow_drip(serve) -> None:
    timeout = 0.3

    async def drip_then_stall(upstream: Upstream, reader, writer) -> None:
        while True:
            await upstream.read_request(reader)
            writer.write(SSE_HEAD)
            for _ in range(6):  # two timeouts' worth of dripping
                await asyncio.sleep(timeout / 3)
                writer.write(chunk(b"data: {}\n\n"))
            if b"stall" in upstream.requests[-1]:
                await asyncio.sleep(30)
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async def silent(upstream: Upstream, reader, writer) -> None:
        await upstream.read_request(reader)
        await asyncio.sleep(30)

    pool = LeanPool(read_timeout=timeout)
    try:
        upstream = await serve(drip_then_stall)
        reply = await pool.send("POST", upstream.url, {}, b"drip")
        assert await reply.read() == b"data: {}\n\n" * 6
        reply.release()
        reply = await pool.send("POST", upstream.url, {}, b"stall")
        with pytest.raises(TimeoutError):
            await reply.read()
        reply.release()
        quiet = await serve(silent)
        with pytest.raises(TimeoutError):
            await pool.send("POST", quiet.url, {}, b"{}")
    finally:
        await pool.close()


async def test_gzip_and_deflate_replies_are_decompressed(serve, pool: LeanPool) -> None:
    text = b'{"text": "' + b"hello " * 2000 + b'"}'
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    bodies = {
        b"gzip": gzip.compress(text),
        b"deflate": zlib.compress(text),
        b"rawdeflate": raw_deflate.compress(text) + raw_deflate.flush(),
    }

    async def compressed(upstream: Upstream, reader, writer) -> None:
        while True:
            request = await upstream.read_request(reader)
            kind = request.rsplit(b"\r\n\r\n", 1)[1]
            body = bodies[kind]
            encoding = b"gzip" if kind == b"gzip" else b"deflate"
            if kind == b"gzip":  # a stream, in pieces that split the gzip member anywhere
                writer.write(SSE_HEAD.replace(b"\r\n\r\n", b"\r\ncontent-encoding: gzip\r\n\r\n"))
                for start in range(0, len(body), 7):
                    writer.write(chunk(body[start : start + 7]))
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-encoding: %s\r\ncontent-length: %d\r\n\r\n%s"
                    % (encoding, len(body), body)
                )
            await writer.drain()

    upstream = await serve(compressed)
    for kind in bodies:
        reply = await pool.send("POST", upstream.url, {}, kind)
        assert await reply.read() == text, kind
        assert reply.headers["content-encoding"] in ("gzip", "deflate")  # kept as sent
        reply.release()
    assert upstream.connections == 1


async def test_an_interim_reply_is_skipped_and_garbage_is_an_error(serve, pool: LeanPool) -> None:
    async def continue_first(upstream: Upstream, reader, writer) -> None:
        await upstream.read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + JSON_HEAD % 2 + b"{}")
        await writer.drain()

    async def garbage(upstream: Upstream, reader, writer) -> None:
        await upstream.read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    interim = await serve(continue_first)
    reply = await pool.send("POST", interim.url, {}, b"{}")
    assert reply.status == 200 and await reply.read() == b"{}"
    reply.release()
    broken = await serve(garbage)
    with pytest.raises(aiohttp.ClientResponseError, match="invalid HTTP reply"):
        await pool.send("POST", broken.url, {}, b"{}")


async def test_a_reader_that_falls_behind_pauses_the_upstream_and_loses_nothing(
    serve, pool: LeanPool
) -> None:
    piece = bytes(range(256)) * 256  # 64 KiB

    async def firehose(upstream: Upstream, reader, writer) -> None:
        await upstream.read_request(reader)
        writer.write(SSE_HEAD)
        for _ in range(64):  # 4 MiB, far past the high-water mark
            writer.write(chunk(piece))
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    upstream = await serve(firehose)
    reply = await pool.send("POST", upstream.url, {}, b"{}")
    received = bytearray()
    largest = 0
    async for data in reply.iter_any():
        received += data
        largest = max(largest, len(data))
        await asyncio.sleep(0.01)
    assert bytes(received) == piece * 64
    # What waited unread stayed near the mark (one socket read past it), not the whole body.
    assert largest <= 256 * 1024 + 2 * 256 * 1024  # HIGH_WATER and two reads
    reply.release()


async def test_a_body_released_unread_closes_its_connection(serve, pool: LeanPool) -> None:
    async def slow_stream(upstream: Upstream, reader, writer) -> None:
        while True:
            await upstream.read_request(reader)
            writer.write(SSE_HEAD + chunk(b"data: 1\n\n"))
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(b"0\r\n\r\n")

    upstream = await serve(slow_stream)
    for _ in range(2):
        reply = await pool.send("POST", upstream.url, {}, b"{}")
        async for _data in reply.iter_any():
            break  # the client went away after the first event
        reply.release()
    assert upstream.connections == 2


async def test_idle_connections_are_closed_after_the_keepalive_time(
    serve, pool: LeanPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lean_pool, "KEEPALIVE_SECONDS", 0.1)
    upstream = await serve(keep_alive_json)
    replies = await asyncio.gather(*(pool.send("POST", upstream.url, {}, b"{}") for _ in range(5)))
    for reply in replies:
        await reply.read()
        reply.release()
    assert upstream.connections == 5
    assert sum(len(idle) for idle in pool._idle.values()) == 5
    await asyncio.sleep(0.35)
    assert sum(len(idle) for idle in pool._idle.values()) == 0


async def test_https_upstreams_are_verified_against_the_trust_store(
    serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    upstream = await serve(keep_alive_json, tls=server_context)
    pool = LeanPool(5.0)
    try:
        lean_pool._tls_context.cache_clear()
        with pytest.raises(ssl.SSLCertVerificationError):  # not (yet) trusted
            await pool.send("POST", upstream.url, {}, b"{}")
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
        lean_pool._tls_context.cache_clear()
        reply = await pool.send("POST", upstream.url, {}, b"{}")
        assert await reply.read() == b'{"ok": 1}'
        reply.release()
    finally:
        await pool.close()
        lean_pool._tls_context.cache_clear()


async def test_a_request_given_up_before_its_reply_closes_its_connection(
    serve, pool: LeanPool
) -> None:
    hung_up = asyncio.Event()

    async def slow_to_answer(upstream: Upstream, reader, writer) -> None:
        await upstream.read_request(reader)
        if not await reader.read(1):  # EOF: the client closed instead of waiting
            hung_up.set()

    upstream = await serve(slow_to_answer)
    waiting = asyncio.ensure_future(pool.send("POST", upstream.url, {}, b"{}"))
    await asyncio.sleep(0.1)
    waiting.cancel()
    await asyncio.wait_for(hung_up.wait(), 2)
    assert not pool._idle.get((False, "127.0.0.1", upstream.port))


async def test_a_burst_to_a_host_name_asks_the_resolver_once(
    serve, pool: LeanPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = await serve(keep_alive_json)
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    asked: list[str] = []

    async def counting(host: str, *args: object, **kwargs: object) -> object:
        asked.append(host)
        await asyncio.sleep(0.05)  # a resolver that takes a moment, as real ones do
        return await real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    url = f"http://localhost:{upstream.port}/v1/chat/completions"
    replies = await asyncio.gather(*(pool.send("POST", url, {}, b"{}") for _ in range(20)))
    for reply in replies:
        assert reply.status == 200
        await reply.read()
        reply.release()
    assert asked == ["localhost"]
    assert b"Host: localhost:%d\r\n" % upstream.port in upstream.requests[0]
    ip = await pool.send("POST", upstream.url, {}, b"{}")  # an IP literal: no resolver at all
    await ip.read()
    ip.release()
    assert asked == ["localhost"]


async def test_connections_leave_no_reference_cycles(serve, pool: LeanPool) -> None:
    """Closed connections and finished replies are freed by reference counting, as the rest of
    the request path is (tests/e2e/test_no_cycles.py)."""

    async def varied(upstream: Upstream, reader, writer) -> None:
        request = await upstream.read_request(reader)
        if request.endswith(b"cut"):
            writer.write(SSE_HEAD + chunk(b"data: 1\n\n"))
            return
        writer.write(JSON_HEAD % 2 + b"{}")
        if request.endswith(b"close"):
            return
        await upstream.read_request(reader)
        writer.write(JSON_HEAD % 2 + b"{}")

    upstream = await serve(varied)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for body in (b"keep", b"keep", b"close", b"cut"):
            reply = await pool.send("POST", upstream.url, {}, body)
            with contextlib.suppress(aiohttp.ClientPayloadError):
                await reply.read()
            reply.release()
            await asyncio.sleep(0.05)  # the server's FIN arrives; the connection is lost
        del reply
        await pool.close()
        await asyncio.sleep(0.05)
        gc.collect()
        ours = {type(thing).__qualname__ for thing in gc.garbage if _lean(thing)}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert ours == set()


def _lean(thing: object) -> bool:
    return type(thing).__module__.startswith("cliproxy.providers.lean_")


async def test_redirects_are_followed_as_aiohttp_does_and_keep_credentials_home(
    serve, pool: LeanPool
) -> None:
    async def elsewhere_echo(upstream: Upstream, reader, writer) -> None:
        request = await upstream.read_request(reader)
        body = request.split(b"\r\n", 1)[0] + b" " + request.rsplit(b"\r\n\r\n", 1)[1]
        writer.write(JSON_HEAD % len(body) + body)
        await writer.drain()

    other = await serve(elsewhere_echo)

    async def redirecting(upstream: Upstream, reader, writer) -> None:
        while True:
            request = await upstream.read_request(reader)
            line = request.split(b"\r\n", 1)[0]
            if b"/307" in line:
                writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /landed\r\n")
            elif b"/302" in line:
                writer.write(b"HTTP/1.1 302 Found\r\nlocation: /landed\r\n")
            elif b"/away" in line:
                location = f"http://127.0.0.1:{other.port}/there".encode()
                writer.write(b"HTTP/1.1 308 Permanent Redirect\r\nlocation: %s\r\n" % location)
            elif b"/loop" in line:
                writer.write(b"HTTP/1.1 302 Found\r\nlocation: /loop\r\n")
            else:
                body = line + b" " + request.rsplit(b"\r\n\r\n", 1)[1]
                writer.write(JSON_HEAD % len(body) + body)
                await writer.drain()
                continue
            writer.write(b"content-length: 0\r\n\r\n")
            await writer.drain()

    upstream = await serve(redirecting)
    base = f"http://127.0.0.1:{upstream.port}"
    keys = {"authorization": "Bearer secret", "x-api-key": "secret", "x-note": "kept"}

    reply = await pool.send("POST", base + "/307", keys, b"payload")
    assert await reply.read() == b"POST /landed HTTP/1.1 payload"  # method and body kept
    reply.release()
    reply = await pool.send("POST", base + "/302", keys, b"payload")
    assert await reply.read() == b"GET /landed HTTP/1.1 "  # a POST after 302 goes on as GET
    reply.release()
    assert b"authorization: Bearer secret" in upstream.requests[-1]  # same origin: kept

    reply = await pool.send("POST", base + "/away", keys, b"payload")
    assert await reply.read() == b"POST /there HTTP/1.1 payload"
    reply.release()
    landed = other.requests[-1].lower()
    assert b"secret" not in landed and b"x-note: kept" in landed

    with pytest.raises(aiohttp.TooManyRedirects):
        await pool.send("GET", base + "/loop", {}, None)


async def test_a_reply_nobody_asked_for_closes_the_connection(serve, pool: LeanPool) -> None:
    hung_up = 0

    async def two_replies(upstream: Upstream, reader, writer) -> None:
        nonlocal hung_up
        await upstream.read_request(reader)
        writer.write(JSON_HEAD % 2 + b"{}" + JSON_HEAD % 5 + b"extra")  # one too many
        await writer.drain()
        if not await reader.read(1):
            hung_up += 1

    upstream = await serve(two_replies)
    for _ in range(2):
        reply = await pool.send("POST", upstream.url, {}, b"{}")
        assert await reply.read() == b"{}"  # the first reply, untouched by the second
        reply.release()
    await asyncio.sleep(0.1)
    assert upstream.connections == 2  # never reused after the stray reply
    assert hung_up == 2  # and closed, not left open
