"""The wire protocols cliproxy speaks, read once (an explicit list, not import side effects)."""

from __future__ import annotations

from cliproxy.protocols.anthropic_messages import PROTOCOL as ANTHROPIC
from cliproxy.protocols.base import WireProtocol
from cliproxy.protocols.gemini import PROTOCOL as GEMINI
from cliproxy.protocols.gemini_interactions import PROTOCOL as GEMINI_INTERACTIONS
from cliproxy.protocols.openai_chat import PROTOCOL as OPENAI_CHAT
from cliproxy.protocols.openai_completions import PROTOCOL as OPENAI_COMPLETIONS
from cliproxy.protocols.openai_responses import PROTOCOL as OPENAI_RESPONSES

PROTOCOLS: dict[str, WireProtocol] = {
    p.name: p
    for p in (
        OPENAI_CHAT,
        OPENAI_COMPLETIONS,
        OPENAI_RESPONSES,
        ANTHROPIC,
        GEMINI,
        GEMINI_INTERACTIONS,
    )
}

__all__ = [
    "ANTHROPIC",
    "GEMINI",
    "GEMINI_INTERACTIONS",
    "OPENAI_CHAT",
    "OPENAI_COMPLETIONS",
    "OPENAI_RESPONSES",
    "PROTOCOLS",
]
