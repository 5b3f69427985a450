"""The lean client's pool (lean_http.py has the connections): keep-alive connections by
scheme, host and port, the DNS answers, redirects. Where a caller could tell, as aiohttp did:

- keep-alive connections are dropped after 15 s idle (aiohttp's default); a connection the
  server closed while idle is never reused, and a request found unanswered on a reused
  connection is retried once only for idempotent methods (a POST may have been acted on);
- connect: DNS answers cached for 300 s (one lookup for a burst), Happy Eyeballs
  (aiohappyeyeballs, as aiohttp), 30 s to connect;
- redirects are followed as aiohttp follows them, except that a redirect to another origin
  drops every credential header, not only ``Authorization``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections import deque
from functools import lru_cache
from time import monotonic
from typing import Any

import aiohappyeyeballs
import aiohttp
from yarl import URL

from cliproxy.providers.lean_http import (
    Connection,
    LeanReply,
    Target,
    blank_request_info,
    request_head,
    target_of,
)

KEEPALIVE_SECONDS = 15.0  # aiohttp's keepalive_timeout default
CONNECT_SECONDS = 30.0
DNS_CACHE_SECONDS = 300.0
HAPPY_EYEBALLS_DELAY = 0.25  # aiohttp's default
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
LEAN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10  # aiohttp's max_redirects
CREDENTIALS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "cookie", "proxy-authorization"}
)


def eligible(method: str, url: str) -> bool:
    return method in LEAN_METHODS and (url.startswith("http://") or url.startswith("https://"))


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # As aiohttp's verified default: the system's trust store, HTTP/1.1 offered by ALPN.
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _literal_address(host: str, port: int) -> list[Any] | None:
    """The address info of an IP literal (no resolver call), or None for a name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 6:
        return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))]
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]


class LeanPool:
    """Keep-alive connections by (tls, host, port), newest last, and the DNS answers."""

    def __init__(self, read_timeout: float) -> None:
        self.read_timeout = read_timeout
        self._idle: dict[tuple[bool, str, int], deque[Connection]] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[Any]]] = {}
        self._resolving: dict[tuple[str, int], asyncio.Future[list[Any]]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    def put(self, connection: Connection) -> None:
        if self._closed:
            connection.close()
            return
        connection.idle_since = monotonic()
        self._idle.setdefault(connection.key, deque()).append(connection)
        if self._sweep is None:
            self._sweep = connection.loop.call_later(KEEPALIVE_SECONDS, self._swept)

    def _swept(self) -> None:
        """Close what stayed idle too long (after a burst, most of its connections)."""
        self._sweep = None
        limit = monotonic() - KEEPALIVE_SECONDS
        loop = None
        for key, idle in list(self._idle.items()):
            while idle and (idle[0].closed or idle[0].idle_since < limit):
                idle.popleft().close()
            if idle:
                loop = idle[0].loop
            else:
                del self._idle[key]
        if loop is not None:
            self._sweep = loop.call_later(KEEPALIVE_SECONDS, self._swept)

    def _take(self, key: tuple[bool, str, int]) -> Connection | None:
        idle = self._idle.get(key)
        limit = monotonic() - KEEPALIVE_SECONDS
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if connection.idle_since < limit:
                connection.close()
                continue
            return connection
        return None

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> LeanReply:
        """Send and return once the reply's head is in, following redirects as aiohttp does
        (up to 10; 303, and 301/302 after a POST, go on as a GET without the body)."""
        reply = await self._send_once(method, url, headers, body)
        for _ in range(MAX_REDIRECTS):
            if reply.status not in REDIRECTS or "location" not in reply.headers:
                return reply
            following = URL(url).join(URL(reply.headers["location"]))
            if following.scheme not in ("http", "https"):
                return reply  # nowhere this client goes: the caller sees the redirect
            reply.release()
            if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            if following.origin() != URL(url).origin():
                # Credentials stay with the host they were meant for (aiohttp drops only
                # Authorization; the vendors' key headers go too).
                headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIALS}
            url = str(following)
            reply = await self._send_once(method, url, headers, body)
        if reply.status in REDIRECTS and "location" in reply.headers:
            reply.release()
            raise aiohttp.TooManyRedirects(blank_request_info(), (), message="too many redirects")
        return reply

    async def _send_once(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> LeanReply:
        target = target_of(url)
        head = request_head(method, target, headers, body)
        connection = self._take(target.key)
        if connection is not None:
            try:
                return await connection.exchange(head, body)
            except ConnectionError:
                # A reused connection the upstream closed as the request went out: the
                # request may or may not have been read, so only an idempotent one goes again.
                if connection.received_any or method not in IDEMPOTENT:
                    raise
        connection = await self._connect(target)
        return await connection.exchange(head, body)

    async def _connect(self, target: Target) -> Connection:
        loop = asyncio.get_running_loop()
        connection = Connection(self, target.key, self.read_timeout)
        async with asyncio.timeout(CONNECT_SECONDS):
            addresses = await self._resolve(target.host, target.port)
            sock = await aiohappyeyeballs.start_connection(
                addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, loop=loop
            )
            try:
                await loop.create_connection(
                    lambda: connection,
                    sock=sock,
                    ssl=_tls_context() if target.tls else None,
                    server_hostname=target.host if target.tls else None,
                )
            except BaseException:
                sock.close()
                raise
        return connection

    async def _resolve(self, host: str, port: int) -> list[Any]:
        key = (host, port)
        cached = self._dns.get(key)
        if cached is not None and monotonic() - cached[0] < DNS_CACHE_SECONDS:
            return cached[1]
        literal = _literal_address(host, port)
        if literal is not None:
            self._dns[key] = (monotonic(), literal)
            return literal
        # A burst of new connections to one host asks the resolver once, not once each.
        lookup = self._resolving.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self._lookup(host, port))
            self._resolving[key] = lookup
            lookup.add_done_callback(lambda done: self._looked_up(key, done))
        return await asyncio.shield(lookup)

    async def _lookup(self, host: str, port: int) -> list[Any]:
        addresses = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )
        if not addresses:
            raise OSError(f"no address for {host}")
        self._dns[(host, port)] = (monotonic(), addresses)
        return addresses

    def _looked_up(self, key: tuple[str, int], lookup: asyncio.Future[list[Any]]) -> None:
        self._resolving.pop(key, None)
        if not lookup.cancelled():
            lookup.exception()  # retrieved, even when every caller gave up waiting

    async def close(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
