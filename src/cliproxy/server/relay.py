"""Streaming an upstream reply to the client: byte relay (pass-through) or translation.

Both paths end a stream the same way: the protocol's normal terminal event when the upstream
finished, or the client protocol's error event when the upstream failed or was cut, never a
silent normal end.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson

from cliproxy.model import (
    ErrorKind,
    MessageEnd,
    MessageStart,
    ProxyError,
    Request,
    Response,
    StreamError,
    StreamEvent,
    Usage,
    UsageUpdate,
    loads_upstream,
)
from cliproxy.model.accumulate import ResponseAccumulator, response_events
from cliproxy.protocols.base import StreamDecoder, StreamEncoder, WireProtocol
from cliproxy.protocols.sse import SSEEvent, SSEParser
from cliproxy.providers.base import UpstreamReply
from cliproxy.server.reply_model import Rename

# A provider hook that turns an upstream's enveloped SSE event into its protocol's plain event
# (Provider.unwrap_stream_event); None when the upstream sends plain events.
Unwrap = Callable[[SSEEvent], SSEEvent] | None

log = logging.getLogger(__name__)

# What an aiohttp body read raises when the upstream hangs up or stalls.
_CUT = (aiohttp.ClientError, ConnectionError, TimeoutError)


def _cut_error(exc: BaseException) -> ProxyError:
    if isinstance(exc, TimeoutError):
        return ProxyError(ErrorKind.TIMEOUT, "upstream stream stalled and timed out")
    return ProxyError(ErrorKind.UPSTREAM, f"upstream stream was cut off ({exc.__class__.__name__})")


class StreamOutcome:
    """What the relay learned, for logging and usage records."""

    def __init__(self) -> None:
        self.error: ProxyError | None = None
        self.end: MessageEnd | None = None
        self.usage = Usage()  # the stream's usage reports merged (they are cumulative)

    def see(self, event: StreamEvent) -> None:
        if isinstance(event, MessageEnd):
            self.end = event
            self.usage = self.usage.merge(event.usage)
        elif isinstance(event, StreamError):
            self.error = event.error
        elif isinstance(event, MessageStart | UsageUpdate):
            self.usage = self.usage.merge(event.usage)


_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def _split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Whole SSE events (each with its blank-line terminator) and the incomplete rest."""
    if b"\r" not in buffer:
        # LF-only lines, nearly every upstream: one C split instead of a regex scan.
        *whole, rest = buffer.split(b"\n\n")
        return [event + b"\n\n" for event in whole], rest
    events: list[bytes] = []
    start = 0
    for match in _EVENT_END.finditer(buffer):
        events.append(buffer[start : match.end()])
        start = match.end()
    return events, buffer[start:]


async def relay_passthrough(
    upstream: UpstreamReply,
    protocol: WireProtocol,
    client_request: Request,
    outcome: StreamOutcome,
    unwrap: Unwrap = None,
    rename: Rename | None = None,
    hidden: Callable[[bytes], bool] | None = None,
) -> AsyncIterator[bytes]:
    """Relay the upstream's SSE bytes unchanged (re-framed only when ``unwrap`` takes an
    envelope off each event, and the model renamed only by ``rename``, applied to events
    already vetted), reading each event on the side to know whether
    the stream really finished. Only whole, well-formed events are forwarded: a cut in the middle
    of an event, an unparsable event or an upstream error event ends the stream with the
    protocol's own error frame, so the client never holds half a frame or a normal ending."""
    parser = SSEParser()
    decoder = protocol.stream_decoder()
    pending = b""
    try:
        try:
            async for chunk in upstream.content.iter_any():
                events, pending = _split_events(pending + chunk)
                good = _vet(events, parser, decoder, outcome, unwrap, hidden)
                if good:
                    yield good if rename is None else rename(good)
                if outcome.error is not None:
                    break
            if outcome.error is None and pending.strip():
                # A final event without its blank line still counts; relay it properly closed.
                good = _vet([pending + b"\n\n"], parser, decoder, outcome, unwrap, hidden)
                if good:
                    yield good if rename is None else rename(good)
            if outcome.error is None:
                for event in decoder.close():
                    outcome.see(event)
        except _CUT as exc:
            outcome.error = _cut_error(exc)
        if outcome.error is not None:
            log.warning("stream to client ends with an error: %s", outcome.error.message)
            yield protocol.stream_encoder(client_request).feed(StreamError(outcome.error))
    finally:
        upstream.release()


def _vet(
    raw_events: list[bytes],
    parser: SSEParser,
    decoder: StreamDecoder,
    outcome: StreamOutcome,
    unwrap: Unwrap = None,
    hidden: Callable[[bytes], bool] | None = None,
) -> bytes:
    """The raw events that decode cleanly, up to the first one that signals an error (those
    ``hidden`` picks out are read but left out)."""
    good: list[bytes] = []
    passes = decoder.passes if unwrap is None else None
    for raw in raw_events:
        if passes is None or not parser.idle or not passes(raw):
            events = parser.feed_event(raw)
            if unwrap is not None:
                events = [unwrap(sse) for sse in events]
            for sse in events:
                for event in decoder.feed(sse):
                    outcome.see(event)
            if outcome.error is not None:
                break
        # else: more text for the open block, which nothing here watches (decoder.passes)
        if hidden is not None and hidden(raw):
            continue
        good.append(raw if unwrap is None else b"".join(_reframe(sse) for sse in events))
    return b"".join(good)


def _reframe(event: SSEEvent) -> bytes:
    head = f"event: {event.event}\n".encode() if event.event is not None else b""
    lines = b"".join(b"data: " + line.encode() + b"\n" for line in event.data.split("\n"))
    return head + lines + b"\n"


async def relay_translated(
    upstream: UpstreamReply,
    decoder: StreamDecoder,
    encoder: StreamEncoder,
    outcome: StreamOutcome,
    unwrap: Unwrap = None,
) -> AsyncIterator[bytes]:
    """Decode the upstream's stream into canonical events and encode them for the client."""
    parser = SSEParser()
    try:
        try:
            async for chunk in upstream.content.iter_any():
                out = _translate(_unwrapped(parser.feed(chunk), unwrap), decoder, encoder, outcome)
                if out:
                    yield out
                if outcome.end is not None or outcome.error is not None:
                    return
            out = _translate(_unwrapped(parser.close(), unwrap), decoder, encoder, outcome)
            if outcome.end is None and outcome.error is None:
                out += _encode(decoder.close(), encoder, outcome)
            if out:
                yield out
        except _CUT as exc:
            if outcome.end is None and outcome.error is None:
                yield _encode([StreamError(_cut_error(exc))], encoder, outcome)
        if outcome.end is None and outcome.error is None:
            # The decoder promised a terminal event at close(); keep that promise here too.
            error = ProxyError(ErrorKind.UPSTREAM, "upstream stream ended early")
            yield _encode([StreamError(error)], encoder, outcome)
    finally:
        upstream.release()


def _unwrapped(sse_events: list[SSEEvent], unwrap: Unwrap) -> list[SSEEvent]:
    return sse_events if unwrap is None else [unwrap(sse) for sse in sse_events]


def _translate(
    sse_events: list, decoder: StreamDecoder, encoder: StreamEncoder, outcome: StreamOutcome
) -> bytes:
    out = b""
    for sse in sse_events:
        out += _encode(decoder.feed(sse), encoder, outcome)
        if outcome.end is not None or outcome.error is not None:
            break
    return out


def _encode(events: list[StreamEvent], encoder: StreamEncoder, outcome: StreamOutcome) -> bytes:
    out = b""
    for event in events:
        if outcome.end is not None or outcome.error is not None:
            break
        outcome.see(event)
        out += encoder.feed(event)
    return out


async def relay_json_reply(
    upstream: UpstreamReply,
    upstream_protocol: WireProtocol,
    encoder: StreamEncoder,
    outcome: StreamOutcome,
    unwrap_json: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> AsyncIterator[bytes]:
    """Some upstreams ignore ``stream: true`` and answer with one JSON reply: replay it to the
    client as the stream it asked for."""
    try:
        try:
            raw = await upstream.read()
        finally:
            upstream.release()
        try:
            data = loads_upstream(raw, "upstream reply")
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise ProxyError(ErrorKind.UPSTREAM, "upstream sent a reply that is not JSON")
        if unwrap_json is not None:
            data = unwrap_json(data)
        events: list[StreamEvent] = list(response_events(upstream_protocol.parse_response(data)))
    except _CUT as exc:
        events = [StreamError(_cut_error(exc))]
    except ProxyError as error:
        events = [StreamError(error)]
    yield _encode(events, encoder, outcome)


async def collect_stream(
    upstream: UpstreamReply, decoder: StreamDecoder, unwrap: Unwrap = None
) -> Response:
    """Read a whole upstream stream into one canonical reply (for a non-streaming client of a
    stream-only upstream). A cut, an error event or a missing terminal event raises."""
    parser = SSEParser()
    accumulator = ResponseAccumulator()
    try:
        try:
            async for chunk in upstream.content.iter_any():
                for sse in _unwrapped(parser.feed(chunk), unwrap):
                    for event in decoder.feed(sse):
                        accumulator.feed(event)
                if accumulator.done:
                    return accumulator.result()
            for sse in _unwrapped(parser.close(), unwrap):
                for event in decoder.feed(sse):
                    accumulator.feed(event)
            if not accumulator.done:
                for event in decoder.close():
                    accumulator.feed(event)
        except _CUT as exc:
            raise _cut_error(exc) from None
    finally:
        upstream.release()
    return accumulator.result()
