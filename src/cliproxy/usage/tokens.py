"""Local token estimates for count_tokens when the upstream has no counting endpoint.

Text is counted with OpenAI's o200k_base BPE (bpe-openai ships the vocabulary, so nothing is
downloaded at run time); other vendors' tokenizers differ by a few percent, which is the accuracy
an estimate can promise. Everything the client sent that reaches the model is counted — system,
messages, tool calls and results, tool definitions, images — and nothing the proxy adds.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import orjson

from cliproxy.model import (
    FilePart,
    ImagePart,
    ReasoningPart,
    Request,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

# Per-message framing (role markers) and the reply primer, as OpenAI documents for chat models.
MESSAGE_OVERHEAD = 3
REPLY_PRIMER = 3
# An image's cost depends on its size, which a count request rarely lets us see cheaply; this is
# the cost of a ~1 megapixel image at both OpenAI (high detail) and Anthropic (w*h/750).
IMAGE_TOKENS = 1_000
# Documents (PDF pages) are counted as one image-sized block each: a floor, not an exact count.
FILE_TOKENS = 1_000
# bpe-openai refuses a piece of a million characters or more, or one that encodes to more than
# 200,000 tokens. A character is at most 4 UTF-8 bytes, so at most 4 tokens: pieces of this many
# characters stay under both limits whatever the text (the encoder itself runs in linear time).
CHUNK_CHARS = 40_000


class _Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@functools.cache
def _encoding() -> _Encoder:
    import bpe_openai

    encoding: _Encoder = bpe_openai.get_encoding("o200k_base")
    return encoding


def count_text(text: str) -> int:
    """Tokens of any text: special-token spellings (``<|endoftext|>``) count as the plain text a
    client sent, and text past the encoder's limits is counted in pieces."""
    if not text:
        return 0
    encode = _encoding().encode_ordinary
    if len(text) <= CHUNK_CHARS:
        return len(encode(text))
    total = 0
    start = 0
    while start < len(text):
        end = _piece_end(text, start)
        total += len(encode(text[start:end]))
        start = end
    return total


def _piece_end(text: str, start: int) -> int:
    end = start + CHUNK_CHARS
    if end >= len(text):
        return len(text)
    # A cut just before a space falls where the encoder splits words anyway, so the pieces
    # count as the whole would; a run without spaces is cut anywhere, a token or so off.
    space = text.rfind(" ", end - CHUNK_CHARS // 4, end)
    return space if space > start else end


def count_request(request: Request) -> int:
    total = REPLY_PRIMER
    if request.system:
        total += MESSAGE_OVERHEAD + sum(count_text(p.text) for p in request.system)
    for message in request.messages:
        total += MESSAGE_OVERHEAD
        for part in message.content:
            total += _count_part(part)
    for tool in request.tools:
        definition: dict[str, Any] = tool.builtin or {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        }
        total += count_text(orjson.dumps(definition).decode())
    return total


def _count_part(part: object) -> int:
    if isinstance(part, TextPart):
        return count_text(part.text)
    if isinstance(part, ReasoningPart):
        return count_text(part.text)
    if isinstance(part, ToolCallPart):
        return count_text(part.name) + count_text(part.arguments)
    if isinstance(part, ToolResultPart):
        return sum(_count_part(inner) for inner in part.content)
    if isinstance(part, ImagePart):
        return IMAGE_TOKENS
    if isinstance(part, FilePart):
        return FILE_TOKENS
    return 0
