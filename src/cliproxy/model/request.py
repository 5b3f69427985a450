"""The canonical request and response: what every wire protocol parses to and renders from."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from cliproxy.model.parts import Part, TextPart

Role = Literal["system", "user", "assistant"]


@dataclass(slots=True)
class Message:
    """One turn. Tool results travel as ToolResultPart inside a ``user`` message (OpenAI's
    ``role: tool`` messages are folded into that); ``system`` messages inside the conversation are
    kept in place because Claude Code sends them there."""

    role: Role
    content: list[Part] = field(default_factory=list)

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(slots=True)
class Tool:
    """A function the model may call. ``parameters`` is a JSON Schema object. Built-in tools of a
    vendor (web_search, Anthropic server tools) keep their raw definition in ``builtin``."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    builtin: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None  # when mode == "tool"


@dataclass(slots=True)
class Reasoning:
    """How much to think. ``effort`` is OpenAI's scale, ``budget`` a token budget (Anthropic,
    Gemini 2.5); translators convert between the two when only one is given."""

    effort: str | None = None  # none|minimal|low|medium|high|xhigh
    budget: int | None = None
    enabled: bool | None = None
    include_thoughts: bool | None = None
    summary: str | None = None  # OpenAI Responses: auto|concise|detailed


@dataclass(slots=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[TextPart] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    reasoning: Reasoning | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI stream_options.include_usage
    user: str | None = None
    metadata: dict[str, Any] | None = None
    # Fields a protocol has and this model does not, keyed by protocol name, so a round trip
    # through the same protocol keeps them (e.g. {"anthropic": {"context_management": {...}}}).
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)

    def system_text(self) -> str:
        return "\n\n".join(p.text for p in self.system if p.text)


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    STOP_SEQUENCE = "stop_sequence"
    CONTENT_FILTER = "content_filter"
    PAUSE = "pause"
    REFUSAL = "refusal"
    ERROR = "error"


@dataclass(slots=True)
class Usage:
    """Token counts with OpenAI's meaning: ``input_tokens`` includes cached and cache-write tokens,
    ``output_tokens`` includes reasoning tokens. Protocols that count differently (Anthropic
    excludes cache reads from input_tokens; Gemini excludes thoughts from candidates) convert."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def merge(self, other: Usage) -> Usage:
        """Take the larger of each count: stream usage reports are cumulative snapshots."""
        return Usage(
            input_tokens=max(self.input_tokens, other.input_tokens),
            output_tokens=max(self.output_tokens, other.output_tokens),
            cached_tokens=max(self.cached_tokens, other.cached_tokens),
            cache_creation_tokens=max(self.cache_creation_tokens, other.cache_creation_tokens),
            reasoning_tokens=max(self.reasoning_tokens, other.reasoning_tokens),
        )


@dataclass(slots=True)
class Response:
    """A complete (non-streamed) assistant reply."""

    id: str
    model: str
    content: list[Part] = field(default_factory=list)
    finish_reason: FinishReason = FinishReason.STOP
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    created: int = 0  # unix seconds; 0 means "now" to renderers
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))
