"""Client api-keys and the provider credential lists (reference §3.3, §3.4).

`auth-index` on each entry is the reference's stable hash (management/key_index.py); the
router's own id for that credential (routing/build.py) is accepted too wherever one is read:
"claude-api-key[0]", "openai-compatibility[<name>][<j>]" for each key of a compatible
provider (the provider itself gets "openai-compatibility[<name>]"). It is what cooldowns and
logs are keyed by. Indexes in PATCH/DELETE are those of GET (the live list): entries the loader
skips (neither api-key nor base-url) are not counted, so they are mapped onto file positions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cliproxy.config.schema import Config, check_http_url
from cliproxy.config.upstreams import OpenAICompatibility, OpenAIKeyEntry, ProviderKey
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
from cliproxy.management.key_index import key_auth_index, provider_auth_index
from cliproxy.management.routes_config import live_config

NOT_FOUND = ApiError(404, None, "item not found")
# Sections CLIProxyAPI serves and cliproxy does not (yet): kept in the file as written, so the
# Management Center can list and edit them and a config shared with CLIProxyAPI keeps them.
KEPT_ONLY = ("interactions-api-key",)
# Sections whose entries the reference checks more strictly than the config schema does
# (vertex-api-key: api-key required, each model needs both name and alias): checked here.
CHECKED_HERE = (*KEPT_ONLY, "vertex-api-key")


def unwrap_items(body: Any, where: str) -> list[Any]:
    if isinstance(body, dict) and set(body) == {"items"}:
        body = body["items"]
    if not isinstance(body, list):
        raise invalid(f'{where}: must be an array (or {{"items": [...]}})')
    return body


def section_seq(tree: CommentedMap, key: str) -> CommentedSeq:
    node = tree.get(key)
    if not isinstance(node, CommentedSeq):
        node = CommentedSeq()
        tree[key] = node
    return node


# --- api-keys -----------------------------------------------------------------------------


@api
async def get_api_keys(request: Request) -> Response:
    return json_response({"api-keys": live_config(request).api_keys})


@api
async def put_api_keys(request: Request) -> Response:
    items = unwrap_items(await read_json(request), "api-keys")
    for index, key in enumerate(items):
        if not isinstance(key, str):
            raise invalid(f"api-keys[{index}]: must be a string")
    keys = list(dict.fromkeys(key.strip() for key in items if key.strip()))
    await context(request).editor.edit(lambda tree: tree.__setitem__("api-keys", keys))
    return json_response(OK)


@api
async def patch_api_keys(request: Request) -> Response:
    body = await read_object(request)

    def text(name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise invalid(f"{name}: must be a non-empty string")
        return value.strip()

    if "index" in body:
        index = body["index"]
        if not isinstance(index, int) or isinstance(index, bool):
            raise invalid("index: must be a whole number")
        value = text("value")

        def replace_at(tree: CommentedMap) -> None:
            keys = section_seq(tree, "api-keys")
            if not 0 <= index < len(keys):
                raise NOT_FOUND
            keys[index] = value

        await context(request).editor.edit(replace_at)
    elif "old" in body or "new" in body:
        old, new = text("old"), text("new")

        def replace_or_append(tree: CommentedMap) -> None:
            keys = section_seq(tree, "api-keys")
            for position, key in enumerate(keys):
                if str(key).strip() == old:
                    keys[position] = new
                    return
            keys.append(new)

        await context(request).editor.edit(replace_or_append)
    else:
        raise invalid("missing fields: send {index, value} or {old, new}")
    return json_response(OK)


@api
async def delete_api_keys(request: Request) -> Response:
    index = query_int(request, "index")
    value = (request.query_params.get("value") or "").strip()
    if index is None and not value:
        raise ApiError(400, None, "missing index or value")

    def remove(tree: CommentedMap) -> None:
        keys = section_seq(tree, "api-keys")
        if index is not None:
            if not 0 <= index < len(keys):
                raise NOT_FOUND
            del keys[index]
            return
        positions = [i for i, key in enumerate(keys) if str(key).strip() == value]
        if not positions:
            raise NOT_FOUND
        for position in reversed(positions):
            del keys[position]

    await context(request).editor.edit(remove)
    return json_response(OK)


# --- provider lists -----------------------------------------------------------------------


def _defaults(
    model: type[ProviderKey] | type[OpenAICompatibility] | type[OpenAIKeyEntry],
) -> dict[str, Any]:
    """Field defaults by YAML name, so an entry echoed back from GET is written compactly."""
    values = {}
    for name, field in model.model_fields.items():
        if not field.is_required():
            default = field.get_default(call_default_factory=True)
            values[field.alias or name.replace("_", "-")] = default
    return values


def _clean(value: Any) -> Any:
    """Trim strings, drop headers with an empty name or value, drop null/empty values."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        cleaned = {str(key).strip(): _clean(item) for key, item in value.items()}
        return {
            key: item
            for key, item in cleaned.items()
            if key and key != "auth-index" and item is not None and item != ""
        }
    return value


# An `api-key-entries` item echoed back from GET is written without its defaults too.
KEY_ENTRY_DEFAULTS = _defaults(OpenAIKeyEntry)


@dataclass(frozen=True)
class Section:
    key: str
    match_field: str  # what PATCH `match` / DELETE `?api-key=` compare: api-key, or name
    defaults: dict[str, Any]
    live: Callable[[Config], list[dict[str, Any]]]
    skips_empty: bool  # the loader drops entries with neither api-key nor base-url

    def entry_problem(self, entry: dict[str, Any], where: str) -> str | None:
        if self.key not in CHECKED_HERE:
            return None  # the config schema checks the others
        if not isinstance(entry.get("api-key"), str) or not entry["api-key"]:
            return f"{where}.api-key: is required"
        for index, model in enumerate(entry.get("models") or []):
            if self.key == "vertex-api-key":
                if not (isinstance(model, dict) and model.get("name") and model.get("alias")):
                    return f"{where}.models[{index}]: needs both name and alias"
            elif not (isinstance(model, str) or (isinstance(model, dict) and model.get("name"))):
                return f"{where}.models[{index}]: needs a name"
        try:
            check_http_url(str(entry.get("base-url", "")), required=False)
        except ValueError as exc:
            return f"{where}.base-url: {exc}"
        return None

    def compact(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = _clean(entry)
        if isinstance(entry.get("excluded-models"), list):
            models = [str(m).strip().lower() for m in entry["excluded-models"] if str(m).strip()]
            entry["excluded-models"] = list(dict.fromkeys(models))
        if isinstance(entry.get("models"), list):
            entry["models"] = [
                m
                for m in entry["models"]
                if not isinstance(m, dict) or m.get("name") or m.get("alias")
            ]
        if isinstance(entry.get("api-key-entries"), list):
            entry["api-key-entries"] = [
                {
                    k: v
                    for k, v in item.items()
                    if v not in ("", [], {})
                    and not (k in KEY_ENTRY_DEFAULTS and KEY_ENTRY_DEFAULTS[k] == v)
                }
                if isinstance(item, dict)
                else item
                for item in entry["api-key-entries"]
            ]
        return {
            key: value
            for key, value in entry.items()
            if value not in ("", [], {})
            and not (key in self.defaults and self.defaults[key] == value)
        }


def _key_entries(attr: str, key: str) -> Callable[[Config], list[dict[str, Any]]]:
    def live(config: Config) -> list[dict[str, Any]]:
        entries: list[ProviderKey] = getattr(config, attr)
        return [
            {
                **entry.model_dump(mode="json", by_alias=True),
                "auth-index": key_auth_index(key, entry.base_url, entry.api_key),
            }
            for entry in entries
        ]

    return live


def _compat_entries(config: Config) -> list[dict[str, Any]]:
    rows = []
    for compat in config.openai_compatibility:
        row = compat.model_dump(mode="json", by_alias=True)
        row["auth-index"] = provider_auth_index(compat.name)
        for item in row.get("api-key-entries") or []:
            key = str(item.get("api-key") or "")
            item["auth-index"] = key_auth_index("openai-compatibility", compat.base_url, key)
        rows.append(row)
    return rows


def _kept_entries(key: str) -> Callable[[Config], list[dict[str, Any]]]:
    def live(config: Config) -> list[dict[str, Any]]:
        raw = (config.model_extra or {}).get(key)
        entries = raw if isinstance(raw, list) else []
        return [
            {
                **entry,
                "auth-index": key_auth_index(
                    key, str(entry.get("base-url") or ""), str(entry.get("api-key") or "")
                ),
            }
            for entry in entries
            if isinstance(entry, dict)
        ]

    return live


SECTIONS = (
    Section(
        "gemini-api-key",
        "api-key",
        _defaults(ProviderKey),
        _key_entries("gemini_api_key", "gemini-api-key"),
        True,
    ),
    Section(
        "claude-api-key",
        "api-key",
        _defaults(ProviderKey),
        _key_entries("claude_api_key", "claude-api-key"),
        True,
    ),
    Section(
        "codex-api-key",
        "api-key",
        _defaults(ProviderKey),
        _key_entries("codex_api_key", "codex-api-key"),
        True,
    ),
    Section(
        "vertex-api-key",
        "api-key",
        _defaults(ProviderKey),
        _key_entries("vertex_api_key", "vertex-api-key"),
        False,
    ),
    Section(
        "xai-api-key",
        "api-key",
        _defaults(ProviderKey),
        _key_entries("xai_api_key", "xai-api-key"),
        True,
    ),
    Section("openai-compatibility", "name", _defaults(OpenAICompatibility), _compat_entries, False),
    *(Section(key, "api-key", {}, _kept_entries(key), False) for key in KEPT_ONLY),
)


def _field(entry: Any, name: str) -> str:
    if isinstance(entry, str):
        return entry.strip() if name == "api-key" else ""
    if isinstance(entry, dict):
        value = entry.get(name)
        return value.strip() if isinstance(value, str) else ""
    return ""


def _live_positions(section: Section, entries: CommentedSeq) -> list[int]:
    """File positions of the entries GET shows, in order."""
    return [
        position
        for position, entry in enumerate(entries)
        if not section.skips_empty or _field(entry, "api-key") or _field(entry, "base-url")
    ]


def _pick(
    section: Section, entries: CommentedSeq, index: int | None, match: str, base_url: str | None
) -> list[int]:
    """File positions addressed by a live index, or by api-key/name (+ base-url). A base-url
    that is given, even empty, must match exactly: the Management Center deletes an entry
    without one by `?api-key=K&base-url=`, which must not hit K's entries that have one."""
    live = _live_positions(section, entries)
    if index is not None:
        if not 0 <= index < len(live):
            raise NOT_FOUND
        return [live[index]]
    found = [
        position
        for position in live
        if _field(entries[position], section.match_field) == match
        and (base_url is None or _field(entries[position], "base-url") == base_url)
    ]
    if not found:
        raise NOT_FOUND
    return found


def _base_url_param(request: Request) -> str | None:
    raw = request.query_params.get("base-url")
    return None if raw is None else raw.strip()


def _section_routes(section: Section) -> list[Route]:
    def checked_entries(items: list[Any], where: str) -> list[dict[str, Any]]:
        clean = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise invalid(f"{where}[{index}]: must be an object")
            entry = section.compact(item)
            problem = section.entry_problem(entry, f"{where}[{index}]")
            if problem:
                raise invalid(problem)
            clean.append(entry)
        return clean

    @api
    async def get_entries(request: Request) -> Response:
        return json_response({section.key: section.live(live_config(request))})

    @api
    async def put_entries(request: Request) -> Response:
        entries = checked_entries(unwrap_items(await read_json(request), section.key), section.key)
        await context(request).editor.edit(lambda tree: tree.__setitem__(section.key, entries))
        return json_response(OK)

    @api
    async def patch_entry(request: Request) -> Response:
        body = await read_object(request)
        index = body.get("index")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
            raise invalid("index: must be a whole number")
        match = body.get(section.match_field if section.match_field == "name" else "match")
        match = match.strip() if isinstance(match, str) else ""
        if index is None and not match:
            raise invalid(
                f"index or {'name' if section.match_field == 'name' else 'match'}: one is required"
            )
        changes = body.get("value")
        if not isinstance(changes, dict):
            raise invalid("value: must be an object of the fields to change")
        base_url = _base_url_param(request)

        def mutate(tree: CommentedMap) -> None:
            entries = section_seq(tree, section.key)
            found = _pick(section, entries, index, match, base_url)
            if len(found) > 1:
                raise invalid("multiple items match; index is required")
            position = found[0]
            entry = entries[position]
            if not isinstance(entry, CommentedMap):
                entry = CommentedMap({"api-key": str(entry)})
                entries[position] = entry
            for name, value in changes.items():
                if name == "auth-index":
                    continue
                if value is None:
                    entry.pop(name, None)
                else:
                    entry[name] = _clean(value)
            problem = section.entry_problem(dict(entry), f"{section.key}[{position}]")
            if problem:
                raise invalid(problem)
            emptied = not _field(entry, "base-url") and (
                section.key == "openai-compatibility" or not _field(entry, "api-key")
            )
            if emptied and section.key not in KEPT_ONLY:
                del entries[position]

        await context(request).editor.edit(mutate)
        return json_response(OK)

    @api
    async def delete_entry(request: Request) -> Response:
        index = query_int(request, "index")
        param = "name" if section.match_field == "name" else "api-key"
        match = (request.query_params.get(param) or "").strip()
        base_url = _base_url_param(request)
        if index is None and not match:
            raise ApiError(400, None, f"missing {param} or index")

        def mutate(tree: CommentedMap) -> None:
            entries = section_seq(tree, section.key)
            found = _pick(section, entries, index, match, base_url)
            if len(found) > 1 and section.match_field != "name":
                raise ApiError(400, None, "multiple items match api-key; base-url is required")
            for position in reversed(found):
                del entries[position]

        await context(request).editor.edit(mutate)
        return json_response(OK)

    return crud_routes(f"/{section.key}", get_entries, put_entries, patch_entry, delete_entry)


ROUTES: list[Route] = [
    *crud_routes("/api-keys", get_api_keys, put_api_keys, patch_api_keys, delete_api_keys),
    *(route for section in SECTIONS for route in _section_routes(section)),
]
