"""Provider-pinned requests (`/api/provider/{provider}/...`, server/pinned.py): only the
credentials of the named provider serve them, and only their models are listed.

The word names a family, as CLIProxyAPI's Amp routes do: `anthropic`/`claude` (Claude keys and
accounts), `openai`/`codex` (Codex keys and accounts), `google`/`gemini` (Gemini keys, Gemini
CLI accounts, Vertex, and Antigravity's Gemini models); or one provider by its own name (an
`openai-compatibility` entry's name, or a kind such as `xai`, `kimi`, `vertex`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.routing.registry import Candidate, ModelInfo, ModelRegistry

_CLAUDE = frozenset({"claude", "claude-api-key"})
_OPENAI = frozenset({"codex", "codex-api-key"})
_GOOGLE = frozenset({"gemini-cli", "gemini-api-key", "vertex", "vertex-api-key", "antigravity"})
FAMILIES: dict[str, frozenset[str]] = {
    "anthropic": _CLAUDE,
    "claude": _CLAUDE,
    "openai": _OPENAI,
    "codex": _OPENAI,
    "google": _GOOGLE,
    "gemini": _GOOGLE,
}
# Providers that serve other vendors' models too: within a family, only the family's own.
_FAMILY_MODELS = {"antigravity": "gemini"}
_COMPAT = "openai-compatibility:"
_API_KEY = "-api-key"

CandidatesFor = Callable[[str], list[Candidate]]


@dataclass(frozen=True, slots=True)
class ProviderPin:
    word: str  # as the path spelled it
    providers: frozenset[str]  # Provider.name values that may serve
    family: bool = False  # the word named a family, not one provider

    def admits(self, candidate: Candidate) -> bool:
        name = candidate.provider.name
        if name not in self.providers:
            return False
        own = _FAMILY_MODELS.get(name) if self.family else None
        return own is None or candidate.upstream_model.startswith(own)

    def candidates(self, candidates_for: CandidatesFor) -> CandidatesFor:
        """``candidates_for`` narrowed to this provider: a model it does not serve is 404,
        with no upstream asked."""

        def pinned(model: str) -> list[Candidate]:
            found = [c for c in candidates_for(model) if self.admits(c)]
            if not found:
                raise ProxyError(
                    ErrorKind.NOT_FOUND,
                    f"model '{model}' is not served by provider '{self.word}' here; "
                    f"GET /api/provider/{self.word}/v1/models lists its models",
                    param="model",
                )
            return found

        return pinned

    def models(self, registry: ModelRegistry) -> list[ModelInfo]:
        listed = []
        for info in registry.models():
            try:
                self.candidates(registry.candidates)(info.id)
            except ProxyError:
                continue
            listed.append(info)
        return listed


def resolve_pin(word: str, registry: ModelRegistry, kinds: Iterable[str] = ()) -> ProviderPin:
    """The pin a path's provider word means, or 404 naming the words that work. ``kinds`` are
    the catalog's provider kinds: a known kind with no credential configured pins to nothing
    (its models are 404), rather than being an unknown word."""
    lowered = word.lower()
    if lowered in FAMILIES:
        return ProviderPin(word, FAMILIES[lowered], family=True)
    names = registry.provider_names()
    for name in names:
        bare = name.removeprefix(_COMPAT).removesuffix(_API_KEY)
        if lowered in (name.lower(), bare.lower()):
            return ProviderPin(word, frozenset(n for n in names if _same(n, bare)))
    if lowered in {kind.lower() for kind in kinds}:
        return ProviderPin(word, frozenset({lowered, lowered + _API_KEY}))
    known = sorted({*FAMILIES, *(n.removeprefix(_COMPAT).removesuffix(_API_KEY) for n in names)})
    raise ProxyError(
        ErrorKind.NOT_FOUND,
        f"no provider '{word}' in /api/provider/{word}/...; known here: {', '.join(known)}",
    )


def _same(name: str, bare: str) -> bool:
    """The kind's account and API-key providers pin together (`xai` and `xai-api-key`)."""
    return name.removeprefix(_COMPAT).removesuffix(_API_KEY) == bare
