"""The /v0/management and /v8/management mounts: the guard in front of every management route.

The inner application is a bare Router (not a Starlette app) so `request.app` in a handler is
still the server's app, whose `state.cliproxy` is the AppState.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import orjson
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Message, Receive, Scope, Send

from cliproxy import __version__
from cliproxy.management import (
    openapi,
    openapi_v8,
    routes_ampcode,
    routes_client_keys,
    routes_config,
    routes_keys,
    routes_oauth,
    routes_ops,
    routes_usage,
    v8_routes,
)
from cliproxy.management.common import CONTEXT_KEY, ApiError, ManagementContext
from cliproxy.management.config_file import ConfigEditor
from cliproxy.management.security import (
    ManagementGuard,
    client_address,
    from_another_site,
    is_bcrypt_hash,
    presented_management_key,
)
from cliproxy.management.shared import lockouts_for
from cliproxy.state import AppState

log = logging.getLogger(__name__)

PREFIX = "/v0/management"
# The reference's management UI reads these to show the server version and to decide whether
# plugin pages exist; every reply that passed the availability check carries them.
VERSION_HEADERS = [
    (b"x-cpa-version", __version__.encode()),
    (b"x-cpa-commit", b"none"),
    (b"x-cpa-build-date", b"unknown"),
    (b"x-cpa-support-plugin", b"false"),
]


def _auth_file_routes() -> list[BaseRoute]:
    """Routes written alongside this package (auth files), when present."""
    try:
        from cliproxy.management import routes_auth_files
    except ModuleNotFoundError as exc:
        if exc.name != "cliproxy.management.routes_auth_files":
            raise
        return []
    return list(routes_auth_files.ROUTES)


class ManagementApp:
    """ASGI app behind the mount: refuse per security.py, else route with the context set."""

    def __init__(self, routes: list[BaseRoute], context: ManagementContext) -> None:
        self.router = Router(routes=routes)
        self.context = context
        self._background: set[asyncio.Task[None]] = set()
        self._attempted: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        settings = self.context.state_getter().runtime.config.remote_management
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        peer = scope.get("client")
        address = client_address(peer[0] if peer else None, headers, settings.trusted_proxies)
        self._persist_plain_secret(settings.secret_key.strip())
        refusal = await self.context.guard.check(
            settings,
            address,
            presented_management_key(headers),
            counts=not from_another_site(headers),
        )
        if refusal is not None:
            if refusal.status == 404:
                await _reply(send, 404, b"", with_version=False)
            else:
                log.info("management request from %s refused: %s", address, refusal.message)
                body = orjson.dumps({"error": refusal.message})
                await _reply(send, refusal.status, body)
            return
        scope[CONTEXT_KEY] = self.context

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *VERSION_HEADERS]}
            await send(message)

        await self.router(scope, receive, send_with_version)

    def _persist_plain_secret(self, secret: str) -> None:
        """A reload brought a plaintext secret-key: write its hash into the file (once)."""
        if not secret or is_bcrypt_hash(secret) or self.context.editor.path is None:
            return
        fingerprint = self.context.guard.fingerprint(secret)
        if self._background or fingerprint == self._attempted:
            return  # already on it, or this secret is not in the file to be hashed
        self._attempted = fingerprint
        task = asyncio.create_task(self._hash_into_file())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _hash_into_file(self) -> None:
        editor = self.context.editor
        try:
            async with editor.lock:
                config = await asyncio.to_thread(editor.hash_secret_in_file)
            if config is not None:
                self.context.state_getter().apply(config)
        except ApiError as error:
            log.warning("could not write the hashed management key: %s", error.message)


async def _reply(send: Send, status: int, body: bytes, *, with_version: bool = True) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    if with_version:
        headers.extend(VERSION_HEADERS)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ManagementMount(Mount):
    """The mount, with its guard and editor at hand (tests move the guard's clock)."""

    def __init__(self, app: ManagementApp, prefix: str = PREFIX) -> None:
        super().__init__(prefix, app=app)
        self.management = app.context


def management_routes(
    state_getter: Callable[[], AppState], config_path: Path | None
) -> tuple[ManagementMount, ManagementMount]:
    """The /v0/management and /v8/management mounts: one context (guard, lockouts, config
    editor) for both. A plaintext secret-key in the file is hashed now, written back, and the
    live config takes the hash."""
    editor = ConfigEditor(config_path, state_getter)
    lockouts = lockouts_for(state_getter())  # shared by the instances on one state store
    context = ManagementContext(state_getter, editor, ManagementGuard(lockouts=lockouts))
    _hash_secret_at_start(editor, state_getter)
    routes: list[BaseRoute] = [
        *routes_config.ROUTES,
        *routes_keys.ROUTES,
        *routes_client_keys.ROUTES,
        # Before the auth-file routes: its POST /reset-quota adds {"all": true} and hands
        # everything else to theirs.
        *routes_ops.ROUTES,
        *routes_usage.ROUTES,
        *_auth_file_routes(),
        *routes_oauth.ROUTES,
        *routes_ampcode.ROUTES,
    ]
    v8 = v8_routes.v8_routes(routes)
    routes.append(Route("/openapi.json", openapi.serve(routes), methods=["GET"]))
    v8.append(Route("/openapi.json", openapi_v8.serve(v8), methods=["GET"]))
    return (
        ManagementMount(ManagementApp(routes, context)),
        ManagementMount(ManagementApp(v8, context), v8_routes.PREFIX),
    )


def _hash_secret_at_start(editor: ConfigEditor, state_getter: Callable[[], AppState]) -> None:
    state = state_getter()
    config = state.runtime.config
    settings = config.remote_management
    if not settings.secret_key.strip() or is_bcrypt_hash(settings.secret_key.strip()):
        return
    try:
        from_file = editor.hash_secret_in_file()
    except ApiError as error:
        log.warning("could not write the hashed management key: %s", error.message)
        return
    if from_file is None:
        return
    hashed = from_file.remote_management.secret_key
    # Only the secret changes in the live config: the rest stays as the caller built it.
    new_settings = settings.model_copy(update={"secret_key": hashed})
    state.apply(config.model_copy(update={"remote_management": new_settings}))
