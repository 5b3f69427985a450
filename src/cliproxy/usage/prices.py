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


class _Unsettled:
    """Prices._settle's answer while what prices a request is not known for good yet."""


_UNSETTLED = _Unsettled()


@dataclass(frozen=True, slots=True)
class _Rate:
    """One token kind's USD per million, with the table's cliff tiers: past a tier's start
    (counted in input tokens), every token pays that tier's price."""

    base: float
    tiers: tuple[tuple[int, float], ...] = ()

    def at(self, input_tokens: int) -> float:
        price = self.base
        for start, tier_price in self.tiers:
            if input_tokens > start:
                price = tier_price
        return price


@dataclass(frozen=True, slots=True)
class _Rates:
    input: _Rate
    output: _Rate
    cached: _Rate

    def cost(self, tokens: Tokens) -> float:
        cached = min(tokens.cached, tokens.input)
        size = tokens.input
        total = (
            (tokens.input - cached) * self.input.at(size)
            + cached * self.cached.at(size)
            + tokens.output * self.output.at(size)
        )
        return total / PER_MILLION


def _rate(value: object) -> _Rate | None:
    if value is None:
        return None
    base = getattr(value, "base", value)
    tiers = getattr(value, "tiers", ())
    try:
        return _Rate(float(base), tuple((int(t.start), float(t.price)) for t in tiers))  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError):
        return None


def _rates(model_price: object) -> _Rates | None:
    """The table's token prices as floats, when the entry is plain per-token pricing (input,
    output, cache reads); None for anything else (then the table computes each cost itself)."""
    prices = {
        name: getattr(model_price, f"{name}_mtok", None)
        for name in ("input", "output", "cache_read")
    }
    found = {name: _rate(value) for name, value in prices.items()}
    input_rate, output_rate = found["input"], found["output"]
    if input_rate is None or output_rate is None:
        return None
    return _Rates(input_rate, output_rate, found["cache_read"] or input_rate)


class Prices:
    """Prices by model name. ``overrides`` are the config's `model-prices` (matched on the
    requested name, then the upstream one, case-insensitively).

    The table's own calculation takes about 0.1 ms (Decimal arithmetic, tier checks); the
    ledger prices every record, so each model's rates are read from the table once and then
    applied in float arithmetic."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self.overrides = {name.lower(): price for name, price in (overrides or {}).items()}
        self._unknown: set[tuple[str, str | None]] = set()
        self._rates: dict[tuple[str, str | None], _Rates] = {}
        # (requested, upstream, provider) -> what prices it, once that is settled: the
        # ledger prices every request, and the lookups below cost more than the arithmetic.
        self._plans: dict[tuple[str, str, str], ModelPrice | _Rates | None] = {}

    def warm(self) -> None:
        """Load the price table now (its data takes a moment to read), not with the first
        record priced under load."""
        self._table_cost("cliproxy-warm-up", None, Tokens(1, 1))

    def cost(
        self, requested_model: str, upstream_model: str, provider: str, tokens: Tokens
    ) -> float | None:
        key = (requested_model, upstream_model, provider)
        plan = self._plans.get(key, _UNSETTLED)
        if isinstance(plan, ModelPrice):
            return _override_cost(plan, tokens)
        if not isinstance(plan, _Unsettled):
            if tokens.empty or provider == "demo":
                return 0.0
            return plan.cost(tokens) if plan is not None else None
        found = self._cost(requested_model, upstream_model, provider, tokens)
        settled = self._settle(requested_model, upstream_model, provider)
        if not isinstance(settled, _Unsettled) and len(self._plans) < 10_000:
            self._plans[key] = settled
        return found

    def _cost(
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

    def _settle(
        self, requested_model: str, upstream_model: str, provider: str
    ) -> ModelPrice | _Rates | _Unsettled | None:
        """What ``_cost`` would use for these names from now on, as far as it is known: an
        override, the table's plain rates, or None when the table has none of the names;
        ``_UNSETTLED`` while a name was never looked up or is priced by the table itself."""
        for name in (requested_model, upstream_model):
            price = self.overrides.get(name.lower()) if name else None
            if price is not None:
                return price
        vendor = _vendor(provider)
        for name in dict.fromkeys(m for m in (upstream_model, requested_model) if m):
            for hint in dict.fromkeys((vendor, None)):
                rates = self._rates.get((name, hint))
                if rates is not None:
                    return rates
                if (name, hint) not in self._unknown:
                    return _UNSETTLED
        return None

    def _table_cost(self, model: str, vendor: str | None, tokens: Tokens) -> float | None:
        for hint in dict.fromkeys((vendor, None)):
            known = self._rates.get((model, hint))
            if known is not None:
                return known.cost(tokens)
            if (model, hint) in self._unknown:
                continue
            try:
                from genai_prices import Usage, calc_price

                usage = Usage(
                    input_tokens=tokens.input,
                    output_tokens=tokens.output,
                    cache_read_tokens=min(tokens.cached, tokens.input) or None,
                )
                found = calc_price(usage, model, provider_id=hint)
                rates = _rates(found.model_price)
                if rates is not None and len(self._rates) < 10_000:
                    self._rates[(model, hint)] = rates
                return float(found.total_price)
            except LookupError:
                if len(self._unknown) < 10_000:  # bounded: odd model names cannot grow it
                    self._unknown.add((model, hint))
            except Exception:
                log.exception("the price table failed for model %s", model)
                return None
        return None
