"""The `payload:` section: rules that edit the request body sent upstream (CLIProxyAPI's shape).

Each rule names the requests it applies to (``models``: model-name wildcards, optionally
narrowed by target protocol, client protocol, headers and body conditions) and what to do
(``params``). routing/payload.py compiles these models into the rules the forwarding core runs.

The path syntax and the protocol spellings live here so the loader can reject a bad rule with
its line, rather than the rule silently never applying at request time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, Field, field_validator, model_validator

from .base import ConfigModel

# --- protocol spellings ---------------------------------------------------------------------

# Upstream (`protocol:`) spellings, CLIProxyAPI's and ours, to CLIProxyAPI's canonical word.
# "antigravity" is a CLIProxyAPI upstream we do not have: accepted, never matches.
TARGET_SPELLINGS: dict[str, str] = {
    "openai": "openai",
    "openai_chat": "openai",
    "codex": "codex",
    "openai_responses": "codex",
    "claude": "claude",
    "anthropic": "claude",
    "gemini": "gemini",
    "gemini-cli": "gemini",
    "antigravity": "antigravity",
}
# Client (`from-protocol:`) spellings to CLIProxyAPI's canonical word.
SOURCE_SPELLINGS: dict[str, str] = {
    "openai": "openai",
    "openai_chat": "openai",
    "openai_completions": "openai",
    "responses": "responses",
    "response": "responses",
    "openai-response": "responses",
    "openai-responses": "responses",
    "openai_responses": "responses",
    "claude": "claude",
    "anthropic": "claude",
    "gemini": "gemini",
    "gemini-cli": "gemini",
}


def _spelling(value: str, known: dict[str, str]) -> str:
    word = value.strip().lower()
    if not word:
        return ""
    if word not in known:
        choices = ", ".join(sorted(set(known)))
        raise ValueError(f"unknown protocol {value!r} (one of {choices})")
    return known[word]


# --- paths ----------------------------------------------------------------------------------

APPEND = -1  # sjson's "-1" segment: append to the array


@dataclass(frozen=True, slots=True)
class PathSegment:
    """One dotted segment. ``index`` is set when the segment is all digits (or ``-1``): it then
    indexes an array, and still names the key of the same spelling in an object."""

    key: str
    index: int | None


def parse_path(text: str) -> tuple[PathSegment, ...]:
    """Split a gjson/sjson-style path: dots separate keys, a backslash escapes the next
    character (``a\\.b`` is the single key ``a.b``). Raises ValueError for paths that cannot
    address anything (empty, empty segment, trailing backslash, gjson queries)."""
    if not text.strip():
        raise ValueError("path is empty")
    segments: list[PathSegment] = []
    current: list[str] = []
    escaped_any = False  # an escaped digit string is a key, never an index
    chars = iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, None)
            if following is None:
                raise ValueError(f"path {text!r} ends with a lone backslash")
            current.append(following)
            escaped_any = True
        elif char == ".":
            segments.append(_segment(text, "".join(current), escaped_any))
            current, escaped_any = [], False
        elif char in "#|@*?":
            # gjson queries and modifiers select several values; sjson cannot write them.
            raise ValueError(f"path {text!r}: {char!r} is not supported (escape it as \\{char})")
        else:
            current.append(char)
    segments.append(_segment(text, "".join(current), escaped_any))
    return tuple(segments)


def _segment(text: str, key: str, escaped: bool) -> PathSegment:
    if not key:
        raise ValueError(f"path {text!r} has an empty segment")
    if escaped:
        return PathSegment(key, None)
    if key == "-1":
        return PathSegment(key, APPEND)
    return PathSegment(key, int(key) if key.isdigit() else None)


def _check_paths(value: dict[str, Any]) -> dict[str, Any]:
    for path in value:
        parse_path(path)
    return value


def _check_path_list(value: list[str]) -> list[str]:
    for path in value:
        parse_path(path)
    return value


def _check_conditions(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for condition in value:
        _check_paths(condition)
    return value


def _check_raw(value: Any) -> Any:
    # CLIProxyAPI sends a raw string as written, so it must already be JSON. A YAML mapping
    # or list given instead is taken as the value itself, as CLIProxyAPI does.
    if isinstance(value, str):
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON ({exc})") from None
    return value


RawJSON = Annotated[Any, AfterValidator(_check_raw)]
Conditions = Annotated[list[dict[str, Any]], AfterValidator(_check_conditions)]
PathList = Annotated[list[str], AfterValidator(_check_path_list)]
PathMap = Annotated[dict[str, Any], AfterValidator(_check_paths)]
RawPathMap = Annotated[dict[str, RawJSON], AfterValidator(_check_paths)]


# --- models ---------------------------------------------------------------------------------


# The same base as every other section, so the key scan walks rules too and flags typos.
_PayloadModel = ConfigModel


class PayloadModelMatch(_PayloadModel):
    """One `models:` entry of a rule. Every condition given must hold."""

    name: str
    protocol: str = ""  # upstream protocol, CLIProxyAPI's canonical word once validated
    from_protocol: str = ""  # client protocol, likewise
    headers: dict[str, str] = Field(default_factory=dict)
    match: Conditions = Field(default_factory=list)
    not_match: Conditions = Field(default_factory=list)
    exist: PathList = Field(default_factory=list)
    not_exist: PathList = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty (use '*' for every model)")
        return value.strip()

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        return _spelling(value, TARGET_SPELLINGS)

    @field_validator("from_protocol")
    @classmethod
    def _from_protocol(cls, value: str) -> str:
        return _spelling(value, SOURCE_SPELLINGS)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return {name.strip(): text.strip() for name, text in value.items() if name.strip()}


class PayloadRule(_PayloadModel):
    """`default` / `override` rule: path -> JSON value."""

    models: list[PayloadModelMatch] = Field(default_factory=list)
    params: PathMap = Field(default_factory=dict)


class PayloadRawRule(_PayloadModel):
    """`default-raw` / `override-raw` rule: path -> a string holding JSON."""

    models: list[PayloadModelMatch] = Field(default_factory=list)
    params: RawPathMap = Field(default_factory=dict)


class PayloadFilterRule(_PayloadModel):
    """`filter` rule: paths to remove."""

    models: list[PayloadModelMatch] = Field(default_factory=list)
    params: PathList = Field(default_factory=list)


class PayloadConfig(_PayloadModel):
    """Applied in this order, so a later kind wins: default, default-raw, override,
    override-raw, filter."""

    default: list[PayloadRule] = Field(default_factory=list)
    default_raw: list[PayloadRawRule] = Field(default_factory=list)
    override: list[PayloadRule] = Field(default_factory=list)
    override_raw: list[PayloadRawRule] = Field(default_factory=list)
    filter: list[PayloadFilterRule] = Field(default_factory=list)
