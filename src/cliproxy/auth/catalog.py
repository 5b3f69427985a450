"""The provider catalog: one entry per provider kind (kind_entry.py), looked up by the kind's
name or by any spelling the config and the management API accept for it. Everything that used
to switch on a kind's name asks this instead.

Where it sits: an entry holds Provider classes (providers/) as well as OAuth flows and file
formats (auth/), so the catalog is in the auth layer, the lowest one that can import both.
The auth modules that read and write account files (records.py, identity.py, login.py,
refresher.py) use it from beside it; routing, the application state, server and management use
it from above. Nothing below auth needs a kind: the config's payload-rule protocol words
(config/payload.py) are CLIProxyAPI's vocabulary, checked at load time.

The list is explicit and read once, on first use (``catalog()``), not built by imports.
Third-party kinds join through the ``cliproxy.providers`` entry-point group: each entry point
names a ProviderEntry, a list of them, or a callable returning either. They are loaded once,
listed in the serve banner, and one that fails to load (an import error, a wrong type, a kind
that is already taken) is reported by name and skipped; the shipped kinds never depend on them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from .kind_entry import ProviderEntry
from .kinds import builtin_entries

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "cliproxy.providers"


@dataclass(frozen=True, slots=True)
class Plugin:
    """One entry point of the group: what it added, or why it was skipped."""

    name: str  # the entry point's name
    target: str  # module:attribute
    kinds: tuple[str, ...] = ()
    problem: str = ""


def load_plugins(
    taken: Iterable[str], points: Iterable[EntryPoint] | None = None
) -> tuple[list[ProviderEntry], list[Plugin]]:
    """The third-party entries of the entry-point group, and a report per entry point."""
    found = entry_points(group=ENTRY_POINT_GROUP) if points is None else points
    kinds = set(taken)
    entries: list[ProviderEntry] = []
    report: list[Plugin] = []
    for point in found:
        try:
            loaded = _entries_of(point.load())
            clash = [entry.kind for entry in loaded if entry.kind in kinds]
            if clash:
                raise ValueError(f"kind {', '.join(clash)} is already provided")
        except Exception as exc:  # a plug-in's bug must not stop the proxy
            problem = f"{exc.__class__.__name__}: {exc}"
            log.warning("provider plug-in %s (%s) skipped: %s", point.name, point.value, problem)
            report.append(Plugin(point.name, point.value, problem=problem))
            continue
        kinds.update(entry.kind for entry in loaded)
        entries.extend(loaded)
        report.append(Plugin(point.name, point.value, tuple(e.kind for e in loaded)))
    return entries, report


def _entries_of(value: object) -> list[ProviderEntry]:
    if callable(value) and not isinstance(value, ProviderEntry):
        value = value()
    items = [value] if isinstance(value, ProviderEntry) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise TypeError("expected a ProviderEntry, a list of them, or a callable returning one")
    wrong = [item for item in items if not isinstance(item, ProviderEntry)]
    if wrong:
        raise TypeError(f"not a ProviderEntry: {wrong[0]!r}")
    return list(items)


def provider_entries() -> tuple[list[ProviderEntry], list[Plugin]]:
    """Every kind this process knows: the shipped ones, then the plug-ins'."""
    shipped = builtin_entries()
    added, report = load_plugins(entry.kind for entry in shipped)
    return [*shipped, *added], report


class Catalog:
    def __init__(self, entries: Iterable[ProviderEntry], plugins: Iterable[Plugin] = ()) -> None:
        self.entries = tuple(entries)
        self.plugins = tuple(plugins)
        self._by_kind = {entry.kind: entry for entry in self.entries}
        if len(self._by_kind) != len(self.entries):
            raise ValueError("two catalog entries share a kind")

    def kinds(self) -> tuple[str, ...]:
        """The auth-file types cliproxy reads, in catalog order."""
        return tuple(self._by_kind)

    def get(self, kind: str) -> ProviderEntry | None:
        return self._by_kind.get(kind)

    def entry(self, kind: str) -> ProviderEntry:
        """Raises KeyError for a kind the catalog does not have."""
        return self._by_kind[kind]

    def channel(self, spelling: str) -> str:
        """The kind a config channel key names (oauth-model-alias, oauth-excluded-models),
        case-folded; an unknown channel is returned as it is (folded)."""
        word = spelling.strip().lower()
        for entry in self.entries:
            if word in entry.config_channels:
                return entry.kind
        return word

    def by_management_channel(self, channel: str) -> ProviderEntry | None:
        """The kind GET /model-definitions/{channel} means (``channel`` already folded)."""
        for entry in self.entries:
            if channel == entry.kind or channel in entry.management_channels:
                return entry
        return None

    def by_login(self, name: str) -> ProviderEntry | None:
        """The kind a management login name or alias means (``name`` already folded)."""
        for entry in self.entries:
            if name == entry.login or name in entry.login_aliases:
                return entry
        return None

    def api_key_entries(self) -> list[ProviderEntry]:
        """The kinds with a `<kind>-api-key` section, in the order the router adds them."""
        return sorted(self.entries, key=lambda entry: entry.api_key_rank)


@cache
def catalog() -> Catalog:
    """The process's catalog, built from ``provider_entries()`` the first time it is asked."""
    entries, plugins = provider_entries()
    return Catalog(entries, plugins)
