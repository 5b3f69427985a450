"""Per-credential overrides of the pool's global behaviour, and request-scoped error rules.

A key entry (or an OAuth channel) may override cooling and the retry rounds, and may classify
particular upstream errors itself: "prompt is too long" is the request's fault, so trying
another credential cannot help (stop), while a gateway's odd 400 may be worth another
credential (continue). Rules only change what happens to a failed attempt; they never turn a
failure into a success.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cliproxy.config.upstreams import ErrorRule


class ErrorAction(StrEnum):
    STOP = "stop"
    STOP_AND_COOLDOWN = "stop-and-cooldown"
    CONTINUE = "continue"
    CONTINUE_AND_COOLDOWN = "continue-and-cooldown"

    @property
    def retries(self) -> bool:
        return self in (ErrorAction.CONTINUE, ErrorAction.CONTINUE_AND_COOLDOWN)

    @property
    def cools(self) -> bool:
        return self in (ErrorAction.STOP_AND_COOLDOWN, ErrorAction.CONTINUE_AND_COOLDOWN)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    status: int
    substrings: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    action: ErrorAction

    def matches(self, status: int, texts: tuple[str, ...]) -> bool:
        if status != self.status:
            return False
        if not self.substrings and not self.patterns:
            return True
        return any(
            any(s in text for s in self.substrings) or any(p.search(text) for p in self.patterns)
            for text in texts
        )


def compile_rules(rules: Sequence[ErrorRule]) -> tuple[CompiledRule, ...]:
    return tuple(
        CompiledRule(
            rule.status,
            tuple(m for m in rule.match if m),
            tuple(re.compile(p) for p in rule.match_regexr if p),
            ErrorAction(rule.action),
        )
        for rule in rules
    )


@dataclass(frozen=True, slots=True)
class CredentialPolicy:
    """What one credential's entry overrides. None everywhere means "as the global config"."""

    disable_cooling: bool | None = None
    request_retry: int | None = None
    error_rules: tuple[CompiledRule, ...] = field(default=())

    def classify(self, status: int, *texts: str) -> ErrorAction | None:
        """The first rule's action for this upstream error, or None for the default handling.
        ``texts``: the raw error body and the error's message (so an anchored pattern such as
        "^context_length_exceeded" can match the message inside a JSON body)."""
        for rule in self.error_rules:
            if rule.matches(status, texts):
                return rule.action
        return None

    def cooling_enabled(self, globally: bool) -> bool:
        return globally if self.disable_cooling is None else not self.disable_cooling


DEFAULT_POLICY = CredentialPolicy()
