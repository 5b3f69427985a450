"""The pass-through relay's fast paths give what the general code gives: splitting LF-only
bytes into events, reading a lone ``data:`` event, and renaming the model in compact JSON."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from cliproxy.protocols.sse import SSEParser
from cliproxy.server.relay import _split_events
from cliproxy.server.reply_model import stream_renamer

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def split_by_regex(buffer: bytes) -> tuple[list[bytes], bytes]:
    events, start = [], 0
    for match in _EVENT_END.finditer(buffer):
        events.append(buffer[start : match.end()])
        start = match.end()
    return events, buffer[start:]


pieces = st.lists(st.sampled_from([b"data: {}", b"event: x", b"\n", b"\r", b":c", b"a"]))


@settings(max_examples=300, deadline=None)
@given(parts=pieces)
def test_splitting_matches_the_general_scan(parts: list[bytes]) -> None:
    buffer = b"".join(parts)
    assert _split_events(buffer) == split_by_regex(buffer)


@settings(max_examples=300, deadline=None)
@given(parts=pieces, payload=st.text(max_size=20))
def test_a_whole_event_reads_as_the_line_parser_reads_it(parts: list[bytes], payload: str) -> None:
    # Whatever came before (a half event left in the parser included), feed_event agrees.
    prefix = b"".join(parts)
    event = b"data: " + payload.replace("\n", " ").replace("\r", " ").encode() + b"\n\n"
    fast, slow = SSEParser(), SSEParser()
    assert fast.feed(prefix) == slow.feed(prefix)
    assert fast.feed_event(event) == slow.feed(event)
    assert fast.close() == slow.close()


@settings(max_examples=300, deadline=None)
@given(
    before=st.sampled_from([b"{", b",", b" ", b"[", b'{"x":"', b""]),
    spacing=st.sampled_from([b"", b" "]),
    tail=st.sampled_from([b"}", b',"model":"up"}', b',"text":"\\"up\\""}', b"x"]),
)
def test_the_compact_rename_matches_the_pattern(before: bytes, spacing: bytes, tail: bytes) -> None:
    rename = stream_renamer("model", "up", "client")
    assert rename is not None
    raw = b"data: " + before + b'"model":' + spacing + b'"up"' + tail + b"\n\n"
    pattern = re.compile(rb'([{,][ \t]*"model"[ \t]*:[ \t]*)"up"')
    assert rename(raw) == pattern.sub(lambda m: m[1] + b'"client"', raw)
