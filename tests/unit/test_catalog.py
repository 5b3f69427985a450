"""The provider catalog: each kind's names resolve to its entry, and its tables agree with the
modules that read them."""

from __future__ import annotations

import pytest

from cliproxy.auth.catalog import Catalog, catalog
from cliproxy.auth.flows import default_flows
from cliproxy.providers.client_profiles import VENDORS


def test_kinds_and_their_spellings() -> None:
    cat = catalog()
    assert cat.kinds()[:5] == ("codex", "claude", "gemini", "kimi", "xai")
    assert cat.channel(" Gemini-CLI ") == "gemini"
    assert cat.channel("anthropic") == "anthropic"  # config channels fold only gemini-cli
    assert [e.kind for e in cat.api_key_entries()][:5] == [
        "claude",
        "gemini",
        "codex",
        "xai",
        "kimi",
    ]
    for name, login in (("openai", "codex"), ("claude", "anthropic"), ("google", "gemini-cli")):
        entry = cat.by_login(name)
        assert entry is not None and entry.login == login
    assert cat.by_login("qwen") is None
    for name in ("grok", "x.ai", "x-ai"):
        entry = cat.by_login(name)
        assert entry is not None and entry.kind == "xai"
    entry = cat.by_management_channel("openai")
    assert entry is not None and entry.kind == "codex"


def test_every_entry_is_whole() -> None:
    for entry in catalog().entries:
        assert entry.flow.provider == entry.kind
        assert entry.vendor in VENDORS
        assert entry.model_prefixes and entry.listed_models
    assert set(default_flows(env={})) == set(catalog().kinds())


def test_a_kind_is_listed_once() -> None:
    entry = catalog().entry("codex")
    with pytest.raises(ValueError):
        Catalog([entry, entry])
