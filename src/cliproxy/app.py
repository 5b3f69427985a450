"""Building the ASGI application: routes, middleware stack and lifecycle in one visible place."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cliproxy import __version__, console
from cliproxy.auth.key_names import FILE_NAME as KEY_NAMES_FILE
from cliproxy.auth.key_names import KeyNames
from cliproxy.config import ConfigError, ConfigWatcher, diff_keys
from cliproxy.config.schema import Config
from cliproxy.management import management_routes, routes_metrics, routes_ops
from cliproxy.management.log_file import file_logging
from cliproxy.management.request_logs import RequestLogWriter
from cliproxy.management.routes_oauth import CALLBACK_PATHS, login_sessions
from cliproxy.management.routes_oauth import public_routes as login_callback_routes
from cliproxy.management.routes_usage import credential_resolver
from cliproxy.management.shared import login_sessions_for
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.server import aistudio_ws, amp_control, responses_ws, routes_llm, routes_models
from cliproxy.server.access import AccessMiddleware
from cliproxy.server.access_log import AccessLog
from cliproxy.server.account_watch import AccountWatch
from cliproxy.server.amp_models import AmpModelCalls
from cliproxy.server.browser import BrowserGuard
from cliproxy.server.errors import error_response, protocol_for
from cliproxy.server.hangup import CancelOnHangUp
from cliproxy.server.listener import BodyDeadline
from cliproxy.server.outcomes import OutcomeMiddleware, note_error
from cliproxy.server.pinned import ProviderPinMiddleware
from cliproxy.server.request_log import RequestLogMiddleware
from cliproxy.server.rest_probe import RestProbe
from cliproxy.server.router import Endpoint, ExactFirstRouter
from cliproxy.state import AppState

log = logging.getLogger(__name__)


class ErrorMiddleware:
    """Outermost layer: any error that escapes a route becomes the client protocol's own error
    JSON. A ProxyError keeps its status; anything else is a 500 and is logged with its
    traceback here (the client never sees one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if isinstance(exc, ProxyError):
                error = exc
            else:
                log.exception("unhandled error on %s", scope.get("path"))
                error = ProxyError(ErrorKind.SERVER, "internal error in cliproxy; see its log")
            note_error(scope, error)
            if started:
                # Headers are out; the stream generators end with their own error frames, so
                # this only happens for a bug. Nothing more can be said to the client.
                log.error("error after the response started on %s: %s", scope["path"], error)
                return
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            response = error_response(protocol_for(scope["path"], headers), error)
            await response(scope, receive, send)


async def healthz(request: HTTPRequest) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


async def root(request: HTTPRequest) -> Response:
    return JSONResponse({"name": "cliproxy", "version": __version__, "health": "/healthz"})


async def not_found(request: HTTPRequest, exc: Exception) -> Response:
    return error_response(
        protocol_for(request.url.path, dict(request.headers)),
        ProxyError(ErrorKind.NOT_FOUND, f"no route for {request.method} {request.url.path}"),
    )


async def method_not_allowed(request: HTTPRequest, exc: Exception) -> Response:
    response = error_response(
        protocol_for(request.url.path, dict(request.headers)),
        ProxyError(
            ErrorKind.INVALID_REQUEST,
            f"{request.method} is not allowed on {request.url.path}",
            status=405,
        ),
    )
    # HTTP requires a 405 to say which methods the resource does take.
    allow = (getattr(exc, "headers", None) or {}).get("Allow")
    if allow:
        response.headers["allow"] = allow
    return response


async def get_model_or_refuse_method(request: HTTPRequest) -> Response:
    """GET /v1beta/models/{target}: one model's details; but `{model}:generateContent` and its
    siblings are POST-only, so a GET there is a 405 rather than "no such model"."""
    if request.path_params["target"].rpartition(":")[2] in routes_llm.GEMINI_METHODS:
        return await method_not_allowed(request, HTTPException(405, headers={"Allow": "POST"}))
    return await routes_models.get_model(request)


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    # The web console (cliproxy/console/): its page here, or the operator's reference page.
    Route("/management.html", routes_ops.management_html, methods=["GET"]),
    *console.ROUTES,
    Route("/v1/chat/completions", Endpoint(routes_llm.chat_completions), methods=["POST"]),
    Route("/v1/completions", Endpoint(routes_llm.completions), methods=["POST"]),
    Route("/v1/responses", Endpoint(routes_llm.responses), methods=["POST"]),
    # The Responses API over a WebSocket (GET with Upgrade; a plain GET stays a 405), under
    # the Codex backend's path too: server/responses_ws.py.
    WebSocketRoute("/v1/responses", responses_ws.responses_socket),
    WebSocketRoute("/backend-api/codex/responses", responses_ws.responses_socket),
    # AI Studio Build relays: browser pages that become `aistudio` credentials.
    WebSocketRoute("/v1/ws", aistudio_ws.relay_socket),
    Route("/v1/messages", Endpoint(routes_llm.messages), methods=["POST"]),
    Route(
        "/v1/messages/count_tokens", Endpoint(routes_llm.messages_count_tokens), methods=["POST"]
    ),
    Route("/v1/models", routes_models.list_models, methods=["GET"]),
    Route("/v1beta/models", routes_models.list_models, methods=["GET"]),
    Route("/v1/interactions", Endpoint(routes_llm.interactions), methods=["POST"]),
    Route("/v1beta/interactions", Endpoint(routes_llm.interactions), methods=["POST"]),
    Route("/v1/models/{target:path}", get_model_or_refuse_method, methods=["GET"]),
    Route("/v1beta/models/{target:path}", get_model_or_refuse_method, methods=["GET"]),
    Route("/v1/models/{target:path}", Endpoint(routes_llm.gemini_post), methods=["POST"]),
    Route("/v1beta/models/{target:path}", Endpoint(routes_llm.gemini_post), methods=["POST"]),
    # Browser logins finish here without a key (the single-use OAuth state is the capability).
    *login_callback_routes(),
    # Amp's control plane, proxied to its upstream while the config turns Amp on.
    *amp_control.ROUTES,
]


def build_app(config: Config, config_path: Path | None = None) -> Starlette:
    state = AppState(config)
    state.ledger.resolver = credential_resolver(state)
    if config_path is not None:
        state.key_names = KeyNames(config_path.parent / KEY_NAMES_FILE)
        state.key_names.load()
    request_logs = RequestLogWriter(lambda: state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The shared pool state (if any) syncs first; an unreachable Redis only delays start-up
        # by a few seconds, then it keeps retrying in the background.
        await state.pool.start()
        await state.ledger.open()
        await state.key_limits.load(state.ledger)
        state.ledger.on_late_open = functools.partial(state.key_limits.load, state.ledger)
        watch = AccountWatch(state, interval=state.runtime.config.quota_refresh_seconds)
        app.state.account_watch = watch
        app.state.rest_probe = probe = RestProbe(state)
        tasks = [
            asyncio.create_task(probe.run(), name="resting key probes"),
            asyncio.create_task(state.auth_store.watch(), name="auth-dir watch"),
            asyncio.create_task(state.refresher.run(), name="token refresher"),
            asyncio.create_task(watch.run(), name="account vendor reads"),
        ]
        if config_path is not None:
            watcher = ConfigWatcher(config_path, _on_reload(state), _on_reload_error)
            tasks.append(asyncio.create_task(watcher.run(), name="config watch"))
        if state.processes > 1:  # the other workers write api-key-names.json too
            tasks.append(asyncio.create_task(state.key_names.follow(), name="key names watch"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # Logins still exchanging a code, and their loopback listeners, end with the server.
            await login_sessions(app).close()
            await request_logs.flush()
            await state.close()

    # /v0/management and /v8/management: one guard, one config editor.
    management = management_routes(lambda: state, config_path)
    # GET /metrics checks its own readers, with the management API's guard (lockouts shared).
    metrics = routes_metrics.metrics_route(lambda: state, management[0].management.guard)
    app = Starlette(lifespan=lifespan, exception_handlers={404: not_found, 405: method_not_allowed})
    # The same routes, the plain generation paths found by a dict lookup (server/router.py).
    app.router = ExactFirstRouter([*ROUTES, metrics, *management], lifespan=lifespan)
    app.state.cliproxy = state
    app.state.request_logs = request_logs
    # Logins started here (and, with a state store, those of the other instances).
    app.state.oauth_logins = login_sessions_for(state)
    # Innermost first; each layer wraps the ones added before it.
    # Amp's model calls: served here, mapped, or sent on to Amp (after the key check).
    app.add_middleware(AmpModelCalls, state_getter=lambda: state)
    app.add_middleware(
        AccessMiddleware,
        state_getter=lambda: state,
        open_paths=CALLBACK_PATHS | {routes_metrics.PATH},
        open_when=amp_control.is_open_path,
    )
    app.add_middleware(CancelOnHangUp, applies=_is_generation_call)
    app.add_middleware(
        BodyDeadline, timeout_getter=lambda: state.runtime.config.body_read_timeout_seconds
    )
    app.add_middleware(ErrorMiddleware)
    # Outside the error layer, so replies it writes carry CORS headers a page can read.
    app.add_middleware(BrowserGuard, state_getter=lambda: state, open_paths=CALLBACK_PATHS)
    # Request log files (server/request_log.py): every reply, error replies included.
    app.add_middleware(
        RequestLogMiddleware,
        state_getter=lambda: state,
        applies=_is_generation_call,
        sink=request_logs.submit,
    )
    # One RequestOutcome per generation call, whoever answered it (server/outcomes.py).
    app.add_middleware(OutcomeMiddleware, state_getter=lambda: state, applies=_is_generation_call)
    # /api/provider/{provider}/... stands for the plain route with that provider pinned.
    app.add_middleware(ProviderPinMiddleware)
    app.add_middleware(AccessLog, enabled=lambda: state.runtime.config.debug)
    return app


def _is_generation_call(scope: Scope) -> bool:
    """Calls that may wait long on an upstream: a client's hang-up must cancel them."""
    path: str = scope["path"]
    return scope["method"] == "POST" and path.startswith(("/v1/", "/v1beta/"))


def _on_reload(state: AppState) -> Callable[[Config], None]:
    def apply(new: Config) -> None:
        changed = diff_keys(state.runtime.config, new)
        state.apply(new)
        if file_logging.managed:  # serve writes the log file; an embedding program may not
            file_logging.configure(new)
        log.info("config reloaded: %s", ", ".join(changed) or "no effective change")

    return apply


def _on_reload_error(error: ConfigError) -> None:
    log.error("config change rejected; the previous config stays in force:\n%s", error)
