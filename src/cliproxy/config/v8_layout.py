"""The reference system's v8 config layout (`config-version: 8`, since its v8.0): read it by
moving every v8 path to the legacy key it stands for, before the legacy reader runs.

The v8 layout groups the legacy keys (`server.port` for `port`, `routing.retry.request-retry`
for `request-retry`, `observability.logs.debug` for `debug`, ...) and turns the provider key
lists into groups: `api-keys.<family>[] = {name, base-url, keys[], shared fields}` for
`<family>-api-key[]` entries, one entry per key. Both layouts load and may be mixed; when a v8
path and its legacy key are both present the v8 path wins by presence, even when its value is
false or null (null: the key is unset, so its default applies).

The ruamel nodes are moved, not copied, and each moved key keeps its line, so a problem is
still reported on the line the user wrote; ``Translated.v8_path`` turns a legacy key path back
into the v8 spelling for the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .errors import KeyPath

Layout = Literal["legacy", "v8", "mixed"]
ANY = "*"

# (v8 path pattern, legacy path): "*" matches one key and stands for the same key in the legacy
# path. The first match wins, so a specific rule stands before the wildcard of its parent.
MOVES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("server", ANY), (ANY,)),
    (("management",), ("remote-management",)),
    (("access", "api-keys"), ("api-keys",)),
    (("credentials", "concurrency"), ("credential-concurrency",)),
    (("credentials", "in-flight"), ("credential-in-flight",)),
    (("routing", "force-model-prefix"), ("force-model-prefix",)),
    (("routing", "retry", ANY), (ANY,)),
    (("routing", "cooldown", ANY), (ANY,)),
    (("requests", ANY), (ANY,)),
    (("oauth", "auth-dir"), ("auth-dir",)),
    (("oauth", "auth-auto-refresh-workers"), ("auth-auto-refresh-workers",)),
    (("oauth", "model-alias"), ("oauth-model-alias",)),
    (("oauth", "excluded-models"), ("oauth-excluded-models",)),
    (("oauth", "request-scoped-errors"), ("oauth-request-scoped-errors",)),
    (("oauth", "settings"), ("oauth-settings",)),
    (("oauth", "providers", "aistudio", "ws-auth"), ("ws-auth",)),
    (("oauth", "providers", "codex", "header-defaults"), ("codex-header-defaults",)),
    (("oauth", "providers", "codex", ANY), ("codex", ANY)),
    (("oauth", "providers", "antigravity", ANY), ("antigravity", ANY)),
    (("oauth", "providers", "devin"), ("devin",)),
    (("upstream", "codex", ANY), ("codex", ANY)),
    (("upstream", "claude", "header-defaults"), ("claude-header-defaults",)),
    (("upstream", "claude", ANY), ("claude", ANY)),
    (("upstream", "xai"), ("xai",)),
    (("client", "codex", ANY), ("codex", ANY)),
    (("multimedia", ANY), (ANY,)),
    (("observability", "logs", ANY), (ANY,)),
    (("observability", "usage", ANY), (ANY,)),
    (("observability", "accounting-outbox"), ("accounting-outbox",)),
    (("observability", "pprof"), ("pprof",)),
)
# Top-level keys that only the v8 layout has (routing and oauth: their v8 children only).
V8_ROOTS = frozenset(
    {"server", "management", "access", "credentials", "requests", "upstream", "client"}
    | {"multimedia", "observability"}
)
# Legacy roots that the v8 layout also uses: only the children a rule names move out.
SHARED_ROOTS = frozenset({"routing", "oauth"})
FAMILIES = {
    "gemini": "gemini-api-key",
    "interactions": "interactions-api-key",
    "vertex": "vertex-api-key",
    "codex": "codex-api-key",
    "claude": "claude-api-key",
    "xai": "xai-api-key",
    "meta": "meta-api-key",
    "openai-compatibility": "openai-compatibility",
}
VERSION_KEY = "config-version"


# The legacy keys each wildcard group of the v8 layout holds (wave-2 reference, section h); a
# group not listed takes every child of its legacy block (`oauth.providers.codex.*` the
# `codex:` keys that neither upstream.codex nor client.codex holds).
V8_CHILDREN: dict[tuple[str, ...], frozenset[str]] = {
    ("server",): frozenset(
        {"host", "port", "tls", "trusted-proxies", "commercial-mode", "discovery"}
    ),
    ("routing", "retry"): frozenset(
        {"request-retry", "max-retry-credentials", "max-retry-interval"}
    ),
    ("routing", "cooldown"): frozenset(
        {"disable-cooling", "save-cooldown-status", "transient-error-cooldown-seconds"}
    ),
    ("requests",): frozenset(
        {"proxy-url", "passthrough-headers", "nonstream-keepalive-interval", "streaming", "payload"}
    ),
    ("multimedia",): frozenset(
        {"disable-image-generation", "gpt-image-2-base-model", "video-result-auth-cache-ttl"}
    ),
    ("observability", "logs"): frozenset(
        {
            "debug",
            "logging-to-file",
            "logs-max-total-size-mb",
            "request-log",
            "error-logs-max-files",
        }
    ),
    ("observability", "usage"): frozenset(
        {"usage-statistics-enabled", "redis-usage-queue-retention-seconds"}
    ),
    ("upstream", "codex"): frozenset(
        {
            "disable-codex-cloaking",
            "stream-bootstrap-buffering",
            "stream-bootstrap-timeout",
            "orphan-delegation-compatibility",
            "model-level-cooling",
            "response-steering",
        }
    ),
    ("client", "codex"): frozenset({"optimize-multi-agent-v2"}),
}
# Legacy blocks whose children the v8 layout spreads over its groups.
SPLIT_BLOCKS = ("codex", "claude", "antigravity")


def v8_home(legacy: tuple[str, ...]) -> tuple[str, ...] | None:
    """Where the v8 layout keeps a legacy key: a top-level key (`request-retry`), or a child of
    a block it splits (`codex`, `claude`, `antigravity`). None for a key kept where it is
    (cliproxy's own keys, `routing`, `quota-exceeded`, ...); the provider lists are not moved
    but regrouped (``FAMILIES``)."""
    catch_all: tuple[str, ...] | None = None
    for pattern, rule in MOVES:
        if ANY not in pattern:
            if rule == legacy:
                return pattern
            continue
        if len(rule) != len(legacy) or rule[:-1] != legacy[:-1]:
            continue
        children = V8_CHILDREN.get(pattern[:-1])
        if children is None:
            catch_all = catch_all or (*pattern[:-1], legacy[-1])
        elif legacy[-1] in children:
            return (*pattern[:-1], legacy[-1])
    return catch_all if len(legacy) > 1 else None


@dataclass
class Translated:
    tree: CommentedMap
    layout: Layout
    # legacy key path prefix -> the v8 path it was read from
    origins: dict[KeyPath, KeyPath] = field(default_factory=dict)

    def v8_path(self, loc: KeyPath) -> KeyPath:
        """``loc`` spelled as the file spells it."""
        for size in range(len(loc), 0, -1):
            origin = self.origins.get(loc[:size])
            if origin is not None:
                return origin + loc[size:]
        return loc


def rule_for(path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The legacy path for a v8 path, when a rule names it exactly."""
    for pattern, legacy in MOVES:
        if len(pattern) == len(path) and all(
            p in (ANY, k) for p, k in zip(pattern, path, strict=True)
        ):
            wild = [k for p, k in zip(pattern, path, strict=True) if p == ANY]
            return tuple(wild.pop(0) if part == ANY else part for part in legacy)
    return None


def deeper_rules(path: tuple[str, ...]) -> bool:
    return any(
        len(pattern) > len(path) and all(p in (ANY, k) for p, k in zip(pattern, path, strict=False))
        for pattern, _ in MOVES
    )


def translate(tree: CommentedMap) -> Translated:
    """The legacy tree a v8 or mixed file stands for (a legacy file comes back as it is)."""
    v8_keys = [key for key in tree if is_v8_root(tree, key)]
    if not v8_keys:
        return Translated(tree, "legacy")
    out = Translated(_new_map(tree), "v8")
    legacy_left = False
    for key in tree:
        if key in v8_keys:
            continue
        if is_legacy_name(tree, key):
            legacy_left = True
        _put(out, (key,), tree[key], tree, key, (key,))
    for key in v8_keys:
        if key == VERSION_KEY:
            continue
        if key == "api-keys":
            _groups(out, tree, tree[key])
        else:
            _walk(out, tree, key, (key,))
    if legacy_left:
        out.layout = "mixed"
    return out


def is_legacy_name(tree: Any, key: Any) -> bool:
    """A top-level key the v8 layout keeps elsewhere (`request-retry`, `claude-api-key`, a
    client `api-keys` list); cliproxy's own keys and the legacy `routing:` stay top-level."""
    value = tree[key]
    if key in FAMILIES.values():
        return True
    if key == "api-keys":
        return not isinstance(value, dict)
    if key in SPLIT_BLOCKS:
        return isinstance(value, dict) and bool(value)
    return v8_home((str(key),)) is not None


def is_v8_root(tree: Any, key: Any) -> bool:
    value = tree[key]
    if key == VERSION_KEY or key in V8_ROOTS:
        return True
    if key == "api-keys":
        return isinstance(value, dict)
    if key in SHARED_ROOTS and isinstance(value, dict):
        return any(rule_for((key, child)) or deeper_rules((key, child)) for child in value)
    return False


def _walk(out: Translated, parent: CommentedMap, key: str, path: tuple[str, ...]) -> None:
    value = parent[key]
    legacy = rule_for(path)
    if legacy is not None:
        _put(out, legacy, value, parent, key, path, wins=True)
    elif isinstance(value, CommentedMap) and deeper_rules(path):
        for child in value:
            _walk(out, value, str(child), (*path, str(child)))
    else:
        # No rule names it: kept where it is (legacy routing/oauth children stay; a v8 key
        # cliproxy does not know is reported by the key scan under its own path).
        _put(out, path, value, parent, key, path)


def _put(
    out: Translated,
    legacy: tuple[str, ...],
    value: Any,
    parent: CommentedMap,
    key: Any,
    origin: tuple[str, ...],
    *,
    wins: bool = False,
) -> None:
    node = out.tree
    for part in legacy[:-1]:
        child = node.get(part)
        if not isinstance(child, CommentedMap):
            child = _new_map(parent)
            node[part] = child
            _copy_line(node, part, parent, key)
        node = child
    last = legacy[-1]
    if last in node and not wins:
        return  # the v8 path was placed first and wins by presence
    if value is None and wins:
        node.pop(last, None)
    else:
        node[last] = value
        _copy_line(node, last, parent, key)
    if legacy != origin:
        out.origins[legacy] = origin


def _new_map(like: Any, line: int | None = None) -> CommentedMap:
    """An empty mapping placed where ``like`` is (or on ``line``, 0-based), so problems inside
    it are reported there."""
    made = CommentedMap()
    if line is None:
        line = getattr(getattr(like, "lc", None), "line", None)
    made.lc.line, made.lc.col = line or 0, 0
    return made


def _copy_line(node: CommentedMap, key: Any, parent: Any, parent_key: Any) -> None:
    # A mapping built in code (a management write) has no positions.
    data = getattr(getattr(parent, "lc", None), "data", None)
    position = data.get(parent_key) if data else None
    if position is not None:
        node.lc.add_kv_line_col(key, position)


def _groups(out: Translated, tree: CommentedMap, groups: Any) -> None:
    """`api-keys.<family>[]` groups -> the legacy lists, one entry per key."""
    for family in groups:
        legacy = FAMILIES.get(str(family))
        lists = groups[family]
        if legacy is None or not isinstance(lists, list):
            _put(out, ("api-keys", str(family)), lists, groups, family, ("api-keys", str(family)))
            continue
        entries = CommentedSeq()
        for index, group in enumerate(lists):
            origin: tuple[Any, ...] = ("api-keys", str(family), index)
            if not isinstance(group, dict):
                start = len(entries)
                entries.append(group)  # the legacy reader names what is wrong with it
                out.origins[(legacy, start)] = origin
                continue
            for entry in _entries(legacy, group, _line_of(lists, index)):
                out.origins[(legacy, len(entries))] = origin
                entries.append(entry)
                line = _line_of(lists, index)
                if line is not None:
                    entries.lc.add_kv_line_col(len(entries) - 1, line)
        out.tree[legacy] = entries
        _copy_line(out.tree, legacy, groups, family)


def _line_of(seq: Any, index: int) -> list[int] | None:
    try:
        return list(seq.lc.item(index))
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def _entries(legacy: str, group: dict[Any, Any], at: list[int] | None) -> list[CommentedMap]:
    keys = group.get("keys")
    key_items = keys if isinstance(keys, list) else []
    line = at[0] if at else None

    def shared_into(entry: CommentedMap) -> CommentedMap:
        for k, v in group.items():
            if k not in ("keys", "name") and k not in entry:
                entry[k] = v
                _copy_line(entry, k, group, k)
        return entry

    if legacy == "openai-compatibility":
        entry = _new_map(group, line)
        if "name" in group:
            entry["name"] = group["name"]
            _copy_line(entry, "name", group, "name")
        entries = CommentedSeq(_key_fields(keys, j, item) for j, item in enumerate(key_items))
        entry["api-key-entries"] = entries
        _copy_line(entry, "api-key-entries", group, "keys")
        return [shared_into(entry)]
    if not key_items:
        return [shared_into(_new_map(group, line))]
    return [shared_into(_key_fields(keys, j, item)) for j, item in enumerate(key_items)]


def _key_fields(keys: Any, index: int, item: Any) -> CommentedMap:
    """One `keys[]` item: a plain key, or a mapping with `api-key` (or `key`) and its own
    fields (proxy-url, headers, ...), placed on the item's line."""
    at = _line_of(keys, index)
    fields = _new_map(None, at[0] if at else None)
    if isinstance(item, dict):
        for k, v in item.items():
            name = "api-key" if k == "key" and "api-key" not in item else k
            fields[name] = v
            _copy_line(fields, name, item, k)
    else:
        fields["api-key"] = item
        if at is not None:
            fields.lc.add_kv_line_col("api-key", [at[0], at[1], at[0], at[1]])
    return fields


# --- writing a v8 or mixed file back ----------------------------------------------------------

_MISSING = object()


def top_level(tree: CommentedMap) -> dict[Any, Any]:
    """What ``write_back`` compares against: the legacy view's top-level values, by identity
    (nodes it shares with the file), and the provider lists as plain copies (those read from
    groups are nodes of the view's own, edited in place)."""
    found: dict[Any, Any] = {key: tree[key] for key in tree}
    for legacy in FAMILIES.values():
        if legacy in tree:
            found[(_COPY, legacy)] = _plain(tree[legacy])
    return found


_COPY = "copy"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def write_back(original: CommentedMap, translated: Translated, before: dict[Any, Any]) -> None:
    """Carry the edits made to ``translated.tree`` (the legacy view of ``original``) into
    ``original``, in the file's own layout. Nested edits need nothing: the views share their
    nodes. A top-level key that was set, replaced or removed goes to the v8 path it was read
    from (a key the file did not have goes where the file's layout puts it: a legacy one when
    the file has no v8 twin for it); a provider list read from `api-keys` groups is written back
    as groups, one per entry."""
    after = translated.tree
    groups_of = {legacy: family for family, legacy in FAMILIES.items()}
    keys = [key for key in before if not isinstance(key, tuple)]
    for key in list(dict.fromkeys([*keys, *after])):
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        if key in groups_of and _from_groups(translated, key):
            if new is _MISSING or _plain(new) != before.get((_COPY, key)):
                _write_groups(original, groups_of[key], key, new)
            continue
        if old is new:
            continue
        target = translated.origins.get((key,), (key,))
        if target == (key,) and translated.layout == "v8":
            target = v8_home((key,)) or target
        _set_path(original, target, new)


def _from_groups(translated: Translated, legacy: str) -> bool:
    return any(loc[:1] == (legacy,) and origin[:1] == ("api-keys",)
               for loc, origin in translated.origins.items())  # fmt: skip


def _set_path(tree: CommentedMap, path: tuple[Any, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, CommentedMap):
            if value is _MISSING:
                return
            child = CommentedMap()
            node[part] = child
        node = child
    if value is _MISSING:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


def _write_groups(original: CommentedMap, family: str, legacy: str, entries: Any) -> None:
    groups = original.get("api-keys")
    if not isinstance(groups, CommentedMap):
        groups = CommentedMap()
        original["api-keys"] = groups
    if entries is _MISSING:
        groups.pop(family, None)
        return
    written = CommentedSeq()
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            written.append(entry)
            continue
        group = CommentedMap()
        if legacy == "openai-compatibility":
            for k, v in entry.items():
                group["keys" if k == "api-key-entries" else k] = v
        else:
            for k, v in entry.items():
                if k == "api-key":
                    group["keys"] = CommentedSeq([v])
                else:
                    group[k] = v
        written.append(group)
    groups[family] = written
