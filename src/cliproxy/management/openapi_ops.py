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
