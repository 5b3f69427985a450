"""`/v0/management/ampcode...`: the Amp settings (config/ampcode.py), read from the live config
and written into the file's `ampcode:` block (docs/amp.md).

A write also drops the legacy top-level key of the same setting (`amp-upstream-url`, ...), so
the file says it once. Values are checked here for shape; the config check then names any
bad value by its path (422).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ruamel.yaml.comments import CommentedMap
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cliproxy.config.ampcode import AmpCode
from cliproxy.management.common import (
    OK,
    ApiError,
    api,
    context,
    crud_routes,
    invalid,
    json_response,
    read_json,
    read_object,
    type_name,
)
from cliproxy.management.routes_config import ensure_map, live_config

_LEGACY = {
    "upstream-url": "amp-upstream-url",
    "upstream-api-key": "amp-upstream-api-key",
    "model-mappings": "amp-model-mappings",
    "restrict-management-to-localhost": "amp-restrict-management-to-localhost",
}


def _effective(request: Request) -> dict[str, Any]:
    amp = live_config(request).amp or AmpCode()
    shown: dict[str, Any] = amp.model_dump(mode="json", by_alias=True, exclude_none=True)
    shown["enabled"] = live_config(request).amp is not None
    return shown


async def _write(request: Request, key: str, value: Any) -> None:
    """Set (or, for None, remove) `ampcode.<key>`, dropping its legacy spelling."""

    def mutate(tree: CommentedMap) -> None:
        legacy = _LEGACY.get(key)
        if legacy is not None and legacy in tree:
            del tree[legacy]
        block = ensure_map(tree, "ampcode")
        if value is None:
            block.pop(key, None)
        else:
            block[key] = value

    await context(request).editor.edit(mutate)


@api
async def get_ampcode(request: Request) -> Response:
    return json_response({"ampcode": _effective(request)})


def _value(body: dict[str, Any], kind: type, where: str) -> Any:
    if "value" not in body:
        raise invalid("value: is required")
    value = body["value"]
    if not isinstance(value, kind):
        word = "a boolean" if kind is bool else "a string"
        raise invalid(f"value: {where} must be {word} (got {type_name(value)})")
    return value.strip() if isinstance(value, str) else value


def _scalar_routes(key: str, kind: type, deletable: bool) -> list[Route]:
    @api
    async def get_value(request: Request) -> Response:
        return json_response({key: _effective(request).get(key)})

    @api
    async def set_value(request: Request) -> Response:
        await _write(request, key, _value(await read_object(request), kind, key))
        return json_response(OK)

    @api
    async def clear_value(request: Request) -> Response:
        await _write(request, key, None)
        return json_response(OK)

    routes = [
        Route(f"/ampcode/{key}", get_value, methods=["GET"]),
        Route(f"/ampcode/{key}", set_value, methods=["PUT", "PATCH"]),
    ]
    if deletable:
        routes.append(Route(f"/ampcode/{key}", clear_value, methods=["DELETE"]))
    return routes


def _items(body: Any, where: str) -> list[dict[str, Any]]:
    """A list of objects: the body itself, or its `value` / `items` field."""
    if isinstance(body, dict):
        body = body.get("value", body.get("items"))
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise invalid(f"value: {where} must be an array of objects")
    return body


def _names(request: Request, body: Any, field: str) -> list[str] | None:
    """Which entries a DELETE names (query `field`, or a body `value` list); None: all."""
    if request.query_params.get(field):
        return [request.query_params[field].strip()]
    if isinstance(body, dict):
        body = body.get("value")
    if body is None:
        return None
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise invalid(f"value: must be an array of {field} strings")
    return [item.strip() for item in body]


def _list_routes(
    key: str, ident: str, clean: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[Route]:
    def current(request: Request) -> list[dict[str, Any]]:
        # As the file would write them (no defaults such as `regex: false`).
        return [clean(row) for row in _effective(request).get(key) or []]

    @api
    async def get_list(request: Request) -> Response:
        return json_response({key: current(request)})

    @api
    async def put_list(request: Request) -> Response:
        rows = [clean(item) for item in _items(await read_json(request), key)]
        await _write(request, key, rows)
        return json_response(OK)

    @api
    async def patch_list(request: Request) -> Response:
        new = [clean(item) for item in _items(await read_json(request), key)]
        rows = {str(row.get(ident)): row for row in current(request)}
        rows.update({str(row[ident]): row for row in new})
        await _write(request, key, list(rows.values()))
        return json_response(OK)

    @api
    async def delete_items(request: Request) -> Response:
        raw = await request.body()
        body = await read_json(request) if raw.strip() else None
        names = _names(request, body, ident)
        rows = current(request)
        if names is None:
            await _write(request, key, [])
            return json_response(OK)
        kept = [row for row in rows if row.get(ident) not in names]
        if len(kept) == len(rows):
            raise ApiError(404, None, f"no {key} entry with that {ident}")
        await _write(request, key, kept)
        return json_response(OK)

    return crud_routes(f"/ampcode/{key}", get_list, put_list, patch_list, delete_items)


def _mapping(item: dict[str, Any]) -> dict[str, Any]:
    for name in ("from", "to"):
        if not isinstance(item.get(name), str) or not item[name].strip():
            raise invalid(f"value: model-mappings entries need {name} (a string)")
    row = {"from": item["from"].strip(), "to": item["to"].strip()}
    if item.get("regex") is True:
        row["regex"] = True
    return row


def _upstream_key(item: dict[str, Any]) -> dict[str, Any]:
    key = item.get("upstream-api-key")
    if not isinstance(key, str) or not key.strip():
        raise invalid("value: upstream-api-keys entries need upstream-api-key (a string)")
    clients = item.get("api-keys", [])
    if not isinstance(clients, list) or not all(isinstance(c, str) for c in clients):
        raise invalid("value: upstream-api-keys entries' api-keys must be an array of strings")
    return {"upstream-api-key": key.strip(), "api-keys": [c.strip() for c in clients]}


# (key, kind, deletable) and (key, the field naming an entry, its check): the routes and
# their OpenAPI description (openapi_ampcode.py) are built from these.
SCALARS: tuple[tuple[str, type, bool], ...] = (
    ("upstream-url", str, True),
    ("upstream-api-key", str, True),
    ("restrict-management-to-localhost", bool, False),
    ("force-model-mappings", bool, False),
)
LISTS: tuple[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]]], ...] = (
    ("model-mappings", "from", _mapping),
    ("upstream-api-keys", "upstream-api-key", _upstream_key),
)

ROUTES: list[Route] = [
    Route("/ampcode", get_ampcode, methods=["GET"]),
    *(route for key, kind, deletable in SCALARS for route in _scalar_routes(key, kind, deletable)),
    *(route for key, ident, clean in LISTS for route in _list_routes(key, ident, clean)),
]
