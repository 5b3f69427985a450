"""OpenAPI paths of the operations routes (routes_ops.py): logs, version, cooldown reset,
usage, model definitions, plugins and the restricted /api-call."""

from __future__ import annotations

from typing import Any

from cliproxy.management.openapi_common import (
    BOOLEAN,
    ENTRY,
    INTEGER,
    STRING,
    STRINGS,
    json_body,
    object_of,
    op,
    path_param,
    query,
)

LOG_FILE_CONTENT = {"text/plain": {"schema": STRING}}


def _log_file(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    """A request log file's download (text, as an attachment)."""
    return op(summary, "logs", params=params, reply_content=LOG_FILE_CONTENT, errors=[400, 404])


ERROR_LOG_FILE = object_of(
    {"name": STRING, "size": INTEGER, "modified": {**INTEGER, "description": "unix seconds"}},
    "name",
    "size",
    "modified",
)


NULLABLE_STRING = {"type": "string", "nullable": True}
NULLABLE_INTEGER = {"type": "integer", "nullable": True}
NULLABLE_BOOLEAN = {"type": "boolean", "nullable": True}
REQUEST_SUMMARY = object_of(
    {
        "request_id": STRING,
        "time": STRING,
        "client_key": {**STRING, "description": "the client key's name, or its masked form"},
        "method": STRING,
        "url": STRING,
        "model": STRING,
        "served_model": STRING,
        "fell_back": BOOLEAN,
        "status": INTEGER,
        "failed": BOOLEAN,
        "stream_error": STRING,
        "attempts": INTEGER,
    }
)
ATTEMPT = object_of(
    {
        "number": INTEGER,
        "model": {**STRING, "description": "the model it was for: the requested one or a fallback"},
        "fallback": BOOLEAN,
        "provider": STRING,
        "upstream_model": STRING,
        "auth_index": STRING,
        "account": {**STRING, "description": "the account's e-mail or the masked upstream key"},
        "status": {**INTEGER, "description": "the upstream's status; 0 when none came"},
        "error_kind": NULLABLE_STRING,
        "error": STRING,
        "latency_ms": {"type": "number"},
        "result": {
            "type": "string",
            "enum": ["answered", "failed", "not sent", "token refreshed"],
        },
        "rested": BOOLEAN,
        "refused": BOOLEAN,
    }
)
FILE_FACTS = {
    "id": STRING,
    "name": STRING,
    "size": INTEGER,
    "modified": {**INTEGER, "description": "unix seconds"},
    "error": {**BOOLEAN, "description": "an error-*.log file (written with request-log off)"},
}
REQUEST_LOG_ITEM = object_of(
    {
        **FILE_FACTS,
        "summary": {**BOOLEAN, "description": "false: a file written before summaries"},
        "time": NULLABLE_STRING,
        "method": NULLABLE_STRING,
        "url": NULLABLE_STRING,
        "model": NULLABLE_STRING,
        "served_model": NULLABLE_STRING,
        "fell_back": BOOLEAN,
        "status": NULLABLE_INTEGER,
        "failed": NULLABLE_BOOLEAN,
        "attempts": NULLABLE_INTEGER,
    },
    "id",
    "name",
)
SECTION = object_of(
    {
        "title": STRING,
        "lines": STRINGS,
        "headers": {"type": "array", "items": STRINGS},
        "body": NULLABLE_STRING,
        "truncated_bytes": INTEGER,
        "omitted_chars": INTEGER,
    }
)
REQUEST_LOG_ENTRY = object_of(
    {
        **FILE_FACTS,
        "request": REQUEST_SUMMARY,
        "attempts": {"type": "array", "items": ATTEMPT},
        "sections": {"type": "array", "items": SECTION},
    },
    "id",
    "sections",
)


def _request_logs() -> dict[str, Any]:
    listed = object_of(
        {
            "request-log": BOOLEAN,
            "total": INTEGER,
            "files": {"type": "array", "items": REQUEST_LOG_ITEM},
        },
        "files",
    )
    return {
        "/request-logs": {
            "get": op(
                "Request log files (error files too), newest first, each with its summary",
                "logs",
                params=[query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
                reply=listed,
                errors=[400],
            )
        },
        "/request-logs/{id}": {
            "get": op(
                "One request's log read back: summary, upstream attempts, sections (redacted)",
                "logs",
                params=[path_param("id", "the request id (8 hex)")],
                reply=REQUEST_LOG_ENTRY,
                errors=[400, 404],
            )
        },
    }


def _logs() -> dict[str, Any]:
    reply = object_of(
        {
            "lines": STRINGS,
            "line-count": INTEGER,
            "latest-timestamp": INTEGER,
            "next-cursor": STRING,
            "cursor-reset": BOOLEAN,
        }
    )
    cleared = object_of({"success": BOOLEAN, "message": STRING, "removed": INTEGER})
    return {
        "get": op(
            "Tail of the in-memory log; page on with next-cursor",
            "logs",
            params=[
                query("limit", {"type": "integer", "minimum": 1}, about="at most this many lines"),
                query("after", INTEGER, about="only lines after this unix time"),
                query("cursor", STRING, about="next-cursor of the previous reply"),
            ],
            reply=reply,
            errors=[400],
        ),
        "delete": op("Clear the in-memory log", "logs", reply=cleared),
    }


def _reset_quota() -> dict[str, Any]:
    body = object_of(
        {
            "all": {**BOOLEAN, "description": "true ends every cooldown (alone)"},
            "auth_index": STRING,
            "name": {**STRING, "description": "an auth file name, instead of auth_index"},
            "model": {**STRING, "description": "only this model's cooldown"},
        }
    )
    reply = object_of(
        {
            "status": STRING,
            "all": BOOLEAN,
            "auth_index": STRING,
            "name": STRING,
            "credentials": STRINGS,
            "models": STRINGS,
        },
        "status",
    )
    return op(
        "End cooldowns: {all: true}, or one credential ({auth_index | name, model?})",
        "quota",
        body=json_body(body),
        reply=reply,
        errors=[400, 404, 409],
    )


def _api_call() -> dict[str, Any]:
    body = object_of(
        {
            "auth_index": STRING,
            "method": {"type": "string", "enum": ["GET", "POST"]},
            "url": STRING,
            "header": {"type": "object", "additionalProperties": STRING},
            "data": {**STRING, "description": "the raw request body"},
        },
        "auth_index",
        "method",
        "url",
    )
    reply = object_of(
        {
            "status_code": INTEGER,
            "header": {"type": "object", "additionalProperties": STRINGS},
            "body": STRING,
        }
    )
    return op(
        "HTTP call with a configured credential's token, to its own vendor endpoints only",
        "api-call",
        body=json_body(body),
        reply=reply,
        errors=[400, 403, 413, 502],
    )


def ops_paths() -> dict[str, dict[str, Any]]:
    definitions = object_of({"channel": STRING, "models": {"type": "array", "items": ENTRY}})
    channel = op(
        "Models a channel's accounts serve",
        "models",
        params=[path_param("channel", "codex, claude, gemini (or an alias)")],
        reply=definitions,
        errors=[400],
    )
    plugins = object_of({"plugins_enabled": BOOLEAN, "plugins_dir": STRING, "plugins": STRINGS})
    return {
        "/logs": _logs(),
        "/request-error-logs": {
            "get": op(
                "Error log files of failed requests, newest first (none while request-log is on)",
                "logs",
                reply=object_of({"files": {"type": "array", "items": ERROR_LOG_FILE}}, "files"),
            )
        },
        "/request-error-logs/{name}": {
            "get": _log_file(
                "One error log file (error-*.log)", [path_param("name", "an error-*.log name")]
            )
        },
        "/request-log-by-id": {
            "get": _log_file(
                "The log file of one request (?id=)",
                [query("id", STRING, required=True, about="the request id (8 hex)")],
            )
        },
        "/request-log-by-id/{id}": {
            "get": _log_file(
                "The log file of one request, by the id in its main-log lines",
                [path_param("id", "the request id (8 hex)")],
            )
        },
        **_request_logs(),
        "/latest-version": {
            "get": op(
                "The running version (never looked up online)",
                "meta",
                reply=object_of({"latest-version": STRING}),
            )
        },
        "/reset-quota": {"post": _reset_quota()},
        "/api-key-usage": {
            "get": op(
                "Request counts per config API key: {provider: {'<base-url>|<key>': counts}}",
                "usage",
                reply={"type": "object", "additionalProperties": ENTRY},
            )
        },
        "/model-definitions": {
            "get": op(
                "Models a channel's accounts serve (?channel=)",
                "models",
                params=[query("channel", STRING, required=True)],
                reply=definitions,
                errors=[400],
            )
        },
        "/model-definitions/{channel}": {"get": channel},
        "/plugins": {
            "get": op("Plugins (cliproxy loads none)", "meta", reply=plugins),
        },
        "/api-call": {"post": _api_call()},
    }
