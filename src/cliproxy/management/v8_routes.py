"""The /v8/management tree: the reference system's second management API (wave2.md §i),
beside /v0/management with the same guard (key, loopback or allow-remote, lockout) and the
same config editor (app.py mounts both with one context).

Where a /v0 route already answers in the shape the v8 one takes, the v8 path is that route's
handler under its new name (``ALIASES``; the OpenAPI document reuses its description too).
Besides those: the config tree (v8_config.py), the login start and import dispatched by
`?provider=` to the /v0 starters and the Vertex import, `access/api-key-names`, and an empty
plugin store (cliproxy loads no plugins; the console's plugin page lists the store anyway).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cliproxy.auth.file_lock import exclusive_async
from cliproxy.auth.files import AuthWriteError
from cliproxy.auth.key_names import KeyNames, KeyNamesError
from cliproxy.management import v8_config
from cliproxy.management.common import (
    Handler,
    api,
    context,
    json_response,
    parse_json,
    read_body,
    read_object,
)
from cliproxy.management.errors import ApiError, invalid
from cliproxy.management.routes_oauth import unsupported_login

PREFIX = "/v8/management"
# (v8 path, method, the /v0 path whose handler answers it)
ALIASES: tuple[tuple[str, str, str], ...] = (
    ("/credentials", "GET", "/auth-files"),
    ("/credentials", "POST", "/auth-files"),
    ("/credentials", "DELETE", "/auth-files"),
    ("/credentials/models", "GET", "/auth-files/models"),
    ("/credentials/download", "GET", "/auth-files/download"),
    ("/credentials/status", "PATCH", "/auth-files/status"),
    ("/credentials/fields", "PATCH", "/auth-files/fields"),
    ("/credentials/refresh", "POST", "/auth-files/refresh"),
    ("/oauth/status", "GET", "/get-auth-status"),
    ("/oauth/session", "DELETE", "/oauth-session"),
    # Also served without the key (routes_oauth.public_routes), as /v0's oauth-callback.
    ("/oauth/callback", "GET", "/oauth-callback"),
    ("/oauth/callback", "POST", "/oauth-callback"),
    ("/routing/cooldown/reset", "POST", "/reset-quota"),
    ("/routing/model-definitions/{channel}", "GET", "/model-definitions/{channel}"),
    ("/observability/logs", "GET", "/logs"),
    ("/observability/logs", "DELETE", "/logs"),
    ("/observability/logs/errors", "GET", "/request-error-logs"),
    ("/observability/logs/errors/{name}", "GET", "/request-error-logs/{name}"),
    ("/observability/logs/requests/{id}", "GET", "/request-log-by-id/{id}"),
    ("/observability/usage/api-keys", "GET", "/api-key-usage"),
    ("/observability/usage/queue", "GET", "/usage-queue"),
    ("/server/latest-version", "GET", "/latest-version"),
    ("/requests/api-call", "POST", "/api-call"),
    ("/plugins", "GET", "/plugins"),
)
# /v8 routes that call a /v0 handler once they have read `?provider=`.
LOGIN_STARTS = "/oauth/auth-url"
IMPORTS = "/oauth/import"
IMPORTERS = {"vertex": "/vertex/import"}


def v0_handler(routes: Sequence[BaseRoute], path: str, method: str) -> Handler | None:
    """The handler /v0/management would run for ``method path`` (the first route that takes
    it, as the router picks)."""
    for route in routes:
        if isinstance(route, Route) and route.path == path and method in (route.methods or ()):
            handler: Handler = route.endpoint
            return handler
    return None


def _provider(request: Request, required_for: str) -> str:
    provider = request.query_params.get("provider", "").strip().lower()
    if not provider:
        raise ApiError(400, None, f"provider is required ({required_for})")
    return provider


def _login_start(v0_routes: Sequence[BaseRoute]) -> Handler:
    @api
    async def start_login(request: Request) -> Response:
        """GET /oauth/auth-url?provider=codex → what GET /v0/management/codex-auth-url
        answers (the URL and the state to poll; a device login's user code)."""
        provider = _provider(request, "a login such as codex, claude or kimi")
        handler = v0_handler(v0_routes, f"/{provider}-auth-url", "GET")
        if handler is None:
            return unsupported_login(provider)
        return await handler(request)

    return start_login


def _importer(v0_routes: Sequence[BaseRoute]) -> Handler:
    @api
    async def import_credential(request: Request) -> Response:
        """POST /oauth/import?provider=vertex (multipart `file`) → POST /v0/.../vertex/import."""
        provider = _provider(request, "vertex")
        path = IMPORTERS.get(provider)
        handler = v0_handler(v0_routes, path, "POST") if path else None
        if handler is None:
            raise invalid(f"provider: {provider!r} has no import (one of {', '.join(IMPORTERS)})")
        return await handler(request)

    return import_credential


# --- plugins/store: an empty store -----------------------------------------------------------

PLUGIN_STORE = "/plugins/store"
PLUGIN_INSTALL = "/plugins/store/{id}/install"


@api
async def plugin_store(request: Request) -> Response:
    """GET /plugins/store: the Management Center's plugin page lists the store; cliproxy loads
    no plugins, so the store is empty (in the reference's shape)."""
    empty: dict[str, object] = {"plugins_enabled": False, "plugins_dir": "", "sources": []}
    return json_response({**empty, "source_errors": [], "plugins": [], "total": 0})


@api
async def install_plugin(request: Request) -> Response:
    """POST /plugins/store/{id}/install (an optional body `{"version": "1.2.3"}`): the store is
    empty, so no id is in it; a body that is not that shape is refused first, as elsewhere."""
    raw = await read_body(request)
    body = parse_json(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise invalid("body: must be a JSON object")
    if not isinstance(body.get("version", ""), str):
        raise invalid("version: must be a string")
    plugin = request.path_params["id"]
    message = f"plugin {plugin!r} is not in the store (cliproxy loads no plugins)"
    raise ApiError(404, "not_found", message)


# --- access/api-key-names -------------------------------------------------------------------


@api
async def get_key_names(request: Request) -> Response:
    """GET /access/api-key-names → {"names": {"<sha256 of the key>": "Team"}}."""
    return json_response({"names": context(request).state_getter().key_names.names})


@api
async def patch_key_names(request: Request) -> Response:
    """PATCH /access/api-key-names {"names": {...}, "only_if_absent": false} → the names
    merged (an empty name removes one; with only_if_absent, named keys keep their names)."""
    body = await read_object(request)
    changes = body.get("names")
    if not isinstance(changes, dict):
        raise invalid('names: must be an object of "<sha256 of the key>": "name"')
    only_if_absent = body.get("only_if_absent", False)
    if not isinstance(only_if_absent, bool):
        raise invalid("only_if_absent: must be a boolean")
    store = context(request).state_getter().key_names
    # One writer beside config.yaml at a time, in this process and (the file's lock, on the
    # latest file) among the server's workers, so that no change undoes another's.
    async with context(request).editor.lock, _across_workers(request, store):
        try:
            store.save(store.merged(changes, only_if_absent=only_if_absent))
        except KeyNamesError as error:
            raise ApiError(error.status, None, str(error)) from None
        except (AuthWriteError, OSError) as error:
            raise ApiError(500, None, f"failed to save key names: {error}") from None
    return json_response({"names": store.names})


@contextlib.asynccontextmanager
async def _across_workers(request: Request, store: KeyNames) -> AsyncIterator[None]:
    if store.path is None or context(request).state_getter().processes == 1:
        yield
        return
    async with exclusive_async(store.path):
        store.load()
        yield


def v8_routes(v0_routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The tree's routes (paths relative to /v8/management), from the /v0 ones."""
    routes: list[BaseRoute] = list(v8_config.ROUTES)
    for path, method, v0_path in ALIASES:
        handler = v0_handler(v0_routes, v0_path, method)
        if handler is None:
            raise LookupError(f"no /v0 route {method} {v0_path} for {path}")
        routes.append(Route(path, handler, methods=[method]))
    routes += [
        Route(LOGIN_STARTS, _login_start(v0_routes), methods=["GET"]),
        Route(IMPORTS, _importer(v0_routes), methods=["POST"]),
        Route(PLUGIN_STORE, plugin_store, methods=["GET"]),
        Route(PLUGIN_INSTALL, install_plugin, methods=["POST"]),
        Route("/access/api-key-names", get_key_names, methods=["GET"]),
        Route("/access/api-key-names", patch_key_names, methods=["PATCH"]),
    ]
    return routes
