"""The pass-through relay's fast paths give what the general code gives: splitting LF-only
bytes into events, reading a lone ``data:`` event, and renaming the model in compact JSON."""

from __future__ import annotations

import re

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cliproxy.protocols.openai_chat_stream import ChatStreamDecoder
from cliproxy.protocols.sse import SSEParser
from cliproxy.server.relay import StreamOutcome, _split_events, _vet
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


def _chat_chunk(delta: dict[str, object], finish: str | None, extra: dict[str, object]) -> bytes:
    chunk = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta}], **extra}
    if finish is not None:
        chunk["choices"][0]["finish_reason"] = finish  # type: ignore[index]
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


chat_events = st.lists(
    st.one_of(
        st.builds(
            _chat_chunk,
            delta=st.dictionaries(
                st.sampled_from(
                    ["content", "content", "role", "reasoning_content", "refusal", "tool_calls"]
                ),
                st.one_of(
                    st.none(),
                    st.text(min_size=1, max_size=5),
                    st.just(""),
                    st.just([{"index": 0, "id": "t", "function": {"name": "f"}}]),
                ),
                max_size=3,
            ),
            finish=st.sampled_from([None, None, None, "stop", "length"]),
            extra=st.sampled_from([{}, {}, {"usage": {"prompt_tokens": 3}}, {"error": {"x": 1}}]),
        ),
        st.sampled_from([b"data: [DONE]\n\n", b"data: {nope\n\n", b"data: [1]\n\n"]),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(events=chat_events)
@example(
    events=[_chat_chunk({"content": "a"}, None, {}), _chat_chunk({"content": "b"}, "length", {})]
)
@example(
    events=[_chat_chunk({"content": "a"}, None, {}), _chat_chunk({}, None, {"usage": {"a": 1}})]
)
def test_chat_chunks_the_decoder_passes_change_nothing_feed_would(events: list[bytes]) -> None:
    # Relayed with the shortcut (decoder.passes) and without: the same bytes go out, the
    # outcome and the decoder's final events are the same.
    def relay(shortcut: bool) -> str:  # repr: errors compare by identity
        decoder, outcome = ChatStreamDecoder(), StreamOutcome()
        if not shortcut:
            decoder.passes = lambda raw: False  # type: ignore[method-assign]
        sent = _vet(events, SSEParser(), decoder, outcome)
        return repr((sent, outcome.error, outcome.end, outcome.usage, decoder.close()))

    assert relay(True) == relay(False)


def test_a_plain_text_chunk_passes_once_the_text_block_is_open() -> None:
    decoder = ChatStreamDecoder()
    first = _chat_chunk({"role": "assistant", "content": "Hel"}, None, {})
    more = _chat_chunk({"content": "lo"}, None, {})
    assert not decoder.passes(first)  # starts the message and the block: feed must see it
    decoder.feed(SSEParser().feed_event(first)[0])
    assert decoder.passes(more)
    assert not decoder.passes(_chat_chunk({"content": "!"}, "stop", {}))
    assert not decoder.passes(_chat_chunk({"reasoning_content": "hm"}, None, {}))
    assert not decoder.passes(_chat_chunk({"content": "x"}, None, {"usage": {"total_tokens": 1}}))
