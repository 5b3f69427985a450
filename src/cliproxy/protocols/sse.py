"""Server-sent events: an incremental parser for upstream bytes and a frame encoder.

The parser follows the WHATWG rules that matter for LLM streams: lines end in LF, CRLF or CR;
``data:`` lines of one event are joined with LF; a blank line dispatches; ``:`` lines are comments.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEParser:
    """Feed raw bytes as they arrive; get back the events completed so far."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        if b"\r" not in self._buffer:
            return self._feed_lf()
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            end, skip = cut
            line = self._buffer[:end].decode("utf-8", errors="replace")
            self._buffer = self._buffer[end + skip :]
            event = self._take_line(line)
            if event is not None:
                events.append(event)
        return events

    @property
    def idle(self) -> bool:
        """Between events: nothing buffered, no event half read."""
        return not self._buffer and not self._data and self._event is None

    def feed_event(self, raw: bytes) -> list[SSEEvent]:
        """``feed`` for bytes that hold whole events (the pass-through relay splits them first).
        The usual one, a single ``data: `` line, is read without going line by line."""
        if (
            raw.startswith(b"data: ")
            and raw.endswith(b"\n\n")
            and raw.count(b"\n") == 2
            and b"\r" not in raw
            and not self._buffer
            and not self._data
            and self._event is None
        ):
            return [SSEEvent(None, raw[6:-2].decode("utf-8", errors="replace"))]
        return self.feed(raw)

    def _feed_lf(self) -> list[SSEEvent]:
        """The common case, lines ending in LF only: split them in one C call rather than
        looking for each line's end in turn (this runs for every relayed event)."""
        *lines, self._buffer = self._buffer.split(b"\n")
        events: list[SSEEvent] = []
        for line in lines:
            event = self._take_line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """Flush an event the upstream left without its final blank line."""
        events: list[SSEEvent] = []
        if self._buffer:
            tail = self._buffer.decode("utf-8", errors="replace")
            self._buffer = b""
            event = self._take_line(tail)
            if event is not None:
                events.append(event)
        event = self._take_line("")
        if event is not None:
            events.append(event)
        return events

    def _take_line(self, line: str) -> SSEEvent | None:
        if line == "":
            if not self._data and self._event is None:
                return None
            event = SSEEvent(self._event, "\n".join(self._data))
            self._event, self._data = None, []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """Position and length of the first line terminator, or None if no full line is buffered."""
    lf = buffer.find(b"\n")
    cr = buffer.find(b"\r")
    if cr == -1 and lf == -1:
        return None
    if cr == -1 or (lf != -1 and lf < cr):
        return lf, 1
    # A CR at the very end may be the first half of CRLF: wait for more bytes.
    if cr == len(buffer) - 1:
        return None
    return (cr, 2) if buffer[cr + 1 : cr + 2] == b"\n" else (cr, 1)


def frame(data: bytes | str, event: str | None = None) -> bytes:
    """One SSE frame. ``data`` must not contain newlines (compact JSON never does)."""
    body = data.encode() if isinstance(data, str) else data
    if event is None:
        return b"data: " + body + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"
