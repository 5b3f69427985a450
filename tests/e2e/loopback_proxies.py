"""Two tiny outbound proxies for tests: an HTTP proxy (absolute-URI forwarding and CONNECT
tunnels) and a SOCKS5 proxy (no auth, CONNECT, IPv4 and domain addresses).

Each runs its own asyncio loop in a background thread on 127.0.0.1 (an OS-chosen port) and
records every connection it relayed, so a test can prove traffic really went through it.
Both only ever dial 127.0.0.1: any other destination is refused and recorded, never dialled
(``localhost`` is mapped to 127.0.0.1 by hand so no resolver is consulted either).

    with HttpProxy() as hp, Socks5Proxy() as sp:
        ...  # point the code under test at hp.url / sp.url
        assert hp.count == 1 and hp.relayed[0].target == "/v1/messages"
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

_LOOPBACK = "127.0.0.1"
# Names accepted as a destination; each maps to 127.0.0.1 without asking a resolver.
_LOOPBACK_NAMES = {"127.0.0.1": _LOOPBACK, "localhost": _LOOPBACK}
_START_TIMEOUT = 5.0
_HEADER_LIMIT = 64 * 1024
# Hop-by-hop headers a forwarding proxy must not pass on (RFC 9110 7.6.1), plus the proxy's own.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
}


@dataclass(frozen=True)
class Relayed:
    """One connection a proxy relayed (or refused, when ``refused`` is true)."""

    serial: int  # distinguishes otherwise identical connections
    kind: str  # forward | connect | socks
    host: str  # the destination as the client named it
    port: int
    target: str = ""  # forward: the request's path; socks: "ipv4" or "domain"
    method: str = ""
    proxy_authorization: str | None = None
    refused: bool = False


def loopback_address(host: str) -> str | None:
    """127.0.0.1 for a destination the proxies may dial, None for anything else."""
    return _LOOPBACK_NAMES.get(host.strip("[]").lower())


class _LoopbackProxy:
    """Owns the thread, the loop and the listening socket; subclasses implement `handle`."""

    scheme = ""

    def __init__(self) -> None:
        self.port = 0
        self._records: list[Relayed] = []
        self._traffic: dict[Relayed, int] = {}  # insertion order = order of first use
        self._serial = 0
        self._records_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # ----- what tests read ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def relayed(self) -> list[Relayed]:
        """Connections opened to a destination since `reset`, in order (refusals left out)."""
        with self._records_lock:
            return [r for r in self._records if not r.refused]

    @property
    def used(self) -> list[Relayed]:
        """Connections that carried client bytes since `reset`, including ones opened before
        it: a client may keep a tunnel open and send its next request down it."""
        with self._records_lock:
            return list(self._traffic)

    @property
    def bytes_up(self) -> int:
        """Bytes relayed from clients to destinations since `reset`."""
        with self._records_lock:
            return sum(self._traffic.values())

    @property
    def refused(self) -> list[Relayed]:
        with self._records_lock:
            return [r for r in self._records if r.refused]

    @property
    def count(self) -> int:
        """Connections that carried traffic since `reset` (for `HttpProxy` forwarding: requests)."""
        return len(self.used)

    def reset(self) -> None:
        with self._records_lock:
            self._records.clear()
            self._traffic.clear()

    def new_entry(self, kind: str, host: str, port: int, target: str, method: str) -> Relayed:
        with self._records_lock:
            self._serial += 1
            return Relayed(self._serial, kind, host, port, target, method)

    def record(self, entry: Relayed) -> None:
        with self._records_lock:
            self._records.append(entry)

    def count_bytes(self, entry: Relayed, size: int) -> None:
        with self._records_lock:
            self._traffic[entry] = self._traffic.get(entry, 0) + size

    # ----- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        if not ready.wait(_START_TIMEOUT) or not self.port:
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._guarded, _LOOPBACK, 0, limit=_HEADER_LIMIT)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
        finally:
            ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None or self._thread is None:
            return

        async def shut() -> None:
            server.close()
            # Open relays would otherwise keep the loop busy; they are test leftovers.
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shut(), loop)
        self._thread.join(_START_TIMEOUT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- connection handling --------------------------------------------------------------

    async def _guarded(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A client hanging up mid-handshake is normal for a proxy, not a test failure; a
        # malformed handshake (ValueError) just ends the connection.
        try:
            await self.handle(reader, writer)
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass
        finally:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_data: Callable[[int], None] | None = None,
) -> None:
    """Copy until EOF, then close the far side so the opposite pipe ends too."""
    try:
        while data := await reader.read(65536):
            if on_data is not None:
                on_data(len(data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _relay(
    proxy: _LoopbackProxy,
    entry: Relayed,
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    def count(size: int) -> None:
        proxy.count_bytes(entry, size)

    await asyncio.gather(_pipe(client[0], upstream[1], count), _pipe(upstream[0], client[1]))


class HttpProxy(_LoopbackProxy):
    """Forwards ``METHOD http://host:port/path`` requests and tunnels ``CONNECT host:port``.

    A forwarded request is sent on with ``Connection: close``, so every client connection
    carries exactly one request and `count` is the number of requests relayed.
    """

    scheme = "http"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
        auth = next((v for k, v in headers if k.lower() == "proxy-authorization"), None)
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            port, path = int(port_text), ""
        else:
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname:
                await _http_error(writer, 400, "Bad Request")
                return
            host, port = parts.hostname, parts.port or 80
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kind = "connect" if method.upper() == "CONNECT" else "forward"
        entry = replace(self.new_entry(kind, host, port, path, method), proxy_authorization=auth)
        address = loopback_address(host)
        if address is None:
            self.record(replace(entry, refused=True))
            await _http_error(writer, 403, "Forbidden")
            return
        try:
            upstream = await asyncio.open_connection(address, port)
        except OSError:
            await _http_error(writer, 502, "Bad Gateway")
            return
        self.record(entry)
        if kind == "connect":
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        else:
            kept = [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP]
            lines = [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
            forwarded_head = "\r\n".join(lines).encode("latin-1")
            self.count_bytes(entry, len(forwarded_head))
            upstream[1].write(forwarded_head)
        await _relay(self, entry, (reader, writer), upstream)


async def _http_error(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()


# SOCKS5 (RFC 1928) constants.
_SOCKS_VERSION = 5
_NO_AUTH = 0
_NO_ACCEPTABLE_METHOD = 0xFF
_CMD_CONNECT = 1
_ATYP_IPV4, _ATYP_DOMAIN, _ATYP_IPV6 = 1, 3, 4
_REP_OK, _REP_NOT_ALLOWED, _REP_REFUSED = 0, 2, 5
_REP_COMMAND_UNSUPPORTED, _REP_ADDRESS_UNSUPPORTED = 7, 8


class Socks5Proxy(_LoopbackProxy):
    """SOCKS5 without authentication; CONNECT only; IPv4 and domain-name destinations.

    `Relayed.target` says how the client named the destination: ``ipv4`` (it resolved the
    name itself) or ``domain`` (it left resolution to the proxy, as socks5h does).
    """

    scheme = "socks5"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, method_count = await reader.readexactly(2)
        methods = await reader.readexactly(method_count)
        if version != _SOCKS_VERSION or _NO_AUTH not in methods:
            writer.write(bytes([_SOCKS_VERSION, _NO_ACCEPTABLE_METHOD]))
            await writer.drain()
            return
        writer.write(bytes([_SOCKS_VERSION, _NO_AUTH]))
        _, command, _, address_type = await reader.readexactly(4)
        if address_type == _ATYP_IPV4:
            host, kind = str(ipaddress.IPv4Address(await reader.readexactly(4))), "ipv4"
        elif address_type == _ATYP_DOMAIN:
            length = (await reader.readexactly(1))[0]
            host, kind = (await reader.readexactly(length)).decode("idna"), "domain"
        elif address_type == _ATYP_IPV6:
            host, kind = str(ipaddress.IPv6Address(await reader.readexactly(16))), "ipv6"
        else:
            await _socks_reply(writer, _REP_ADDRESS_UNSUPPORTED)
            return
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        entry = self.new_entry("socks", host, port, kind, "CONNECT")
        if command != _CMD_CONNECT:
            self.record(replace(entry, refused=True))
            await _socks_reply(writer, _REP_COMMAND_UNSUPPORTED)
            return
        address = loopback_address(host)
        if address is None:
            self.record(replace(entry, refused=True))
            await _socks_reply(writer, _REP_NOT_ALLOWED)
            return
        try:
            upstream = await asyncio.open_connection(address, port)
        except OSError:
            await _socks_reply(writer, _REP_REFUSED)
            return
        self.record(entry)
        bound_host, bound_port = upstream[1].get_extra_info("sockname")[:2]
        await _socks_reply(writer, _REP_OK, bound_host, bound_port)
        await _relay(self, entry, (reader, writer), upstream)


async def _socks_reply(
    writer: asyncio.StreamWriter, code: int, host: str = "0.0.0.0", port: int = 0
) -> None:
    bound = ipaddress.IPv4Address(host).packed + struct.pack("!H", port)
    writer.write(bytes([_SOCKS_VERSION, code, 0, _ATYP_IPV4]) + bound)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
