"""The OpenAPI 3 document of the management API, built from the same tables as the routes.

Routes this module has no schema for (auth files, written elsewhere) are still listed, with
their methods, so the document names every route that exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cliproxy import __version__
from cliproxy.management.common import json_response
from cliproxy.management.routes_config import CHANNEL_MAPS, SCALARS
from cliproxy.management.routes_keys import SECTIONS

JSON = "application/json"
_KIND_SCHEMA = {bool: {"type": "boolean"}, int: {"type": "integer"}, str: {"type": "string"}}
OK_SCHEMA = {"type": "object", "properties": {"status": {"type": "string"}}}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error"],
}
ENTRY = {"type": "object", "additionalProperties": True}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _op(
    summary: str,
    tag: str,
    *,
    body: dict[str, Any] | None = None,
    params: Sequence[tuple[str, dict[str, Any]]] = (),
    reply: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            "200": {"description": "success", "content": {JSON: {"schema": reply or OK_SCHEMA}}},
            "default": {"description": "error", "content": {JSON: {"schema": ERROR_SCHEMA}}},
        },
    }
    if body is not None:
        operation["requestBody"] = body
    if params:
        operation["parameters"] = [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in params
        ]
    return operation


def _object_of(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: schema}}


def _config_paths() -> dict[str, dict[str, Any]]:
    yaml_text = {"schema": {"type": "string"}}
    paths: dict[str, dict[str, Any]] = {
        "/config": {
            "get": _op(
                "The live config as JSON (no host/port/auth-dir/secret)", "config", reply=ENTRY
            )
        },
        "/config.yaml": {
            "get": _op("The config file as written", "config", reply={"type": "string"}),
            "put": _op(
                "Replace the config file (validated first; 400 bad YAML, 422 invalid config)",
                "config",
                body={
                    "required": True,
                    "content": {"application/yaml": yaml_text, "text/plain": yaml_text},
                },
                reply={"type": "object", "properties": {"ok": {"type": "boolean"}}},
            ),
        },
    }
    for scalar in SCALARS:
        value = _KIND_SCHEMA[scalar.kind]
        setter = _op(
            f"Set {scalar.route}",
            "settings",
            body=_json_body(
                {"type": "object", "properties": {"value": value}, "required": ["value"]}
            ),
        )
        item = {
            "get": _op(
                f"Read {scalar.route}", "settings", reply=_object_of(scalar.json_key, value)
            ),
            "put": setter,
            "patch": setter,
        }
        if scalar.deletable:
            item["delete"] = _op(f"Clear {scalar.route}", "settings")
        paths[f"/{scalar.route}"] = item
    for spec in CHANNEL_MAPS:
        row = {"type": "string"} if spec.items_field == "models" else ENTRY
        channel_map = {"type": "object", "additionalProperties": {"type": "array", "items": row}}
        paths[f"/{spec.key}"] = {
            "get": _op(f"Read {spec.key}", "oauth", reply=_object_of(spec.key, channel_map)),
            "put": _op(f"Replace {spec.key}", "oauth", body=_json_body(channel_map)),
            "patch": _op(
                f"Set or remove one channel of {spec.key}",
                "oauth",
                body=_json_body(
                    {
                        "type": "object",
                        "properties": {
                            "provider": {"type": "string"},
                            "channel": {"type": "string"},
                            spec.items_field: {"type": "array", "items": row},
                        },
                    }
                ),
            ),
            "delete": _op(
                f"Remove one channel of {spec.key}",
                "oauth",
                params=[("provider", {"type": "string"}), ("channel", {"type": "string"})],
            ),
        }
    return paths


def _key_paths() -> dict[str, dict[str, Any]]:
    strings = {"type": "array", "items": {"type": "string"}}
    paths: dict[str, dict[str, Any]] = {
        "/api-keys": {
            "get": _op("Client API keys", "keys", reply=_object_of("api-keys", strings)),
            "put": _op("Replace the client API keys", "keys", body=_json_body(strings)),
            "patch": _op(
                "Replace one key ({index, value}) or {old, new} (appends when old is absent)",
                "keys",
                body=_json_body(
                    {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "value": {"type": "string"},
                            "old": {"type": "string"},
                            "new": {"type": "string"},
                        },
                    }
                ),
            ),
            "delete": _op(
                "Remove a key by ?index= or every key equal to ?value=",
                "keys",
                params=[("index", {"type": "integer"}), ("value", {"type": "string"})],
            ),
        }
    }
    for section in SECTIONS:
        match = section.match_field if section.match_field == "name" else "match"
        param = section.match_field
        entries = {"type": "array", "items": ENTRY}
        paths[f"/{section.key}"] = {
            "get": _op(
                f"{section.key} entries with auth-index",
                "providers",
                reply=_object_of(section.key, entries),
            ),
            "put": _op(f"Replace {section.key}", "providers", body=_json_body(entries)),
            "patch": _op(
                f"Change fields of one {section.key} entry",
                "providers",
                body=_json_body(
                    {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            match: {"type": "string"},
                            "value": ENTRY,
                        },
                        "required": ["value"],
                    }
                ),
            ),
            "delete": _op(
                f"Remove {section.key} entries by ?index= or ?{param}=",
                "providers",
                params=[
                    ("index", {"type": "integer"}),
                    (param, {"type": "string"}),
                    ("base-url", {"type": "string"}),
                ],
            ),
        }
    return paths


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _ops_paths() -> dict[str, dict[str, Any]]:
    """Operations (routes_ops.py): logs, version, cooldown reset, usage, models, api-call."""
    strings = {"type": "array", "items": {"type": "string"}}
    logs = {
        "type": "object",
        "properties": {
            "lines": strings,
            "line-count": {"type": "integer"},
            "latest-timestamp": {"type": "integer"},
            "next-cursor": {"type": "string"},
            "cursor-reset": {"type": "boolean"},
        },
    }
    files = _object_of("files", {"type": "array", "items": ENTRY})
    positive = {"type": "integer", "minimum": 1}
    call_body = {
        "type": "object",
        "properties": {
            "auth_index": {"type": "string"},
            "method": {"type": "string", "enum": ["GET", "POST"]},
            "url": {"type": "string"},
            "header": {"type": "object", "additionalProperties": {"type": "string"}},
            "data": {"type": "string"},
        },
        "required": ["auth_index", "method", "url"],
    }
    call_reply = {
        "type": "object",
        "properties": {
            "status_code": {"type": "integer"},
            "header": {"type": "object", "additionalProperties": strings},
            "body": {"type": "string"},
        },
    }
    definitions = {
        "type": "object",
        "properties": {"channel": {"type": "string"}, "models": {"type": "array", "items": ENTRY}},
    }
    by_id = _op("Request log by id (none are written: 404)", "logs")
    by_id["parameters"] = [_path_param("id")]
    error_file = _op("One request error log (none are written: 404)", "logs")
    error_file["parameters"] = [_path_param("name")]
    channel = _op("Models a channel's accounts serve", "models", reply=definitions)
    channel["parameters"] = [_path_param("channel")]
    return {
        "/logs": {
            "get": _op(
                "Tail of the in-memory log; cursor paging",
                "logs",
                params=[
                    ("limit", positive),
                    ("after", {"type": "integer"}),
                    ("cursor", {"type": "string"}),
                ],
                reply=logs,
            ),
            "delete": _op("Clear the in-memory log", "logs", reply=ENTRY),
        },
        "/request-error-logs": {
            "get": _op("Request error log files (always none)", "logs", reply=files)
        },
        "/request-error-logs/{name}": {"get": error_file},
        "/request-log-by-id/{id}": {"get": by_id},
        "/latest-version": {
            "get": _op(
                "The running version (never looked up online)",
                "meta",
                reply=_object_of("latest-version", {"type": "string"}),
            )
        },
        "/reset-quota": {
            "post": _op(
                "End cooldowns: {all: true}, or one credential ({auth_index|name, model?})",
                "quota",
                body=_json_body(
                    {
                        "type": "object",
                        "properties": {
                            "all": {"type": "boolean"},
                            "auth_index": {"type": "string"},
                            "name": {"type": "string"},
                            "model": {"type": "string"},
                        },
                    }
                ),
                reply=ENTRY,
            )
        },
        "/api-key-usage": {
            "get": _op("Request counts per config API key, by provider", "usage", reply=ENTRY)
        },
        "/model-definitions": {
            "get": _op(
                "Models a channel's accounts serve (?channel=)",
                "models",
                params=[("channel", {"type": "string"})],
                reply=definitions,
            )
        },
        "/model-definitions/{channel}": {"get": channel},
        "/api-call": {
            "post": _op(
                "HTTP call with a credential's token, to its own vendor endpoints only",
                "api-call",
                body=_json_body(call_body),
                reply=call_reply,
            )
        },
    }


def build_document(extra_routes: Sequence[BaseRoute] = ()) -> dict[str, Any]:
    """The document; `extra_routes` adds routes described only by path and method."""
    paths = {**_config_paths(), **_key_paths(), **_ops_paths()}
    paths["/openapi.json"] = {"get": _op("This document", "meta", reply=ENTRY)}
    for route in extra_routes:
        if not isinstance(route, Route) or route.path in paths or not route.methods:
            continue
        item = paths.setdefault(route.path, {})
        for method in sorted(route.methods - {"HEAD"}):
            item[method.lower()] = _op(
                f"{method} {route.path} (see docs/management-api.md)", "auth-files"
            )
    return {
        "openapi": "3.0.3",
        "info": {"title": "cliproxy management API", "version": __version__},
        "servers": [{"url": "/v0/management"}],
        "security": [{"bearer": []}, {"managementKey": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "managementKey": {"type": "apiKey", "in": "header", "name": "X-Management-Key"},
            }
        },
        "paths": paths,
    }


def serve(routes: Sequence[BaseRoute]) -> Callable[[Request], Awaitable[Response]]:
    document = build_document(routes)

    async def openapi_json(request: Request) -> Response:
        return json_response(document)

    return openapi_json
