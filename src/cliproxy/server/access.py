"""Client access control as a plain ASGI middleware.

A client key may come as ``Authorization: Bearer``, ``x-api-key``, ``x-goog-api-key`` or
``?key=`` (each SDK has its own habit). With no api-keys configured only loopback clients are
served. Refusals are written in the calling protocol's own error JSON.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.server.errors import error_response, protocol_for
from cliproxy.server.key_policy import POLICY, release
from cliproxy.server.outcomes import note_client_key, note_error
from cliproxy.state import AppState, Runtime

# AI Studio Build relays connect here (server/aistudio_ws.py); admitted by relay_refusal.
RELAY_PATH = "/v1/ws"
# Paths anyone may reach (health checks from load balancers and container runtimes).
OPEN_PATHS = frozenset({"/healthz", "/", "/favicon.ico"})


@lru_cache(maxsize=1024)  # called on every request with the same few client addresses
def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host == "localhost"
    # A dual-stack socket reports a local IPv4 client as ::ffff:127.0.0.1, which Python does
    # not call loopback by itself.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def presented_key(headers: dict[str, str], query_string: bytes) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    for name in ("x-api-key", "x-goog-api-key"):
        if headers.get(name):
            return headers[name].strip()
    if query_string:
        values = parse_qs(query_string.decode("latin-1")).get("key")
        if values:
            return values[0]
    return None


def relay_refusal(
    ws_auth: bool, runtime: Runtime, key: str | None, peer: str | None
) -> ProxyError | None:
    """Why a relay socket is refused, or None. A relay reads every prompt routed to it, so
    being one is worth more than being a client: with ws-auth on it needs a client key (and
    api-keys must exist); with ws-auth off only this machine may connect (the browser check
    then keeps other sites' pages out, server/browser.py)."""
    if ws_auth:
        if not runtime.api_keys:
            return ProxyError(
                ErrorKind.PERMISSION,
                "ws-auth is on but no api-keys are configured, so no relay can present a key",
            )
        if key is None:
            return ProxyError(ErrorKind.AUTHENTICATION, "missing API key (ws-auth is on)")
        if not runtime.key_allowed(key):
            return ProxyError(ErrorKind.AUTHENTICATION, "invalid API key")
        return None
    if not is_loopback(peer):
        return ProxyError(
            ErrorKind.PERMISSION,
            "ws-auth is off, so only relays on this machine are admitted; turn ws-auth on "
            "and connect with a client key",
        )
    return None


# The management API's two trees (management/app.py mounts both, behind one guard).
MANAGEMENT_PREFIXES = ("/v0/management", "/v8/management")


def is_management_path(path: str) -> bool:
    """The management API and the console pages: guarded by the management key (the pages
    themselves hold nothing and call the API with it), never by a client key."""
    return (
        path.startswith(MANAGEMENT_PREFIXES)
        or path == "/management.html"
        or path == "/console"
        or path.startswith("/console/")
    )


class AccessMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        state_getter: Callable[[], AppState],
        open_paths: frozenset[str] = frozenset(),
        open_when: Callable[[Scope, AppState], bool] | None = None,
    ) -> None:
        self.app = app
        self.state_getter = state_getter
        # Paths open while a setting says so (Amp's browser pages, server/amp_control.py).
        self.open_when = open_when
        # Paths besides OPEN_PATHS that need no client key (the OAuth redirect targets: the
        # user's browser has no key; the unguessable, single-use login state is the capability).
        self.open_paths = OPEN_PATHS | open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A WebSocket upgrade (GET /v1/responses, server/responses_ws.py) is checked like a
        # request; its refusal is an HTTP reply to the upgrade, in the same error JSON.
        if scope["type"] not in _CHECKED or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        if is_management_path(scope["path"]):
            await self.app(scope, receive, send)  # the management API has its own secret
            return
        state = self.state_getter()
        if self.open_when is not None and self.open_when(scope, state):
            await self.app(scope, receive, send)
            return
        runtime = state.runtime
        error: ProxyError | None = None
        if scope["path"] == RELAY_PATH and scope["type"] == "websocket":
            client = scope.get("client")
            key = presented_key(_key_headers(scope), scope.get("query_string", b""))
            peer = client[0] if client else None
            error = relay_refusal(runtime.config.ws_auth, runtime, key, peer)
        elif runtime.api_keys:
            key = presented_key(_key_headers(scope), scope.get("query_string", b""))
            if key is None:
                error = ProxyError(ErrorKind.AUTHENTICATION, "missing API key")
            elif not runtime.key_allowed(key):
                note_client_key(scope, key)
                error = ProxyError(ErrorKind.AUTHENTICATION, "invalid API key")
            else:
                # A key of client-keys brings its policy (server/key_policy.py).
                policy = runtime.policy_for(key) if runtime.client_keys else None
                note_client_key(scope, key, state.client_key_name(key, policy))
                if policy is not None:
                    scope[POLICY] = policy
        else:
            client = scope.get("client")
            if not is_loopback(client[0] if client else None):
                error = ProxyError(
                    ErrorKind.PERMISSION,
                    "no api-keys are configured, so only clients on this machine are served",
                )
        if error is not None:
            note_error(scope, error)
            protocol = protocol_for(scope["path"], _headers(scope))
            await error_response(protocol, error)(scope, receive, send)
            return
        if POLICY not in scope:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            release(scope, state.key_limits)  # the reply has ended, a stream's too


_CHECKED = ("http", "websocket")
_KEY_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-goog-api-key"})


def _key_headers(scope: Scope) -> dict[str, str]:
    """Only the headers that can carry a client key (decoding all of them on every request
    costs more than the key check itself)."""
    return {
        name.lower().decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name.lower() in _KEY_HEADERS
    }


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
