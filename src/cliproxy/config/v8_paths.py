"""Which key paths a write in the v8 layout may name (the /v8/management/config/* routes).

A v8 path is one the reader takes as it is, in the group the v8 layout keeps it in: not a
legacy name (`request-retry`, `claude-api-key`), not a key in another group's place
(`server.debug`, which the reader would take for `debug`, lives at observability.logs.debug),
and a key some setting reads (the key scan of load.py decides, as it does for a file).
Provider groups (`api-keys.<family>`) are lists: a path ends at the family.
"""

from __future__ import annotations

from collections.abc import Sequence

from ruamel.yaml.comments import CommentedMap

from .errors import render_key_path
from .load import unknown_keys
from .schema import Config
from .v8_layout import FAMILIES, SPLIT_BLOCKS, VERSION_KEY, deeper_rules, rule_for, v8_home

_SERVED_LISTS = frozenset(info.alias or name for name, info in Config.model_fields.items())


Problem = tuple[tuple[str, ...], str]  # the key path it is about, and what is wrong


def spelled(path: Sequence[str | int]) -> str:
    return render_key_path(tuple(path))


def v8_path_problem(path: tuple[str, ...]) -> Problem | None:
    """Why ``path`` is not a v8-layout key path, or None."""
    problem = layout_problem(path)
    if problem is not None or not path or deeper_rules(path):
        return problem  # a section of the v8 layout (`observability.logs`) holds no setting
    probe = CommentedMap()
    node = probe
    for part in path[:-1]:
        node[part] = CommentedMap()
        node = node[part]
    node[path[-1]] = 0
    for unknown in unknown_keys(probe):
        if is_within(path, unknown):
            return tuple(str(part) for part in unknown), "unknown key"
    return None


def layout_problem(path: tuple[str, ...]) -> Problem | None:
    """What the layout alone says against ``path``: a legacy name, a key in another group's
    place, a provider family that does not exist or an index into one. The settings the
    schema knows are the key scan's to check (``v8_path_problem``, load.unknown_keys)."""
    if not path:
        return None
    head = path[0]
    if head == VERSION_KEY:
        return None if len(path) == 1 else ((head,), "a number, not a mapping of keys")
    if head == "api-keys":
        return _group_problem(path)
    legacy = _legacy_name(path)
    if legacy is not None:
        return legacy
    for size in range(len(path), 0, -1):
        rule = rule_for(path[:size])
        if rule is None:
            continue
        home = v8_home(rule)
        if home is None:
            return path[:size], "unknown key"
        if home != path[:size]:
            return path[
                :size
            ], f"not a v8 path; in the v8 layout {spelled(rule)} is {spelled(home)}"
        break
    return None


def _legacy_name(path: tuple[str, ...]) -> Problem | None:
    head = path[0]
    family = next((f for f, legacy in FAMILIES.items() if legacy == head), None)
    if family is not None:
        return (
            head,
        ), f"a legacy name; in the v8 layout its entries are groups in api-keys.{family}"
    if head in SPLIT_BLOCKS:
        home = v8_home((head, path[1])) if len(path) > 1 else None
        if home is None:
            return (head,), "a legacy name; the v8 layout spreads its keys over its groups"
        return path[:2], f"a legacy name; in the v8 layout it is {spelled(home)}"
    home = v8_home((head,))
    if home is None:
        return None
    return (head,), f"a legacy name; in the v8 layout it is {spelled(home)}"


def _group_problem(path: tuple[str, ...]) -> Problem | None:
    if len(path) == 1:
        return None
    family = path[1]
    if family not in FAMILIES:
        return path[:2], f"not a provider family (one of {', '.join(FAMILIES)})"
    legacy = FAMILIES[family]
    if legacy not in _SERVED_LISTS and legacy not in Config.cliproxyapi_keys:
        return path[:2], f"unknown key (cliproxy has no {family} provider)"
    if len(path) > 2:
        return path[:2], "a list of groups; paths address mapping keys, not indexes"
    return None


def is_within(inner: Sequence[str | int], outer: Sequence[str | int]) -> bool:
    """``inner`` is ``outer`` or a key below it."""
    return tuple(inner[: len(outer)]) == tuple(outer)
