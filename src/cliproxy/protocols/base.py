"""The interface every wire protocol module implements.

A protocol module parses its wire JSON into the canonical model and renders the canonical model
back into its wire JSON, for requests, complete responses and streams. The server uses the module
of the client's protocol on the way in and out; a provider uses the module of its upstream's
protocol. Same protocol on both sides takes the pass-through path and skips the canonical model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from cliproxy.model import ProxyError, Request, Response, StreamEvent, Usage
from cliproxy.protocols.sse import SSEEvent

JSON = dict[str, Any]


class StreamDecoder(ABC):
    """Turns one upstream stream (already split into SSE events) into canonical events.

    State for one stream lives in the instance. ``close()`` is called when the upstream body ends:
    if the protocol's terminal event was never seen it must return a StreamError (kind UPSTREAM),
    so a cut stream never looks like a normal end.
    """

    finished: bool = False  # set once the protocol's terminal event has been seen

    @abstractmethod
    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...

    @abstractmethod
    def close(self) -> list[StreamEvent]: ...

    def passes(self, raw: bytes) -> bool:
        """Whether one whole SSE event, as the upstream sent it, may be relayed without
        ``feed``: it carries only more of what the stream is already doing (text into the
        open text block) and nothing the relay watches (a start, an end, usage, an error, a
        new block). The pass-through relay asks first, for every event; True means the event
        was read and the decoder's state is as ``feed`` would have left it. The default never
        says so."""
        return False


class StreamEncoder(ABC):
    """Turns canonical events into this protocol's SSE bytes for one client stream.

    ``feed`` returns the bytes to send now (possibly b""). MessageEnd renders the protocol's normal
    terminal frames; StreamError renders its error frames. Either is the last event fed.
    """

    @abstractmethod
    def feed(self, event: StreamEvent) -> bytes: ...


class WireProtocol(ABC):
    name: str  # "openai_chat" | "openai_responses" | "anthropic" | "gemini"
    # The key that names the model in a reply and in the stream events that carry one;
    # pass-through writes the client's model name there (server/reply_model.py).
    reply_model_key: str = "model"

    @abstractmethod
    def parse_request(self, body: JSON) -> Request:
        """Wire request → canonical. Raise ``invalid(message, param)`` on bad input: the message
        names the offending field (e.g. "messages[2].content: expected a string or a list")."""

    @abstractmethod
    def render_request(self, request: Request) -> JSON: ...

    @abstractmethod
    def parse_response(self, body: JSON) -> Response:
        """Upstream reply → canonical. Raise ProxyError(UPSTREAM, ...) if it is unusable."""

    @abstractmethod
    def render_response(self, response: Response) -> JSON: ...

    def reply_usage(self, body: JSON) -> Usage:
        """The token usage of a reply, for a reply forwarded as is (protocols override this
        with a read of the usage field alone, cheaper than parsing the whole reply)."""
        try:
            return self.parse_response(body).usage
        except ProxyError:
            return Usage()

    def ask_stream_usage(self, body: JSON) -> Callable[[bytes], bool] | None:
        """For a stream forwarded as is: make ``body`` ask the upstream for token usage when
        the client did not (in place), and return a test for the raw SSE events that only the
        asking produced, which the relay then reads but does not send on. None when the
        protocol's streams always report usage (the default) or the client asked itself."""
        return None

    @abstractmethod
    def stream_decoder(self) -> StreamDecoder: ...

    @abstractmethod
    def stream_encoder(self, request: Request) -> StreamEncoder:
        """An encoder for one client stream; ``request`` gives the model name the client asked
        for and options such as OpenAI's ``include_usage``."""

    @abstractmethod
    def render_error(self, error: ProxyError) -> JSON:
        """The protocol's own error body for ``error`` (the HTTP status is ``error.status``)."""

    @abstractmethod
    def parse_error(self, status: int, body: bytes) -> ProxyError:
        """An upstream error reply → ProxyError with the upstream's message, status and any
        retry hint (Retry-After is read by the caller from headers; body hints are read here)."""


@runtime_checkable
class CountRequestParser(Protocol):
    """A protocol whose token-counting body differs from its generation body (Anthropic's
    count_tokens takes no max_tokens, Gemini's countTokens may wrap a generateContentRequest)."""

    def parse_count_tokens_request(self, body: JSON) -> Request: ...
