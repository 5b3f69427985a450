"""Reset hints in upstream headers beyond Retry-After.

Anthropic names when each of its limits refills: ``anthropic-ratelimit-{requests,tokens,
input-tokens,output-tokens}-reset`` as RFC 3339 times (API keys) and
``anthropic-ratelimit-unified-reset`` as epoch seconds (subscription accounts). A 429 normally
carries Retry-After as well; when it does not, these say how long the credential must rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

PREFIX = "anthropic-ratelimit-"


def seconds_from_headers(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the exhausted limit refills, or None when the headers name no reset.

    The limits whose ``-remaining`` is 0 are the ones that refused the request; the latest of
    their resets is when a retry can pass. When none reads 0 (the headers may describe only
    some limits) the earliest reset named is used, so the credential is not rested longer than
    the upstream said."""
    exhausted: list[float] = []
    named: list[float] = []
    for name, value in headers.items():
        lower = name.lower()
        if not (lower.startswith(PREFIX) and lower.endswith("-reset")):
            continue
        moment = _moment(value)
        if moment is None:
            continue
        named.append(moment)
        limit = lower[: -len("-reset")]
        if headers.get(limit + "-remaining", "").strip() == "0" or (
            limit == PREFIX + "unified" and headers.get(limit + "-status", "") == "rejected"
        ):
            exhausted.append(moment)
    chosen = max(exhausted) if exhausted else min(named) if named else None
    if chosen is None:
        return None
    return max(chosen - now, 0.0)


def _moment(value: str) -> float | None:
    text = value.strip()
    if not text:
        return None
    if text.replace(".", "", 1).isdigit():
        return float(text)  # epoch seconds (unified limits)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
