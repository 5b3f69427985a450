"""The provider catalog: each kind's names resolve to its entry, and its tables agree with the
modules that read them."""

from __future__ import annotations

import pytest

from cliproxy.auth.catalog import Catalog, catalog
from cliproxy.auth.flows import default_flows
from cliproxy.providers.client_profiles import VENDORS


def test_kinds_and_their_spellings() -> None:
    cat = catalog()
    assert cat.kinds() == ("codex", "claude", "gemini", "vertex", "antigravity", "kimi", "xai")
    assert cat.channel(" Gemini-CLI ") == "gemini"
    assert cat.channel("anthropic") == "anthropic"  # config channels fold only gemini-cli
    assert {"claude", "gemini", "codex", "vertex", "xai", "kimi"} <= {
        e.kind for e in cat.api_key_entries()
    }
    for name, login in (("openai", "codex"), ("claude", "anthropic"), ("google", "gemini-cli")):
        entry = cat.by_login(name)
        assert entry is not None and entry.login == login
    assert cat.by_login("qwen") is None
    entry = cat.by_login("anti-gravity")
    assert entry is not None and entry.kind == "antigravity"
    for name in ("grok", "x.ai", "x-ai"):
        entry = cat.by_login(name)
        assert entry is not None and entry.kind == "xai"
    entry = cat.by_management_channel("openai")
    assert entry is not None and entry.kind == "codex"


def test_every_entry_is_whole() -> None:
    for entry in catalog().entries:
        assert entry.flow.provider == entry.kind
        assert entry.vendor in VENDORS
        # Antigravity answers exact names only (its gemini-/claude- names are no family).
        assert entry.listed_models and (entry.model_prefixes or entry.kind == "antigravity")
    # Kinds that mint their own tokens (vertex service accounts) have no browser login.
    browser = {e.kind for e in catalog().entries if e.mint_token is None}
    assert set(default_flows(env={})) == browser == set(catalog().kinds()) - {"vertex"}


def test_a_kind_is_listed_once() -> None:
    entry = catalog().entry("codex")
    with pytest.raises(ValueError):
        Catalog([entry, entry])
