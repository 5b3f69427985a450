"""The OpenAPI 3 document of the management API, built from the same tables as the routes.

This module describes the config and key routes and assembles the document; the auth-file and
login routes are in openapi_auth.py, the operations routes in openapi_ops.py. A route that
none of them describes is still listed (tagged `undocumented`), so the served document names
every route; the tests require that no route ends up there.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cliproxy import __version__
from cliproxy.management.common import json_response
from cliproxy.management.openapi_ampcode import ampcode_paths
from cliproxy.management.openapi_auth import auth_file_paths, login_paths
from cliproxy.management.openapi_client_keys import client_key_paths
from cliproxy.management.openapi_common import (
    ENTRY,
    INTEGER,
    PROBLEM,
    STRING,
    STRINGS,
    Schema,
    json_body,
    object_of,
    op,
    query,
)
from cliproxy.management.openapi_ops import ops_paths
from cliproxy.management.openapi_usage import usage_paths
from cliproxy.management.routes_config import CHANNEL_MAPS, SCALARS
from cliproxy.management.routes_keys import SECTIONS

UNDOCUMENTED = "undocumented"
_KIND_SCHEMA: dict[type, Schema] = {bool: {"type": "boolean"}, int: INTEGER, str: STRING}
# Statuses of a write through ConfigEditor.edit: 409 without a config file, 422 when the
# result is not a valid config; reading the JSON body adds 400 (not JSON) and 413.
WRITE = (400, 409, 413, 422)
ITEMS_WRAPPER = 'a bare array, or the same array as {"items": [...]}'


def _list_body(items: Schema) -> Schema:
    array = {"type": "array", "items": items}
    return json_body({"oneOf": [array, object_of({"items": array}, "items", closed=True)]})


def _config_paths() -> dict[str, dict[str, Any]]:
    yaml_text = {"schema": STRING}
    paths: dict[str, dict[str, Any]] = {
        "/config": {
            "get": op(
                "The live config as JSON (no host/port/auth-dir/secret)", "config", reply=ENTRY
            )
        },
        "/config.yaml": {
            "get": op(
                "The config file as written",
                "config",
                reply_content={"application/yaml": yaml_text},
                errors=[404],
            ),
            "put": op(
                "Replace the config file (validated first; 400 bad YAML, 422 invalid config)",
                "config",
                body={
                    "required": True,
                    "content": {"application/yaml": yaml_text, "text/plain": yaml_text},
                },
                reply=object_of({"ok": {"type": "boolean"}, "changed": STRINGS}),
                errors=WRITE,
            ),
        },
        "/config.yaml/validate": {
            "post": op(
                "Check a whole config file as PUT /config.yaml would, without saving it "
                "(400 bad YAML, 422 invalid config, each with the line)",
                "config",
                body={
                    "required": True,
                    "content": {"application/yaml": yaml_text, "text/plain": yaml_text},
                },
                reply=object_of(
                    {
                        "ok": {"type": "boolean"},
                        "warnings": {"type": "array", "items": PROBLEM},
                        "unsupported": {"type": "array", "items": PROBLEM},
                        "management": {"type": "boolean"},
                    },
                    "ok",
                ),
                errors=(400, 413, 422),
            ),
        },
    }
    for scalar in SCALARS:
        value = _KIND_SCHEMA[scalar.kind]
        setter = op(
            f"Set {scalar.route}",
            "settings",
            body=json_body(object_of({"value": value}, "value")),
            errors=WRITE,
        )
        item = {
            "get": op(
                f"Read {scalar.route}", "settings", reply=object_of({scalar.json_key: value})
            ),
            "put": setter,
            "patch": setter,
        }
        if scalar.deletable:
            item["delete"] = op(f"Clear {scalar.route}", "settings", errors=[409, 422])
        paths[f"/{scalar.route}"] = item
    for spec in CHANNEL_MAPS:
        paths[f"/{spec.key}"] = _channel_map_item(spec.key, spec.items_field)
    return paths


def _channel_map_item(key: str, items_field: str) -> dict[str, Any]:
    row = STRING if items_field == "models" else object_of({"name": STRING, "alias": STRING})
    rows = {"type": "array", "items": row}
    channel_map = {"type": "object", "additionalProperties": rows}
    channel_params = [
        query("provider", STRING, about="the channel (codex, claude, gemini-cli, ...)"),
        query("channel", STRING, about="another name for provider"),
    ]
    return {
        "get": op(f"Read {key}", "oauth", reply=object_of({key: channel_map})),
        "put": op(
            f"Replace {key}: an object of channel → list (or it wrapped as {{items}})",
            "oauth",
            body=json_body(channel_map),
            errors=WRITE,
        ),
        "patch": op(
            f"Set one channel of {key}; an empty list removes it (404 when absent)",
            "oauth",
            body=json_body(object_of({"provider": STRING, "channel": STRING, items_field: rows})),
            errors=(*WRITE, 404),
        ),
        "delete": op(
            f"Remove one channel of {key}",
            "oauth",
            params=channel_params,
            errors=[400, 404, 409, 422],
        ),
    }


def _key_paths() -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {
        "/api-keys": {
            "get": op("Client API keys", "keys", reply=object_of({"api-keys": STRINGS})),
            "put": op(
                f"Replace the client API keys ({ITEMS_WRAPPER})",
                "keys",
                body=_list_body(STRING),
                errors=WRITE,
            ),
            "patch": op(
                "Replace one key ({index, value}) or {old, new} (appends when old is absent)",
                "keys",
                body=json_body(
                    object_of({"index": INTEGER, "value": STRING, "old": STRING, "new": STRING})
                ),
                errors=(*WRITE, 404),
            ),
            "delete": op(
                "Remove a key by ?index= or every key equal to ?value=",
                "keys",
                params=[query("index", INTEGER), query("value", STRING)],
                errors=[400, 404, 409, 422],
            ),
        }
    }
    for section in SECTIONS:
        paths[f"/{section.key}"] = _section_item(section.key, section.match_field)
    return paths


def _section_item(key: str, match_field: str) -> dict[str, Any]:
    match = "name" if match_field == "name" else "match"
    param = "name" if match_field == "name" else "api-key"
    base_url = query(
        "base-url", STRING, about="with api-key: only the entry with exactly this base-url"
    )
    entries = {"type": "array", "items": ENTRY}
    return {
        "get": op(
            f"{key} entries, each with its auth-index",
            "providers",
            reply=object_of({key: entries}),
        ),
        "put": op(
            f"Replace {key} ({ITEMS_WRAPPER})", "providers", body=_list_body(ENTRY), errors=WRITE
        ),
        "patch": op(
            f"Change fields of one {key} entry, picked by index or {match}; null removes a field",
            "providers",
            body=json_body(object_of({"index": INTEGER, match: STRING, "value": ENTRY}, "value")),
            params=[base_url],
            errors=(*WRITE, 404),
        ),
        "delete": op(
            f"Remove {key} entries by ?index= or ?{param}=",
            "providers",
            params=[query("index", INTEGER), query(param, STRING), base_url],
            errors=[400, 404, 409, 422],
        ),
    }


def _placeholder(method: str, path: str) -> dict[str, Any]:
    return op(f"{method} {path} (see docs/management-api.md)", UNDOCUMENTED, reply=ENTRY)


def template(route_path: str) -> str:
    """A route's path as an OpenAPI path template: `/config/{path:path}` is `/config/{path}`."""
    return re.sub(r"{(\w+):\w+}", r"{\1}", route_path)


def v0_paths() -> dict[str, dict[str, Any]]:
    """The described operations of /v0/management, by path and method."""
    return {
        **_config_paths(),
        **_key_paths(),
        **client_key_paths(),
        **auth_file_paths(),
        **login_paths(),
        **ops_paths(),
        **usage_paths(),
        **ampcode_paths(),
    }


def build_document(
    routes: Sequence[BaseRoute] = (),
    described: dict[str, dict[str, Any]] | None = None,
    server: str = "/v0/management",
) -> dict[str, Any]:
    """The document of the tree at ``server`` (``described``: its operations, by default
    /v0's). Every route of `routes` missing from them is added by path and method only
    (tagged `undocumented`)."""
    paths = v0_paths() if described is None else dict(described)
    paths["/openapi.json"] = {"get": op("This document", "meta", reply=ENTRY)}
    for route in routes:
        if not isinstance(route, Route) or not route.methods:
            continue
        path = template(route.path)
        item = paths.setdefault(path, {})
        for method in sorted(route.methods - {"HEAD"}):
            item.setdefault(method.lower(), _placeholder(method, path))
    return {
        "openapi": "3.0.3",
        "info": {"title": "cliproxy management API", "version": __version__},
        "servers": [{"url": server}],
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
