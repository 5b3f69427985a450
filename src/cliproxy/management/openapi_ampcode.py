"""The OpenAPI description of `/ampcode...` (management/routes_ampcode.py)."""

from __future__ import annotations

from typing import Any

from cliproxy.management.openapi_common import (
    BOOLEAN,
    ENTRY,
    STRING,
    STRINGS,
    Schema,
    json_body,
    object_of,
    op,
    query,
)
from cliproxy.management.routes_ampcode import LISTS, SCALARS

WRITE = (400, 409, 413, 422)
_ENTRIES: dict[str, Schema] = {
    "model-mappings": object_of({"from": STRING, "to": STRING, "regex": BOOLEAN}, "from", "to"),
    "upstream-api-keys": object_of(
        {"upstream-api-key": STRING, "api-keys": STRINGS}, "upstream-api-key"
    ),
}


def _scalar(key: str, kind: type, deletable: bool) -> dict[str, Any]:
    schema = BOOLEAN if kind is bool else STRING
    body = json_body(object_of({"value": schema}, "value"))
    write = op(f"Set ampcode.{key}", "ampcode", body=body, errors=WRITE)
    item = {
        "get": op(f"ampcode.{key} as in force", "ampcode", reply=object_of({key: schema})),
        "put": write,
        "patch": write,
    }
    if deletable:
        item["delete"] = op(f"Remove ampcode.{key}", "ampcode", errors=[409, 422])
    return item


def _list(key: str, ident: str) -> dict[str, Any]:
    array = {"type": "array", "items": _ENTRIES[key]}
    body = json_body({"oneOf": [array, object_of({"value": array}, "value")]})
    names = json_body(object_of({"value": STRINGS}), required=False)
    return {
        "get": op(f"ampcode.{key}", "ampcode", reply=object_of({key: array})),
        "put": op(f"Replace ampcode.{key}", "ampcode", body=body, errors=WRITE),
        "patch": op(
            f"Add or change ampcode.{key} entries (matched by {ident})",
            "ampcode",
            body=body,
            errors=WRITE,
        ),
        "delete": op(
            f"Remove ampcode.{key} entries by ?{ident}= or a body {{value: [...]}}; "
            "neither removes them all",
            "ampcode",
            params=[query(ident, STRING)],
            body=names,
            errors=(*WRITE, 404),
        ),
    }


def ampcode_paths() -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {
        "/ampcode": {
            "get": op(
                "The Amp settings in force (legacy amp-* keys filled in) and whether Amp is on",
                "ampcode",
                reply=object_of({"ampcode": ENTRY}),
            )
        }
    }
    for key, kind, deletable in SCALARS:
        paths[f"/ampcode/{key}"] = _scalar(key, kind, deletable)
    for key, ident, _clean in LISTS:
        paths[f"/ampcode/{key}"] = _list(key, ident)
    return paths
