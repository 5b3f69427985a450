"""Property-based tests of the translation layer: round trips through each wire protocol, across
protocols, through the stream encoders and decoders, and the SSE parser under any byte split.

Equivalence is "the information the protocol can carry": text, roles, tool names and arguments
(as parsed JSON), tool results, finish reasons, token counts. What a protocol cannot carry is
listed in the tables below (CARRIES_*, _FINISH_*); each entry is a deliberate lossy mapping.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cliproxy.model import (
    BlockEnd,
    ErrorKind,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    ProxyError,
    ReasoningDelta,
    ReasoningPart,
    ReasoningStart,
    Request,
    Response,
    StreamError,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    Tool,
    ToolArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    Usage,
)
from cliproxy.model.accumulate import collect
from cliproxy.protocols.base import WireProtocol
from cliproxy.protocols.registry import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES
from cliproxy.protocols.sse import SSEEvent, SSEParser
from tests.e2e import shapes
from tests.protocols import strategies as gen

PROTOCOLS: list[WireProtocol] = [OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI]
NAMES = [p.name for p in PROTOCOLS]
PAIRS = [(p, q) for p in PROTOCOLS for q in PROTOCOLS]

# Modest by default so the file stays fast; PROPERTY_EXAMPLES=1000 for a deeper hunt.
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "40"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# For the tests run once per protocol pair (16 of them).
PAIR_SETTINGS = settings(SETTINGS, max_examples=max(10, EXAMPLES // 3))

# --- what each protocol carries -----------------------------------------------------------------

_ALL_USAGE = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
)
# Chat Completions and Gemini have no count of tokens written to the prompt cache.
CARRIES_USAGE = {
    "openai_chat": ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"),
    "openai_responses": _ALL_USAGE,
    "anthropic": _ALL_USAGE,
    "gemini": ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"),
}
# Reasoning signatures reach the client. An untagged one (no issuer) only through a protocol with
# a signature field of its own (Gemini's encoder moves it onto the next part). Once a protocol
# has parsed it, it has an issuer, and every protocol but Chat carries it on to the next one
# (wrapped when it is another protocol's, see protocols/signatures.py).
CARRIES_SIGNATURE = {"anthropic", "gemini"}
CARRIES_FOREIGN_SIGNATURE = {"anthropic", "gemini", "openai_responses"}
# Only Anthropic reports which stop sequence ended the reply.
CARRIES_STOP_SEQUENCE = {"anthropic"}
# Requests: Responses has no stop sequences; Chat and Responses have no per-result error flag;
# Gemini's body has no model (it is in the URL) and no stream flag (the method decides).
CARRIES_STOP = {"openai_chat", "anthropic", "gemini"}
CARRIES_RESULT_ERROR = {"anthropic", "gemini"}
DEFAULT_MAX_TOKENS = {"anthropic": 32000}  # Anthropic requires max_tokens: a default is sent

F = FinishReason
# Finish reasons each protocol has its own word for; the rest collapse onto the listed reason.
_FINISH_COLLAPSE: dict[str, dict[FinishReason, FinishReason]] = {
    "openai_chat": {F.STOP_SEQUENCE: F.STOP, F.PAUSE: F.STOP, F.REFUSAL: F.STOP},
    "openai_responses": {
        F.STOP_SEQUENCE: F.STOP,
        F.PAUSE: F.STOP,
        F.REFUSAL: F.STOP,
        F.TOOL_CALLS: F.STOP,
    },
    "anthropic": {F.CONTENT_FILTER: F.REFUSAL},
    "gemini": {
        F.STOP_SEQUENCE: F.STOP,
        F.PAUSE: F.STOP,
        F.REFUSAL: F.CONTENT_FILTER,
        F.TOOL_CALLS: F.STOP,
    },
}


def carried_finish(name: str, reason: FinishReason, has_calls: bool) -> FinishReason:
    reason = _FINISH_COLLAPSE[name].get(reason, reason)
    # Every protocol reports a plain stop in a turn with tool calls as "tool calls": agents loop
    # on that value.
    return F.TOOL_CALLS if reason is F.STOP and has_calls else reason


# --- views: the comparable information of canonical values ---------------------------------------


def _json_or_text(value: str) -> Any:
    """Tool output that is a JSON object compares as parsed JSON (Gemini sends it as an object),
    other output as text."""
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    return parsed if isinstance(parsed, dict) else value


def _merged_turns(messages: list[Message]) -> list[Message]:
    """Consecutive same-role messages as one turn (Anthropic and Gemini merge them, Chat splits
    tool results from user text)."""
    turns: list[Message] = []
    for message in messages:
        if turns and turns[-1].role == message.role:
            turns[-1].content.extend(message.content)
        else:
            turns.append(Message(message.role, list(message.content)))
    return turns


def _call_view(part: ToolCallPart) -> tuple[str, str, Any]:
    return (part.id, part.name, orjson.loads(part.arguments or "{}"))


def _reasoning_view(part: ReasoningPart, name: str) -> tuple[Any, ...] | None:
    """Reasoning goes back only to the protocol that issued it, with what that one needs."""
    if part.issuer != name:
        return None
    if name == "anthropic" and part.signature:
        return (part.text, part.signature)
    if name == "gemini":
        return (part.text, part.signature)
    if name == "openai_responses" and (part.id or part.encrypted):
        return (part.text, part.id, part.encrypted)
    return None


def _media_view(part: ImagePart | FilePart) -> tuple[Any, ...]:
    if part.url:  # the media type of a linked file is a hint a protocol may add or leave out
        return (type(part).__name__, part.url)
    return (type(part).__name__, part.media_type, part.data)


def _turn_view(message: Message, name: str) -> dict[str, Any]:
    reasoning = [_reasoning_view(p, name) for p in message.content if isinstance(p, ReasoningPart)]
    return {
        "role": message.role,
        "reasoning": [r for r in reasoning if r is not None],
        "media": [_media_view(p) for p in message.content if isinstance(p, ImagePart | FilePart)],
        "text": "".join(p.text for p in message.content if isinstance(p, TextPart)),
        "calls": [_call_view(p) for p in message.content if isinstance(p, ToolCallPart)],
        "results": [
            (
                p.call_id,
                _json_or_text(p.text()),
                p.is_error and name in CARRIES_RESULT_ERROR,
            )
            for p in message.content
            if isinstance(p, ToolResultPart)
        ],
    }


def request_view(request: Request, name: str) -> dict[str, Any]:
    choice = request.tool_choice
    return {
        "model": request.model if name != "gemini" else "",
        "system": request.system_text(),
        "turns": [_turn_view(m, name) for m in _merged_turns(request.messages)],
        "tools": [(t.name, t.description, t.parameters) for t in request.tools],
        "tool_choice": None if choice is None else (choice.mode, choice.name),
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS.get(name),
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stop": request.stop if name in CARRIES_STOP else [],
        "stream": request.stream and name != "gemini",
    }


def _usage_view(usage: Usage, through: list[str]) -> dict[str, int]:
    return {
        field: getattr(usage, field) if all(field in CARRIES_USAGE[n] for n in through) else 0
        for field in _ALL_USAGE
    }


def _merge_adjacent(parts: list[Any]) -> list[Any]:
    """Text and reasoning as runs: a stream has no boundary between two adjacent text blocks."""
    out: list[Any] = []
    for part in parts:
        if out and part[0] == out[-1][0] and part[0] in ("text", "reasoning"):
            out[-1] = (part[0], out[-1][1] + part[1])
        else:
            out.append(part)
    return out


def _signature_survives(through: list[str]) -> bool:
    if not through:
        return True
    first, *rest = through
    return first in CARRIES_SIGNATURE and all(n in CARRIES_FOREIGN_SIGNATURE for n in rest)


def response_view(response: Response, through: list[str]) -> dict[str, Any]:
    """What survives rendering and parsing ``response`` through the protocols in ``through``."""
    reasoning = [p for p in response.content if isinstance(p, ReasoningPart)]
    # Gemini puts a signature on the part after the thought: a function call may carry it.
    signatures = [p.signature or "" for p in response.content if isinstance(p, ReasoningPart)]
    signatures += [p.signature or "" for p in response.content if isinstance(p, ToolCallPart)]
    calls = [_call_view(p) for p in response.content if isinstance(p, ToolCallPart)]
    reason = response.finish_reason
    for name in through:
        reason = carried_finish(name, reason, bool(calls))
    stop_sequence = None
    if reason is F.STOP_SEQUENCE and all(n in CARRIES_STOP_SEQUENCE for n in through):
        stop_sequence = response.stop_sequence
    return {
        "model": response.model,
        "text": response.text(),
        "reasoning": "".join(p.text for p in reasoning),
        "signature": "".join(signatures) if _signature_survives(through) else "",
        "calls": calls,
        "finish_reason": reason,
        "stop_sequence": stop_sequence,
        "usage": _usage_view(response.usage, through),
    }


# --- helpers ------------------------------------------------------------------------------------


def encode(protocol: WireProtocol, events: list[StreamEvent], model: str = "client-model") -> bytes:
    encoder = protocol.stream_encoder(Request(model=model, include_usage=True))
    return b"".join(encoder.feed(event) for event in events)


def decode(protocol: WireProtocol, pieces: list[bytes]) -> list[StreamEvent]:
    parser = SSEParser()
    decoder = protocol.stream_decoder()
    out: list[StreamEvent] = []
    for piece in pieces:
        for sse in parser.feed(piece):
            out.extend(decoder.feed(sse))
    for sse in parser.close():
        out.extend(decoder.feed(sse))
    out.extend(decoder.close())
    return out


def check_contract(events: list[StreamEvent]) -> None:
    """The ordering contract of model/events.py, which every decoder promises. A failed stream
    may end (or even begin) with its StreamError while blocks are open: the contract only asks
    for closed blocks before a normal MessageEnd."""
    failed = isinstance(events[-1], StreamError)
    assert isinstance(events[0], MessageStart) or (events == events[-1:] and failed), events[:1]
    assert isinstance(events[-1], MessageEnd | StreamError), events[-1:]
    assert not any(isinstance(e, MessageEnd | StreamError) for e in events[:-1])
    started: list[int] = []
    open_blocks: set[int] = set()
    for event in events[1:-1]:
        if isinstance(event, TextStart | ReasoningStart | ToolCallStart):
            assert event.index == len(started), f"block index {event.index} out of order"
            started.append(event.index)
            open_blocks.add(event.index)
        elif isinstance(event, TextDelta | ReasoningDelta | ToolArgsDelta):
            assert event.index in open_blocks, f"delta for block {event.index} not open"
        elif isinstance(event, BlockEnd):
            assert event.index in open_blocks, f"BlockEnd {event.index} for no open block"
            open_blocks.remove(event.index)
    assert failed or not open_blocks, f"blocks {open_blocks} not ended before MessageEnd"


# --- 1. request round trips ---------------------------------------------------------------------


# Regressions found by these properties (Gemini): a tool output that looks like Gemini's own
# {"output"|"error": text} wrapper, and an image linked by URL without a media type.
_TRICKY_REQUEST = Request(
    model="m",
    tools=[Tool("read", "Read", {"type": "object", "properties": {"p": {"type": "string"}}})],
    messages=[
        Message("user", [TextPart("look"), ImagePart(url="https://example.com/cat.jpg")]),
        Message("assistant", [ToolCallPart("call_1", "read"), ToolCallPart("call_2", "read")]),
        Message(
            "user",
            [
                ToolResultPart("call_1", [TextPart('{"output": "x"}')]),
                ToolResultPart("call_2", [TextPart('{"error": "not found"}')]),
            ],
        ),
    ],
)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=NAMES)
@SETTINGS
@example(request=_TRICKY_REQUEST)
@given(request=gen.requests())
def test_request_round_trip(protocol: WireProtocol, request: Request) -> None:
    wire = protocol.render_request(request)
    parsed = protocol.parse_request(orjson.loads(orjson.dumps(wire)))
    assert request_view(parsed, protocol.name) == request_view(request, protocol.name)


# --- 2. response round trips --------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=NAMES)
@SETTINGS
# Regression: Gemini's complete replies dropped other vendors' reasoning text (streams kept it).
@example(response=Response("r", "m", [ReasoningPart("hmm", issuer="anthropic"), TextPart("hi")]))
@given(response=gen.responses())
def test_response_round_trip(protocol: WireProtocol, response: Response) -> None:
    wire = protocol.render_response(response)
    parsed = protocol.parse_response(orjson.loads(orjson.dumps(wire)))
    assert response_view(parsed, []) == response_view(response, [protocol.name])


# --- 3. streams ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=NAMES)
@SETTINGS
@given(events=gen.stream_events(), sizes=gen.chunk_sizes)
def test_stream_round_trip(
    protocol: WireProtocol, events: list[StreamEvent], sizes: list[int]
) -> None:
    wire = encode(protocol, events)
    decoded = decode(protocol, [wire])
    check_contract(decoded)
    expected = response_view(collect(events), [protocol.name])
    got = collect(decoded)
    assert got.model == "client-model"
    expected["model"] = got.model
    assert response_view(got, []) == expected
    # Any split of the bytes decodes to the same events.
    assert decode(protocol, gen.split(wire, sizes)) == decoded


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=NAMES)
@PAIR_SETTINGS
@given(
    events=gen.stream_events(),
    cut=st.integers(min_value=1),
    kind=st.sampled_from(list(ErrorKind)),
    message=gen.text,
)
def test_stream_error_stays_an_error(
    protocol: WireProtocol, events: list[StreamEvent], cut: int, kind: ErrorKind, message: str
) -> None:
    """A stream that fails part-way reaches the client as an error, never as a normal end."""
    prefix = events[: 1 + cut % (len(events) - 1)]
    decoded = decode(
        protocol, [encode(protocol, [*prefix, StreamError(ProxyError(kind, message))])]
    )
    check_contract(decoded)
    last = decoded[-1]
    assert isinstance(last, StreamError)
    assert message in last.error.message
    # What clients' retry logic keys on survives every protocol's error event. (Other kinds may
    # collapse, e.g. Responses reports auth/permission/not-found failures mid-stream as upstream
    # errors, and only Responses and Gemini carry a retry delay inside a stream.)
    if kind in (ErrorKind.RATE_LIMIT, ErrorKind.OVERLOADED, ErrorKind.INVALID_REQUEST):
        assert last.error.kind is kind


# --- 4. across protocols ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "source"), PAIRS, ids=[f"{q.name}-to-{p.name}" for p, q in PAIRS]
)
@PAIR_SETTINGS
@given(response=gen.responses())
def test_response_across_protocols(
    target: WireProtocol, source: WireProtocol, response: Response
) -> None:
    upstream = source.parse_response(orjson.loads(orjson.dumps(source.render_response(response))))
    wire = target.render_response(upstream)
    parsed = target.parse_response(orjson.loads(orjson.dumps(wire)))
    assert response_view(parsed, []) == response_view(response, [source.name, target.name])


# --- 6. the SSE parser --------------------------------------------------------------------------

_line_value = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20
)


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    """SSE bytes with mixed line endings, comments and multi-line data, and the events in them."""
    events = draw(
        st.lists(
            st.tuples(
                st.none() | _line_value.filter(lambda v: ":" not in v and v.strip()),
                st.lists(_line_value, min_size=1, max_size=3),
            ),
            min_size=1,
            max_size=5,
        )
    )
    endings = st.sampled_from(["\n", "\r\n", "\r"])
    out = ""
    for name, data_lines in events:
        lines: list[str] = []
        if draw(st.booleans()):
            lines.append(": " + draw(_line_value))  # a comment (keep-alive)
        if name is not None:
            lines.append(f"event: {name}")
        for value in data_lines:
            spaced = value.startswith(" ") or draw(st.booleans())
            lines.append(("data: " if spaced else "data:") + value)
        if draw(st.booleans()):
            lines.append("id: 7")  # fields the parser ignores
        lines.append("")
        for line in lines:
            # A CR ending then an empty line ending in LF would read as one CRLF: not this stream.
            ending = draw(endings)
            while out.endswith("\r") and not line and ending == "\n":
                ending = draw(endings)
            out += line + ending
    expected = [SSEEvent(name, "\n".join(data)) for name, data in events]
    return out.encode(), expected


@settings(SETTINGS, max_examples=2 * EXAMPLES)
@given(stream=sse_streams(), sizes=gen.chunk_sizes)
def test_sse_parser_any_split(stream: tuple[bytes, list[SSEEvent]], sizes: list[int]) -> None:
    raw, expected = stream
    parser = SSEParser()
    got: list[SSEEvent] = []
    for piece in gen.split(raw, sizes):
        got.extend(parser.feed(piece))
    got.extend(parser.close())
    assert got == expected


# --- 5. differential: the canonical round trip agrees with pass-through --------------------------

WIRE_REQUESTS: list[tuple[WireProtocol, dict[str, Any]]] = [
    *[(OPENAI_CHAT, body) for body in gen.CHAT_REQUESTS],
    *[(OPENAI_RESPONSES, body) for body in gen.RESPONSES_REQUESTS],
    (OPENAI_RESPONSES, shapes.codex_body("gpt-5-codex")),
    *[(ANTHROPIC, body) for body in gen.ANTHROPIC_REQUESTS],
    (ANTHROPIC, shapes.claude_code_body("claude-sonnet-4-5")),
    *[(GEMINI, body) for body in gen.GEMINI_REQUESTS],
    (GEMINI, shapes.gemini_cli_router_body()),
]


@pytest.mark.parametrize(
    ("protocol", "body"),
    WIRE_REQUESTS,
    ids=[f"{p.name}-{n}" for n, (p, _) in enumerate(WIRE_REQUESTS)],
)
def test_request_differential(protocol: WireProtocol, body: dict[str, Any]) -> None:
    """Pass-through forwards ``body`` as is; the canonical path sends render(parse(body)). Both
    must mean the same to the upstream: the same canonical request, the same top-level fields,
    and the fields without a canonical home (extras) unchanged."""
    canonical = protocol.parse_request(copy.deepcopy(body))
    wire = protocol.render_request(canonical)
    again = protocol.parse_request(orjson.loads(orjson.dumps(wire)))
    assert again == _as_rendered(canonical, protocol.name)
    assert set(body) - set(wire) == set()
    for key, value in canonical.extras.get(protocol.name, {}).items():
        if isinstance(value, dict) and isinstance(wire.get(key), dict):
            assert value.items() <= wire[key].items(), key  # e.g. text: {verbosity} + format
        elif not key.startswith("_"):
            assert wire.get(key) == value, key


def _as_rendered(request: Request, name: str) -> Request:
    """``request`` with the deliberate reshaping its protocol's renderer does: Chat and Responses
    send the system prompt as one text (instructions / one system message); Anthropic has no
    system role inside messages and sends those turns as <system-reminder> user text."""
    request = copy.deepcopy(request)
    if name in ("openai_chat", "openai_responses") and request.system:
        request.system = [TextPart(request.system_text())]
    if name == "anthropic":
        for message in request.messages:
            if message.role == "system":
                message.role = "user"
                for part in message.content:
                    if isinstance(part, TextPart):
                        part.text = f"<system-reminder>\n{part.text}\n</system-reminder>"
        request.messages = _merged_turns(request.messages)
    return request


WIRE_RESPONSES: list[tuple[WireProtocol, dict[str, Any]]] = [
    *[(OPENAI_CHAT, body) for body in gen.CHAT_RESPONSES],
    *[(OPENAI_RESPONSES, body) for body in gen.RESPONSES_RESPONSES],
    *[(ANTHROPIC, body) for body in gen.ANTHROPIC_RESPONSES],
    *[(GEMINI, body) for body in gen.GEMINI_RESPONSES],
]


@pytest.mark.parametrize(
    ("protocol", "body"),
    WIRE_RESPONSES,
    ids=[f"{p.name}-{n}" for n, (p, _) in enumerate(WIRE_RESPONSES)],
)
def test_response_differential(protocol: WireProtocol, body: dict[str, Any]) -> None:
    """An upstream reply re-rendered for a client of the same protocol says what it said."""
    canonical = protocol.parse_response(copy.deepcopy(body))
    wire = protocol.render_response(canonical)
    assert protocol.parse_response(orjson.loads(orjson.dumps(wire))) == canonical
    assert set(body) - set(wire) <= RESPONSE_FIELDS_DROPPED.get(protocol.name, set())


# Top-level reply fields with no canonical home that only Anthropic keeps in Response.extras;
# the others are informational (billing tier, backend fingerprint) and dropped on re-rendering.
RESPONSE_FIELDS_DROPPED = {"openai_chat": {"service_tier", "system_fingerprint"}}


WIRE_STREAMS: list[tuple[WireProtocol, bytes]] = [
    *[(OPENAI_CHAT, body) for body in gen.CHAT_STREAMS],
    *[(OPENAI_RESPONSES, body) for body in gen.RESPONSES_STREAMS],
    *[(ANTHROPIC, body) for body in gen.ANTHROPIC_STREAMS],
    *[(GEMINI, body) for body in gen.GEMINI_STREAMS],
]


@pytest.mark.parametrize(
    ("protocol", "body"),
    WIRE_STREAMS,
    ids=[f"{p.name}-{n}" for n, (p, _) in enumerate(WIRE_STREAMS)],
)
def test_stream_differential(protocol: WireProtocol, body: bytes) -> None:
    """An upstream stream decoded, re-encoded for a client of the same protocol and decoded
    again gives the same canonical events."""
    events = decode(protocol, [body])
    check_contract(events)
    assert isinstance(events[0], MessageStart)
    again = decode(protocol, [encode(protocol, events, model=events[0].model)])
    # The usage known at the start is a hint (Gemini's encoder reports usage on the last chunk
    # only; Anthropic's message_start may count one output token): the end counts must agree.
    assert collect(again) == collect(events)
    assert _without_start_usage(again) == _without_start_usage(events)


def _without_start_usage(events: list[StreamEvent]) -> list[StreamEvent]:
    return [MessageStart(e.id, e.model) if isinstance(e, MessageStart) else e for e in events]
