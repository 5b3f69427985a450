"""Stable `auth-index` values for credentials from config.yaml, as CLIProxyAPI derives them.

The router names config keys by position ("claude-api-key[0]"), which shifts when an earlier
entry is removed. Tools that store an `auth-index` (the Management Center joins usage, quota and
api-call data on it) need a value that survives such edits, so the management API shows the
reference's: the first 16 hex digits of SHA-256 over ``<section>:<base-url>+<api-key>``. Both
forms are accepted wherever an index is read.
"""

from __future__ import annotations

import hashlib

from cliproxy.config.schema import Config


def key_auth_index(section: str, base_url: str, api_key: str) -> str:
    seed = f"{section}:{base_url.strip()}+{api_key.strip()}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def provider_auth_index(name: str) -> str:
    """An openai-compatibility provider row (its keys have their own indexes)."""
    return hashlib.sha256(f"openai-compatibility:{name.strip()}".encode()).hexdigest()[:16]


def config_key_indexes(config: Config) -> dict[str, str]:
    """Every config credential's stable auth-index -> its routing credential id."""
    found: dict[str, str] = {}
    for section, entries in (
        ("claude-api-key", config.claude_api_key),
        ("gemini-api-key", config.gemini_api_key),
        ("codex-api-key", config.codex_api_key),
    ):
        for position, entry in enumerate(entries):
            index = key_auth_index(section, entry.base_url, entry.api_key)
            found.setdefault(index, f"{section}[{position}]")
    for compat in config.openai_compatibility:
        for position, item in enumerate(compat.api_key_entries):
            index = key_auth_index("openai-compatibility", compat.base_url, item.api_key)
            found.setdefault(index, f"openai-compatibility[{compat.name}][{position}]")
    return found


def routing_id(config: Config, index: str) -> str:
    """The routing credential id an auth-index names (the stable hash or the routing id
    itself); the input unchanged when it is neither."""
    return config_key_indexes(config).get(index, index)
