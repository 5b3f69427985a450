"""Model registry: which (provider, credential, upstream model) can serve a client model name.

Built once per config load and swapped whole on reload, so a request always sees one consistent
registry. Exact names (aliases and prefixed names included) win; a name that matches none falls
back to the model families of entries that list no models (e.g. any "claude-*" name goes to
claude-api-key entries without a models list).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.base import Credential, LocalProvider, Provider
from cliproxy.routing.policy import DEFAULT_POLICY, CredentialPolicy


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: Provider | LocalProvider
    credential: Credential | None  # None for local providers
    upstream_model: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    owned_by: str


@dataclass(slots=True)
class _Family:
    prefixes: tuple[str, ...]
    route_prefix: str  # the entry's "prefix/" (empty when none)
    provider: Provider
    credential: Credential


@dataclass
class ModelRegistry:
    _exact: dict[str, list[Candidate]] = field(default_factory=dict)
    _families: list[_Family] = field(default_factory=list)
    _listed: dict[str, ModelInfo] = field(default_factory=dict)
    # Per-credential overrides (disable-cooling, request-retry, request-scoped-errors).
    policies: dict[str, CredentialPolicy] = field(default_factory=dict)

    def policy(self, credential_id: str) -> CredentialPolicy:
        return self.policies.get(credential_id, DEFAULT_POLICY)

    def add(self, name: str, candidate: Candidate, *, listed: bool = True) -> None:
        self._exact.setdefault(name, []).append(candidate)
        if listed and name not in self._listed:
            self._listed[name] = ModelInfo(name, candidate.provider.name)

    def add_family(
        self,
        prefixes: Iterable[str],
        provider: Provider,
        credential: Credential,
        *,
        route_prefix: str = "",
        listed_models: Iterable[str] = (),
    ) -> None:
        """Serve any model whose name starts with one of ``prefixes`` through this credential,
        and list ``listed_models`` in /v1/models."""
        family = _Family(tuple(prefixes), route_prefix, provider, credential)
        self._families.append(family)
        for model in listed_models:
            name = f"{route_prefix}/{model}" if route_prefix else model
            if name not in self._listed:
                self._listed[name] = ModelInfo(name, provider.name)

    def candidates(self, model: str) -> list[Candidate]:
        found = self._exact.get(model)
        if found:
            return found
        family_matches: list[Candidate] = []
        for family in self._families:
            name = model
            if family.route_prefix:
                head, sep, rest = model.partition("/")
                if not sep or head != family.route_prefix:
                    continue
                name = rest
            if name.startswith(family.prefixes):
                family_matches.append(Candidate(family.provider, family.credential, name))
        if family_matches:
            return family_matches
        raise ProxyError(
            ErrorKind.NOT_FOUND,
            f"model '{model}' is not served here; GET /v1/models lists the available models",
            param="model",
        )

    def models(self) -> list[ModelInfo]:
        return list(self._listed.values())


class _PrioritySelector:
    """Shared ordering: the highest priority present is tried first and ordered by the
    strategy; lower priorities follow in listing order as fall-backs. A cooling credential is
    filtered out before ordering, so when a whole priority cools the next one becomes the top
    and gets the strategy."""

    def order(self, model: str, candidates: list[Candidate], attempts: int) -> list[Candidate]:
        top = max(_priority(c) for c in candidates)
        best = [c for c in candidates if _priority(c) == top]
        rest = sorted((c for c in candidates if _priority(c) != top), key=lambda c: -_priority(c))
        sequence = self._rank(model, best) + rest
        # Retry on other credentials first; come back round only if retries outnumber them.
        return [sequence[i % len(sequence)] for i in range(max(attempts, 1))]

    def _rank(self, model: str, candidates: list[Candidate]) -> list[Candidate]:
        return candidates


class RoundRobin(_PrioritySelector):
    """Rotates the start of each model's candidate list, one step per request."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}

    def _rank(self, model: str, candidates: list[Candidate]) -> list[Candidate]:
        counter = self._counters.get(model)
        if counter is None:
            counter = self._counters.setdefault(model, itertools.count())
        start = next(counter) % len(candidates)
        return candidates[start:] + candidates[:start]


class FillFirst(_PrioritySelector):
    """Always tries the first candidate first: use one credential until it fails or cools."""


class WeightedRoundRobin(_PrioritySelector):
    """Smooth weighted round-robin: over any window each credential leads in proportion to its
    weight, and heavy credentials are interleaved with light ones rather than bunched."""

    def __init__(self) -> None:
        self._current: dict[str, dict[str, int]] = {}

    def _rank(self, model: str, candidates: list[Candidate]) -> list[Candidate]:
        current = self._current.setdefault(model, {})
        total = 0
        for candidate in candidates:
            key = _key(candidate)
            current[key] = current.get(key, 0) + _weight(candidate)
            total += _weight(candidate)
        ranked = sorted(candidates, key=lambda c: -current[_key(c)])  # stable for ties
        current[_key(ranked[0])] -= total
        return ranked


Selector = RoundRobin | FillFirst | WeightedRoundRobin


def make_selector(strategy: str) -> Selector:
    if strategy == "fill-first":
        return FillFirst()
    if strategy == "weighted-round-robin":
        return WeightedRoundRobin()
    return RoundRobin()


def _priority(candidate: Candidate) -> int:
    return candidate.credential.priority if candidate.credential is not None else 0


def _weight(candidate: Candidate) -> int:
    return max(candidate.credential.weight, 1) if candidate.credential is not None else 1


def _key(candidate: Candidate) -> str:
    if candidate.credential is not None:
        return candidate.credential.id
    return f"local:{candidate.provider.name}:{candidate.upstream_model}"
