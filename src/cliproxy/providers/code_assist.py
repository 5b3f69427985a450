"""What the two Code Assist clients share (Gemini CLI and Antigravity reach Google's
``v1internal`` methods): the reply envelope and the countTokens body.

Every reply, streamed or not, is ``{"response": <GenerateContentResponse>, ...}``; the server
takes replies out of it through the unwrap hooks (``wraps_replies``).
"""

from __future__ import annotations

from typing import Any

import orjson

from cliproxy.model import ProxyError, loads_upstream
from cliproxy.protocols.sse import SSEEvent

API_VERSION = "v1internal"


def generate_method(stream: bool) -> str:
    return "streamGenerateContent?alt=sse" if stream else "generateContent"


def count_envelope(model: str, body: dict[str, object]) -> dict[str, object]:
    """Gemini clients send {"contents"} or {"generateContentRequest": {...}}; Code Assist
    counts {"request": {"model": "models/<m>", "contents"}} and answers {"totalTokens"}."""
    inner = body.get("generateContentRequest")
    source = inner if isinstance(inner, dict) else body
    contents = source.get("contents")
    return {"request": {"model": f"models/{model}", "contents": contents if contents else []}}


class CodeAssistReplies:
    """Mixin for the providers whose upstream wraps replies in Code Assist's envelope."""

    wraps_replies = True

    def unwrap_json(self, data: dict[str, Any]) -> dict[str, Any]:
        inner = data.get("response")
        return inner if isinstance(inner, dict) else data

    def unwrap_stream_event(self, event: SSEEvent) -> SSEEvent:
        if '"response"' not in event.data:
            return event  # not an envelope (e.g. an error object): let the decoder judge it
        try:
            data = loads_upstream(event.data, "Code Assist stream event")
        except (orjson.JSONDecodeError, ProxyError):
            # Unreadable or too deep to write back: the decoder reports it as the error it is.
            return event
        if not isinstance(data, dict) or not isinstance(data.get("response"), dict):
            return event
        return SSEEvent(event.event, orjson.dumps(data["response"]).decode())
