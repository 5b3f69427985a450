"""Amp's control plane through cliproxy: with `AMP_URL` pointing here, the Amp CLI sends its
thread, user, telemetry and login calls to us, and they go on to Amp's upstream unchanged but
for the key (server/amp_upstream.py). Only while the config turns Amp on (config/ampcode.py).

The pages a browser is sent to (`/threads`, `/auth`, `/docs`, `/settings`) need no client key
from this machine, as a browser has none; every other path does. `restrict-management-to-localhost` serves only
clients on this machine.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from cliproxy.config.ampcode import AmpCode
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.server.access import is_loopback, presented_key
from cliproxy.server.amp_upstream import send_to_amp, upstream_target
from cliproxy.state import AppState

_API_AREAS = (
    "internal",
    "user",
    "auth",
    "meta",
    "ads",
    "telemetry",
    "threads",
    "thread-actors",
    "otel",
    "tab",
)
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_BROWSER_PAGES = ("threads", "auth", "docs", "settings")
# Amp's Gemini calls that are not model calls (server/pinned.py takes those).
GOOGLE_V1BETA1 = "/api/provider/google/v1beta1/"


def amp_settings(state: AppState) -> AmpCode | None:
    amp: AmpCode | None = state.runtime.config.amp
    return amp


def is_open_path(scope: Scope, state: AppState) -> bool:
    """True for the browser pages, which bypass the client-key check while Amp is on, for
    clients on this machine: the links the Amp CLI prints are opened there, and a page
    fetched this way is fetched with the operator's Amp key, which nobody elsewhere gets to
    spend without a client key."""
    path: str = scope.get("path", "")
    head = path.lstrip("/").split("/", 1)[0]
    if head not in _BROWSER_PAGES and path not in ("/threads.rss", "/news.rss"):
        return False
    client = scope.get("client")
    return is_loopback(client[0] if client else None) and amp_settings(state) is not None


async def control_plane(request: Request) -> Response:
    state: AppState = request.app.state.cliproxy
    amp = amp_settings(state)
    if amp is None:
        raise ProxyError(ErrorKind.NOT_FOUND, f"no route for {request.method} {request.url.path}")
    if amp.restrict_management_to_localhost:
        client = request.client
        if not is_loopback(client.host if client else None):
            raise ProxyError(
                ErrorKind.PERMISSION,
                "ampcode.restrict-management-to-localhost is on: Amp's control plane is "
                "served to clients on this machine only",
            )
    body = await request.body()
    target = upstream_target(request.url.path, request.scope.get("query_string", b""))
    client_key = presented_key(dict(request.headers), request.scope.get("query_string", b""))
    return await send_to_amp(
        state, amp, request.method, target, request.headers.items(), body, client_key
    )


def _both(path: str, methods: list[str]) -> list[Route]:
    return [
        Route(path, control_plane, methods=methods),
        Route(path + "/{rest:path}", control_plane, methods=methods),
    ]


ROUTES: list[BaseRoute] = [
    *(route for area in _API_AREAS for route in _both(f"/api/{area}", _ANY)),
    *_both("/threads", ["GET", "HEAD"]),
    *_both("/docs", ["GET", "HEAD"]),
    *_both("/settings", ["GET", "HEAD"]),
    Route("/threads.rss", control_plane, methods=["GET", "HEAD"]),
    Route("/news.rss", control_plane, methods=["GET", "HEAD"]),
    *_both("/auth", _ANY),
    Route(GOOGLE_V1BETA1 + "{rest:path}", control_plane, methods=_ANY),
]
