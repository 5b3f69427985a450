"""What a pinned path stands for, and which candidates a provider word admits."""

from __future__ import annotations

import pytest

from cliproxy.model import ProxyError
from cliproxy.providers.api_keys import OpenAICompatProvider
from cliproxy.providers.base import Credential
from cliproxy.routing.pins import resolve_pin
from cliproxy.routing.registry import Candidate, ModelRegistry
from cliproxy.server.pinned import route_path


@pytest.mark.parametrize(
    ("rest", "target"),
    [
        ("v1/messages", "/v1/messages"),
        ("v1/messages/count_tokens", "/v1/messages/count_tokens"),
        ("chat/completions", "/v1/chat/completions"),
        ("responses", "/v1/responses"),
        ("models", "/v1/models"),
        ("v1beta/models/gemini-3:generateContent", "/v1beta/models/gemini-3:generateContent"),
        (
            "v1beta1/publishers/google/models/gemini-3:streamGenerateContent",
            "/v1beta/models/gemini-3:streamGenerateContent",
        ),
        ("nothing", None),
        ("modelsx", None),
        ("v1beta1/other", None),
    ],
)
def test_route_path(rest: str, target: str | None) -> None:
    assert route_path(rest) == target


class Named(OpenAICompatProvider):
    """A real provider under another provider's name: pins look at names only."""

    def __init__(self, name: str) -> None:
        super().__init__("named")
        self.name = name


def registry_of(*pairs: tuple[str, str]) -> tuple[ModelRegistry, list[Candidate]]:
    registry = ModelRegistry()
    added = []
    for provider, model in pairs:
        found = Candidate(Named(provider), Credential(provider, "k", "http://x"), model)
        registry.add(model, found)
        added.append(found)
    return registry, added


def test_a_family_admits_its_providers_and_only_antigravitys_gemini_models() -> None:
    registry, (claude, gemini, ag_gemini, ag_claude) = registry_of(
        ("claude-api-key", "claude-x"),
        ("gemini-api-key", "gemini-x"),
        ("antigravity", "gemini-3-flash"),
        ("antigravity", "claude-sonnet-4-6"),
    )
    google = resolve_pin("Google", registry)
    assert [google.admits(c) for c in (claude, gemini, ag_gemini, ag_claude)] == [
        False,
        True,
        True,
        False,
    ]
    assert resolve_pin("antigravity", registry).admits(ag_claude)  # pinned by its own name


def test_a_compat_entry_and_a_kind_pin_by_name_and_unknown_words_are_404() -> None:
    registry, (compat, xai_key) = registry_of(
        ("openai-compatibility:groq", "llama"), ("xai-api-key", "grok-4")
    )
    assert resolve_pin("groq", registry).admits(compat)
    assert resolve_pin("xai", registry).admits(xai_key)
    assert not resolve_pin("kimi", registry, kinds={"kimi"}).providers & {"xai-api-key"}
    with pytest.raises(ProxyError) as unknown:
        resolve_pin("nosuch", registry)
    assert "groq" in unknown.value.message and "xai" in unknown.value.message
