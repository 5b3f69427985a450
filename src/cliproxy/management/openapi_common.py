"""Building blocks of the management OpenAPI document: shared schemas and the operation builder.

Every operation lists the statuses its handler really answers (no catch-all `default`), so
the fuzz test can hold the routes to them; 401/403 come from the guard in front of all routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Schema = dict[str, Any]

JSON = "application/json"
STRING: Schema = {"type": "string"}
STRINGS: Schema = {"type": "array", "items": STRING}
BOOLEAN: Schema = {"type": "boolean"}
INTEGER: Schema = {"type": "integer"}
ENTRY: Schema = {"type": "object", "additionalProperties": True}
OK_SCHEMA: Schema = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ok"]}},
    "required": ["status"],
}
NULLABLE_INTEGER: Schema = {"type": "integer", "nullable": True}
# A place in config.yaml (1-based line, null when it has none), its key path (as `key` and as
# `field`, the name every other refusal gives the refused value) and what is wrong there.
PROBLEM: Schema = {
    "type": "object",
    "properties": {"line": NULLABLE_INTEGER, "key": STRING, "field": STRING, "message": STRING},
}
PROBLEM_SCHEMA = PROBLEM
# `{"error": message}`, or `{"error": code, "message": message}`; batch refusals add `failed`;
# a refused value adds `field` (its path, `claude-api-key[0].base-url`); config.yaml refusals
# `line` (and `column` for YAML syntax), and a config that does not validate `problems`.
ERROR_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "error": STRING,
        "message": STRING,
        "field": STRING,
        "problems": {"type": "array", "items": PROBLEM_SCHEMA},
        "failed": {"type": "array", "items": ENTRY},
        "line": NULLABLE_INTEGER,
        "column": NULLABLE_INTEGER,
    },
    "required": ["error"],
}
# Query flags the routes read as words ("true", "1", "yes", ...), not only JSON booleans.
FLAG: Schema = {"type": "string", "example": "true"}

ERROR_DESCRIPTIONS = {
    400: "the body is not JSON, or a required parameter is missing or malformed",
    401: "no management key, or a wrong one",
    403: "refused: remote client without allow-remote, locked out, or a forbidden target",
    404: "not found",
    409: "conflict: no config file to write, or the item is in a state that forbids this",
    413: "the body is larger than the route accepts",
    422: "JSON of the wrong shape, or values that do not validate (the message names the field)",
    502: "the upstream the route had to reach failed",
    503: "the usage database could not be opened (the message names it)",
}
GUARD_STATUSES = (401, 403)


def json_body(schema: Schema, *, required: bool = True) -> Schema:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def object_of(properties: dict[str, Schema], *required: str, closed: bool = False) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def query(name: str, schema: Schema, *, required: bool = False, about: str = "") -> Schema:
    param: Schema = {"name": name, "in": "query", "required": required, "schema": schema}
    if about:
        param["description"] = about
    return param


def path_param(name: str, about: str = "") -> Schema:
    param: Schema = {"name": name, "in": "path", "required": True, "schema": STRING}
    if about:
        param["description"] = about
    return param


def error_response(status: int) -> Schema:
    return {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {JSON: {"schema": ERROR_SCHEMA}},
    }


def op(
    summary: str,
    tag: str,
    *,
    reply: Schema | None = None,
    errors: Iterable[int] = (),
    body: Schema | None = None,
    params: Sequence[Schema] = (),
    replies: dict[int, Schema] | None = None,
    reply_content: dict[str, Schema] | None = None,
) -> Schema:
    """One operation. `reply` is the 200 JSON schema (default `{"status": "ok"}`), or
    `reply_content` the whole 200 content map; `replies` adds other success statuses (207)
    with their JSON schema; `errors` the refusal statuses besides the guard's."""
    content = reply_content or {JSON: {"schema": reply or OK_SCHEMA}}
    responses: dict[str, Schema] = {"200": {"description": "success", "content": content}}
    for status, schema in (replies or {}).items():
        responses[str(status)] = {
            "description": "partial success",
            "content": {JSON: {"schema": schema}},
        }
    refusals = {*errors, *GUARD_STATUSES}
    if any(p.get("in") == "path" for p in params):
        # A path value the router cannot match (a newline, a "/") reaches no route at all.
        refusals.add(404)
    for status in sorted(refusals):
        responses[str(status)] = error_response(status)
    operation: Schema = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = body
    return operation
