"""Quota fallbacks (config ``quota-exceeded``): a credential that holds several quotas.

A provider whose credentials hold more than one quota (a Google account's Cloud projects,
preview models billed on their own) says so through the ``QuotaAlternatives`` ability. Its
pairs rest per quota, and after a quota error the pool tries the same credential's other
quotas at once, before any other credential. Every other provider has one quota per
(credential, model): no alternatives, and pairs rest per model.
"""

from __future__ import annotations

from cliproxy.config.schema import QuotaExceeded
from cliproxy.model import ProxyError
from cliproxy.providers.abilities import quota_alternatives_of
from cliproxy.routing.registry import Candidate


def quota_fallbacks(
    candidate: Candidate, status: int, error: ProxyError, policy: QuotaExceeded
) -> list[Candidate]:
    """Alternatives to try at once after ``candidate`` answered ``error``, in order; empty
    when the error is not a quota error or nothing applies.

    The list is complete for the candidate the selector chose: call it once for that
    candidate, not again for a fallback's own 429."""
    provider, credential = quota_alternatives_of(candidate.provider), candidate.credential
    if provider is None:
        return []
    found = provider.quota_alternatives(credential, candidate.upstream_model, status, error, policy)
    return [Candidate(candidate.provider, pinned, model) for pinned, model in found]


def rest_model(candidate: Candidate) -> str:
    """The model name a cooldown is kept under: one per quota the pair draws on."""
    provider, credential = quota_alternatives_of(candidate.provider), candidate.credential
    if provider is None:
        return candidate.upstream_model
    return provider.rest_key(credential, candidate.upstream_model)


def project_variants(candidate: Candidate) -> list[Candidate]:
    """The candidate pinned to each of its credential's quotas in turn (itself alone when it
    has one)."""
    provider, credential = quota_alternatives_of(candidate.provider), candidate.credential
    if provider is None:
        return [candidate]
    pinned = provider.variants(credential)
    if len(pinned) == 1:
        return [candidate]
    return [Candidate(candidate.provider, each, candidate.upstream_model) for each in pinned]
