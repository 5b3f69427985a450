"""Imports run one way: model and config at the bottom, then protocols, usage, providers, auth,
routing, the application state, server, management (and the console), and the assembly (app,
serve, cli) on top.
Every import counts: inside functions and under TYPE_CHECKING too, since a function-level
import is still a dependency and a type-only one still couples the layers."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# Lowest first. A module may import from its own layer (without cycles) and from lower ones.
LAYERS: list[set[str]] = [
    {"cliproxy.model"},
    {"cliproxy.config"},
    {"cliproxy.protocols"},
    {"cliproxy.usage"},
    {"cliproxy.providers"},
    {"cliproxy.auth"},
    {"cliproxy.routing"},
    {"cliproxy.state"},
    {"cliproxy.server"},
    {"cliproxy.management", "cliproxy.console"},
    {"cliproxy.app", "cliproxy.serve", "cliproxy.serve_workers", "cliproxy.embed"},
    {"cliproxy.cli", "cliproxy.cli_auth", "cliproxy.cli_usage"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "cliproxy").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The cliproxy modules ``name`` imports, wherever the import statement sits."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                out.add(target if target in known else base)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in known and m != name}


def _layer(module: str) -> int | None:
    for index, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return index
    return None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in _graph() if m != "cliproxy" and _layer(m) is None]
    assert unplaced == [], f"place these modules in LAYERS: {unplaced}"


def test_no_import_points_up() -> None:
    wrong = []
    for module, targets in _graph().items():
        own = _layer(module)
        if own is None:
            continue
        for target in targets:
            theirs = _layer(target)
            if theirs is not None and theirs > own:
                wrong.append(f"{module} -> {target}")
    assert wrong == [], "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_check_sees_function_level_and_type_only_imports(tmp_path: Path) -> None:
    """The checker itself: an import inside a function or under TYPE_CHECKING is found."""
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from cliproxy.server import forward\n"
        "def later():\n    from cliproxy.management import app\n"
    )
    known = {"cliproxy.server.forward", "cliproxy.management.app", "cliproxy.probe"}
    found = _imports("cliproxy.probe", module, known)
    assert found == {"cliproxy.server.forward", "cliproxy.management.app"}
