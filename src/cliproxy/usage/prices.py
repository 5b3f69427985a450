"""What a request's tokens cost, in USD: `model-prices` overrides first, else the maintained
price table of the `genai-prices` package (bundled data; nothing is fetched at run time).

A subscription account's requests get the same figure, an "equivalent API cost": what the same
tokens would have cost on the vendor's API. A model nobody prices costs ``None`` (unknown), never
an error. Token counts have OpenAI's meaning (usage/events.py): input includes cache reads,
output includes reasoning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cliproxy.config.schema import ModelPrice

log = logging.getLogger(__name__)

PER_MILLION = 1_000_000

# A hint for the price table: which vendor's list price applies to a provider's models (its
# name as the router names it). Others (OpenAI-compatible providers) are matched by model.
_VENDOR_HINTS = (("claude", "anthropic"), ("codex", "openai"), ("gemini", "google"))


@dataclass(frozen=True, slots=True)
class Tokens:
    input: int = 0
    output: int = 0
    cached: int = 0

    @property
    def empty(self) -> bool:
        return not (self.input or self.output)


def _vendor(provider: str) -> str | None:
    for word, vendor in _VENDOR_HINTS:
        if word in provider:
            return vendor
    return None


def _override_cost(price: ModelPrice, tokens: Tokens) -> float:
    cached = min(tokens.cached, tokens.input)
    cached_price = price.input if price.cached is None else price.cached
    total = (
        (tokens.input - cached) * price.input + cached * cached_price + tokens.output * price.output
    )
    return total / PER_MILLION


class Prices:
    """Prices by model name. ``overrides`` are the config's `model-prices` (matched on the
    requested name, then the upstream one, case-insensitively)."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self.overrides = {name.lower(): price for name, price in (overrides or {}).items()}
        self._unknown: set[tuple[str, str | None]] = set()

    def cost(
        self, requested_model: str, upstream_model: str, provider: str, tokens: Tokens
    ) -> float | None:
        for name in (requested_model, upstream_model):
            price = self.overrides.get(name.lower()) if name else None
            if price is not None:
                return _override_cost(price, tokens)
        if tokens.empty or provider == "demo":  # the demo answers inside the proxy: free
            return 0.0
        vendor = _vendor(provider)
        for name in dict.fromkeys(m for m in (upstream_model, requested_model) if m):
            found = self._table_cost(name, vendor, tokens)
            if found is not None:
                return found
        return None

    def _table_cost(self, model: str, vendor: str | None, tokens: Tokens) -> float | None:
        for hint in dict.fromkeys((vendor, None)):
            if (model, hint) in self._unknown:
                continue
            try:
                from genai_prices import Usage, calc_price

                usage = Usage(
                    input_tokens=tokens.input,
                    output_tokens=tokens.output,
                    cache_read_tokens=min(tokens.cached, tokens.input) or None,
                )
                return float(calc_price(usage, model, provider_id=hint).total_price)
            except LookupError:
                if len(self._unknown) < 10_000:  # bounded: odd model names cannot grow it
                    self._unknown.add((model, hint))
            except Exception:
                log.exception("the price table failed for model %s", model)
                return None
        return None
