"""Operations routes (paths relative to /v0/management): logs, version, cooldown resets,
per-key usage, model definitions and the restricted /api-call; plus the public
/management.html page (registered on the main app, not under the mount).

Shapes follow the reference system (shared/reference/management-api.md §3.7, §3.9-3.12,
§3.14, §4). Where we differ, and why, is in docs/management-api.md:
GET /logs comes from memory and is always on, /latest-version never goes online, /api-call only
reaches a credential's own vendor or base URL, /management.html is never downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from cliproxy import __version__, console
from cliproxy.auth.catalog import catalog
from cliproxy.config.schema import Config
from cliproxy.state import AppState
from cliproxy.usage.request_counts import counts_of

from . import routes_auth_files
from .api_call import parse_call, perform, resolve_target
from .auth_quota import reset_quota
from .common import ApiError, api, json_response, parse_json, read_body
from .key_index import config_keys
from .log_buffer import log_buffer
from .log_file import log_dir
from .request_log_view import entry, listing
from .request_logs import ERROR_FILE, LOG_FILE, REQUEST_ID, error_file, find_by_id, log_files

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
REQUEST_LOGS_LIMIT, REQUEST_LOGS_MOST = 100, 1000
# The channels whose accounts we serve, their spellings and the vendor their models are
# "owned by" come from the catalog.
# OAuth channels of CLIProxyAPI that cliproxy does not log in to (yet).
FOREIGN_CHANNELS = frozenset({"vertex", "aistudio", "antigravity", "qwen", "iflow"})

# The log ring starts collecting when the management routes are loaded (at server start), so
# GET /logs shows what happened before the first call to it.
log_buffer()


def _state(request: Request) -> AppState:
    state = getattr(request.app.state, "cliproxy", None)
    if not isinstance(state, AppState):
        raise ApiError(500, None, "management routes are not attached to a cliproxy server")
    return state


# ----- logs -------------------------------------------------------------------------------------


@api
async def get_logs(request: Request) -> Response:
    """GET /logs?limit=&after=&cursor= → lines from the in-memory log (see log_buffer.py)."""
    query = request.query_params
    raw_limit = query.get("limit", "").strip()
    limit: int | None = None
    if raw_limit:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ApiError(400, None, "invalid limit: must be a positive integer") from None
        if limit <= 0:
            raise ApiError(400, None, "invalid limit: must be greater than zero")
    after: int | None = None
    raw_after = query.get("after", "").strip()
    if raw_after.isdigit() and int(raw_after) < 2**63:  # else "no cutoff", as the reference
        after = int(raw_after) or None
    cursor = query.get("cursor", "").strip() or None
    return json_response(log_buffer().read(limit=limit, after=after, cursor=cursor))


@api
async def delete_logs(request: Request) -> Response:
    """DELETE /logs → empties the buffer; `removed` counts the lines dropped."""
    removed = log_buffer().clear()
    return json_response(
        {"success": True, "message": "Logs cleared successfully", "removed": removed}
    )


@api
async def request_error_logs(request: Request) -> Response:
    """GET /request-error-logs → {"files": [{name, size, modified}]}, newest first: the
    error-*.log files (none while request-log is on: then every request has its own file)."""
    config = _state(request).runtime.config
    if config.request_log:
        return json_response({"files": []})
    files = [
        {"name": path.name, "size": stat.st_size, "modified": int(stat.st_mtime)}
        for path, stat in log_files(log_dir(config), ERROR_FILE)
    ]
    return json_response({"files": files})


@api
async def request_error_log(request: Request) -> Response:
    """GET /request-error-logs/{name} → that error log file, as an attachment."""
    name = request.path_params["name"]
    if not ERROR_FILE.fullmatch(name):
        raise ApiError(400, None, "invalid log file name")
    path = error_file(log_dir(_state(request).runtime.config), name)
    if path is None:
        raise ApiError(404, None, "log file not found")
    return _download(path)


@api
async def request_log_by_id(request: Request) -> Response:
    """GET /request-log-by-id/{id} (or ?id=) → the request log file of that request id."""
    raw = request.path_params.get("id") or request.query_params.get("id") or ""
    request_id = raw.strip().lower()
    if not request_id:
        raise ApiError(400, None, "request ID is required")
    if not REQUEST_ID.fullmatch(request_id):
        raise ApiError(400, None, "invalid request ID")
    path = find_by_id(log_dir(_state(request).runtime.config), request_id)
    if path is None:
        raise ApiError(404, None, "log file not found for the given request ID")
    return _download(path)


@api
async def request_logs(request: Request) -> Response:
    """GET /request-logs?limit= → {"request-log", "total", "files": [...]}: every request log
    file (error files too), newest first, each with its summary (request_log_view.py)."""
    raw = request.query_params.get("limit", "").strip()
    if raw and (not raw.isdigit() or not 0 < int(raw) <= REQUEST_LOGS_MOST):
        raise ApiError(400, None, f"limit: must be a whole number from 1 to {REQUEST_LOGS_MOST}")
    limit = int(raw) if raw else REQUEST_LOGS_LIMIT
    config = _state(request).runtime.config
    await _written(request)
    files = log_files(log_dir(config), LOG_FILE)

    def read() -> list[dict[str, Any]]:
        return [found for path, stat in files[:limit] if (found := listing(path, stat))]

    entries = await asyncio.to_thread(read)
    return json_response({"request-log": config.request_log, "total": len(files), "files": entries})


@api
async def request_log_entry(request: Request) -> Response:
    """GET /request-logs/{id} → one request's file read back: its summary, the upstream
    attempts (which model and account, how each ended) and each section with its body."""
    request_id = request.path_params["id"].strip().lower()
    if not REQUEST_ID.fullmatch(request_id):
        raise ApiError(400, None, "invalid request ID")
    await _written(request)
    path = find_by_id(log_dir(_state(request).runtime.config), request_id)
    found = None
    if path is not None:
        try:
            found = await asyncio.to_thread(lambda: entry(path, path.stat()))
        except OSError:
            found = None
    if found is None:
        raise ApiError(404, None, "log file not found for the given request ID")
    return json_response(found)


async def _written(request: Request) -> None:
    """Let the request logs handed to the writer reach their files first: a request that was
    just answered is listed (its file is written in a thread after the reply went out)."""
    writer = getattr(request.app.state, "request_logs", None)
    if writer is not None:
        # Bounded: under steady traffic the writer is never idle; list what is there by then.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(writer.flush(), 2.0)


def _download(path: Path) -> Response:
    return FileResponse(path, media_type="text/plain; charset=utf-8", filename=path.name)


# ----- version ----------------------------------------------------------------------------------


@api
async def latest_version(request: Request) -> Response:
    """GET /latest-version → our own version: checking GitHub would reach the internet, which
    the proxy never does on its own."""
    return json_response({"latest-version": __version__})


# ----- cooldowns --------------------------------------------------------------------------------


@api
async def post_reset_quota(request: Request) -> Response:
    """POST /reset-quota {"all": true} → every cooldown ends. Anything else is the auth-files
    module's per-credential reset ({"auth_index" | "name", "model"?})."""
    # request.body() (not read_body) caches the bytes, so the delegate can read them again.
    raw = await request.body()
    try:
        body = parse_json(raw) if raw.strip() else None
    except ApiError:
        body = None  # the delegate reports what is wrong with it
    if isinstance(body, dict) and body.get("all") is True:
        if body.get("auth_index") or body.get("authIndex") or body.get("name"):
            raise ApiError(400, None, "all: give either all=true or one auth_index, not both")
        return json_response(_reset_everything(_state(request)))
    return await routes_auth_files.post_reset_quota(request)


def _reset_everything(state: AppState) -> dict[str, Any]:
    cooled = state.cooldowns.snapshot()
    credentials = sorted({c.credential_id for c in cooled})
    for credential in credentials:
        reset_quota(state, credential)  # also clears the account listing's "cooling until"
    state.cooldowns.clear()
    models = sorted({c.model for c in cooled})
    return {"status": "ok", "all": True, "credentials": credentials, "models": models}


# ----- usage per API key ------------------------------------------------------------------------


@api
async def api_key_usage(request: Request) -> Response:
    """GET /api-key-usage → {provider: {"<base_url>|<api_key>": {success, failed,
    recent_requests}}} for config API keys. The full key is in the map key, as in the
    reference (the Management Center joins on it); the route is behind the management key."""
    state = _state(request)
    counts = counts_of(state)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for provider, credential_id, base_url, key in _config_keys(state.runtime.config):
        success, failed = counts.totals(credential_id)
        recent = counts.recent(credential_id)
        entries = out.setdefault(provider, {})
        joined = f"{base_url}|{key}"
        existing = entries.get(joined)
        if existing is None:
            entries[joined] = {"success": success, "failed": failed, "recent_requests": recent}
            continue
        existing["success"] += success
        existing["failed"] += failed
        for mine, theirs in zip(existing["recent_requests"], recent, strict=False):
            mine["success"] += theirs["success"]
            mine["failed"] += theirs["failed"]
    return json_response(out)


def _config_keys(config: Config) -> list[tuple[str, str, str, str]]:
    """(provider, routing credential id, configured base-url, api key) of every key entry;
    compatible providers by their lower-cased name, as the Management Center looks them up."""
    return [
        (
            key.provider.lower() if key.section == "openai-compatibility" else key.provider,
            key.routing_id,
            key.base_url,
            key.api_key,
        )
        for key in config_keys(config)
        if key.api_key
    ]


# ----- model definitions ------------------------------------------------------------------------


@api
async def model_definitions(request: Request) -> Response:
    """GET /model-definitions/{channel} (or ?channel=) → {"channel", "models": [...]}: the
    models that channel's accounts serve."""
    raw = request.path_params.get("channel") or request.query_params.get("channel") or ""
    channel = raw.strip().lower()
    if not channel:
        raise ApiError(400, None, "channel is required")
    entry = catalog().by_management_channel(channel)
    provider = _state(request).account_providers.get(entry.kind) if entry else None
    if entry is None or provider is None:
        if channel in FOREIGN_CHANNELS:
            # Channels the Management Center's alias editor offers that cliproxy has no
            # accounts for: an empty catalogue lets the editor open instead of failing.
            return json_response({"channel": channel, "models": []})
        return json_response({"error": "unknown channel", "channel": channel}, 400)
    models = [
        {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": entry.owned_by,
            "type": entry.kind,
            "display_name": name,
        }
        for name in provider.models()
    ]
    return json_response({"channel": channel, "models": models})


@api
async def plugins(request: Request) -> Response:
    """GET /plugins: cliproxy loads no plugins; the Management Center's OAuth page asks anyway."""
    return json_response({"plugins_enabled": False, "plugins_dir": "", "plugins": []})


# ----- api-call ---------------------------------------------------------------------------------


@api
async def api_call(request: Request) -> Response:
    """POST /api-call {auth_index, method, url, header, data} → {status_code, header, body},
    only to the credential's own vendor endpoints (see api_call.py)."""
    body = parse_json(await read_body(request))
    if not isinstance(body, dict):
        raise ApiError(400, None, "invalid body: expected a JSON object")
    call = parse_call(body)
    state = _state(request)
    if not call.auth_index:
        raise ApiError(
            403, None, "auth_index: required (/api-call only uses a configured credential)"
        )
    target = resolve_target(state, call.auth_index)
    if target is None:
        raise ApiError(
            403, None, f"auth_index: {call.auth_index[:64]!r} names no configured credential"
        )
    return json_response(await perform(state, target, call))


# ----- the control panel page (public, on the main app) -----------------------------------------


def panel_path(request: Request) -> Path | None:
    """$MANAGEMENT_STATIC_PATH (a file, or a directory holding management.html), else
    <config dir>/static/management.html; None when neither is known."""
    configured = os.environ.get("MANAGEMENT_STATIC_PATH", "").strip()
    if configured:
        path = Path(configured).expanduser()
        return path / "management.html" if path.is_dir() else path
    for route in request.app.routes:
        # The management mount knows the config file (a duck-typed look: importing app.py
        # here would be circular).
        editor = getattr(getattr(route, "management", None), "editor", None)
        config_path = getattr(editor, "path", None)
        if isinstance(config_path, Path):
            return config_path.parent / "static" / "management.html"
    return None


async def management_html(request: Request) -> Response:
    """GET /management.html → the operator's local copy of the Management Center when there is
    one, else cliproxy's own console; nothing is ever downloaded. 404 when
    remote-management.disable-control-panel."""
    if console.panel_disabled(request):
        return PlainTextResponse("control panel disabled", 404)
    path = panel_path(request)
    if path is None or not path.is_file():
        return console.index_page()
    return FileResponse(path, media_type="text/html; charset=utf-8")


ROUTES: list[Route] = [
    Route("/logs", get_logs, methods=["GET"]),
    Route("/logs", delete_logs, methods=["DELETE"]),
    Route("/request-error-logs", request_error_logs, methods=["GET"]),
    Route("/request-error-logs/{name}", request_error_log, methods=["GET"]),
    Route("/request-log-by-id", request_log_by_id, methods=["GET"]),
    Route("/request-log-by-id/{id}", request_log_by_id, methods=["GET"]),
    Route("/request-logs", request_logs, methods=["GET"]),
    Route("/request-logs/{id}", request_log_entry, methods=["GET"]),
    Route("/latest-version", latest_version, methods=["GET"]),
    Route("/reset-quota", post_reset_quota, methods=["POST"]),
    Route("/api-key-usage", api_key_usage, methods=["GET"]),
    Route("/model-definitions", model_definitions, methods=["GET"]),
    Route("/model-definitions/{channel}", model_definitions, methods=["GET"]),
    Route("/api-call", api_call, methods=["POST"]),
    Route("/plugins", plugins, methods=["GET"]),
]
