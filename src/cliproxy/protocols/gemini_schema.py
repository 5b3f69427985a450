"""Schema dialect conversions for Gemini.

Gemini's ``parameters`` / ``responseSchema`` take an OpenAPI 3.0 subset, not full JSON Schema:
no ``$ref``, ``const``, ``additionalProperties``, type arrays, and only a few ``format`` values.
``to_gemini_schema`` rewrites a canonical JSON Schema into that subset; ``to_json_schema`` turns a
Gemini schema (upper-case types, ``nullable``) back into plain JSON Schema for the canonical model.
Both are pure functions on plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cliproxy.model import MAX_JSON_DEPTH, invalid
from cliproxy.model.json_limits import nested_deeper_than

JSONSchema = dict[str, Any]

# Keywords of Gemini's Schema message; everything else is dropped.
_GEMINI_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)

# Gemini rejects other formats ("only 'enum' and 'date-time' are supported for STRING type").
_FORMATS_BY_TYPE = {
    "string": {"enum", "date-time"},
    "integer": {"int32", "int64"},
    "number": {"float", "double"},
}

# Deep or self-referencing $ref chains are cut here rather than expanded forever.
_MAX_REF_DEPTH = 8
# Inlining copies a definition at every use, so a few definitions that each name the next
# several times grow exponentially: once this many schema nodes are written, the remaining
# references are cut the same way (real schemas, inlined, have a few hundred).
_MAX_NODES = 10_000
_DEEP = (
    f"a tool's parameters schema is nested more than {MAX_JSON_DEPTH} levels deep once its "
    "$ref references are inlined (the proxy's limit)"
)


@dataclass(slots=True)
class _Inlining:
    definitions: dict[str, Any]
    nodes_left: int = _MAX_NODES


def to_gemini_schema(schema: Any) -> JSONSchema:
    """A JSON Schema rewritten for Gemini's ``parameters`` dialect (the input is not modified).

    The client's JSON is at most MAX_JSON_DEPTH deep and without references the result is no
    deeper; inlined references can make it deeper, which is refused (400) rather than left to
    fail when the request is written or to exhaust the recursion here."""
    if not isinstance(schema, dict):
        return {}
    definitions: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            definitions.update(schema[key])
    out = _clean(schema, _Inlining(definitions), 0, 0)
    if definitions and nested_deeper_than(out):
        raise invalid(_DEEP)  # a deep keyword value (an example, a default) inlined deep
    return out


def _resolve_ref(ref: str, definitions: dict[str, Any]) -> Any:
    # Only local references (#/$defs/Name, #/definitions/Name) can be inlined.
    name = ref.rsplit("/", 1)[-1]
    return definitions.get(name) if ref.startswith("#/") else None


def _clean(schema: Any, inlining: _Inlining, depth: int, level: int) -> JSONSchema:
    """``schema`` cleaned; ``depth`` counts the references inlined on the way here, ``level``
    the JSON nesting of the result inside the top schema."""
    if not isinstance(schema, dict):
        return {}  # `true` / `false` schemas: anything goes
    if level > MAX_JSON_DEPTH:
        raise invalid(_DEEP)
    inlining.nodes_left -= 1
    if "$ref" in schema:
        target = _resolve_ref(str(schema["$ref"]), inlining.definitions)
        if target is None or depth >= _MAX_REF_DEPTH or inlining.nodes_left <= 0:
            return {"type": "object"} if target is not None else {}
        # Sibling keywords (description next to $ref) override the referenced ones.
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _clean(merged, inlining, depth + 1, level)

    schema = _merge_all_of(schema)
    out: JSONSchema = {}
    nullable = bool(schema.get("nullable"))

    raw_type = schema.get("type")
    if isinstance(raw_type, list):
        types = [str(t).lower() for t in raw_type if t != "null"]
        nullable = nullable or "null" in raw_type
        if len(types) == 1:
            out["type"] = types[0]
        elif types:
            out["anyOf"] = [{"type": t} for t in types]
    elif isinstance(raw_type, str) and raw_type.lower() != "null":
        out["type"] = raw_type.lower()
    elif raw_type == "null":
        nullable = True

    variants = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(variants, list):
        cleaned = []
        for variant in variants:
            if isinstance(variant, dict) and variant.get("type") == "null":
                nullable = True
                continue
            cleaned.append(_clean(variant, inlining, depth, level + 2))
        if len(cleaned) == 1 and "type" not in out:
            out.update(cleaned[0])  # anyOf [X, null] is just a nullable X
        elif cleaned:
            out["anyOf"] = cleaned

    if "const" in schema:
        schema = {**schema, "enum": [schema["const"]]}
    enum = schema.get("enum")
    if isinstance(enum, list):
        values = [v for v in enum if v is not None]
        nullable = nullable or len(values) < len(enum)
        # Gemini enums are string-only; a numeric enum is left to the type alone.
        if values and all(isinstance(v, str) for v in values):
            out["enum"] = values
            out.setdefault("type", "string")

    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        out["properties"] = {
            str(name): _clean(sub, inlining, depth, level + 2) for name, sub in properties.items()
        }
        out.setdefault("type", "object")
        required = schema.get("required")
        if isinstance(required, list):
            # A required name without a property is a 400 for Gemini.
            kept = [name for name in required if name in properties]
            if kept:
                out["required"] = kept

    items = schema.get("items")
    if isinstance(items, list):  # tuple validation has no equivalent; keep the first shape
        items = items[0] if items else None
    if isinstance(items, dict):
        out["items"] = _clean(items, inlining, depth, level + 1)
        out.setdefault("type", "array")

    for key in _GEMINI_KEYWORDS - {"type", "anyOf", "enum", "properties", "required", "items"}:
        if key in schema and key != "nullable":
            out[key] = schema[key]

    fmt = out.get("format")
    if fmt is not None and fmt not in _FORMATS_BY_TYPE.get(str(out.get("type")), set()):
        del out["format"]
    if nullable:
        out["nullable"] = True
    return out


def _merge_all_of(schema: JSONSchema) -> JSONSchema:
    """Fold ``allOf`` members into one schema (properties and required lists are unioned)."""
    members = schema.get("allOf")
    if not isinstance(members, list):
        return schema
    merged: JSONSchema = {k: v for k, v in schema.items() if k != "allOf"}
    for member in members:
        if not isinstance(member, dict):
            continue
        for key, value in member.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def to_json_schema(schema: Any) -> JSONSchema:
    """A Gemini (OpenAPI subset) schema as plain JSON Schema: lower-case types, ``nullable`` as a
    ``"null"`` type member, Gemini-only keywords dropped. Plain JSON Schema passes through."""
    if not isinstance(schema, dict):
        return {}
    out: JSONSchema = {}
    for key, value in schema.items():
        if key in ("nullable", "propertyOrdering"):
            continue
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "format" and value == "enum":
            continue  # implied by `enum` in JSON Schema
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out["items"] = to_json_schema(value)
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [to_json_schema(sub) for sub in value]
        else:
            out[key] = value
    if schema.get("nullable") is True:
        current = out.get("type")
        if isinstance(current, str):
            out["type"] = [current, "null"]
        elif "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out
