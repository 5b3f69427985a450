"""`model-fallbacks:` (cliproxy's): the models to try, in order, when every credential of a
model failed or rests.

    model-fallbacks:
      claude-opus-5-5: [claude-sonnet-5, gpt-5.5]
      claude-sonnet-5: [gemini-3-pro-preview]

Chains are followed through: a fallback's own fallbacks come right after it (so the chain of
claude-opus-5-5 above is claude-sonnet-5, gemini-3-pro-preview, gpt-5.5), each model once. A
chain that leads back to a model already on the way is a loop, and a config error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def check_fallbacks(raw: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The entries cleaned (names stripped, empty ones refused); ValueError naming a loop."""
    clean: dict[str, list[str]] = {}
    for model, chain in raw.items():
        name = model.strip()
        if not name:
            raise ValueError("a model name must not be empty")
        models = [m.strip() for m in chain]
        if any(not m for m in models):
            raise ValueError(f"{name}: a fallback model name must not be empty")
        if name in models:
            raise ValueError(f"{name}: a model cannot fall back to itself")
        clean[name] = models
    for model in clean:
        _walk(clean, model, [model])
    return clean


def _walk(chains: Mapping[str, Sequence[str]], model: str, path: list[str]) -> None:
    for fallback in chains.get(model, ()):
        if fallback in path:
            loop = " -> ".join([*path[path.index(fallback) :], fallback])
            raise ValueError(f"{loop} is a loop")
        _walk(chains, fallback, [*path, fallback])


def fallback_chain(chains: Mapping[str, Sequence[str]], model: str) -> tuple[str, ...]:
    """Every model to try after ``model``, in order, each once (loops were refused at load)."""
    # Depth first, each model's fallbacks in their order, as a recursive walk goes; written
    # with a stack of iterators, since a recursive closure is a reference cycle per request.
    found: list[str] = []
    stack = [iter(chains.get(model, ()))]
    while stack:
        for fallback in stack[-1]:
            if fallback != model and fallback not in found:
                found.append(fallback)
                stack.append(iter(chains.get(fallback, ())))
                break
        else:
            stack.pop()
    return tuple(found)
