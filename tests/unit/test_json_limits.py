"""The nesting limit on JSON from outside: exact at the limit, blind to brackets in strings,
cheap to pass, and clear (400 for a client, 502 for an upstream) when it refuses."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from cliproxy.model import MAX_JSON_DEPTH, ErrorKind, ProxyError, loads_limited, loads_upstream
from cliproxy.model.json_limits import MAX_UPSTREAM_JSON_DEPTH, nested_deeper_than


def arrays(levels: int) -> str:
    return "[" * levels + "]" * levels


def objects(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def mixed(levels: int) -> str:
    opening = "".join('{"k":' if n % 2 else "[" for n in range(levels))
    closing = "".join("}" if n % 2 else "]" for n in reversed(range(levels)))
    return opening + "0" + closing


@pytest.mark.parametrize("shape", [arrays, objects, mixed])
def test_the_limit_itself_is_allowed_and_one_more_level_is_not(
    shape: Callable[[int], str],
) -> None:
    assert loads_limited(shape(MAX_JSON_DEPTH), "request body") is not None
    with pytest.raises(ProxyError) as refused:
        loads_limited(shape(MAX_JSON_DEPTH + 1), "request body")
    assert refused.value.status == 400
    assert refused.value.kind is ErrorKind.INVALID_REQUEST
    assert refused.value.message == (
        f"request body is nested more than {MAX_JSON_DEPTH} levels deep (the proxy's limit)"
    )


@pytest.mark.parametrize("levels", [300, 1023, 1024, 5000, 100_000])
def test_past_orjsons_own_read_limit_it_is_still_too_deep_not_a_syntax_error(levels: int) -> None:
    for text in (arrays(levels), objects(levels), "[" * levels):
        with pytest.raises(ProxyError, match=f"more than {MAX_JSON_DEPTH} levels"):
            loads_limited(text, "request body")


def test_brackets_inside_strings_do_not_count() -> None:
    quoted = orjson.dumps({"text": "[" * 5000 + "{" * 5000, "escaped": '\\"[[[[' * 300}).decode()
    assert loads_limited(quoted, "body")["text"].startswith("[[[")
    # And in text that is not JSON (the path that reads the raw bytes): strings with escaped
    # quotes and backslashes hide their brackets there too.
    broken = '["\\\\", "\\"' + "[" * 3000 + '", ' + "{" * 10
    with pytest.raises(orjson.JSONDecodeError):
        loads_limited(broken, "body")


def test_json_that_is_not_too_deep_keeps_the_parsers_own_errors() -> None:
    for text in ('{"a":', "]]]]", "", "{model: x}", b"\xff\xfe"):
        with pytest.raises(orjson.JSONDecodeError):
            loads_limited(text, "body")


def test_any_json_value_is_read() -> None:
    assert loads_limited(b"42", "body") == 42
    assert loads_limited("null", "body") is None
    assert loads_limited('"[[["', "body") == "[[["
    assert loads_limited(b'{"a": 1, "a": 2}', "body") == {"a": 2}


def test_an_upstreams_json_may_nest_a_little_deeper_and_is_refused_as_its_error() -> None:
    # Upstreams wrap parts of our request (Responses echoes the tools) in their envelopes.
    assert loads_upstream(arrays(MAX_UPSTREAM_JSON_DEPTH), "upstream reply") is not None
    with pytest.raises(ProxyError) as refused:
        loads_upstream(arrays(MAX_UPSTREAM_JSON_DEPTH + 1), "upstream reply")
    assert refused.value.kind is ErrorKind.UPSTREAM and refused.value.status == 502
    assert f"more than {MAX_UPSTREAM_JSON_DEPTH} levels" in refused.value.message
    assert MAX_UPSTREAM_JSON_DEPTH + 8 < 254  # a client envelope around it still writes


def test_what_passes_the_limit_can_be_written_with_our_envelopes_around_it() -> None:
    value = loads_limited(arrays(MAX_JSON_DEPTH), "body")
    for _ in range(MAX_UPSTREAM_JSON_DEPTH - MAX_JSON_DEPTH + 8):
        value = {"envelope": value}
    orjson.dumps(value)


def test_nested_deeper_than_counts_containers_of_parsed_values() -> None:
    assert not nested_deeper_than("scalar", 0)
    assert not nested_deeper_than({}, 1)
    assert nested_deeper_than({}, 0)
    assert not nested_deeper_than({"a": [1, {"b": []}]}, 4)
    assert nested_deeper_than({"a": [1, {"b": []}]}, 3)
    wide = [[{"x": i}] for i in range(10_000)]
    assert not nested_deeper_than(wide, 3)
    assert nested_deeper_than(wide, 2)


@pytest.mark.parametrize("padding", [0, 70_000], ids=["small", "past the counted size"])
def test_the_size_shortcuts_never_let_a_deep_document_through(padding: int) -> None:
    # Small documents skip the walk when their size or bracket count rules depth out; one
    # level past the limit is still refused, as bytes or text, small or padded past the
    # size up to which brackets are counted.
    deep = '{"pad":"' + "x" * padding + '","v":' + arrays(MAX_JSON_DEPTH + 1) + "}"
    for raw in (deep, deep.encode()):
        with pytest.raises(ProxyError):
            loads_limited(raw, "request body", limit=MAX_JSON_DEPTH + 1)


def test_brackets_inside_strings_past_the_count_still_pass() -> None:
    # More opening brackets than the limit, all inside a string: the count cannot rule the
    # depth out, so the parsed value is walked, and it is shallow.
    raw = orjson.dumps({"text": "{[" * MAX_JSON_DEPTH})
    assert loads_limited(raw, "request body") == {"text": "{[" * MAX_JSON_DEPTH}
