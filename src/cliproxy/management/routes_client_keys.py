"""`client-keys`: client keys with a name and a policy (config/client_keys.py).

GET lists them with the key masked (``sk-t…ab12``). PUT replaces the list, PATCH changes one
entry (by `index` or `name`) or, for a name not listed yet, adds it; DELETE removes one (by
`?index=` or `?name=`). An entry sent without a key (or with `"key": ""`) gets a new random one
(``sk-`` + 32 random bytes, URL-safe); the reply shows each new key in full under
`generated-keys`, the only time it is shown. A masked key sent back as GET showed it (the
Management Center echoes lists) keeps the key it stands for. Every write goes through the
config editor: validated as a whole config (errors name the entry index and the field),
written with the file's comments kept, applied live.
"""

from __future__ import annotations

import secrets
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cliproxy.config.client_keys import ClientKey
from cliproxy.management.common import (
    OK,
    ApiError,
    api,
    context,
    crud_routes,
    invalid,
    json_response,
    query_int,
    read_json,
    read_object,
)
from cliproxy.management.routes_config import live_config
from cliproxy.management.routes_keys import section_seq, unwrap_items
from cliproxy.providers.base import mask_secret

SECTION = "client-keys"
NOT_FOUND = ApiError(404, None, "item not found")
# The entry's fields in the file's order.
FIELDS = tuple(
    field.alias or name.replace("_", "-") for name, field in ClientKey.model_fields.items()
)


def new_key() -> str:
    return "sk-" + secrets.token_urlsafe(32)


def listed(entry: ClientKey) -> dict[str, Any]:
    row = entry.model_dump(mode="json", by_alias=True, exclude_none=True)
    row["key"] = mask_secret(entry.key)
    return {"name": row.pop("name"), "key": row.pop("key"), **row}


def _named(entries: CommentedSeq, name: str) -> list[int]:
    """Positions of the entries called ``name`` (names are unique ignoring case)."""
    folded = name.casefold()
    return [i for i, entry in enumerate(entries) if _text(entry, "name").casefold() == folded]


def _text(entry: Any, name: str) -> str:
    value = entry.get(name) if isinstance(entry, dict) else None
    return value.strip() if isinstance(value, str) else ""


def _is_masked(key: str) -> bool:
    return "…" in key or (bool(key) and set(key) == {"*"})


class KeyFiller:
    """Fills in the keys of entries being written: kept for a masked echo, new when absent."""

    def __init__(self, existing: list[Any]) -> None:
        self.existing = [entry for entry in existing if isinstance(entry, dict)]
        self.generated: list[dict[str, str]] = []

    def resolve(self, entry: dict[str, Any], where: str) -> None:
        key = entry.get("key")
        if key is None or (isinstance(key, str) and not key.strip()):
            entry["key"] = new_key()
            self.generated.append({"name": _text(entry, "name"), "key": entry["key"]})
            return
        if not isinstance(key, str) or not _is_masked(key.strip()):
            return
        name = _text(entry, "name").casefold()
        matches = [
            _text(old, "key")
            for old in self.existing
            if _text(old, "key") and mask_secret(_text(old, "key")) == key.strip()
        ]
        same_name = [
            _text(old, "key")
            for old in self.existing
            if _text(old, "name").casefold() == name and _text(old, "key") in matches
        ]
        found = same_name or (matches if len(matches) == 1 else [])
        if not found:
            raise invalid(
                f"{where}.key: {key!r} is a masked key that stands for no listed key; send the "
                "full key, or leave it out to have one generated"
            )
        entry["key"] = found[0]

    def reply(self) -> Response:
        if not self.generated:
            return json_response(OK)
        return json_response({**OK, "generated-keys": self.generated})


def _entry(item: Any, where: str) -> dict[str, Any]:
    """A body entry as it will be written: known fields only, in order, nulls dropped."""
    if not isinstance(item, dict):
        raise invalid(f"{where}: must be an object")
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise invalid(f"{where}.{unknown[0]}: unknown field (known: {', '.join(FIELDS)})")
    entry: dict[str, Any] = {}
    for name in FIELDS:
        value = item.get(name)
        if value is not None:
            entry[name] = value.strip() if isinstance(value, str) else value
    return entry


@api
async def get_client_keys(request: Request) -> Response:
    return json_response({SECTION: [listed(entry) for entry in live_config(request).client_keys]})


@api
async def put_client_keys(request: Request) -> Response:
    body = unwrap_items(await read_json(request), SECTION)
    entries = [_entry(item, f"{SECTION}[{index}]") for index, item in enumerate(body)]
    keys = KeyFiller([])

    def replace(tree: CommentedMap) -> None:
        keys.existing = [entry for entry in section_seq(tree, SECTION) if isinstance(entry, dict)]
        keys.generated.clear()
        for index, entry in enumerate(entries):
            keys.resolve(entry, f"{SECTION}[{index}]")
        tree[SECTION] = entries

    await context(request).editor.edit(replace)
    return keys.reply()


@api
async def patch_client_key(request: Request) -> Response:
    body = await read_object(request)
    index = body.get("index")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
        raise invalid("index: must be a whole number")
    name = body.get("name")
    name = name.strip() if isinstance(name, str) else ""
    if index is None and not name:
        raise invalid("index or name: one is required")
    changes = body.get("value")
    if not isinstance(changes, dict):
        raise invalid("value: must be an object of the fields to change")
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise invalid(f"value.{unknown[0]}: unknown field (known: {', '.join(FIELDS)})")
    keys = KeyFiller([])

    def mutate(tree: CommentedMap) -> None:
        entries = section_seq(tree, SECTION)
        keys.existing = [entry for entry in entries if isinstance(entry, dict)]
        keys.generated.clear()
        if index is not None:
            if not 0 <= index < len(entries):
                raise NOT_FOUND
            position: int | None = index
        else:
            found = _named(entries, name)
            position = found[0] if found else None
        if position is None:  # a new entry
            entry = _entry({"name": name, **changes}, f"{SECTION}[{len(entries)}]")
            keys.resolve(entry, f"{SECTION}[{len(entries)}]")
            entries.append(entry)
            return
        current = entries[position]
        if not isinstance(current, CommentedMap):
            raise invalid(f"{SECTION}[{position}]: is not an entry; replace the list with PUT")
        for field, value in changes.items():
            if field == "key":
                if isinstance(value, str) and _is_masked(value.strip()):
                    continue  # the masked echo of the key it has
                update = {"key": value, "name": _text(current, "name")}
                keys.resolve(update, f"{SECTION}[{position}]")
                current["key"] = update["key"]
            elif value is None:
                current.pop(field, None)
            else:
                current[field] = value.strip() if isinstance(value, str) else value

    await context(request).editor.edit(mutate)
    return keys.reply()


@api
async def delete_client_key(request: Request) -> Response:
    index = query_int(request, "index")
    name = (request.query_params.get("name") or "").strip()
    if index is None and not name:
        raise ApiError(400, None, "missing name or index")

    def remove(tree: CommentedMap) -> None:
        entries = section_seq(tree, SECTION)
        if index is not None:
            if not 0 <= index < len(entries):
                raise NOT_FOUND
            del entries[index]
            return
        found = _named(entries, name)
        if not found:
            raise NOT_FOUND
        for position in reversed(found):
            del entries[position]

    await context(request).editor.edit(remove)
    return json_response(OK)


ROUTES: list[Route] = crud_routes(
    f"/{SECTION}", get_client_keys, put_client_keys, patch_client_key, delete_client_key
)
