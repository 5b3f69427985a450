"""The `api-keys.<family>` groups of the /v8/management JSON view in the shape the reference
console reads and writes them (the reference system renders them so too).

The config may spell a key as a bare string (`keys: [sk-1]`) and keep per-key settings such as
`weight` on the group it migrated from a legacy entry; the Management Center reads every
`keys[]` item as an object with `api-key`, its per-key settings (`weight`, `websockets`, ...)
and the response-only `auth-index` it joins usage, quota and cooldown resets on. So the view
makes each item an object, copies the group's per-key settings into it (a key's own win), and
adds the index; the console sends the groups back with the index, and a write drops it again
(it is derived from the key, never stored), as the reference does.
"""

from __future__ import annotations

from typing import Any

from cliproxy.config.v8_layout import FAMILIES
from cliproxy.management.key_index import key_auth_index, provider_auth_index

COMPAT = "openai-compatibility"
# What a v8 group holds for all of its keys (wave2.md §h); everything else is per key.
GROUP_FIELDS = frozenset(
    {"name", "base-url", "keys", "priority", "prefix", "proxy-url", "headers", "models"}
    | {"excluded-models", "disable-cooling", "request-retry", "request-scoped-errors"}
)
# Derived from the key on every read; never part of the config.
RESPONSE_ONLY = ("auth-index", "auth_index")


def console_groups(tree: dict[str, Any], *, with_index: bool) -> dict[str, Any]:
    """``tree`` (a v8 view) with its provider groups in the console's shape, in place;
    ``with_index``: add each key's `auth-index` (reads; the view writes compare against
    has none)."""
    families = tree.get("api-keys")
    if not isinstance(families, dict):
        return tree
    for family, groups in families.items():
        if not isinstance(groups, list):
            continue
        for group in groups:
            if isinstance(group, dict):
                _shape_group(str(family), group, with_index)
    return tree


def _shape_group(family: str, group: dict[str, Any], with_index: bool) -> None:
    keys = group.get("keys")
    if not isinstance(keys, list):
        return
    per_key = (
        {} if family == COMPAT else {k: group.pop(k) for k in list(group) if k not in GROUP_FIELDS}
    )
    section = FAMILIES.get(family, family)
    base_url = str(group.get("base-url") or "")
    items: list[Any] = []
    for key in keys:
        item: Any = {"api-key": key} if isinstance(key, str) else key
        if isinstance(item, dict):
            for field, value in per_key.items():
                item.setdefault(field, value)
            if with_index and isinstance(item.get("api-key"), str):
                own_base = str(item.get("base-url") or base_url)
                item["auth-index"] = key_auth_index(section, own_base, item["api-key"])
        items.append(item)
    group["keys"] = items
    if with_index and family == COMPAT and isinstance(group.get("name"), str):
        group["auth-index"] = provider_auth_index(group["name"])


def without_response_only(path: tuple[str, ...], value: Any) -> Any:
    """A write's ``value`` at ``path`` without the `auth-index` fields a read added to the
    provider groups it holds (the whole config, `api-keys`, or one family's list)."""
    if path == ():
        families = value.get("api-keys") if isinstance(value, dict) else None
    elif path == ("api-keys",):
        families = value
    elif len(path) == 2 and path[0] == "api-keys":
        families = {path[1]: value}
    else:
        return value
    if isinstance(families, dict):
        for groups in families.values():
            for group in groups if isinstance(groups, list) else []:
                _drop_index(group)
                keys = group.get("keys") if isinstance(group, dict) else None
                for item in keys if isinstance(keys, list) else []:
                    _drop_index(item)
    return value


def _drop_index(item: Any) -> None:
    if isinstance(item, dict):
        for field in RESPONSE_ONLY:
            item.pop(field, None)


def names_from_file(tree: dict[str, Any], file_tree: Any) -> dict[str, Any]:
    """``tree`` (a v8 view, in the console's shape) with each group's `name` taken from the
    config file's own `api-keys.<family>` groups, in place.

    The view's groups are re-derived from the effective config, which keeps no group names;
    a v8 file (the reference's, or one the console wrote) names them, and the console shows
    and writes them back. A family's names are taken only when the file's groups hold the
    same keys in the same order as the view's (otherwise the file is not what runs)."""
    families = tree.get("api-keys")
    in_file = file_tree.get("api-keys") if isinstance(file_tree, dict) else None
    if not isinstance(families, dict) or not isinstance(in_file, dict):
        return tree
    for family, groups in families.items():
        written = in_file.get(family)
        if family == COMPAT or not isinstance(groups, list) or not isinstance(written, list):
            continue
        if [_key_strings(g) for g in groups] != [_key_strings(g) for g in written]:
            continue
        for group, source in zip(groups, written, strict=True):
            name = source.get("name") if isinstance(source, dict) else None
            if isinstance(name, str) and isinstance(group, dict):
                group["name"] = name
    return tree


def _key_strings(group: Any) -> list[Any]:
    """A group's keys as their `api-key` strings (an item may be a bare key or a mapping)."""
    keys = group.get("keys") if isinstance(group, dict) else None
    found: list[Any] = []
    for item in keys if isinstance(keys, list) else []:
        found.append(item.get("api-key", item.get("key")) if isinstance(item, dict) else item)
    return found
