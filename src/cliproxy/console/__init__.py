"""cliproxy's own web console: static files shipped in the package, served at /console/ and,
unless the operator installed the reference Management Center page, at /management.html.

The page holds no secret and needs no key to load; everything it shows comes from
/v0/management, called with the key the user types (kept in the tab's sessionStorage), so the
API's loopback and lockout rules apply to it unchanged. Every console response carries a strict
Content-Security-Policy: only this origin's own scripts, styles and API, no inline code, no
framing (docs/console.md).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from cliproxy.management.security import client_address, management_enabled
from cliproxy.server.access import is_loopback
from cliproxy.state import AppState

STATIC = Path(__file__).parent / "static"
PREFIX = "/console"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def panel_disabled(request: Request) -> bool:
    state = getattr(request.app.state, "cliproxy", None)
    return (
        isinstance(state, AppState) and state.runtime.config.remote_management.disable_control_panel
    )


def _file(path: Path) -> Response:
    media_type = MEDIA_TYPES[path.suffix]
    # The page itself is never cached (a new version shows on reload); assets revalidate.
    cache = "no-store" if path.suffix == ".html" else "no-cache"
    return FileResponse(
        path, media_type=media_type, headers={**SECURITY_HEADERS, "cache-control": cache}
    )


def _not_found(message: str) -> Response:
    return PlainTextResponse(message, 404, headers=SECURITY_HEADERS)


def index_page() -> Response:
    """The console's single page (also what /management.html serves by default)."""
    return _file(STATIC / "index.html")


async def console_index(request: Request) -> Response:
    if panel_disabled(request):
        return _not_found("control panel disabled")
    return index_page()


async def console_asset(request: Request) -> Response:
    """GET /console/<file>: only regular files under the static directory, of known types."""
    if panel_disabled(request):
        return _not_found("control panel disabled")
    relative = request.path_params["path"]
    root = STATIC.resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        return _not_found("no such console file")
    if not path.is_relative_to(root) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        return _not_found("no such console file")
    return _file(path)


async def console_status(request: Request) -> Response:
    """GET /console/status → {"management": on/off, "remote_refused": bool}: what the page
    needs before it asks for a key, so it can say how to turn management on without probing
    the API (nothing here that a 404 or 403 from the API would not tell anyone)."""
    state = getattr(request.app.state, "cliproxy", None)
    if not isinstance(state, AppState) or panel_disabled(request):
        return _not_found("control panel disabled")
    settings = state.runtime.config.remote_management
    peer = request.client.host if request.client else None
    address = client_address(peer, dict(request.headers), settings.trusted_proxies)
    body = {
        "management": management_enabled(settings),
        "remote_refused": not is_loopback(address) and not settings.allow_remote,
    }
    return JSONResponse(body, headers={**SECURITY_HEADERS, "cache-control": "no-store"})


async def console_redirect(request: Request) -> Response:
    return RedirectResponse(PREFIX + "/", 308, headers=SECURITY_HEADERS)


ROUTES = [
    Route(PREFIX, console_redirect, methods=["GET"]),
    Route(PREFIX + "/", console_index, methods=["GET"]),
    Route(PREFIX + "/status", console_status, methods=["GET"]),
    Route(PREFIX + "/{path:path}", console_asset, methods=["GET"]),
]
