"""The shapes the ledger's records are shown in: CLIProxyAPI's usage snapshot (GET /usage, its
export and import), our summary buckets and the record list. Plain functions over rows.

CLIProxyAPI's snapshot: ``{total_requests, success_count, failure_count, total_tokens, apis:
{<client key>: {total_requests, total_tokens, models: {<model>: {total_requests, total_tokens,
details: [{timestamp, latency_ms, source, auth_index, tokens{...}, failed}]}}}},
requests_by_day{"2026-12-01": n}, requests_by_hour{"00".."23": n}, tokens_by_day,
tokens_by_hour}``. Days and hours are UTC here; hours add up every day's same hour.

The grouping into days, hours and buckets happens here, over the rows, rather than in SQL,
whose date functions differ between SQLite and PostgreSQL: both backends give the same answers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cliproxy.usage.ledger import EARLIEST, LATEST, REQUEST, make_row, timestamp_text

EXPORT_VERSION = 1
GROUPS = {
    "model": "model",
    "account": "auth_index",
    "api-key": "api_key",
    "provider": "provider",
    "upstream-model": "upstream_model",
}
BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_COUNT = 2**53  # a token count or latency from an import is clamped to this


class ImportShapeError(ValueError):
    """An import document of the wrong shape; the message names the field."""


def _tokens(row: Mapping[str, Any]) -> dict[str, int]:
    return {
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "reasoning_tokens": row["reasoning_tokens"],
        "cached_tokens": row["cached_tokens"],
        "total_tokens": row["total_tokens"],
    }


def snapshot(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """CLIProxyAPI's usage snapshot of the client-request rows (failed attempts left out)."""
    total = success = failure = tokens = 0
    apis: dict[str, Any] = {}
    by_day: dict[str, int] = {}
    by_hour: dict[str, int] = {}
    tokens_day: dict[str, int] = {}
    tokens_hour: dict[str, int] = {}
    for row in rows:
        if row["kind"] != REQUEST:
            continue
        total += 1
        failure += bool(row["failed"])
        success += not row["failed"]
        tokens += row["total_tokens"]
        api = apis.setdefault(
            row["api_key"], {"total_requests": 0, "total_tokens": 0, "models": {}}
        )
        api["total_requests"] += 1
        api["total_tokens"] += row["total_tokens"]
        model = api["models"].setdefault(
            row["model"], {"total_requests": 0, "total_tokens": 0, "details": []}
        )
        model["total_requests"] += 1
        model["total_tokens"] += row["total_tokens"]
        model["details"].append(
            {
                "timestamp": timestamp_text(row["ts"]),
                "latency_ms": round(row["latency_ms"]),
                "source": row["source"],
                "auth_index": row["auth_index"],
                "tokens": _tokens(row),
                "failed": bool(row["failed"]),
            }
        )
        moment = datetime.fromtimestamp(row["ts"], UTC)
        day, hour = moment.strftime("%Y-%m-%d"), moment.strftime("%H")
        by_day[day] = by_day.get(day, 0) + 1
        by_hour[hour] = by_hour.get(hour, 0) + 1
        tokens_day[day] = tokens_day.get(day, 0) + row["total_tokens"]
        tokens_hour[hour] = tokens_hour.get(hour, 0) + row["total_tokens"]
    return {
        "total_requests": total,
        "success_count": success,
        "failure_count": failure,
        "total_tokens": tokens,
        "apis": apis,
        "requests_by_day": by_day,
        "requests_by_hour": dict(sorted(by_hour.items())),
        "tokens_by_day": tokens_day,
        "tokens_by_hour": dict(sorted(tokens_hour.items())),
    }


def parse_time(value: str, name: str) -> float:
    """ISO 8601 (a ``Z`` or an offset; none means UTC) to epoch seconds; ValueError names
    ``name``."""
    text = value.strip()
    try:
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # Go writes nanoseconds; Python reads at most microseconds.
        head, dot, rest = text.partition(".")
        if dot:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ts = moment.timestamp()
    if not EARLIEST <= ts < LATEST:
        raise ValueError(f"{name}: {value!r} is not between 1970 and 9999")
    return ts


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return min(max(int(value), 0), MAX_COUNT)


def import_rows(document: Any) -> tuple[list[dict[str, Any]], int]:
    """The rows of an export (``{version: 0|1, usage}``, or a bare snapshot), and how many
    details were skipped as unreadable. ImportShapeError for a document of the wrong shape."""
    if not isinstance(document, dict):
        raise ImportShapeError("body: must be a JSON object (an export of GET /usage/export)")
    version = document.get("version", 0)
    if isinstance(version, bool) or version not in (0, 1):
        raise ImportShapeError(f"version: {version!r} is not supported (0 or 1)")
    usage = document.get("usage", document if "apis" in document else None)
    if not isinstance(usage, dict):
        raise ImportShapeError("usage: must be an object (the usage snapshot)")
    apis = usage.get("apis", {})
    if not isinstance(apis, dict):
        raise ImportShapeError("usage.apis: must be an object")
    rows: list[dict[str, Any]] = []
    skipped = 0
    for api_key, api in apis.items():
        models = api.get("models", {}) if isinstance(api, dict) else None
        if not isinstance(models, dict):
            raise ImportShapeError(f"usage.apis[{api_key!r}].models: must be an object")
        for model, stats in models.items():
            details = stats.get("details", []) if isinstance(stats, dict) else None
            if not isinstance(details, list):
                raise ImportShapeError(f"usage.apis[{api_key!r}].models[{model!r}].details: a list")
            for detail in details:
                row = _detail_row(str(api_key), str(model), detail)
                if row is None:
                    skipped += 1
                else:
                    rows.append(row)
    return rows, skipped


def _detail_row(api_key: str, model: str, detail: Any) -> dict[str, Any] | None:
    if not isinstance(detail, dict) or not isinstance(detail.get("timestamp"), str):
        return None
    try:
        ts = parse_time(detail["timestamp"], "timestamp")
    except ValueError:
        return None
    tokens = detail.get("tokens")
    tokens = tokens if isinstance(tokens, dict) else {}
    source, auth_index = detail.get("source", ""), detail.get("auth_index", "")
    latency = detail.get("latency_ms", 0)
    return make_row(
        ts=ts,
        kind=REQUEST,
        failed=detail.get("failed") is True,
        api_key=api_key,
        model=model,
        upstream_model=model,
        source=source if isinstance(source, str) else "",
        auth_index=auth_index if isinstance(auth_index, str) else "",
        input_tokens=_int(tokens.get("input_tokens")),
        output_tokens=_int(tokens.get("output_tokens")),
        reasoning_tokens=_int(tokens.get("reasoning_tokens")),
        cached_tokens=_int(tokens.get("cached_tokens")),
        total_tokens=_int(tokens.get("total_tokens")),
        latency_ms=float(_int(latency)),
    )


def _percentile(values: list[float], fraction: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return round(ordered[rank - 1], 1)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(rows: Iterable[Mapping[str, Any]], group_by: str, bucket: str) -> list[dict[str, Any]]:
    """Client requests in UTC-aligned buckets, per group: oldest bucket first, then by group."""
    field = GROUPS[group_by]
    width = BUCKETS[bucket]
    tallies: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        if row["kind"] != REQUEST:
            continue
        start = int(row["ts"] // width) * width
        key = (start, row[field])
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = {
                "requests": 0,
                "failed": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cached_tokens": 0,
                "reasoning_tokens": 0,
                "cost_usd": 0.0,
                "latencies": [],
            }
        tally["requests"] += 1
        tally["failed"] += bool(row["failed"])
        for name in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"):
            tally[name] += row[name]
        tally["cost_usd"] += row["cost_usd"] or 0.0
        tally["latencies"].append(row["latency_ms"])
    buckets = []
    for (start, group), tally in sorted(tallies.items()):
        latencies = tally.pop("latencies")
        buckets.append(
            {
                "start": iso(start),
                "group": group,
                **tally,
                "cost_usd": round(tally["cost_usd"], 6),
                "latency_ms_p50": _percentile(latencies, 0.5),
                "latency_ms_p95": _percentile(latencies, 0.95),
            }
        )
    return buckets


def record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row as GET /usage/requests lists it."""
    return {
        "id": row["id"],
        "timestamp": timestamp_text(row["ts"]),
        "kind": row["kind"],
        "failed": bool(row["failed"]),
        "api_key": row["api_key"],
        "auth_index": row["auth_index"],
        "source": row["source"],
        "provider": row["provider"],
        "model": row["model"],
        "upstream_model": row["upstream_model"],
        "client_protocol": row["client_protocol"],
        "upstream_protocol": row["upstream_protocol"],
        "status": row["status"],
        "error_kind": row["error_kind"],
        "stream": bool(row["stream"]),
        "tokens": _tokens(row),
        "latency_ms": row["latency_ms"],
        "ttft_ms": row["ttft_ms"],
        "cost_usd": row["cost_usd"],
        "subscription": bool(row["subscription"]),
    }
