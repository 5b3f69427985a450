"""Reasoning effort and thinking budgets between the four protocols: "no thinking" stays no
thinking in every direction (Chat/Responses effort "none", Anthropic thinking disabled, Gemini
thinkingBudget 0 or the lowest level where a model cannot stop thinking), and a budget maps to
the effort whose usual budget it is and back."""

from __future__ import annotations

from typing import Any

import pytest

from cliproxy.model import Message, Reasoning, Request, TextPart
from cliproxy.protocols.base import WireProtocol
from cliproxy.protocols.registry import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES

PROTOCOLS: dict[str, WireProtocol] = {
    p.name: p for p in (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI)
}
NAMES = list(PROTOCOLS)

_CHAT = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
_RESPONSES = {"model": "gpt-5", "input": "hi"}
_ANTHROPIC = {
    "model": "claude-x",
    "max_tokens": 32000,
    "messages": [{"role": "user", "content": "hi"}],
}
_GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def _client_body(client: str, setting: Any) -> dict[str, Any]:
    if client == "openai_chat":
        return _CHAT | {"reasoning_effort": setting}
    if client == "openai_responses":
        return _RESPONSES | {"reasoning": {"effort": setting}}
    if client == "anthropic":
        return _ANTHROPIC | {"thinking": setting}
    return _GEMINI | {"generationConfig": {"thinkingConfig": setting}}


def _upstream_setting(upstream: str, request: Request, model: str) -> Any:
    request.model = model
    request.extras = {}  # as it is when the client spoke another protocol
    body = PROTOCOLS[upstream].render_request(request)
    if upstream == "openai_chat":
        return body.get("reasoning_effort")
    if upstream == "openai_responses":
        return body.get("reasoning", {}).get("effort")
    if upstream == "anthropic":
        return body.get("thinking")
    return body.get("generationConfig", {}).get("thinkingConfig")


OFF = {
    "openai_chat": "none",
    "openai_responses": "none",
    "anthropic": {"type": "disabled"},
    "gemini": {"thinkingBudget": 0},  # on gemini-2.5-flash
}
TURNED_OFF = [
    ("openai_chat", "none"),
    ("openai_responses", "none"),
    ("anthropic", {"type": "disabled"}),
    ("gemini", {"thinkingBudget": 0}),
]


@pytest.mark.parametrize("upstream", NAMES)
@pytest.mark.parametrize(("client", "setting"), TURNED_OFF, ids=[c for c, _ in TURNED_OFF])
def test_thinking_off_stays_off_in_every_direction(
    client: str, setting: Any, upstream: str
) -> None:
    request = PROTOCOLS[client].parse_request(_client_body(client, setting))
    assert _upstream_setting(upstream, request, "gemini-2.5-flash") == OFF[upstream]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-2.5-pro", {"thinkingBudget": 128}),  # cannot switch thinking off: the minimum
        ("gemini-3-flash-preview", {"thinkingLevel": "MINIMAL"}),
        ("gemini-3-pro-preview", {"thinkingLevel": "LOW"}),
    ],
)
def test_effort_none_on_gemini_models_that_always_think(model: str, expected: Any) -> None:
    request = OPENAI_CHAT.parse_request(_client_body("openai_chat", "none"))
    assert _upstream_setting("gemini", request, model) == expected


@pytest.mark.parametrize(
    ("effort", "anthropic_budget", "gemini_25_budget", "gemini_3_level"),
    [
        ("low", 1024, 1024, "LOW"),
        ("medium", 8192, 8192, "MEDIUM"),
        ("high", 24576, 24576, "HIGH"),
    ],
)
def test_effort_and_budget_map_both_ways(
    effort: str, anthropic_budget: int, gemini_25_budget: int, gemini_3_level: str
) -> None:
    for client in ("openai_chat", "openai_responses"):
        request = PROTOCOLS[client].parse_request(_client_body(client, effort))
        assert _upstream_setting("anthropic", request, "claude-x") == {
            "type": "enabled",
            "budget_tokens": anthropic_budget,
        }
        assert _upstream_setting("gemini", request, "gemini-2.5-flash") == {
            "thinkingBudget": gemini_25_budget
        }
        assert _upstream_setting("gemini", request, "gemini-3-pro-preview") == {
            "thinkingLevel": gemini_3_level
        }
    # ... and the budgets come back to the same effort.
    budget = {"type": "enabled", "budget_tokens": anthropic_budget}
    from_claude = ANTHROPIC.parse_request(_client_body("anthropic", budget))
    from_gemini = GEMINI.parse_request(_client_body("gemini", {"thinkingBudget": gemini_25_budget}))
    level = GEMINI.parse_request(_client_body("gemini", {"thinkingLevel": gemini_3_level}))
    for request in (from_claude, from_gemini, level):
        for upstream in ("openai_chat", "openai_responses"):
            assert _upstream_setting(upstream, request, "gpt-5") == effort


@pytest.mark.parametrize(
    ("budget", "effort"),
    [(512, "low"), (2048, "low"), (4096, "medium"), (12288, "medium"), (31999, "high")],
)
def test_budget_to_effort(budget: int, effort: str) -> None:
    request = Request(model="m", messages=[Message("user", [TextPart("hi")])])
    request.reasoning = Reasoning(enabled=True, budget=budget)
    for upstream in ("openai_chat", "openai_responses"):
        assert _upstream_setting(upstream, request, "gpt-5") == effort


def test_dynamic_budget_leaves_the_effort_to_the_model() -> None:
    request = GEMINI.parse_request(_client_body("gemini", {"thinkingBudget": -1}))
    for upstream in ("openai_chat", "openai_responses"):
        assert _upstream_setting(upstream, request, "gpt-5") is None
