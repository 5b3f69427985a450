"""HTTP to upstreams: one pooled aiohttp session per effective proxy, built lazily.

Sessions are keyed by proxy URL so that credentials behind different proxies never share
connections. ``direct`` / ``none`` on a credential bypass the global proxy.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp_socks import ProxyConnector

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.base import UpstreamRequest

log = logging.getLogger(__name__)

_BYPASS = {"direct", "none"}


class UpstreamClient:
    def __init__(self, global_proxy: str | None = None, read_timeout: float = 600.0) -> None:
        self.global_proxy = global_proxy or None
        self.read_timeout = read_timeout
        self._sessions: dict[str | None, aiohttp.ClientSession] = {}
        self._lock = asyncio.Lock()

    def effective_proxy(self, proxy_url: str | None) -> str | None:
        if proxy_url and proxy_url.strip().lower() in _BYPASS:
            return None
        return proxy_url or self.global_proxy

    async def _session(self, proxy: str | None) -> aiohttp.ClientSession:
        session = self._sessions.get(proxy)
        if session is not None and not session.closed:
            return session
        async with self._lock:
            session = self._sessions.get(proxy)
            if session is None or session.closed:
                connector: aiohttp.BaseConnector
                if proxy and proxy.startswith(("socks4", "socks5")):
                    connector = ProxyConnector.from_url(proxy, limit=0, ttl_dns_cache=300)
                else:
                    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
                timeout = aiohttp.ClientTimeout(
                    total=None, connect=30, sock_connect=30, sock_read=self.read_timeout
                )
                session = aiohttp.ClientSession(
                    connector=connector, timeout=timeout, auto_decompress=True, trust_env=False
                )
                self._sessions[proxy] = session
            return session

    async def send(
        self, request: UpstreamRequest, proxy_url: str | None = None
    ) -> aiohttp.ClientResponse:
        """Send and return once the status and headers are in; the caller reads and releases."""
        proxy = self.effective_proxy(proxy_url)
        session = await self._session(proxy)
        http_proxy = proxy if proxy and proxy.startswith(("http://", "https://")) else None
        try:
            return await session.post(
                request.url, data=request.body, headers=request.headers, proxy=http_proxy
            )
        except TimeoutError as exc:
            raise ProxyError(
                ErrorKind.TIMEOUT, f"upstream did not answer in time: {_host(request.url)}"
            ) from exc
        except aiohttp.ClientError as exc:
            raise ProxyError(
                ErrorKind.UPSTREAM,
                f"cannot reach upstream {_host(request.url)}: {exc.__class__.__name__}",
            ) from exc

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
