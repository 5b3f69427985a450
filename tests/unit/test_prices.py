"""Cost from the maintained price table: the rates cliproxy keeps per model give exactly what
the table itself computes, tiers included, for every kind of token."""

from __future__ import annotations

import pytest
from genai_prices import Usage, calc_price

from cliproxy.config.schema import ModelPrice
from cliproxy.usage.prices import Prices, Tokens

CASES = [
    ("claude-sonnet-4-5", "claude", "anthropic"),
    ("gpt-5", "codex", "openai"),
    ("gemini-2.5-pro", "gemini-cli", "google"),
    ("gpt-4o-mini", "openai-compatibility:local", None),
]
SIZES = [
    Tokens(1000, 200, 100),
    Tokens(199_999, 10, 0),
    Tokens(200_000, 10, 0),
    Tokens(200_001, 10, 5000),
    Tokens(10, 5, 0),
]


@pytest.mark.parametrize(("model", "provider", "vendor"), CASES)
def test_kept_rates_match_the_table(model: str, provider: str, vendor: str | None) -> None:
    prices = Prices()
    for tokens in SIZES:
        usage = Usage(
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cache_read_tokens=min(tokens.cached, tokens.input) or None,
        )
        expected = float(calc_price(usage, model, provider_id=vendor).total_price)
        first = prices.cost(model, model, provider, tokens)  # read from the table
        again = prices.cost(model, model, provider, tokens)  # from the kept rates
        assert first == pytest.approx(expected, rel=1e-12)
        assert again == pytest.approx(expected, rel=1e-12), tokens


def test_overrides_win_and_unknown_models_cost_nothing_known() -> None:
    prices = Prices({"My-Model": ModelPrice(input=2.0, output=4.0, cached=0.5)})
    assert prices.cost("my-model", "up", "claude", Tokens(1_000_000, 500_000, 200_000)) == (
        pytest.approx(0.8 * 2.0 + 0.2 * 0.5 + 0.5 * 4.0)
    )
    assert prices.cost("no-such-model-xyz", "no-such-model-xyz", "x", Tokens(10, 10)) is None
    assert prices.cost("demo-echo", "demo-echo", "demo", Tokens(10, 10)) == 0.0
