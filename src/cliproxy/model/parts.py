"""Content parts: the pieces a message is made of, independent of any wire protocol.

Every part is a plain typed value. A field that only one vendor has (a reasoning signature, an
encrypted reasoning blob, Anthropic's cache_control) is a named field, not a free-form dict, so a
translator can decide what to do with it explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Anthropic's prompt-cache marker ({"type": "ephemeral", "ttl": "1h"}); kept verbatim so the
# Anthropic renderer can put it back. Other protocols ignore it.
CacheControl = dict[str, Any]


@dataclass(slots=True)
class TextPart:
    text: str
    cache_control: CacheControl | None = None
    kind: Literal["text"] = "text"


@dataclass(slots=True)
class ImagePart:
    """An image given inline (base64 ``data`` with ``media_type``) or by ``url``."""

    media_type: str = ""
    data: str | None = None  # base64, no data: prefix
    url: str | None = None
    detail: str | None = None  # OpenAI's low|high|auto
    cache_control: CacheControl | None = None
    kind: Literal["image"] = "image"


@dataclass(slots=True)
class FilePart:
    """A document (PDF, text, ...) inline or by reference (URL, file id, Gemini fileUri)."""

    media_type: str = ""
    data: str | None = None  # base64
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    cache_control: CacheControl | None = None
    kind: Literal["file"] = "file"


@dataclass(slots=True)
class ToolCallPart:
    """The model asks for a tool. ``arguments`` is the JSON text of the arguments object."""

    id: str
    name: str
    arguments: str = "{}"
    # Gemini 3 attaches a thoughtSignature to function-call parts; it must be replayed.
    signature: str | None = None
    kind: Literal["tool_call"] = "tool_call"


@dataclass(slots=True)
class ToolResultPart:
    """The result of a tool call, matched to the call by ``call_id`` (and ``name`` for Gemini)."""

    call_id: str
    content: list[TextPart | ImagePart | FilePart] = field(default_factory=list)
    name: str | None = None
    is_error: bool = False
    cache_control: CacheControl | None = None
    kind: Literal["tool_result"] = "tool_result"

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(slots=True)
class ReasoningPart:
    """Model reasoning ("thinking").

    ``signature`` is Anthropic's thinking signature or Gemini's thoughtSignature; ``encrypted`` is an
    opaque blob (OpenAI's encrypted_content, Anthropic's redacted_thinking data). ``issuer`` names
    the protocol that produced the signature/blob, since they are only valid when sent back to it.
    """

    text: str = ""
    signature: str | None = None
    encrypted: str | None = None
    redacted: bool = False
    issuer: str | None = None
    id: str | None = None  # OpenAI Responses reasoning item id
    kind: Literal["reasoning"] = "reasoning"


Part = TextPart | ImagePart | FilePart | ToolCallPart | ToolResultPart | ReasoningPart
