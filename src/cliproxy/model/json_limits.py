"""Parsing JSON from outside the proxy with a nesting limit.

orjson reads documents nested up to 1023 levels but writes only about 254, and Python code that
walks a document recursively stops near 1000 frames. A body nested between those limits would
parse and then fail later, wherever it is first written or walked, as a 500. Checking the depth
once where outside JSON comes in turns that into a clear refusal naming the limit, and lets every
later step trust the depth.
"""

from __future__ import annotations

from array import array
from itertools import accumulate
from typing import Any

import orjson

from cliproxy.model.errors import ErrorKind, ProxyError

# Far deeper than real requests nest (tool schemas reach a few tens of levels), and far enough
# below orjson's write limit to leave room for the levels our envelopes and translations add
# around a client's values; Python walkers may also spend several frames per level.
MAX_JSON_DEPTH = 128
# An upstream's reply wraps parts of our request in its own envelope (a Responses stream echoes
# the request's tools inside each response object), so it may nest a little deeper than what
# we send; the client's envelope around the reply still fits under orjson's write limit.
MAX_UPSTREAM_JSON_DEPTH = MAX_JSON_DEPTH + 64

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Opening brackets become +1 and closing ones -1 once the bytes are read as signed chars.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def nested_deeper_than(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value holds containers more than ``limit`` levels deep.

    One pass per level over the containers of that level, looking at each child's class only:
    the cost follows the number of values, not bytes, so a 1 MB chat body (mostly long strings)
    takes a fraction of what parsing it took. Measured against scanning the raw bytes (string
    literals stripped by a regex, then bracket depth), this was several times cheaper."""
    level = [value] if value.__class__ in (dict, list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            children = container.values() if container.__class__ is dict else container
            for child in children:
                cls = child.__class__
                if cls is dict or cls is list:
                    below.append(child)
        level = below
    return False


def _opened_deeper_than(raw: bytes | str, error_at: int, limit: int) -> bool:
    """For text orjson refused at character ``error_at``: whether it had opened more than
    ``limit`` levels by then (orjson's own depth limit reads as a syntax error). Only what
    orjson had read is looked at, in C loops that each take one linear pass, so refusing costs
    no more than reading did (a regex over string literals can go quadratic on broken ones)."""
    if isinstance(raw, str):
        read = raw[: error_at + 1].encode("utf-8", "surrogatepass")
    else:
        read = raw[: 4 * error_at + 4]  # a character is at most 4 bytes
    # Escaped backslashes first, then escaped quotes: what is left between two quotes is a
    # string's text, and every other piece of the split lies outside the strings.
    read = read.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(read.split(b'"')[::2])
    steps = outside.translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(array("b", steps)), default=0) > limit


def too_deep(
    where: str, kind: ErrorKind = ErrorKind.INVALID_REQUEST, limit: int = MAX_JSON_DEPTH
) -> ProxyError:
    return ProxyError(kind, f"{where} is nested more than {limit} levels deep (the proxy's limit)")


def loads_limited(
    raw: bytes | str,
    where: str,
    kind: ErrorKind = ErrorKind.INVALID_REQUEST,
    limit: int = MAX_JSON_DEPTH,
) -> Any:
    """``orjson.loads(raw)``, refusing a document nested more than ``limit`` levels with a
    ProxyError of ``kind`` (a 400 for a client's JSON; UPSTREAM, a 502, for JSON an upstream
    produced) whose message names ``where``. Text that is not JSON still raises
    orjson.JSONDecodeError, so each caller keeps its own wording for that, unless it failed by
    nesting too deep."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if _opened_deeper_than(raw, error.pos, limit):
            raise too_deep(where, kind, limit) from None
        raise
    if not _shallow_by_size(raw, limit) and nested_deeper_than(value, limit):
        raise too_deep(where, kind, limit)
    return value


# Up to this size, counting the opening brackets is cheaper than walking the parsed value.
_COUNTED_UP_TO = 64 * 1024


def _shallow_by_size(raw: bytes | str, limit: int) -> bool:
    """Whether valid JSON text this size cannot nest more than ``limit`` levels: each level
    takes an opening and a closing bracket, and no document nests deeper than it has opening
    brackets. Most stream events are a few hundred bytes, so this spares the walk per event."""
    size = len(raw)
    if size <= 2 * limit:
        return True
    if size > _COUNTED_UP_TO:
        return False
    if isinstance(raw, str):
        return raw.count("{") + raw.count("[") <= limit
    return raw.count(b"{") + raw.count(b"[") <= limit


def loads_upstream(raw: bytes | str, where: str) -> Any:
    """A whole reply body or stream event from an upstream: loads_limited with its limit."""
    return loads_limited(raw, where, ErrorKind.UPSTREAM, MAX_UPSTREAM_JSON_DEPTH)
