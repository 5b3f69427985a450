"""The OpenAPI document of /v8/management (GET /v8/management/openapi.json).

An aliased route (v8_routes.ALIASES) takes the operation of the /v0 route whose handler
answers it, so a handler is described once for both trees; the config tree, the login and
import dispatchers and api-key-names are described here.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from cliproxy.auth.key_names import MAX_NAME, MAX_NAMES
from cliproxy.management.common import json_response
from cliproxy.management.openapi import build_document, v0_paths
from cliproxy.management.openapi_common import (
    BOOLEAN,
    ENTRY,
    STRING,
    error_response,
    json_body,
    object_of,
    op,
    path_param,
    query,
)
from cliproxy.management.v8_routes import (
    ALIASES,
    IMPORTERS,
    IMPORTS,
    LOGIN_STARTS,
    PLUGIN_INSTALL,
    PLUGIN_STORE,
    PREFIX,
)

ANY_JSON: dict[str, Any] = {"description": "any JSON value"}
WRITTEN = object_of(
    {
        "status": {"type": "string", "enum": ["ok"]},
        "generated-keys": {
            "type": "array",
            "items": object_of({"name": STRING, "key": STRING}),
            "description": "client keys made for client-keys entries sent without one",
        },
    },
    "status",
)
# A write through the config editor: 400 not JSON, 404 a path the layout does not have (or no
# config file on disk), 409 no config file at all, 413 too big, 422 a value the config refuses.
WRITE_ERRORS = (400, 404, 409, 413, 422)
NAMES = {
    "type": "object",
    "additionalProperties": {**STRING, "maxLength": MAX_NAME},
    "description": f"sha256 hex of the full key -> its name (at most {MAX_NAMES})",
}


def _config_paths(v0: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    key_path = path_param(
        "path",
        "a key path of the v8 layout, mapping keys separated by / "
        "(routing/retry/request-retry); %2F stands for a / inside a key",
    )
    whole = json_body({**ENTRY, "description": "the config in the v8 layout"})
    value = json_body(ANY_JSON)
    return {
        "/config": {
            "get": op("The live config as JSON in the v8 layout", "config", reply=ENTRY),
            "put": op(
                "Replace the config (management.secret-key is kept unless given)",
                "config",
                body=whole,
                reply=WRITTEN,
                errors=WRITE_ERRORS,
            ),
            "patch": op(
                "Merge into the config: objects merge, lists and values replace, null removes",
                "config",
                body=whole,
                reply=WRITTEN,
                errors=WRITE_ERRORS,
            ),
        },
        "/config.yaml": copy.deepcopy(v0["/config.yaml"]),
        "/config/{path}": {
            "get": op(
                "The value at a key path (404 not_found: a path the layout has, holding nothing)",
                "config",
                params=[key_path],
                reply=ANY_JSON,
            ),
            "put": op(
                "Replace the value at a key path (a bare JSON value)",
                "config",
                params=[key_path],
                body=value,
                reply=WRITTEN,
                errors=WRITE_ERRORS,
            ),
            "patch": op(
                "Merge into the value at a key path: objects merge, lists and values replace",
                "config",
                params=[key_path],
                body=value,
                reply=WRITTEN,
                errors=WRITE_ERRORS,
            ),
            "delete": op(
                "Remove the key at a key path (nothing there: nothing changes)",
                "config",
                params=[key_path],
                errors=(404, 409, 422),
            ),
        },
    }


def _login_paths(v0: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    starts = sorted(path[1:].removesuffix("-auth-url") for path in v0 if path.endswith("-auth-url"))
    provider = query(
        "provider",
        {"type": "string", "enum": starts},
        required=True,
        about="the login to start, as GET /v0/management/<provider>-auth-url",
    )
    params = [
        provider,
        query("is_webui", STRING, about="as the /v0 starters take it"),
        query("project_id", STRING, about="the Google Cloud project (Gemini)"),
    ]
    vertex = copy.deepcopy(v0["/vertex/import"]["post"])
    vertex["summary"] = "Import a credential file: " + vertex["summary"]
    vertex["parameters"] = [
        query("provider", {"type": "string", "enum": list(IMPORTERS)}, required=True),
        *vertex.get("parameters", []),
    ]
    for status in (400, 422):
        vertex["responses"].setdefault(str(status), error_response(status))
    return {
        LOGIN_STARTS: {
            "get": op(
                "Start a login: the URL (and a device login's user code) and the state to poll",
                "logins",
                params=params,
                reply=ENTRY,
                errors=[400, 422, 502],
            )
        },
        IMPORTS: {"post": vertex},
    }


def _access_paths() -> dict[str, dict[str, Any]]:
    names = object_of({"names": NAMES}, "names")
    return {
        "/access/api-key-names": {
            "get": op("Names of client keys, by the SHA-256 of the key", "access", reply=names),
            "patch": op(
                "Merge names (an empty name removes one; only_if_absent keeps names given)",
                "access",
                body=json_body(object_of({"names": NAMES, "only_if_absent": BOOLEAN}, "names")),
                reply=names,
                errors=[400, 409, 413, 422],
            ),
        }
    }


def _plugin_store_paths() -> dict[str, dict[str, Any]]:
    lists = {"type": "array", "items": {"type": "object"}, "maxItems": 0}
    store = object_of(
        {"plugins_enabled": BOOLEAN, "plugins_dir": STRING, "total": {"type": "integer"}}
        | {"sources": lists, "source_errors": lists, "plugins": lists}
    )
    install = op(
        "Install a plugin from the store (the store is empty: 404)",
        "meta",
        params=[
            path_param("id", "the plugin's id in the store"),
            query("source", STRING, about="the store source"),
            query("version", STRING, about="the version to install"),
        ],
        body=json_body(object_of({"version": STRING}), required=False),
        errors=[400, 404, 413, 422],
    )
    return {
        PLUGIN_STORE: {
            "get": op("The plugin store (cliproxy loads no plugins: empty)", "meta", reply=store)
        },
        PLUGIN_INSTALL: {"post": install},
    }


def v8_paths() -> dict[str, dict[str, Any]]:
    v0 = v0_paths()
    paths: dict[str, dict[str, Any]] = {}
    for path, method, v0_path in ALIASES:
        operation = copy.deepcopy(v0[v0_path][method.lower()])
        operation["x-cliproxy-v0"] = v0_path  # the same handler under its /v0 name
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        **paths,
        **_config_paths(v0),
        **_login_paths(v0),
        **_access_paths(),
        **_plugin_store_paths(),
    }


def serve(routes: Sequence[BaseRoute]) -> Callable[[Request], Awaitable[Response]]:
    document = build_document(routes, v8_paths(), PREFIX)

    async def openapi_json(request: Request) -> Response:
        return json_response(document)

    return openapi_json
