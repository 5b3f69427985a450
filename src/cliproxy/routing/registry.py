"""Model registry: which (provider, credential, upstream model) can serve a client model name.

Built once per config load and swapped whole on reload, so a request always sees one consistent
registry. Every listed name is an exact name (aliases, prefixed names and the models a family
lists), and exact names win. A name that matches none falls back to the model families of
entries that list no models (e.g. any "claude-*" name goes to claude-api-key entries without a
models list), minus the names each family's credential excludes or hides behind an alias.
/v1/models lists exactly the exact names, so everything listed is routable.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.base import Credential, Provider
from cliproxy.routing.affinity import AffinityBook
from cliproxy.routing.policy import DEFAULT_POLICY, CredentialPolicy
from cliproxy.routing.pool_state import MemoryCounters, RotationCounters


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: Provider
    credential: Credential
    upstream_model: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    owned_by: str


def excluded(model: str, patterns: Iterable[str]) -> bool:
    """True when ``model`` matches one of the lower-cased ``*`` patterns, ignoring case."""
    name = model.lower()
    return any(fnmatchcase(name, pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class _Family:
    prefixes: tuple[str, ...]
    route_prefix: str  # the entry's "prefix/" (empty when none)
    provider: Provider
    credential: Credential
    # Answers names without its route prefix too (force-model-prefix off, or no prefix).
    plain: bool
    excluded: tuple[str, ...]  # lower-cased patterns this credential never serves
    hidden: frozenset[str]  # names an alias took over for this credential

    def upstream_name(self, model: str) -> str | None:
        """The upstream model this family would ask for ``model``, or None."""
        name = model
        if self.route_prefix:
            head, sep, rest = model.partition("/")
            if sep and head == self.route_prefix:
                name = rest
            elif not self.plain:
                return None
        # A vendor model name has no "/": "other-prefix/claude-x" is another credential's.
        if "/" in name or not name.startswith(self.prefixes) or not self.keeps(name):
            return None
        return name

    def keeps(self, name: str) -> bool:
        """False for a name this credential must not serve (excluded, or taken by an alias)."""
        return name not in self.hidden and not (self.excluded and excluded(name, self.excluded))


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
        """Serve ``name`` through ``candidate``. Several candidates under one name pool; one
        credential may appear with several upstream models (an alias pool)."""
        pool = self._exact.setdefault(name, [])
        if candidate not in pool:
            pool.append(candidate)
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
        excluded_models: Iterable[str] = (),
        hidden: Iterable[str] = (),
        plain: bool = True,
    ) -> None:
        """Serve any model whose name starts with one of ``prefixes`` through this credential,
        except names matching ``excluded_models`` (lower-cased patterns) or in ``hidden``.
        ``listed_models`` that survive those become exact names, listed in /v1/models, as
        "route_prefix/model" and, when ``plain`` (or without a prefix), as "model"."""
        family = _Family(
            tuple(prefixes),
            route_prefix,
            provider,
            credential,
            plain or not route_prefix,
            tuple(excluded_models),
            frozenset(hidden),
        )
        self._families.append(family)
        for model in listed_models:
            if not family.keeps(model):
                continue
            candidate = Candidate(provider, credential, model)
            if family.plain:
                self.add(model, candidate)
            if route_prefix:
                self.add(f"{route_prefix}/{model}", candidate)

    def candidates(self, model: str) -> list[Candidate]:
        found = self._exact.get(model)
        if found:
            return found
        family_matches: list[Candidate] = []
        for family in self._families:
            name = family.upstream_name(model)
            if name is not None:
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

    def provider_names(self) -> frozenset[str]:
        """The names of the providers some credential here is routed through."""
        names = {c.provider.name for pool in self._exact.values() for c in pool}
        names.update(family.provider.name for family in self._families)
        return frozenset(names)

    def model(self, name: str) -> ModelInfo | None:
        """One listed model, or None when ``name`` is not listed."""
        return self._listed.get(name)

    def credentials(self) -> dict[str, Credential]:
        """Every routed credential by id."""
        found: dict[str, Credential] = {}
        for pool in self._exact.values():
            for candidate in pool:
                found.setdefault(candidate.credential.id, candidate.credential)
        for family in self._families:
            found.setdefault(family.credential.id, family.credential)
        return found

    def pair(self, credential_id: str, upstream_model: str) -> Candidate | None:
        """The candidate of one credential for one upstream model (what a rest is kept for),
        or None when the registry no longer routes it. A scan: for background work only."""
        for pool in self._exact.values():
            for candidate in pool:
                if (candidate.credential.id, candidate.upstream_model) == (
                    credential_id,
                    upstream_model,
                ):
                    return candidate
        for family in self._families:
            if family.credential.id == credential_id:
                return Candidate(family.provider, family.credential, upstream_model)
        return None

    def credential_providers(self) -> dict[str, str]:
        """Every routed credential's id with the name of the provider it serves through."""
        found: dict[str, str] = {}
        for pool in self._exact.values():
            for candidate in pool:
                if candidate.credential is not None:
                    found.setdefault(candidate.credential.id, candidate.provider.name)
        for family in self._families:
            found.setdefault(family.credential.id, family.provider.name)
        return found


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

    def __init__(self, counters: RotationCounters | None = None) -> None:
        self.counters = counters or MemoryCounters()

    def _rank(self, model: str, candidates: list[Candidate]) -> list[Candidate]:
        start = self.counters.advance(model) % len(candidates)
        return candidates[start:] + candidates[:start]


class FillFirst(_PrioritySelector):
    """Always tries the first candidate first: use one credential until it fails or cools."""

    def __init__(self, counters: RotationCounters | None = None) -> None:
        pass  # keeps no state


class WeightedRoundRobin(_PrioritySelector):
    """Smooth weighted round-robin: over any window each credential leads in proportion to its
    weight, and heavy credentials are interleaved with light ones rather than bunched.

    The leader is a pure function of the model's rotation counter and the weights (a position
    in the smooth schedule), so a shared counter is all a multi-process store needs."""

    def __init__(self, counters: RotationCounters | None = None) -> None:
        self.counters = counters or MemoryCounters()

    def _rank(self, model: str, candidates: list[Candidate]) -> list[Candidate]:
        weights = tuple(_weight(c) for c in candidates)
        position = self.counters.advance(model)
        leader = _weighted_leader(weights, position)
        rest = sorted(
            (c for i, c in enumerate(candidates) if i != leader), key=lambda c: -_weight(c)
        )
        return [candidates[leader], *rest]


# Longest schedule kept; larger weight sums pick by a low-discrepancy sequence instead.
_SCHEDULE_LIMIT = 4096
_GOLDEN = 0.6180339887498949


def _weighted_leader(weights: tuple[int, ...], position: int) -> int:
    divisor = math.gcd(*weights)
    reduced = tuple(w // divisor for w in weights)
    total = sum(reduced)
    if total <= _SCHEDULE_LIMIT:
        schedule = _smooth_schedule(reduced)
        return schedule[position % total]
    # Golden-ratio steps spread any weights evenly without a schedule of `total` entries.
    point = ((position * _GOLDEN) % 1.0) * total
    return bisect.bisect_right(list(itertools.accumulate(reduced)), point)


@functools.lru_cache(maxsize=256)
def _smooth_schedule(weights: tuple[int, ...]) -> tuple[int, ...]:
    """One full cycle of smooth weighted round-robin (nginx's): each step every entry gains
    its weight, the largest leads and pays back the total."""
    total = sum(weights)
    current = [0] * len(weights)
    picks: list[int] = []
    for _ in range(total):
        for index, weight in enumerate(weights):
            current[index] += weight
        leader = max(range(len(weights)), key=lambda i: (current[i], -i))
        current[leader] -= total
        picks.append(leader)
    return tuple(picks)


Selector = RoundRobin | FillFirst | WeightedRoundRobin


def make_selector(strategy: str, counters: RotationCounters | None = None) -> Selector:
    if strategy == "fill-first":
        return FillFirst(counters)
    if strategy == "weighted-round-robin":
        return WeightedRoundRobin(counters)
    return RoundRobin(counters)


def _priority(candidate: Candidate) -> int:
    return candidate.credential.priority


def _weight(candidate: Candidate) -> int:
    return max(candidate.credential.weight, 1)


def selection_key(candidate: Candidate) -> tuple[str, str]:
    """What selection state is kept per: (credential id, upstream model). One credential in an
    alias pool serves several upstream models, and each must keep its own turn and weight."""
    return (candidate.credential.id, candidate.upstream_model)


# ----- session affinity ---------------------------------------------------------------------


def prefer_bound(
    book: AffinityBook,
    session: str,
    model: str,
    candidates: list[Candidate],
    order: list[Candidate],
) -> list[Candidate]:
    """``order`` with the session's bound credential tried first, when it is still among the
    (non-cooling) ``candidates``; otherwise ``order`` unchanged (the normal order decides and
    the binding moves once another credential answers)."""
    credential_id = book.bound(session, model)
    if credential_id is None:
        return order
    for index, candidate in enumerate(order):
        if _credential_id(candidate) == credential_id:
            return [candidate, *order[:index], *order[index + 1 :]] if index else order
    for candidate in candidates:
        if _credential_id(candidate) == credential_id:
            # Not in the order (fewer attempts than candidates): it takes the first attempt
            # and the order keeps its length.
            return [candidate, *order[:-1]]
    return order


def _credential_id(candidate: Candidate) -> str | None:
    return candidate.credential.id
