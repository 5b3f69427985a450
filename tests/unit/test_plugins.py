"""Third-party provider kinds join the catalog through the `cliproxy.providers` entry-point
group: loaded once, listed in the banner, and one that fails to load is reported and skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliproxy.auth.catalog import ENTRY_POINT_GROUP, catalog, provider_entries
from cliproxy.config import default_config
from cliproxy.serve import banner

PLUGIN = """
import dataclasses
from cliproxy.auth.kinds import CODEX_ENTRY

def entry():
    return dataclasses.replace(CODEX_ENTRY, kind="acme", display_name="Acme")

clash = CODEX_ENTRY
not_an_entry = 42
"""


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution (a dist-info on sys.path) with four entry points."""
    dist = tmp_path / "acme_cliproxy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-cliproxy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "acme = acme_cliproxy_plugin:entry\n"
        "missing = acme_cliproxy_gone:entry\n"
        "clash = acme_cliproxy_plugin:clash\n"
        "wrong = acme_cliproxy_plugin:not_an_entry\n"
    )
    (tmp_path / "acme_cliproxy_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_plugin_kind_joins_and_broken_ones_are_skipped(plugins: Path) -> None:
    entries, report = provider_entries()
    kinds = [entry.kind for entry in entries]
    assert kinds[:3] == ["codex", "claude", "gemini"] and "acme" in kinds
    by_name = {plugin.name: plugin for plugin in report}
    assert by_name["acme"].kinds == ("acme",) and not by_name["acme"].problem
    assert "ModuleNotFoundError" in by_name["missing"].problem
    assert "already provided" in by_name["clash"].problem
    assert "ProviderEntry" in by_name["wrong"].problem
    assert kinds.count("codex") == 1


def test_the_banner_lists_plugins(plugins: Path) -> None:
    catalog.cache_clear()
    try:
        text = banner(default_config(), None, ["demo-echo"])
        assert "provider plug-in acme: acme" in text
        assert "provider plug-in missing skipped: ModuleNotFoundError" in text
        assert catalog().get("acme") is not None
    finally:
        catalog.cache_clear()


def test_without_the_distribution_its_kinds_are_gone() -> None:
    entries, report = provider_entries()
    assert "acme" not in [entry.kind for entry in entries]
    assert all(plugin.name != "acme" for plugin in report)
