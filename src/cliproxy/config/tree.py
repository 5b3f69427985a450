"""Work on the round-trip YAML tree: plain values, line lookup and key classification."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any, get_args, get_origin

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .errors import ConfigProblem, KeyPath, render_key_path
from .schema import UNSUPPORTED_STRATEGIES, Config, ConfigModel


def to_plain(node: Any) -> Any:
    """Turn ruamel containers and scalar subclasses into plain Python values.

    A key written with no value (`api-keys:`) is dropped so the field keeps its default, the way
    Go leaves a zero value in place.
    """
    if isinstance(node, dict):
        return {str(key): to_plain(value) for key, value in node.items() if value is not None}
    if isinstance(node, list):
        return [to_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    for plain in (str, int, float):
        if isinstance(node, plain):
            return plain(node)
    return node


def key_line(node: CommentedMap, key: Any) -> int:
    """1-based line of `key`; keys pulled in by a YAML merge (`<<: *anchor`, or an inline
    `<<: {...}`) have no position of their own, so they get the line of the mapping that merges
    them."""
    try:
        return int(node.lc.key(key)[0]) + 1
    except (KeyError, TypeError, IndexError):
        return int(node.lc.line or 0) + 1  # a mapping built in code has no lines: 1


# Go reads config numbers into 64-bit fields; anything wider cannot mean a setting.
_INT_LIMIT = 2**63


def scalar_problems(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[Any, str]]:
    """Values no setting can hold, with their key paths: integers wider than 64 bits, infinite
    or NaN numbers, and strings with an unpaired surrogate escape ("\\ud800"), which cannot be
    written back as text."""
    found: list[tuple[Any, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += scalar_problems(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += scalar_problems(item, (*path, index))
    elif isinstance(node, bool) or node is None:
        pass
    elif isinstance(node, int):
        if not -_INT_LIMIT <= node < _INT_LIMIT:
            found.append((path, "number is too large"))
    elif isinstance(node, float):
        if not math.isfinite(node):
            found.append((path, "must be a finite number"))
    elif isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            found.append((path, "contains an unpaired surrogate escape, which is not text"))
    return found


def locate(tree: Any, loc: KeyPath) -> int | None:
    """1-based line of the deepest part of `loc` present in the tree (None if nothing matches)."""
    line: int | None = None
    node = tree
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = key_line(node, part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _is_inert(value: Any) -> bool:
    # `logging-to-file: false` or `pprof: {enable: false, ...}` asks for nothing we lack, so it
    # is not worth reporting.
    if isinstance(value, dict):
        switch = value.get("enable", value.get("enabled"))
        if switch is False:
            return True
    return value is None or value is False or value == 0 or value == "" or value in ([], {})


def _child_model(annotation: Any) -> tuple[type[ConfigModel] | None, bool]:
    """(section model, is_list) for a field annotation, or (None, False) for scalars."""
    if isinstance(annotation, type) and issubclass(annotation, ConfigModel):
        return annotation, False
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, ConfigModel):
            return item, True
    return None, False


class KeyScan:
    """Walks the YAML tree against the models and sorts every key it does not act on.
    ``spell`` turns a key path of the tree into the one to report (a v8 file's: the path as
    the file spells it); ``unknown`` collects the reported paths of unknown keys."""

    def __init__(self, source: str, spell: Callable[[KeyPath], KeyPath] | None = None) -> None:
        self.source = source
        self.spell = spell or (lambda path: path)
        self.warnings: list[ConfigProblem] = []
        self.unsupported: list[tuple[str, int | None]] = []
        self.unknown: list[KeyPath] = []

    def run(self, tree: CommentedMap) -> None:
        self._walk(tree, Config, ())
        routing = tree.get("routing")
        if isinstance(routing, CommentedMap):
            strategy = routing.get("strategy")
            if isinstance(strategy, str) and strategy.strip().lower() in UNSUPPORTED_STRATEGIES:
                line = key_line(routing, "strategy")
                where = render_key_path(self.spell(("routing", "strategy")))
                self.unsupported.append((where, line))

    def _walk(self, node: Any, model: type[ConfigModel], path: KeyPath) -> None:
        if not isinstance(node, CommentedMap):
            return
        fields: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            fields[name] = info.annotation
            fields[info.alias or name] = info.annotation
        for key in node:
            name = str(key)
            line = key_line(node, key)
            where: KeyPath = (*path, name)
            if name in fields:
                self._descend(node[key], fields[name], where)
            elif name in model.legacy_keys:
                message = f"legacy key, still accepted: {model.legacy_keys[name]}"
                self._warn(line, where, message)
            elif name in model.cliproxyapi_keys:
                if not _is_inert(node[key]):
                    self.unsupported.append((render_key_path(self.spell(where)), line))
            else:
                self.unknown.append(self.spell(where))
                self._warn(line, where, "unknown key, ignored" + _suggest(name, model))

    def _descend(self, value: Any, annotation: Any, path: KeyPath) -> None:
        child, is_list = _child_model(annotation)
        if child is None:
            return
        if not is_list:
            self._walk(value, child, path)
        elif isinstance(value, CommentedSeq):
            for index, item in enumerate(value):
                self._walk(item, child, (*path, index))

    def _warn(self, line: int, path: KeyPath, message: str) -> None:
        where = render_key_path(self.spell(path))
        self.warnings.append(ConfigProblem(self.source, line, where, message))


def _suggest(name: str, model: type[ConfigModel]) -> str:
    known = [info.alias or field for field, info in model.model_fields.items()]
    known += sorted(model.cliproxyapi_keys) + list(model.legacy_keys)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
