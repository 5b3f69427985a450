"""Conversions between a stream of canonical events and a complete Response."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cliproxy.model.errors import ErrorKind, ProxyError
from cliproxy.model.events import (
    BlockEnd,
    MessageEnd,
    MessageStart,
    ReasoningDelta,
    ReasoningStart,
    StreamError,
    StreamEvent,
    TextDelta,
    TextStart,
    ToolArgsDelta,
    ToolCallStart,
    UsageUpdate,
)
from cliproxy.model.parts import Part, ReasoningPart, TextPart, ToolCallPart
from cliproxy.model.request import FinishReason, Response, Usage


class ResponseAccumulator:
    """Builds a Response from canonical stream events (for clients that did not ask to stream
    from an upstream that only streams). Raises the ProxyError of a StreamError event."""

    def __init__(self, model: str = "") -> None:
        self.response = Response(id="", model=model)
        self.done = False
        self._blocks: dict[int, Part] = {}

    def feed(self, event: StreamEvent) -> None:
        response = self.response
        match event:
            case MessageStart(id=id_, model=model, usage=usage):
                response.id = id_
                response.model = response.model or model
                response.usage = response.usage.merge(usage)
            case TextStart(index=index):
                self._add(index, TextPart(""))
            case TextDelta(index=index, text=text):
                part = self._blocks.get(index)
                if not isinstance(part, TextPart):
                    part = self._add(index, TextPart(""))
                assert isinstance(part, TextPart)
                part.text += text
            case ReasoningStart(
                index=index, id=id_, redacted=redacted, encrypted=encrypted, issuer=issuer
            ):
                self._add(
                    index,
                    ReasoningPart(id=id_, redacted=redacted, encrypted=encrypted, issuer=issuer),
                )
            case ReasoningDelta(index=index, text=text, signature=signature, encrypted=encrypted):
                part = self._blocks.get(index)
                if not isinstance(part, ReasoningPart):
                    part = self._add(index, ReasoningPart())
                assert isinstance(part, ReasoningPart)
                part.text += text
                if signature:
                    part.signature = (part.signature or "") + signature
                if encrypted:
                    part.encrypted = encrypted
            case ToolCallStart(index=index, id=id_, name=name, signature=signature):
                self._add(index, ToolCallPart(id=id_, name=name, arguments="", signature=signature))
            case ToolArgsDelta(index=index, delta=delta):
                part = self._blocks.get(index)
                if isinstance(part, ToolCallPart):
                    part.arguments += delta
            case BlockEnd():
                pass
            case UsageUpdate(usage=usage):
                response.usage = response.usage.merge(usage)
            case MessageEnd(finish_reason=reason, usage=usage, stop_sequence=stop_sequence):
                response.finish_reason = reason
                response.stop_sequence = stop_sequence
                response.usage = response.usage.merge(usage)
                for part in response.content:
                    if isinstance(part, ToolCallPart) and not part.arguments:
                        part.arguments = "{}"
                self.done = True
            case StreamError(error=error):
                raise error

    def _add(self, index: int, part: Part) -> Part:
        self._blocks[index] = part
        self.response.content.append(part)
        return part

    def result(self) -> Response:
        if not self.done:
            raise ProxyError(
                ErrorKind.UPSTREAM, "upstream stream ended before the reply was complete"
            )
        return self.response


def collect(events: Iterable[StreamEvent], model: str = "") -> Response:
    acc = ResponseAccumulator(model)
    for event in events:
        acc.feed(event)
    return acc.result()


def response_events(response: Response, chunk_size: int = 0) -> Iterator[StreamEvent]:
    """Replay a complete Response as stream events (text split in ``chunk_size`` pieces if > 0)."""
    yield MessageStart(
        id=response.id,
        model=response.model,
        usage=Usage(
            input_tokens=response.usage.input_tokens,
            cached_tokens=response.usage.cached_tokens,
            cache_creation_tokens=response.usage.cache_creation_tokens,
        ),
    )
    for index, part in enumerate(response.content):
        if isinstance(part, TextPart):
            yield TextStart(index)
            for piece in _pieces(part.text, chunk_size):
                yield TextDelta(index, piece)
        elif isinstance(part, ReasoningPart):
            yield ReasoningStart(
                index,
                id=part.id,
                redacted=part.redacted,
                encrypted=part.encrypted,
                issuer=part.issuer,
            )
            for piece in _pieces(part.text, chunk_size):
                yield ReasoningDelta(index, text=piece)
            if part.signature:
                yield ReasoningDelta(index, signature=part.signature)
        elif isinstance(part, ToolCallPart):
            yield ToolCallStart(index, id=part.id, name=part.name, signature=part.signature)
            yield ToolArgsDelta(index, part.arguments)
        else:
            continue
        yield BlockEnd(index)
    if response.finish_reason is FinishReason.ERROR:
        yield StreamError(ProxyError(ErrorKind.UPSTREAM, "upstream reported an error"))
        return
    yield MessageEnd(response.finish_reason, response.usage, response.stop_sequence)


def _pieces(text: str, size: int) -> list[str]:
    if not text:
        return []
    if size <= 0:
        return [text]
    return [text[i : i + size] for i in range(0, len(text), size)]
