"""Recognising one conversation across its turns, whatever protocol the client speaks.

Session affinity (routing/affinity.py) pins a conversation to the credential that served it,
and subscription upstreams want a stable session and prompt-cache id per conversation (the
Codex backend caches prompts per ``prompt_cache_key``). Both start from the same key: a
client's own session header or body field, else a hash of the conversation's first user message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

# Header names in lookup order (Starlette's headers are case-insensitive).
_SESSION_HEADERS = (
    ("x-claude-code-session-id", "claude-code"),
    ("session_id", "codex"),
    ("session-id", "codex"),
)
_BODY_KEYS = (("prompt_cache_key", "prompt-cache"), ("previous_response_id", "response"))


def session_key(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """The request's session key, first match wins: a client's session header, the body's
    ``prompt_cache_key`` or ``previous_response_id``, else a hash of the first user message
    when the conversation already has more than one message (a one-shot request is not a
    session and must not pin a credential)."""
    for header, source in _SESSION_HEADERS:
        value = headers.get(header)
        if value and value.strip():
            return f"{source}:{value.strip()}"
    for field, source in _BODY_KEYS:
        value = body.get(field)
        if isinstance(value, str) and value.strip():
            return f"{source}:{value.strip()}"
    text = _first_user_text(body)
    if text is None:
        return None
    return "first-message:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def conversation_key(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """Like ``session_key`` but also for a conversation's first turn: what a client that names
    no session is still recognisable by on every later turn (its first user message). Not for
    pinning credentials; upstreams use it as a stable session and prompt-cache id."""
    key = session_key(headers, body)
    if key is not None:
        return key
    text = _first_user_text(body, min_turns=1)
    if text is None:
        return None
    return "first-message:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _first_user_text(body: Mapping[str, Any], min_turns: int = 2) -> str | None:
    """The text of the first user turn, across the four client protocols' shapes: Chat and
    Messages ``messages``, Gemini ``contents``, Responses ``input`` (a list or a string). None
    for a conversation of fewer than ``min_turns`` messages or without user text."""
    if min_turns <= 1 and isinstance(body.get("input"), str):
        return body["input"] or None
    for field in ("messages", "contents", "input"):
        turns = body.get(field)
        if isinstance(turns, list):
            break
    else:
        return None
    if len(turns) < min_turns:
        return None
    for turn in turns:
        if isinstance(turn, dict) and turn.get("role") == "user":
            text = _text_of(turn.get("content", turn.get("parts")))
            return text or None
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    pieces = [
        part["text"]
        for part in content
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]
    return "\n".join(pieces)
