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


class _Encoder(Protocol):
    def encode(self, text: str) -> list[int]: ...


@functools.cache
def _encoding() -> _Encoder:
    import bpe_openai

    encoding: _Encoder = bpe_openai.get_encoding("o200k_base")
    return encoding


def count_text(text: str) -> int:
    if not text:
        return 0
    return len(_encoding().encode(text))


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
