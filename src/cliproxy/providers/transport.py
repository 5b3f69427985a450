"""HTTP to upstreams: the lean client for direct http(s) calls (lean_pool.py), and one pooled
aiohttp session per effective proxy, built lazily, for calls through a proxy.

Sessions are keyed by proxy URL so that credentials behind different proxies never share
connections. ``direct`` / ``none`` on a credential bypass the global proxy.

Proxy schemes: ``http://`` / ``https://`` go through aiohttp's own proxy support (absolute-URI
requests for http upstreams, CONNECT tunnels for https ones); ``socks5://`` / ``socks5h://``
through aiohttp_socks. Both SOCKS spellings hand the host name to the proxy for resolution,
as CLIProxyAPI's Go dialer does for either, so no DNS query leaves this machine for an upstream
that is meant to be reached through the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp_socks import ProxyConnectionError as SocksConnectionError
from aiohttp_socks import ProxyConnector, ProxyType
from aiohttp_socks import ProxyError as SocksError
from aiohttp_socks import ProxyTimeoutError as SocksTimeoutError

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.base import UpstreamReply, UpstreamRequest
from cliproxy.providers.exchanges import opened
from cliproxy.providers.lean_pool import LeanPool, eligible
from cliproxy.providers.read_timer import install as lazy_read_timer

log = logging.getLogger(__name__)

# CLIPROXY_UPSTREAM_CLIENT=aiohttp sends every upstream call through aiohttp, should the lean
# client ever disagree with an upstream (docs/benchmark.md).
LEAN_SWITCH = "CLIPROXY_UPSTREAM_CLIENT"
_BYPASS = {"direct", "none"}
_HTTP_SCHEMES = {"http", "https"}
_SOCKS_SCHEMES = {"socks5", "socks5h"}
_SOCKS_DEFAULT_PORT = 1080


class UpstreamClient:
    def __init__(self, global_proxy: str | None = None, read_timeout: float = 600.0) -> None:
        self.global_proxy = (global_proxy or "").strip() or None
        self.read_timeout = read_timeout
        self._sessions: dict[str | None, aiohttp.ClientSession] = {}
        self._lock = asyncio.Lock()
        # Direct http(s) calls, nearly all of them, go through the lean client (lean_pool.py);
        # proxied ones through aiohttp.
        self._lean = LeanPool(read_timeout) if os.environ.get(LEAN_SWITCH) != "aiohttp" else None

    def effective_proxy(self, proxy_url: str | None) -> str | None:
        # The entry's own setting wins, "direct"/"none" included; the global one fills in.
        chosen = (proxy_url or "").strip() or self.global_proxy
        if chosen is None or chosen.lower() in _BYPASS:
            return None
        return chosen

    async def _session(self, proxy: str | None) -> aiohttp.ClientSession:
        session = self._sessions.get(proxy)
        if session is not None and not session.closed:
            return session
        async with self._lock:
            session = self._sessions.get(proxy)
            if session is None or session.closed:
                connector: aiohttp.TCPConnector
                if proxy is not None and _scheme(proxy) in _SOCKS_SCHEMES:
                    connector = _socks_connector(proxy)
                else:
                    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
                lazy_read_timer(connector)
                timeout = aiohttp.ClientTimeout(
                    total=None, connect=30, sock_connect=30, sock_read=self.read_timeout
                )
                # No cookie jar: upstreams answer many credentials and clients through one
                # session, so a cookie set for one must never ride along with another (and
                # skipping the jar saves its per-request filtering).
                session = aiohttp.ClientSession(
                    connector=connector,
                    timeout=timeout,
                    auto_decompress=True,
                    trust_env=False,
                    cookie_jar=aiohttp.DummyCookieJar(),
                )
                self._sessions[proxy] = session
            return session

    async def session_for(self, proxy_url: str | None) -> tuple[aiohttp.ClientSession, str | None]:
        """The pooled session for an entry's proxy setting and the value to pass as aiohttp's
        ``proxy=``, for callers that need a request other than send()'s POST (the management
        API's restricted api-call)."""
        proxy = self.effective_proxy(proxy_url)
        return await self._session(proxy), _http_proxy(proxy)

    async def send(self, request: UpstreamRequest, proxy_url: str | None = None) -> UpstreamReply:
        """Send and return once the status and headers are in; the caller reads and releases.
        A request for an upstream inside the proxy goes to its handler, not over HTTP. While
        the request log records the client request, the exchange goes on its record. A
        request with ``fallback_urls`` moves on to the next host as it says."""
        if not request.fallback_urls:
            return await self._send_one(request, proxy_url)
        urls = (request.url, *request.fallback_urls)
        for index, url in enumerate(urls):
            attempt = replace(request, url=url, fallback_urls=())
            last = index == len(urls) - 1
            try:
                reply = await self._send_one(attempt, proxy_url)
            except ProxyError as exc:
                if last:
                    raise
                log.info("%s; trying %s", exc.message, _host(urls[index + 1]))
                continue
            if last or reply.status < 400 or request.moves_on is None:
                return reply
            # An error reply is small and read whole anyway; aiohttp keeps the bytes, so the
            # caller reads the same body again when this host's answer stands.
            try:
                body = await reply.read()
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                body = b""  # cut off mid-error: as much a request error as no answer at all
            else:
                if not request.moves_on(reply.status, body):
                    return reply
            reply.release()
            log.info("%s answered %d; trying %s", _host(url), reply.status, _host(urls[index + 1]))
        raise AssertionError("unreachable: the last host always answers or raises")

    async def _send_one(self, request: UpstreamRequest, proxy_url: str | None) -> UpstreamReply:
        exchange = opened(request)
        if exchange is None:
            return await self._send(request, proxy_url)
        try:
            reply = await self._send(request, proxy_url)
        except ProxyError as exc:
            exchange.error = exc.message
            raise
        exchange.answered(reply.status, reply.headers)
        return reply

    async def _send(self, request: UpstreamRequest, proxy_url: str | None) -> UpstreamReply:
        if request.in_process is not None:
            return await request.in_process(request)
        proxy = self.effective_proxy(proxy_url)
        body = request.body if request.body or request.method != "GET" else None
        if proxy is None and self._lean is not None and eligible(request.method, request.url):
            return await _send_lean(self._lean, request, body)
        http_proxy = _http_proxy(proxy)
        session = self._sessions.get(proxy)
        if session is None or session.closed:
            session = await self._session(proxy)
        try:
            return await session.request(
                request.method, request.url, data=body, headers=request.headers, proxy=http_proxy
            )
        except (TimeoutError, SocksTimeoutError) as exc:
            raise _timed_out(request.url) from exc
        except (SocksConnectionError, SocksError) as exc:
            # aiohttp_socks errors are not aiohttp.ClientError. Their text names the proxy's
            # host and port (never its credentials), which helps whoever reads the log.
            log.warning("SOCKS proxy failed for %s: %s", _host(request.url), exc)
            raise ProxyError(
                ErrorKind.UPSTREAM,
                f"cannot reach upstream {_host(request.url)} through its SOCKS proxy: "
                f"{exc.__class__.__name__}",
            ) from exc
        except aiohttp.ClientError as exc:
            raise _unreachable(request.url, exc) from exc

    async def close(self) -> None:
        if self._lean is not None:
            await self._lean.close()
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


async def _send_lean(pool: LeanPool, request: UpstreamRequest, body: bytes | None) -> UpstreamReply:
    try:
        return await pool.send(request.method, request.url, request.headers, body)
    except TimeoutError as exc:
        raise _timed_out(request.url) from exc
    except ValueError as exc:  # a header that would break the request head
        raise ProxyError(ErrorKind.SERVER, f"cannot send to {_host(request.url)}: {exc}") from exc
    except (OSError, aiohttp.ClientError) as exc:
        raise _unreachable(request.url, exc) from exc


def _timed_out(url: str) -> ProxyError:
    return ProxyError(ErrorKind.TIMEOUT, f"upstream did not answer in time: {_host(url)}")


def _unreachable(url: str, exc: BaseException) -> ProxyError:
    return ProxyError(
        ErrorKind.UPSTREAM, f"cannot reach upstream {_host(url)}: {exc.__class__.__name__}"
    )


def _scheme(proxy: str) -> str:
    return proxy.split("://", 1)[0].lower() if "://" in proxy else ""


def _http_proxy(proxy: str | None) -> str | None:
    """The URL to pass as aiohttp's ``proxy=``; None for no proxy or a SOCKS one.

    An unknown scheme is refused rather than ignored: silently going direct would send traffic
    past a proxy the operator asked for.
    """
    if proxy is None:
        return None
    scheme = _scheme(proxy)
    if scheme in _SOCKS_SCHEMES:
        return None
    if scheme in _HTTP_SCHEMES:
        # yarl keeps the scheme's case and aiohttp compares it case-sensitively.
        return scheme + proxy[len(scheme) :]
    raise ProxyError(
        ErrorKind.SERVER,
        f"proxy-url scheme {scheme!r} is not supported (use http, https, socks5 or socks5h)",
    )


def _socks_connector(proxy: str) -> ProxyConnector:
    # python-socks parses only socks5://, so the URL is taken apart here; socks5h:// differs
    # only in asking for remote resolution, which rdns=True gives both spellings.
    parts = urlsplit(proxy)
    try:
        port = parts.port or _SOCKS_DEFAULT_PORT
    except ValueError as exc:
        raise ProxyError(ErrorKind.SERVER, "proxy-url has an invalid port") from exc
    if not parts.hostname:
        raise ProxyError(ErrorKind.SERVER, "proxy-url does not name a proxy host")
    return ProxyConnector(
        proxy_type=ProxyType.SOCKS5,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        rdns=True,
        limit=0,
    )


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
