"""What a simulator answers: a small, vendor-neutral description of one upstream reply.

A `Reply` says *what* the upstream says (text, tool calls, an error, garbage) and *how* it is
delivered (chunking, delays, an abrupt cut, a hang). Each simulator renders it in its own
vendor's wire format, so one scripted reply can be replayed against every protocol.

Token counts follow OpenAI's conventions, which are the easiest to state:
- `input_tokens` is the whole prompt, `cached_tokens` the part of it read from cache;
- `output_tokens` is the whole completion, `reasoning_tokens` the part of it spent thinking.
Each simulator converts them to its vendor's own counting (see the renderers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

# The finish reasons a reply can end with, in neutral vocabulary. Each vendor renders them in
# its own words (stop/end_turn/STOP, length/max_tokens/MAX_TOKENS, tool_calls/tool_use, ...).
Finish = Literal["stop", "length", "tool_calls", "content_filter"]
ReplyKind = Literal["text", "error", "garbage"]

_DEFAULT_ARGS_PIECE = 12


@dataclass(frozen=True)
class ToolCall:
    """One function call the model makes. `call_id` is generated per vendor when None."""

    name: str
    arguments: dict[str, Any]
    call_id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted upstream answer. Build it with the classmethods, not the constructor."""

    kind: ReplyKind
    content: str = ""
    reasoning: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish: Finish = "stop"
    input_tokens: int = 10
    output_tokens: int = 5
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # Delivery options.
    chunk_size: int | None = None
    delay: float = 0.0
    cut_after: int | None = None
    hang: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    # Error options.
    status: int = 200
    message: str | None = None
    retry_after: int | None = None
    error_type: str | None = None
    error_code: str | None = None
    body: Any = None

    # ----- constructors -------------------------------------------------------------------

    @classmethod
    def text(cls, text: str, **options: Any) -> Reply:
        """A plain text answer. Options: input_tokens, output_tokens, cached_tokens,
        reasoning_tokens, finish, reasoning, chunk_size, delay, cut_after, hang, headers."""
        return cls(kind="text", content=text, **options)

    @classmethod
    def tool_call(
        cls,
        name: str,
        arguments: dict[str, Any],
        text: str | None = None,
        *,
        call_id: str | None = None,
        **options: Any,
    ) -> Reply:
        """A single function call, optionally preceded by some text. Finish: tool_calls."""
        return cls.parallel_tool_calls([ToolCall(name, arguments, call_id)], text=text, **options)

    @classmethod
    def parallel_tool_calls(
        cls, calls: list[ToolCall], text: str | None = None, **options: Any
    ) -> Reply:
        """Several (parallel) function calls in one turn. Finish: tool_calls."""
        options.setdefault("finish", "tool_calls")
        return cls(kind="text", content=text or "", tool_calls=tuple(calls), **options)

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        hang: bool = False,
    ) -> Reply:
        """An HTTP error in the vendor's error shape.

        `retry_after` (seconds) adds a Retry-After header (and Gemini's RetryInfo detail).
        `error_type` / `code` override the vendor's default error type / code for `status`.
        `body` replaces the whole JSON body (e.g. Codex's usage_limit_reached shape)."""
        return cls(
            kind="error",
            status=status,
            message=message,
            retry_after=retry_after,
            error_type=error_type,
            error_code=code,
            body=body,
            headers=dict(headers or {}),
            hang=hang,
        )

    @classmethod
    def garbage(cls, **options: Any) -> Reply:
        """HTTP 200 whose body is not valid JSON (or, for streams, malformed SSE)."""
        return cls(kind="garbage", **options)

    def with_options(self, **options: Any) -> Reply:
        """A copy with some fields changed, e.g. `reply.with_options(delay=0.1)`."""
        return replace(self, **options)

    # ----- derived views used by the renderers --------------------------------------------

    def text_pieces(self) -> list[str]:
        """The text split the way it is streamed: fixed-size pieces, or word by word."""
        return split_text(self.content, self.chunk_size)

    def reasoning_pieces(self) -> list[str]:
        return split_text(self.reasoning or "", self.chunk_size)

    def argument_pieces(self, arguments_json: str) -> list[str]:
        """A tool call's JSON arguments split into streamed pieces (never empty)."""
        size = self.chunk_size or _DEFAULT_ARGS_PIECE
        pieces = [arguments_json[i : i + size] for i in range(0, len(arguments_json), size)]
        return pieces or [""]


def split_text(text: str, chunk_size: int | None) -> list[str]:
    """Split into `chunk_size`-character pieces, or by words (keeping the spaces) when None."""
    if not text:
        return []
    if chunk_size:
        return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or [text]
