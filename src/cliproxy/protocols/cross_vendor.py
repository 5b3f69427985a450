"""What every renderer does the same way when the request came from another vendor's client.

- Orphan tool results. A Responses client that keeps state on the server (``previous_response_id``,
  ``conversation``, ``store``) sends a ``function_call_output`` whose ``function_call`` is not in
  the input. Chat Completions, Anthropic and Gemini all answer 400 to a result without its call
  (Gemini also needs the call's function name, which only the call had), so such a result is sent
  as user text that names the call id and keeps the output (and any images after it).
- Built-in tools. A vendor's hosted tools (Responses ``web_search``, Anthropic server tools,
  Gemini ``googleSearch``) only mean something to that vendor. Web search exists everywhere but
  Chat Completions, so it is translated; anything else without an equivalent is dropped, with one
  log line per request naming what was dropped.
- Media an upstream cannot read at all (audio for Anthropic, video for OpenAI) is refused here
  with a 400 that says so, instead of being sent for the upstream to refuse with its own words.
"""

from __future__ import annotations

import logging
from typing import Any

from cliproxy.model import (
    FilePart,
    Message,
    Part,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    invalid,
)

log = logging.getLogger(__name__)


def settle_orphan_results(messages: list[Message]) -> list[Message]:
    """``messages`` with every tool result whose call is in no earlier message turned into
    user text. Messages without orphans are returned as they are (same objects)."""
    issued: set[str] = set()
    settled: list[Message] = []
    for message in messages:
        parts: list[Part] = []
        changed = False
        for part in message.content:
            if isinstance(part, ToolCallPart):
                issued.add(part.id)
            if isinstance(part, ToolResultPart) and part.call_id not in issued:
                parts.extend(_as_text(part))
                changed = True
            else:
                parts.append(part)
        settled.append(Message(message.role, parts) if changed else message)
    return settled


def _as_text(result: ToolResultPart) -> list[Part]:
    label = "error" if result.is_error else "output"
    name = f" ({result.name})" if result.name else ""
    parts: list[Part] = [
        TextPart(f"[tool {label} for call {result.call_id}{name}]\n{result.text()}")
    ]
    parts.extend(p for p in result.content if not isinstance(p, TextPart))
    return parts


def is_web_search(builtin: dict[str, Any]) -> bool:
    """Whether a built-in tool definition (of any vendor) is a web search."""
    kind = builtin.get("type")
    if isinstance(kind, str):
        return kind.startswith("web_search")
    return "googleSearch" in builtin or "google_search" in builtin


def builtin_label(tool: Tool) -> str:
    kind = tool.builtin.get("type") if tool.builtin else None
    return kind if isinstance(kind, str) else tool.name


def log_dropped_builtins(upstream: str, dropped: list[str]) -> None:
    """One line per request listing the built-in tools ``upstream`` cannot take."""
    if dropped:
        log.warning(
            "dropped built-in tools with no %s equivalent: %s", upstream, ", ".join(dropped)
        )


def refuse_media(part: FilePart, upstream: str, refused: tuple[str, ...]) -> None:
    """Raise a client error when ``part``'s media type family (``audio``, ``video``) is one
    ``upstream`` takes in no form."""
    family = part.media_type.split("/", 1)[0]
    if family in refused:
        raise invalid(
            f"messages: {part.media_type} input cannot be sent to this model "
            f"(its {upstream} upstream does not accept {family})",
            "messages",
        )
