"""Stable `auth-index` values for credentials from config.yaml, as CLIProxyAPI derives them.

The router names config keys by position ("claude-api-key[0]"), which shifts when an earlier
entry is removed. Tools that store an `auth-index` (the Management Center joins usage, quota and
api-call data on it) need a value that survives such edits, so the management API shows the
reference's: the first 16 hex digits of SHA-256 over ``<section>:<base-url>+<api-key>``. Both
forms are accepted wherever an index is read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cliproxy.auth.catalog import catalog
from cliproxy.config.schema import Config


def key_auth_index(section: str, base_url: str, api_key: str) -> str:
    seed = f"{section}:{base_url.strip()}+{api_key.strip()}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def provider_auth_index(name: str) -> str:
    """An openai-compatibility provider row (its keys have their own indexes)."""
    return hashlib.sha256(f"openai-compatibility:{name.strip()}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One API key of config.yaml as the management API sees it."""

    section: str  # "claude-api-key", ..., "openai-compatibility"
    provider: str  # the kind (auth/catalog.py), or the compatible provider's name
    routing_id: str  # the router's id: "claude-api-key[0]", "openai-compatibility[n][0]"
    base_url: str  # as configured (may be empty: the vendor default)
    api_key: str
    proxy_url: str

    @property
    def auth_index(self) -> str:
        return key_auth_index(self.section, self.base_url, self.api_key)


def config_keys(config: Config) -> list[ConfigKey]:
    """Every API key entry of the config, in file order, named as the router names it."""
    keys: list[ConfigKey] = []
    for kind in catalog().api_key_entries():
        family, entries = kind.kind, kind.api_keys(config)
        section = f"{family}-api-key"
        for position, entry in enumerate(entries):
            keys.append(
                ConfigKey(
                    section,
                    family,
                    f"{section}[{position}]",
                    entry.base_url.strip(),
                    entry.api_key.strip(),
                    entry.proxy_url,
                )
            )
    for compat in config.openai_compatibility:
        for position, item in enumerate(compat.api_key_entries):
            keys.append(
                ConfigKey(
                    "openai-compatibility",
                    compat.name,
                    f"openai-compatibility[{compat.name}][{position}]",
                    compat.base_url.strip(),
                    item.api_key.strip(),
                    item.proxy_url,
                )
            )
    return keys


def config_key_indexes(config: Config) -> dict[str, str]:
    """Every config credential's stable auth-index -> its routing credential id."""
    found: dict[str, str] = {}
    for key in config_keys(config):
        found.setdefault(key.auth_index, key.routing_id)
    return found


def routing_id(config: Config, index: str) -> str:
    """The routing credential id an auth-index names (the stable hash or the routing id
    itself); the input unchanged when it is neither."""
    return config_key_indexes(config).get(index, index)
