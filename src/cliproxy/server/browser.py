"""What a web browser may do with the proxy: CORS, Private Network Access and the Host check.

Loopback-only serving does not keep out the user's own browser: any page it opens can send
requests to 127.0.0.1. So, on every route but the management API:

- A browser request is one with an ``Origin`` header, or one the browser marks
  ``Sec-Fetch-Site: cross-site`` (an ``<img>`` or a navigation sends no Origin on GET).
  Requests without either (SDKs, CLIs, curl) are not browser requests and pass untouched.
- A browser request is served only from an allowed origin: this machine's own
  (``http(s)://localhost``, ``127.0.0.1``, ``[::1]``, ``*.localhost``, any port), the proxy's own
  origin (same-origin pages), and the patterns in ``cors-allowed-origins``. Any other gets 403
  in the calling protocol's error shape before anything is parsed or sent upstream.
- Preflights, and Chrome's Private Network Access preflight, are answered only for allowed
  origins.
- While no ``api-keys`` are configured, a ``Host`` header that is not loopback, the listen
  address or in ``allowed-hosts`` is refused: a DNS-rebinding page reaches 127.0.0.1 under its
  own name, so that Host is what gives it away.

``GET /v1/ws`` (AI Studio Build relays) takes any origin while ``ws-auth`` is on: the page runs
on Google's origins and its client key admits it. With ``ws-auth`` off it is checked as above.

The management API is key-gated and, as in CLIProxyAPI, callable from a panel hosted anywhere,
so it keeps answering any origin (the Host check still applies).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cliproxy.config.schema import Config
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.server.access import OPEN_PATHS, RELAY_PATH, is_loopback, is_management_path
from cliproxy.server.errors import error_response, protocol_for
from cliproxy.state import AppState

EXPOSED_HEADERS = ", ".join(
    (
        "x-cliproxy-overhead-ms",
        "retry-after",
        "location",
        "x-request-id",
        "x-cpa-version",
        "x-cpa-commit",
        "x-cpa-build-date",
        "x-cpa-support-plugin",
    )
)
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
PREFLIGHT_MAX_AGE = "600"

_BROWSER_HEADERS = frozenset(
    {
        b"origin",
        b"host",
        b"sec-fetch-site",
        b"access-control-request-method",
        b"access-control-request-headers",
        b"access-control-request-private-network",
    }
)


def is_local_host(hostname: str) -> bool:
    """A name or address that can only mean this machine."""
    hostname = hostname.strip("[]").lower()
    return is_loopback(hostname) or hostname == "localhost" or hostname.endswith(".localhost")


@lru_cache(maxsize=64)
def _pattern(origin_pattern: str) -> re.Pattern[str]:
    # `*` stands for any run of characters an origin may hold (no "/"): a subdomain label or
    # a port, as in https://*.example.com or http://chat.lan:*.
    parts = (re.escape(piece) for piece in origin_pattern.lower().split("*"))
    return re.compile("[^/]*".join(parts))


def origin_listed(origin: str, patterns: list[str]) -> bool:
    origin = origin.lower()
    return any(p == "*" or _pattern(p).fullmatch(origin) for p in patterns)


def origin_allowed(origin: str, host: str | None, config: Config) -> bool:
    # The operator's list first: it may name other schemes (a browser extension's
    # chrome-extension://<id>), which are never allowed otherwise.
    if origin_listed(origin, config.cors_allowed_origins):
        return True
    try:
        parts = urlsplit(origin)
        hostname = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not hostname:
        return False  # "null" (sandboxed frames, file://) and anything stranger
    if is_local_host(hostname):
        return True
    # Same-origin: a page the proxy itself served under that name.
    return host is not None and parts.netloc.lower() == host.lower()


def split_host(value: str) -> str:
    """The host name of a Host header (without the port; IPv6 keeps no brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class BrowserGuard:
    """Plain ASGI middleware; the outermost layer but the access log, so its CORS headers are
    on every reply (errors included) and its refusals come before any other work."""

    def __init__(
        self,
        app: ASGIApp,
        state_getter: Callable[[], AppState],
        open_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.state_getter = state_getter
        # Paths a browser reaches by being sent there from another site (the OAuth callbacks)
        # or that anyone may probe (health); they answer nothing a page could abuse.
        self.open_paths = OPEN_PATHS | open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # WebSocket upgrades too: a browser opens a socket to 127.0.0.1 from any page, with no
        # CORS in the way, so only the Origin and Host checks stand between a page and the
        # accounts (server/responses_ws.py).
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        seen = {
            name: value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _BROWSER_HEADERS
        }
        path: str = scope["path"]
        config = self.state_getter().runtime.config
        host = seen.get(b"host")
        keyed = config.api_keys or config.client_keys
        if not keyed and host is not None and path not in self.open_paths:
            name = split_host(host)
            if not (
                is_local_host(name) or name == config.host.lower() or name in config.allowed_hosts
            ):
                await self._refuse(
                    scope,
                    receive,
                    send,
                    f"Host '{host}' is not this machine; with no api-keys configured only "
                    "loopback names are served (add the name to allowed-hosts to serve it)",
                )
                return
        origin = seen.get(b"origin")
        if origin is None:
            if seen.get(b"sec-fetch-site") == "cross-site" and not self._exempt(path):
                await self._refuse(
                    scope,
                    receive,
                    send,
                    "cross-site browser requests are refused (the page's origin is not allowed)",
                )
                return
            await self.app(scope, receive, send)
            return
        # An AI Studio Build relay is a page on Google's origins; with ws-auth on its client key
        # is what admits it, so any origin may open /v1/ws (server/aistudio_ws.py).
        relay = path == RELAY_PATH and config.ws_auth
        allowed = relay or self._exempt(path) or origin_allowed(origin, host, config)
        preflight = scope.get("method") == "OPTIONS" and b"access-control-request-method" in seen
        if not allowed:
            await self._refuse(
                scope,
                receive,
                send,
                f"requests from the web origin '{origin}' are refused; only pages on this "
                "machine and the origins in cors-allowed-origins may use the proxy",
            )
            return
        if preflight:
            await self._preflight(send, origin, seen)
            return
        await self.app(scope, receive, _with_cors(send, origin))

    def _exempt(self, path: str) -> bool:
        return is_management_path(path) or path in self.open_paths

    @staticmethod
    async def _preflight(send: Send, origin: str, seen: dict[bytes, str]) -> None:
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        requested = seen.get(b"access-control-request-headers")
        if requested:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
        if seen.get(b"access-control-request-private-network", "").lower() == "true":
            headers.append((b"access-control-allow-private-network", b"true"))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        error = ProxyError(ErrorKind.PERMISSION, message)
        await error_response(protocol_for(scope["path"], headers), error)(scope, receive, send)


def _with_cors(send: Send, origin: str) -> Send:
    cors = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
        (b"vary", b"Origin"),
    ]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *cors]}
        await send(message)

    return sending
