"""OpenAPI paths of the usage routes (routes_usage.py)."""

from __future__ import annotations

from typing import Any

from cliproxy.management.openapi_common import (
    BOOLEAN,
    INTEGER,
    STRING,
    Schema,
    json_body,
    object_of,
    op,
    query,
)
from cliproxy.usage.ledger_views import BUCKETS, GROUPS

NUMBER: Schema = {"type": "number"}
NULLABLE_NUMBER: Schema = {"type": "number", "nullable": True}
COUNTS: Schema = {"type": "object", "additionalProperties": INTEGER}
TOKENS = object_of(
    {
        "input_tokens": INTEGER,
        "output_tokens": INTEGER,
        "reasoning_tokens": INTEGER,
        "cached_tokens": INTEGER,
        "total_tokens": INTEGER,
    }
)
DETAIL = object_of(
    {
        "timestamp": STRING,
        "latency_ms": INTEGER,
        "source": STRING,
        "auth_index": STRING,
        "tokens": TOKENS,
        "failed": BOOLEAN,
    }
)
MODEL = object_of(
    {
        "total_requests": INTEGER,
        "total_tokens": INTEGER,
        "details": {"type": "array", "items": DETAIL},
    }
)
API = object_of(
    {
        "total_requests": INTEGER,
        "total_tokens": INTEGER,
        "models": {"type": "object", "additionalProperties": MODEL},
    }
)
SNAPSHOT = object_of(
    {
        "total_requests": INTEGER,
        "success_count": INTEGER,
        "failure_count": INTEGER,
        "total_tokens": INTEGER,
        "apis": {"type": "object", "additionalProperties": API},
        "requests_by_day": COUNTS,
        "requests_by_hour": COUNTS,
        "tokens_by_day": COUNTS,
        "tokens_by_hour": COUNTS,
    }
)
BUCKET = object_of(
    {
        "start": STRING,
        "group": STRING,
        "requests": INTEGER,
        "failed": INTEGER,
        "input_tokens": INTEGER,
        "output_tokens": INTEGER,
        "cached_tokens": INTEGER,
        "reasoning_tokens": INTEGER,
        "cost_usd": NUMBER,
        "latency_ms_p50": NULLABLE_NUMBER,
        "latency_ms_p95": NULLABLE_NUMBER,
    }
)
RECORD = object_of(
    {
        "id": INTEGER,
        "timestamp": STRING,
        "kind": {"type": "string", "enum": ["request", "attempt"]},
        "failed": BOOLEAN,
        "api_key": STRING,
        "auth_index": STRING,
        "source": STRING,
        "provider": STRING,
        "model": STRING,
        "upstream_model": STRING,
        "client_protocol": STRING,
        "upstream_protocol": STRING,
        "status": INTEGER,
        "error_kind": {"type": "string", "nullable": True},
        "stream": BOOLEAN,
        "tokens": TOKENS,
        "latency_ms": NUMBER,
        "ttft_ms": NULLABLE_NUMBER,
        "cost_usd": NULLABLE_NUMBER,
        "subscription": BOOLEAN,
    }
)
TIME_ABOUT = "ISO 8601, e.g. 2026-12-01T00:00:00Z (no offset: UTC)"
# Exact matches, in /usage/summary and /usage/requests.
FILTERS = [
    query("model", STRING, about="the model the client asked for"),
    query("provider", STRING),
    query("api-key", STRING, about="the client key's name or masked form"),
    query("auth-index", STRING),
]


def usage_paths() -> dict[str, dict[str, Any]]:
    window = [
        query("from", STRING, about=f"{TIME_ABOUT}; default: `to` minus 24 h"),
        query("to", STRING, about=f"{TIME_ABOUT}; default: now"),
    ]
    export = object_of({"version": INTEGER, "exported_at": STRING, "usage": SNAPSHOT})
    imported = object_of(
        {
            "added": INTEGER,
            "skipped": INTEGER,
            "total_requests": INTEGER,
            "failed_requests": INTEGER,
        }
    )
    return {
        "/usage-queue": {
            "get": op(
                "The oldest client requests recorded since the last call (those of the last "
                "redis-usage-queue-retention-seconds, default 60), each handed out once",
                "usage",
                params=[
                    query(
                        "count",
                        {"type": "integer", "minimum": 0, "maximum": 1000},
                        about="how many at most (default 1)",
                    )
                ],
                reply={"type": "array", "items": RECORD},
                errors=[400, 503],
            )
        },
        "/usage": {
            "get": op(
                "CLIProxyAPI's usage snapshot of every client request the ledger holds",
                "usage",
                reply=object_of({"usage": SNAPSHOT, "failed_requests": INTEGER}),
                errors=[503],
            )
        },
        "/usage/export": {
            "get": op(
                "The usage snapshot as an export for POST /usage/import",
                "usage",
                reply=export,
                errors=[503],
            )
        },
        "/usage/import": {
            "post": op(
                "Merge an export (version 0 or 1); records already held are skipped",
                "usage",
                body=json_body(
                    object_of({"version": INTEGER, "exported_at": STRING, "usage": SNAPSHOT})
                ),
                reply=imported,
                errors=[400, 413, 422, 503],
            )
        },
        "/usage/summary": {
            "get": op(
                "Client requests per UTC-aligned bucket and group, with tokens, cost, latency",
                "usage",
                params=[
                    *window,
                    query("group-by", {"type": "string", "enum": list(GROUPS)}),
                    query("bucket", {"type": "string", "enum": list(BUCKETS)}),
                    *FILTERS,
                ],
                reply=object_of(
                    {
                        "from": STRING,
                        "to": STRING,
                        "group_by": STRING,
                        "bucket": STRING,
                        "buckets": {"type": "array", "items": BUCKET},
                    },
                    "buckets",
                ),
                errors=[400, 503],
            )
        },
        "/usage/requests": {
            "get": op(
                "Ledger records, newest first, paged and filtered",
                "usage",
                params=[
                    query("limit", {"type": "integer", "minimum": 0, "maximum": 1000}),
                    query("offset", {"type": "integer", "minimum": 0}),
                    *FILTERS,
                    query("status", STRING, about="success, failed, or an HTTP status"),
                    query(
                        "kind",
                        {"type": "string", "enum": ["request", "attempt", "all"]},
                        about="request (default), attempt (failed upstream attempts) or all",
                    ),
                    query("from", STRING, about=f"{TIME_ABOUT}; default: the oldest"),
                    query("to", STRING, about=f"{TIME_ABOUT}; default: now"),
                ],
                reply=object_of(
                    {
                        "total": INTEGER,
                        "limit": INTEGER,
                        "offset": INTEGER,
                        "requests": {"type": "array", "items": RECORD},
                    }
                ),
                errors=[400, 503],
            )
        },
    }
