"""Payload rules compiled from config: edit the upstream request body per model and protocol.

The config is compiled once (wildcards into regexes, paths into segments, raw JSON parsed), so a
request only walks the rules. Bodies are edited copy-on-write along each touched path: the body
handed in may share nested objects with the client's body, which a retry on the next
credential reuses, so nothing reachable from the input is ever changed.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import orjson

from cliproxy.config.payload import (
    APPEND,
    SOURCE_SPELLINGS,
    TARGET_SPELLINGS,
    PathSegment,
    PayloadConfig,
    PayloadModelMatch,
    parse_path,
)

log = logging.getLogger(__name__)

Path = tuple[PathSegment, ...]


def compile_wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """``*`` matches any run of characters; everything else is literal (no ``?`` or ``[]``,
    as in CLIProxyAPI)."""
    body = ".*".join(re.escape(piece) for piece in pattern.split("*"))
    return re.compile(body, (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


# --- reading paths --------------------------------------------------------------------------

_MISSING = object()


def lookup(body: Any, path: Path) -> Any:
    """The value at ``path``, or _MISSING. A digit segment indexes an array or names an
    object key; the append segment never finds anything."""
    node = body
    for segment in path:
        if isinstance(node, dict):
            node = node.get(segment.key, _MISSING)
        elif isinstance(node, list) and segment.index is not None and segment.index >= 0:
            node = node[segment.index] if segment.index < len(node) else _MISSING
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON sees it: 1 == 1.0, but true is not 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    return type(left) is type(right) and left == right


# --- writing paths --------------------------------------------------------------------------


class _NoFit(Exception):
    """The path cannot be written into this body (a scalar in the way, an index too far)."""


def _fresh_container(next_segment: PathSegment) -> dict[str, Any] | list[Any]:
    if next_segment.index in (0, APPEND):
        return []
    if next_segment.index is not None:
        # sjson would pad with nulls; an array of nulls is never what a rule meant.
        raise _NoFit(f"cannot create an array at index {next_segment.index}")
    return {}


def _child(node: dict[str, Any] | list[Any], segment: PathSegment, after: PathSegment) -> Any:
    """The container at ``segment`` under ``node``, copied into place (or created) so the
    caller may edit it."""
    if isinstance(node, dict):
        current = node.get(segment.key)
        if isinstance(current, (dict, list)):
            node[segment.key] = current = copy.copy(current)
        elif current is None:  # absent, or null: sjson writes through a null too
            node[segment.key] = current = _fresh_container(after)
        else:
            raise _NoFit(f"{segment.key!r} holds a {type(current).__name__}")
        return current
    index = segment.index
    if index is None:
        raise _NoFit(f"{segment.key!r} is not an array index")
    if index == APPEND or index == len(node):
        current = _fresh_container(after)
        node.append(current)
        return current
    if not 0 <= index < len(node):
        raise _NoFit(f"index {index} is past the end of an array of {len(node)}")
    current = node[index]
    if isinstance(current, (dict, list)):
        node[index] = current = copy.copy(current)
        return current
    if current is None:
        node[index] = current = _fresh_container(after)
        return current
    raise _NoFit(f"item {index} holds a {type(current).__name__}")


def set_path(body: dict[str, Any], path: Path, value: Any) -> None:
    """Write ``value`` at ``path``, creating objects (and arrays for index 0 / append) on the
    way. Raises _NoFit when the body's shape does not allow it (see _write for the undo)."""
    node: dict[str, Any] | list[Any] = body
    for segment, after in pairwise(path):
        node = _child(node, segment, after)
    last = path[-1]
    if isinstance(node, dict):
        node[last.key] = value
        return
    if last.index is None:
        raise _NoFit(f"{last.key!r} is not an array index")
    if last.index == APPEND or last.index == len(node):
        node.append(value)
    elif 0 <= last.index < len(node):
        node[last.index] = value
    else:
        raise _NoFit(f"index {last.index} is past the end of an array of {len(node)}")


def delete_path(body: dict[str, Any], path: Path) -> None:
    """Remove what ``path`` names; nothing happens when it is not there."""
    if lookup(body, path) is _MISSING:
        return
    node: dict[str, Any] | list[Any] = body
    for segment, after in pairwise(path):
        node = _child(node, segment, after)  # exists, so this only copies
    last = path[-1]
    if isinstance(node, dict):
        del node[last.key]
    elif last.index is not None and last.index >= 0:
        del node[last.index]


# --- matching -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Matcher:
    """One compiled `models:` entry."""

    name: re.Pattern[str]
    target: str  # CLIProxyAPI's word, "" = any
    source: str
    headers: tuple[tuple[str, re.Pattern[str]], ...]  # (lower-case name, value pattern)
    match: tuple[tuple[Path, Any], ...]
    not_match: tuple[tuple[Path, Any], ...]
    exist: tuple[Path, ...]
    not_exist: tuple[Path, ...]

    @classmethod
    def compile(cls, entry: PayloadModelMatch) -> _Matcher:
        def pairs(conditions: list[dict[str, Any]]) -> tuple[tuple[Path, Any], ...]:
            return tuple((parse_path(p), v) for c in conditions for p, v in c.items())

        return cls(
            name=compile_wildcard(entry.name, ignore_case=True),
            target=entry.protocol,
            source=entry.from_protocol,
            headers=tuple(
                (name.lower(), compile_wildcard(value, ignore_case=False))
                for name, value in entry.headers.items()
            ),
            match=pairs(entry.match),
            not_match=pairs(entry.not_match),
            exist=tuple(parse_path(p) for p in entry.exist),
            not_exist=tuple(parse_path(p) for p in entry.not_exist),
        )

    def matches(self, request: _RequestFacts, body: dict[str, Any]) -> bool:
        if self.target and self.target != request.target:
            return False
        if self.source and self.source != request.source:
            return False
        if not any(self.name.fullmatch(model) for model in request.models):
            return False
        for name, pattern in self.headers:
            values = request.header_values(name)
            if not any(pattern.fullmatch(value) for value in values):
                return False
        return (
            all(_holds(body, path, value) for path, value in self.match)
            and not any(_holds(body, path, value) for path, value in self.not_match)
            and all(_present(body, path) for path in self.exist)
            and not any(_present(body, path) for path in self.not_exist)
        )


def _holds(body: dict[str, Any], path: Path, expected: Any) -> bool:
    found = lookup(body, path)
    return found is not _MISSING and json_equal(found, expected)


def _present(body: dict[str, Any], path: Path) -> bool:
    found = lookup(body, path)
    return found is not _MISSING and found is not None


@dataclass(slots=True)
class _RequestFacts:
    models: tuple[str, ...]
    target: str
    source: str
    headers: Mapping[str, str]

    def header_values(self, lower_name: str) -> list[str]:
        # Iterating items() sees every value of a repeated header in Starlette's Headers and
        # works for a plain dict of any key case.
        return [value for key, value in self.headers.items() if key.lower() == lower_name]


# --- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    matchers: tuple[_Matcher, ...]
    edits: tuple[tuple[str, Path, Any], ...]  # (path as written, path, value)

    def applies(self, request: _RequestFacts, body: dict[str, Any]) -> bool:
        return any(matcher.matches(request, body) for matcher in self.matchers)


def _raw(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


def _value_copy(value: Any) -> Any:
    # Values are shared by every request: a body must never hold the rule's own object.
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


class PayloadRules:
    """The whole `payload:` section, ready to apply. Falsy when it holds no rule."""

    def __init__(self, defaults: list[_Rule], overrides: list[_Rule], filters: list[_Rule]):
        self._defaults = tuple(defaults)
        self._overrides = tuple(overrides)
        self._filters = tuple(filters)

    @classmethod
    def from_config(cls, config: PayloadConfig) -> PayloadRules:
        def rule(models: list[PayloadModelMatch], edits: list[tuple[str, Any]]) -> _Rule:
            return _Rule(
                tuple(_Matcher.compile(entry) for entry in models),
                tuple((text, parse_path(text), value) for text, value in edits),
            )

        defaults = [rule(r.models, list(r.params.items())) for r in config.default]
        defaults += [
            rule(r.models, [(p, _raw(v)) for p, v in r.params.items()]) for r in config.default_raw
        ]
        overrides = [rule(r.models, list(r.params.items())) for r in config.override]
        overrides += [
            rule(r.models, [(p, _raw(v)) for p, v in r.params.items()]) for r in config.override_raw
        ]
        filters = [rule(r.models, [(p, None) for p in r.params]) for r in config.filter]
        # A rule without models or params can never change anything.
        return cls(
            [r for r in defaults if r.matchers and r.edits],
            [r for r in overrides if r.matchers and r.edits],
            [r for r in filters if r.matchers and r.edits],
        )

    def __bool__(self) -> bool:
        return bool(self._defaults or self._overrides or self._filters)

    def apply(
        self,
        body: dict[str, Any],
        *,
        models: tuple[str, ...],
        target: str,
        source: str,
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """Return the edited body (a new top-level dict when anything changed; nested objects
        of ``body`` are never modified). ``models``: the names the request is known by
        (client model, upstream model); a rule's model name matches if it matches any of
        them. target/source: our protocol names (openai_chat, openai_responses, anthropic,
        gemini; openai_completions as a source)."""
        request = _RequestFacts(
            tuple(m.strip() for m in models if m and m.strip()),
            TARGET_SPELLINGS.get(target, target),
            SOURCE_SPELLINGS.get(source, source),
            headers,
        )
        if not request.models:
            return body
        out = dict(body)
        # Conditions are read from the body as edited so far, as CLIProxyAPI does.
        for rule in self._defaults:
            if rule.applies(request, out):
                for text, path, value in rule.edits:
                    # First default wins: a path set by an earlier rule is no longer missing.
                    if lookup(out, path) is _MISSING:
                        _write(out, text, path, value)
        for rule in self._overrides:
            if rule.applies(request, out):
                for text, path, value in rule.edits:
                    _write(out, text, path, value)
        for rule in self._filters:
            if rule.applies(request, out):
                for _text, path, _value in rule.edits:
                    delete_path(out, path)
        return out


def _write(body: dict[str, Any], text: str, path: Path, value: Any) -> None:
    # Everything set_path touches hangs off this one top-level key (as fresh copies), so
    # putting it back undoes a write that failed half-way.
    top = path[0].key
    before = body.get(top, _MISSING)
    try:
        set_path(body, path, _value_copy(value))
    except _NoFit as exc:
        if before is _MISSING:
            body.pop(top, None)
        else:
            body[top] = before
        log.debug("payload rule skipped path %r: %s", text, exc)
