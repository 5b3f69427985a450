"""Canonical stream events.

A stream decoder turns one protocol's SSE frames into these; an encoder turns them into another
protocol's frames. Content blocks are numbered by ``index`` (0, 1, 2 ... in order of appearance).
A block starts with TextStart / ReasoningStart / ToolCallStart, receives deltas with the same
index, and ends with BlockEnd. Decoders always emit the start event before the first delta and a
BlockEnd for every started block before MessageEnd, so encoders may rely on that order.

A stream ends with exactly one of MessageEnd (normal end) or StreamError (the upstream failed or
was cut): an encoder must render StreamError as its protocol's error event, never as a normal end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cliproxy.model.errors import ProxyError
from cliproxy.model.request import FinishReason, Usage


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage = field(default_factory=Usage)  # input tokens when already known


@dataclass(slots=True)
class TextStart:
    index: int


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(slots=True)
class ReasoningStart:
    index: int
    id: str | None = None
    redacted: bool = False
    encrypted: str | None = None  # redacted_thinking data / encrypted_content when known up front
    # The protocol whose upstream produced this block's signature/encrypted blob (the decoder's
    # own name); an encoder only hands those back to a client of the same issuer unchanged.
    issuer: str | None = None


@dataclass(slots=True)
class ReasoningDelta:
    index: int
    text: str = ""
    signature: str | None = None  # a signature (or a piece of one) arriving for this block
    encrypted: str | None = None


@dataclass(slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str
    signature: str | None = None  # Gemini thoughtSignature on the functionCall part


@dataclass(slots=True)
class ToolArgsDelta:
    index: int
    delta: str  # a piece of the arguments JSON text


@dataclass(slots=True)
class BlockEnd:
    index: int


@dataclass(slots=True)
class UsageUpdate:
    usage: Usage


@dataclass(slots=True)
class MessageEnd:
    finish_reason: FinishReason
    usage: Usage = field(default_factory=Usage)
    stop_sequence: str | None = None


@dataclass(slots=True)
class StreamError:
    error: ProxyError


StreamEvent = (
    MessageStart
    | TextStart
    | TextDelta
    | ReasoningStart
    | ReasoningDelta
    | ToolCallStart
    | ToolArgsDelta
    | BlockEnd
    | UsageUpdate
    | MessageEnd
    | StreamError
)
