"""model-fallbacks in config.yaml: chains are followed through, each model once; a loop, a
self-reference or an empty name is a config error naming the line and the loop."""

from __future__ import annotations

import pytest

from cliproxy.config import ConfigError, parse_config_text
from cliproxy.config.model_fallbacks import fallback_chain


def test_chains_are_followed_through_each_model_once() -> None:
    config = parse_config_text(
        "model-fallbacks:\n  a: [b, c]\n  b: [d, c]\n  d: [e]\n", "config.yaml"
    )
    assert fallback_chain(config.model_fallbacks, "a") == ("b", "d", "e", "c")
    assert fallback_chain(config.model_fallbacks, "c") == ()
    assert not config.warnings and not list(config.unsupported_key_lines())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model-fallbacks:\n  a: [b]\n  b: [c]\n  c: [a]\n", "a -> b -> c -> a is a loop"),
        ("model-fallbacks:\n  a: [a]\n", "a: a model cannot fall back to itself"),
        ("model-fallbacks:\n  a: [b, '']\n", "a: a fallback model name must not be empty"),
        ("model-fallbacks:\n  a: b\n", "model-fallbacks.a: must be a list"),
    ],
)
def test_bad_chains_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "config.yaml")
    assert message in str(info.value)
    assert "config.yaml:" in str(info.value)
