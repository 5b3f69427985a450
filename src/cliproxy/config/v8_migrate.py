"""Rewrite a config in the reference system's v8 layout: the inverse of v8_layout's reading.

Each legacy key goes to the v8 path the reader takes it from (``v8_layout.v8_home``), the
provider key lists become `api-keys.<family>` groups (consecutive entries that differ only in
their key share one group), and `config-version: 8` leads the file. A legacy key that a v8 path
of the same file already shadows is dropped (it had no effect), and keys the v8 layout keeps
where they are (cliproxy's own, `routing.strategy`, `quota-exceeded`, ...) stay. The result
reads to the same config; ``migrate_text`` checks that before it answers.

On a round-trip tree the nodes are moved, not copied, so the comments inside them move along;
the comment lines above a top-level key go above the key's new place (above the new section
when the key opened it), and comments inside moved blocks are indented to their new depth. On
plain dicts (the management API's JSON view) the same moves apply without the comments.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from .errors import ConfigError, render_key_path
from .load import parse_config_text
from .v8_layout import (
    FAMILIES,
    SPLIT_BLOCKS,
    VERSION_KEY,
    is_legacy_name,
    is_v8_root,
    translate,
    v8_home,
)
from .yaml_text import (
    comment_lines,
    guess_indentation,
    put_trailing,
    round_trip_yaml,
    set_before,
    take_trailing,
)

VERSION = 8
_FAMILY_OF = {legacy: family for family, legacy in FAMILIES.items()}
Path_ = tuple[str, ...]


@dataclass
class Migration:
    tree: Any  # the v8-layout mapping (its nodes are those of the input)
    moved: list[tuple[str, str]] = field(default_factory=list)  # legacy key -> v8 path
    # legacy keys a v8 path of the same file shadowed (so they had no effect) -> that path
    dropped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Placement:
    legacy: Path_
    path: Path_
    value: Any
    comments: list[Any] | None  # the ruamel comment slots of the key, moved with it
    depth: int  # how deep the key sat (0: top level)


def migrate(tree: Any, indent: int = 2) -> Migration:
    """The v8-layout form of ``tree``, a mapping (legacy, mixed or v8; a CommentedMap keeps
    its comments). ``indent``: the file's mapping indentation, to place moved comments."""
    keeps_comments = isinstance(tree, CommentedMap)
    new_map: Callable[[], MutableMapping[Any, Any]] = CommentedMap if keeps_comments else dict
    shadowed = _shadowed(tree)
    blocks = _take_blocks(tree) if keeps_comments else {}
    out: Any = new_map()
    migration = Migration(out)
    if keeps_comments:
        out.ca.comment = tree.ca.comment  # the comment lines that open the file
        out.ca.end = tree.ca.end  # and those that end it, after a flow-style value
    out[VERSION_KEY] = VERSION
    carry = ""
    for key in list(tree):
        text, carry = carry + blocks.get(key, ""), ""
        if key == VERSION_KEY:
            carry = text
            continue
        if keeps_comments and key in SPLIT_BLOCKS:
            text += _lead_comment(tree, key)  # `codex:` goes away: its first child's comment
        placed = False
        for item in _placements(tree, key, indent):
            if item.path != item.legacy and item.legacy in shadowed:
                migration.dropped.append(_named(item.legacy, shadowed[item.legacy]))
                continue
            where = _place(out, item, new_map, keeps_comments, indent)
            if where is None:  # its v8 section is not a mapping here: left as it was
                item = _as_is(item)
                where = _place(out, item, new_map, keeps_comments, indent)
            if item.path != item.legacy:
                migration.moved.append(_named(item.legacy, item.path))
            if keeps_comments and text and where is not None:
                node, at, depth = where
                set_before(node, at, text, depth * indent)
                text = ""
            placed = True
        if not placed:
            carry = text  # the key went away: its comment lines go above the next one
    if keeps_comments and len(out) > 1:
        tail = carry + blocks.get(None, "")
        if tail:
            put_trailing(out, list(out)[-1], tail)
    return migration


def _named(legacy: Path_, path: Path_) -> tuple[str, str]:
    return render_key_path(legacy), render_key_path(path)


def _as_is(item: _Placement) -> _Placement:
    return _Placement(item.legacy, item.legacy, item.value, item.comments, item.depth)


def _shadowed(tree: MutableMapping[Any, Any]) -> dict[Path_, Path_]:
    """Legacy key paths a v8 path of ``tree`` is read into (a v8 path wins by presence), with
    that v8 path; a provider list is shadowed as a whole by its group."""
    if not isinstance(tree, CommentedMap) or not any(is_v8_root(tree, key) for key in tree):
        return {}
    # translate() may hang v8 values into the legacy blocks it shares with the file: a copy.
    origins = translate(copy.deepcopy(tree)).origins
    found: dict[Path_, Path_] = {}
    for legacy, origin in origins.items():
        if origin[:1] == ("api-keys",) and legacy[:1] != ("access",) and len(origin) > 1:
            found[(str(legacy[0]),)] = ("api-keys", str(origin[1]))
        elif all(isinstance(part, str) for part in legacy):
            found[tuple(str(part) for part in legacy)] = tuple(str(part) for part in origin)
    return found


def _placements(tree: MutableMapping[Any, Any], key: Any, indent: int) -> list[_Placement]:
    value = tree[key]
    name = str(key)
    comments = _slots(tree, key)
    if is_v8_root(tree, key) or not is_legacy_name(tree, key):
        return [_Placement((name,), (name,), value, comments, 0)]
    if name in _FAMILY_OF:
        if not isinstance(value, list):
            return [_Placement((name,), (name,), value, comments, 0)]
        groups = _groups(name, value, isinstance(tree, CommentedMap))
        return [_Placement((name,), ("api-keys", _FAMILY_OF[name]), groups, comments, 0)]
    if name in SPLIT_BLOCKS:
        return [
            _Placement(
                (name, str(child)),
                v8_home((name, str(child))) or (name, str(child)),
                value[child],
                _slots(value, child),
                1,
            )
            for child in value
        ]
    home = v8_home((name,)) or (name,)
    return [_Placement((name,), home, value, comments, 0)]


def _lead_comment(tree: CommentedMap, key: Any) -> str:
    """The comment lines between `key:` and its first child."""
    slots = _slots(tree, key)
    tokens = slots[3] if slots is not None and len(slots) > 3 else None
    if not isinstance(tokens, list):
        return ""
    return "".join(token.value for token in tokens if isinstance(token, CommentToken))


def _slots(node: Any, key: Any) -> list[Any] | None:
    items = getattr(getattr(node, "ca", None), "items", None)
    return items.get(key) if isinstance(items, dict) else None


def _place(
    out: MutableMapping[Any, Any],
    item: _Placement,
    new_map: Callable[[], MutableMapping[Any, Any]],
    keeps_comments: bool,
    indent: int,
) -> tuple[Any, Any, int] | None:
    """Put ``item`` at its path in ``out``. Returns where its comment lines go (the mapping,
    the key in it and its depth): above the section the item opened, else above the item."""
    path = item.path
    opened: tuple[Any, Any, int] | None = None
    node: Any = out
    for depth, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = new_map()
            node[part] = child
            opened = opened or (node, part, depth)
        elif not isinstance(child, MutableMapping):
            return None
        node = child
    last = path[-1]
    shift = (len(path) - 1 - item.depth) * indent
    seen: set[int] = set()  # a comment hangs on a key and on its mapping: shifted once
    if keeps_comments:
        _shift(item.value, shift, seen)
    if last in node:
        existing = node[last]
        if not (isinstance(existing, MutableMapping) and isinstance(item.value, MutableMapping)):
            return None
        # The section was opened by a key moved into it earlier: the file's own block is the
        # base (its comments stay) and what was moved joins it.
        node[last] = item.value
        if isinstance(item.value, CommentedMap) and existing:
            item.value.fa.set_block_style()  # `routing: {strategy: x}` now holds sections
        _merge(item.value, existing)
    else:
        node[last] = item.value
    if keeps_comments and item.comments is not None:
        _shift(item.comments, shift, seen)
        node.ca.items[last] = item.comments
    return opened or (node, last, len(path) - 1)


def _merge(base: MutableMapping[Any, Any], extra: MutableMapping[Any, Any]) -> None:
    for key, value in extra.items():
        current = base.get(key)
        if isinstance(current, MutableMapping) and isinstance(value, MutableMapping):
            _merge(current, value)
            continue
        base[key] = value
        slots = _slots(extra, key)
        if slots is not None and isinstance(base, CommentedMap):
            base.ca.items[key] = slots


def _take_blocks(tree: CommentedMap) -> dict[Any, str]:
    """The comment lines above each top-level key (None: those after the last key)."""
    keys = list(tree)
    blocks: dict[Any, str] = {}
    for index, key in enumerate(keys):
        text = take_trailing(tree, key)
        if text:
            blocks[keys[index + 1] if index + 1 < len(keys) else None] = text
    return blocks


def _shift(node: Any, by: int, seen: set[int]) -> None:
    """Indent every comment inside ``node`` (a moved value, or a key's comment slots) by ``by``
    more columns."""
    if by <= 0 or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, CommentToken):
        column = getattr(node.start_mark, "column", None) if node.start_mark else None
        if isinstance(column, int):
            node.start_mark = CommentMark(column + by)  # type: ignore[assignment]
        head, newline, rest = node.value.partition("\n")
        if newline and rest:
            lines = rest.split("\n")
            rest = "\n".join(" " * by + line if line.strip() else line for line in lines)
            node.value = head + newline + rest
        return
    if isinstance(node, list | tuple) and not isinstance(node, CommentedSeq):
        for slot in node:
            _shift(slot, by, seen)
        return
    if not isinstance(node, CommentedMap | CommentedSeq):
        return
    comment = node.ca.comment
    if comment:
        _shift(comment, by, seen)
    for slots in node.ca.items.values():
        _shift(slots, by, seen)
    _shift(node.ca.end, by, seen)
    children = node.values() if isinstance(node, CommentedMap) else node
    for child in children:
        _shift(child, by, seen)


# --- provider lists -> api-keys groups ------------------------------------------------------


def _groups(legacy: str, entries: list[Any], keeps_comments: bool) -> list[Any]:
    seq: list[Any] = CommentedSeq() if keeps_comments else []
    if legacy == "openai-compatibility":
        for entry in entries:
            seq.append(_openai_group(entry, keeps_comments) if isinstance(entry, dict) else entry)
        return seq
    last_shared: Any = None
    for entry in entries:
        key = entry.get("api-key") if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            seq.append(entry)
            last_shared = None
            continue
        shared = _plain({k: v for k, v in entry.items() if k != "api-key"})
        alone = "name" in entry or not isinstance(key, str)
        if isinstance(key, str) and not alone and shared == last_shared:
            _add_key(seq[-1], key, _slots(entry, "api-key"))
            continue
        seq.append(_key_group(entry, keeps_comments))
        last_shared = None if alone else shared
    return seq


def _key_group(entry: dict[Any, Any], keeps_comments: bool) -> Any:
    """One `<family>-api-key` entry as a group: its `api-key` becomes `keys: [key]` in its
    place. A `name` (a group's label in the v8 layout) stays the entry's own, inside the key
    item, as does an entry without a key."""
    if "name" in entry:
        item = {k: entry[k] for k in ("api-key", "name") if k in entry}
        keys = [_as_container(item, keeps_comments)]
        fields = [(k, v) for k, v in entry.items() if k not in ("api-key", "name")]
        fields.insert(0, ("keys", keys))
    elif "api-key" in entry:
        keys = [entry["api-key"]]
        fields = [("keys", keys) if k == "api-key" else (k, v) for k, v in entry.items()]
    else:
        return entry
    return _rebuilt(entry, fields, keeps_comments, renamed={"api-key": "keys"})


def _openai_group(entry: dict[Any, Any], keeps_comments: bool) -> Any:
    if "api-key-entries" not in entry:
        return entry
    items = entry["api-key-entries"]
    keys: Any = items
    if isinstance(items, list):
        keys = CommentedSeq() if keeps_comments else []
        for index, item in enumerate(items):
            plain = isinstance(item, dict) and list(item) == ["api-key"]
            keys.append(item["api-key"] if plain else item)
            if plain and keeps_comments:
                _copy_item_comment(items, index, item, keys)
        if keeps_comments and all(isinstance(k, str) for k in keys) and not keys.ca.items:
            keys.fa.set_flow_style()
    fields = [("keys", keys) if k == "api-key-entries" else (k, v) for k, v in entry.items()]
    return _rebuilt(entry, fields, keeps_comments, renamed={"api-key-entries": "keys"})


def _rebuilt(
    entry: dict[Any, Any],
    fields: list[tuple[Any, Any]],
    keeps_comments: bool,
    renamed: dict[str, str],
) -> Any:
    if not keeps_comments:
        return dict(fields)
    group = CommentedMap()
    for key, value in fields:
        if key == "keys" and isinstance(value, list) and not isinstance(value, CommentedSeq):
            value = CommentedSeq(value)
            value.fa.set_flow_style()
        group[key] = value
    for key, slots in getattr(entry, "ca", CommentedMap().ca).items.items():
        target = renamed.get(key, key)
        if target in group:
            group.ca.items[target] = slots
    return group


def _add_key(group: Any, key: str, slots: list[Any] | None) -> None:
    keys = group["keys"]
    keys.append(key)
    if not isinstance(keys, CommentedSeq) or slots is None or len(slots) < 3 or not slots[2]:
        return
    # The key's own end-of-line comment: only a block list has a place for one per key, and
    # the first key's moves from `keys:` onto its item.
    keys.fa.set_block_style()
    first = group.ca.items.get("keys")
    if first is not None and len(first) > 2 and first[2] is not None:
        keys.ca.items[0] = [first[2], None]
        first[2] = None
    keys.ca.items[len(keys) - 1] = [slots[2], None]


def _copy_item_comment(items: Any, index: int, item: Any, keys: CommentedSeq) -> None:
    slots = _slots(item, "api-key")
    if slots is not None and len(slots) > 2 and slots[2]:
        keys.ca.items[len(keys) - 1] = [slots[2], None]


def _as_container(item: dict[Any, Any], keeps_comments: bool) -> Any:
    return CommentedMap(item) if keeps_comments else item


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --- text in, text out ----------------------------------------------------------------------


class MigrationError(Exception):
    """The migrated text would not read to the same config (a key the migration cannot place
    faithfully); nothing should be written."""


@dataclass
class MigratedText:
    text: str
    migration: Migration
    layout: str  # the original's: "legacy", "v8" or "mixed"


def migrate_text(text: str, source: str, base_dir: Path | None = None) -> MigratedText:
    """``text`` in the v8 layout, comments kept where they can be. Raises ConfigError for a
    config that does not load (it is not migrated), MigrationError when the result would read
    differently."""
    original = parse_config_text(text, source, base_dir=base_dir)
    tree = round_trip_yaml().load(text)
    preamble = ""
    if tree is None:
        tree, preamble = CommentedMap(), comment_lines(text)
    style = guess_indentation(text)
    migration = migrate(tree, indent=style.mapping)
    out = io.StringIO()
    round_trip_yaml(style).dump(migration.tree, out)
    new_text = (preamble.rstrip("\n") + "\n" if preamble.strip() else "") + out.getvalue()
    try:
        migrated = parse_config_text(new_text, source, base_dir=base_dir)
    except ConfigError as error:
        raise MigrationError(f"the migrated config does not load: {error}") from None
    differs = differences(original.model_dump(), migrated.model_dump())
    if differs:
        raise MigrationError(
            "the migrated config would read differently at " + ", ".join(differs[:5])
        )
    return MigratedText(new_text, migration, original.layout)


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths where two model dumps differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[str] = []
        for key in dict.fromkeys([*before, *after]):
            where = f"{path}.{key}" if path else str(key)
            found += differences(before.get(key), after.get(key), where)
        return found
    return [] if _comparable(before) == _comparable(after) else [path or "(the whole config)"]


def _comparable(value: Any) -> Any:
    """``value`` with the tagged scalars an unknown key may hold (``!!str 1``, ``=``, ``<<``)
    as their tag and text: ruamel's TaggedScalar compares by identity, so two reads of the
    same file would otherwise differ there."""
    if isinstance(value, TaggedScalar):
        return (str(value.tag), value.value)
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    return value


__all__ = [
    "MigratedText",
    "Migration",
    "MigrationError",
    "differences",
    "migrate",
    "migrate_text",
]
