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


UNANSWERED = "[no result: this tool call was interrupted or its result was never sent]"


def settle_unanswered_calls(messages: list[Message]) -> list[Message]:
    """``messages`` with a result supplied for every tool call the conversation went on past
    without answering (a user who interrupted a tool, a client that dropped the output).
    Anthropic, Chat Completions and Responses all answer 400 when a call has no result before
    the next turn; the supplied result says plainly that there was none, as an error, so the
    model does not take it for output. Consecutive assistant messages are one turn (every
    renderer merges them); a call in the last turn is left alone: its result may simply not
    exist yet. Messages that need nothing are returned as they are (same list)."""
    supplied: dict[int, list[Part]] = {}  # index of the turn after the calls -> results
    for index, message in enumerate(messages):
        calls = [p for p in message.content if isinstance(p, ToolCallPart)]
        if message.role != "assistant" or not calls:
            continue
        after = index + 1
        while after < len(messages) and messages[after].role == "assistant":
            after += 1
        if after == len(messages):
            continue
        answered = _results_before_next_assistant(messages, after)
        missing: list[Part] = [
            ToolResultPart(call.id, [TextPart(UNANSWERED)], name=call.name, is_error=True)
            for call in calls
            if call.id not in answered
        ]
        if missing:
            supplied.setdefault(after, []).extend(missing)
    if not supplied:
        return messages
    settled: list[Message] = []
    for index, message in enumerate(messages):
        results = supplied.get(index)
        if results and message.role == "user":
            # Results lead the next user turn, where every protocol expects them.
            settled.append(Message("user", [*results, *message.content]))
            continue
        if results:
            settled.append(Message("user", results))
        settled.append(message)
    return settled


def _results_before_next_assistant(messages: list[Message], start: int) -> set[str]:
    answered: set[str] = set()
    for message in messages[start:]:
        if message.role == "assistant":
            break
        answered.update(p.call_id for p in message.content if isinstance(p, ToolResultPart))
    return answered


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
