"""Usage routes (paths relative to /v0/management), read from the persisted ledger
(usage/ledger.py):

    GET  /usage            CLIProxyAPI's historical snapshot: {"usage": {...}, "failed_requests"}
    GET  /usage/export     {"version": 1, "exported_at", "usage"}
    POST /usage/import     merges an export (version 0 or 1), skipping records already held
    GET  /usage/summary    ?from=&to=&group-by=&bucket=&model=&provider=&api-key=&auth-index=
                           → {"buckets": [...]}
    GET  /usage/requests   ?limit=&offset=&model=&provider=&api-key=&auth-index=&status=&kind=
    GET  /usage-queue      ?count= → the requests recorded since the last call (oldest first,
                           those of the last redis-usage-queue-retention-seconds), as the
                           reference's destructive queue hands them out

Also the ledger's resolver: a routed credential id → the auth-index the management lists show
(the auth file's, or the config key's stable hash) and a label for it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cliproxy.config.schema import Config
from cliproxy.model import ProxyError, loads_limited
from cliproxy.providers.base import mask_secret
from cliproxy.state import AppState
from cliproxy.usage.ledger import (
    ATTEMPT,
    EARLIEST,
    LATEST,
    REQUEST,
    CredentialInfo,
    Ledger,
    LedgerUnavailable,
    Resolver,
)
from cliproxy.usage.ledger_store import Filters
from cliproxy.usage.ledger_views import (
    BUCKETS,
    EXPORT_VERSION,
    GROUPS,
    ImportShapeError,
    import_rows,
    iso,
    parse_time,
    record,
    snapshot,
    summary,
)

from .auth_files import auth_index
from .common import ApiError, Handler, api, context, json_response
from .key_index import ConfigKey, config_keys

DEFAULT_WINDOW = 86400.0
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_IMPORT_BYTES = 64 * 1024 * 1024


def credential_resolver(state: AppState) -> Resolver:
    """Credential id → CredentialInfo, from the live auth store and config. It runs for every
    recorded request, so each answer is kept until the auth record or the config it came from
    is replaced (a reload, a refreshed or edited auth file)."""
    cached: dict[str, Any] = {"config": None, "keys": {}}
    answers: dict[str, tuple[object, CredentialInfo]] = {}

    def keys_of(config: Config) -> dict[str, ConfigKey]:
        if cached["config"] is not config:
            cached["keys"] = {key.routing_id: key for key in config_keys(config)}
            cached["config"] = config
            answers.clear()
        found: dict[str, ConfigKey] = cached["keys"]
        return found

    def resolve(credential_id: str) -> CredentialInfo:
        record = state.auth_store.get(credential_id)
        source: object = record if record is not None else state.runtime.config
        known = answers.get(credential_id)
        if known is not None and known[0] is source:
            return known[1]
        if record is not None:
            info = CredentialInfo(
                auth_index(record.type, record.path), record.email or record.path.name, True
            )
        else:
            key = keys_of(state.runtime.config).get(credential_id)
            if key is not None:
                info = CredentialInfo(key.auth_index, mask_secret(key.api_key), False)
            else:
                info = CredentialInfo(credential_id, "", False)
        if len(answers) < 10_000:  # bounded: ids come from the config and the auth dir
            answers[credential_id] = (source, info)
        return info

    return resolve


def _ledger(request: Request) -> Ledger:
    state = getattr(request.app.state, "cliproxy", None)
    if not isinstance(state, AppState):
        raise ApiError(500, None, "management routes are not attached to a cliproxy server")
    ledger = state.ledger
    if not ledger.available:
        raise ApiError(503, None, ledger.error or f"usage database {ledger.where} is not open")
    return ledger


def usage_api(handler: Handler) -> Handler:
    """``api``, with a database that fails a query answered as 503 naming it."""

    @api
    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except LedgerUnavailable as error:
            raise ApiError(503, None, str(error)) from None

    return wrapped


def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, None, f"{name}: {message}")


def _time_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return parse_time(raw, name)
    except ValueError as error:
        raise ApiError(400, None, f"{error} (e.g. 2026-12-01T00:00:00Z)") from None


def _window(request: Request) -> tuple[float, float]:
    since = _time_param(request, "from")
    until = _time_param(request, "to")
    if until is None:
        until = min(since + DEFAULT_WINDOW, LATEST) if since is not None else time.time()
    if since is None:
        since = max(until - DEFAULT_WINDOW, EARLIEST)
    if since > until:
        raise _bad("from", "must not be later than to")
    return since, until


def _choice(request: Request, name: str, choices: dict[str, Any], default: str) -> str:
    value = request.query_params.get(name, "").strip().lower() or default
    if value not in choices:
        raise _bad(name, f"{value[:40]!r} is not one of {', '.join(choices)}")
    return value


def _count(request: Request, name: str, default: int, most: int | None = None) -> int:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise _bad(name, f"must be a whole number of 0 or more (got {raw[:40]!r})")
    value = int(raw)
    if most is not None and value > most:
        raise _bad(name, f"must be at most {most} (got {value})")
    return value


@usage_api
async def get_usage(request: Request) -> Response:
    usage = snapshot(await _ledger(request).fetch(Filters(kind=REQUEST)))
    return json_response({"usage": usage, "failed_requests": usage["failure_count"]})


@usage_api
async def export_usage(request: Request) -> Response:
    usage = snapshot(await _ledger(request).fetch(Filters(kind=REQUEST)))
    exported_at = iso(time.time())
    return json_response({"version": EXPORT_VERSION, "exported_at": exported_at, "usage": usage})


async def _read_import(request: Request) -> Any:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise ApiError(413, None, f"body larger than {MAX_IMPORT_BYTES} bytes")
        chunks.append(chunk)
    try:
        return loads_limited(b"".join(chunks), "body")
    except orjson.JSONDecodeError:
        raise ApiError(400, None, "invalid body: not JSON") from None
    except ProxyError as error:
        raise ApiError(400, None, error.message) from None


@usage_api
async def import_usage(request: Request) -> Response:
    ledger = _ledger(request)
    document = await _read_import(request)
    try:
        rows, unreadable = import_rows(document)
    except ImportShapeError as error:
        raise ApiError(422, None, str(error)) from None
    added = await ledger.add_rows(rows)
    total = await ledger.count(Filters(kind=REQUEST))
    failed = await ledger.count(Filters(kind=REQUEST, failed=True))
    return json_response(
        {
            "added": added,
            "skipped": len(rows) - added + unreadable,
            "total_requests": total,
            "failed_requests": failed,
        }
    )


@usage_api
async def usage_summary(request: Request) -> Response:
    ledger = _ledger(request)
    since, until = _window(request)
    group_by = _choice(request, "group-by", GROUPS, "model")
    bucket = _choice(request, "bucket", BUCKETS, "hour")
    query = request.query_params
    filters = Filters(
        since=since,
        until=until,
        kind=REQUEST,
        model=query.get("model") or None,
        provider=query.get("provider") or None,
        api_key=query.get("api-key") or None,
        auth_index=query.get("auth-index") or None,
    )
    rows = await ledger.fetch(filters)
    return json_response(
        {
            "from": iso(since),
            "to": iso(until),
            "group_by": group_by,
            "bucket": bucket,
            "buckets": summary(rows, group_by, bucket),
        }
    )


STATUS_WORDS = {"success": False, "ok": False, "failed": True, "error": True}
KINDS = {"request": REQUEST, "attempt": ATTEMPT, "all": None}


def _status_filter(request: Request) -> tuple[bool | None, int | None]:
    raw = request.query_params.get("status", "").strip().lower()
    if not raw:
        return None, None
    if raw in STATUS_WORDS:
        return STATUS_WORDS[raw], None
    if raw.isdigit() and len(raw) == 3:
        return None, int(raw)
    raise _bad("status", f"{raw[:40]!r} is not success, failed or an HTTP status")


@usage_api
async def usage_requests(request: Request) -> Response:
    ledger = _ledger(request)
    query = request.query_params
    limit = _count(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    offset = _count(request, "offset", 0)
    failed, status = _status_filter(request)
    kind = KINDS[_choice(request, "kind", KINDS, "request")]
    since = _time_param(request, "from")
    until = _time_param(request, "to")
    filters = Filters(
        since=since,
        until=until,
        kind=kind,
        failed=failed,
        status=status,
        model=query.get("model") or None,
        provider=query.get("provider") or None,
        api_key=query.get("api-key") or None,
        auth_index=query.get("auth-index") or None,
    )
    total = await ledger.count(filters)
    rows = await ledger.fetch(filters, limit=limit, offset=offset, newest_first=True)
    return json_response(
        {
            "total": total,
            "limit": limit,
            "offset": offset,
            "requests": [record(row) for row in rows],
        }
    )


# CLIProxyAPI keeps queued records this long (its default; at most an hour).
QUEUE_RETENTION_KEY = "redis-usage-queue-retention-seconds"
QUEUE_RETENTION, QUEUE_RETENTION_MOST = 60, 3600


@dataclass
class UsageQueue:
    """Where the queue's reader got to: the ledger id of the last record handed out."""

    after_id: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def usage_queue_of(app: Any) -> UsageQueue:
    """The server's queue position, on the Starlette app (both management trees read it)."""
    queue = getattr(app.state, "usage_queue", None)
    if not isinstance(queue, UsageQueue):
        queue = UsageQueue()
        app.state.usage_queue = queue
    return queue


def queue_retention(config: Config) -> float:
    raw = (config.model_extra or {}).get(QUEUE_RETENTION_KEY)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        return QUEUE_RETENTION
    return float(min(raw, QUEUE_RETENTION_MOST))


@usage_api
async def usage_queue(request: Request) -> Response:
    """GET /usage-queue?count=n (default 1) → a JSON array of the n oldest requests recorded
    since the last call (each as /usage/requests lists it), only those of the retention
    window; each is handed out once (the reference's destructive pop, read from the ledger)."""
    ledger = _ledger(request)
    count = _count(request, "count", 1, MAX_LIMIT)
    queue = usage_queue_of(request.app)
    config = context(request).state_getter().runtime.config
    async with queue.lock:
        since = time.time() - queue_retention(config)
        filters = Filters(since=since, kind=REQUEST, after_id=queue.after_id)
        rows = await ledger.fetch(filters, limit=count, by_id=True) if count else []
        if rows:
            queue.after_id = rows[-1]["id"]
    return json_response([record(row) for row in rows])


ROUTES = [
    Route("/usage-queue", usage_queue, methods=["GET"]),
    Route("/usage", get_usage, methods=["GET"]),
    Route("/usage/export", export_usage, methods=["GET"]),
    Route("/usage/import", import_usage, methods=["POST"]),
    Route("/usage/summary", usage_summary, methods=["GET"]),
    Route("/usage/requests", usage_requests, methods=["GET"]),
]
