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
``provider_entries`` is the seam for third-party kinds: an entry-point group will add theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from .kind_entry import ProviderEntry
from .kinds import builtin_entries


def provider_entries() -> list[ProviderEntry]:
    """Every kind this process knows. Third-party kinds will join here (entry points)."""
    return builtin_entries()


class Catalog:
    def __init__(self, entries: Iterable[ProviderEntry]) -> None:
        self.entries = tuple(entries)
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
    return Catalog(provider_entries())
