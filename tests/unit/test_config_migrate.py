"""`cliproxy config migrate --to v8`: the config in the reference system's v8 layout, reading to
the same config (model_dump equal) as the original, with its comments where they were; --write
replaces the file atomically, only when asked; a config that does not load is not migrated."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from cliproxy.cli import app
from cliproxy.config import load_config, parse_config_text
from cliproxy.config.v8_migrate import migrate, migrate_text
from tests.unit.test_config_v8 import LEGACY, V8

COMMENTED = """\
# my proxy
port: 8317  # the port

# retries
request-retry: 2
max-retry-interval: 10  # seconds

routing:
  strategy: fill-first  # fill one first

# codex switches
codex:
  # no cloak
  disable-codex-cloaking: true
  optimize-multi-agent-v2: true

# client keys
api-keys:
  - client-1  # laptop
  - client-2

claude-api-key:
  - api-key: sk-ant-1  # first
    base-url: https://claude.example
    # the models
    models:
      - name: claude-sonnet-4-6
        alias: sonnet
  - api-key: sk-ant-2  # second
    base-url: https://claude.example
    models:
      - name: claude-sonnet-4-6
        alias: sonnet
openai-compatibility:
  - name: groq
    base-url: https://api.groq.example/v1
    api-key-entries:
      - api-key: gsk-1
      - api-key: gsk-2
        proxy-url: direct
client-keys:
  - name: team
    key: sk-team-0123456789
model-fallbacks:
  gpt-5: [claude-sonnet-4-6]
# the end
"""

runner = CliRunner()


def loads_the_same(original: str, migrated: str) -> None:
    before = parse_config_text(original, "before.yaml").model_dump()
    assert parse_config_text(migrated, "after.yaml").model_dump() == before


@pytest.mark.parametrize(
    "text", [LEGACY, COMMENTED, V8, ""], ids=["legacy", "commented", "v8", "empty"]
)
def test_the_migrated_text_loads_to_the_same_config(text: str) -> None:
    migrated = migrate_text(text, "config.yaml").text
    loads_the_same(text, migrated)
    assert parse_config_text(migrated, "after.yaml").layout == "v8"
    data = YAML(typ="safe").load(migrated)
    assert data["config-version"] == 8
    # Migrating again changes nothing.
    assert migrate_text(migrated, "config.yaml").text == migrated


def test_the_v8_layout_of_a_legacy_file() -> None:
    data = YAML(typ="safe").load(migrate_text(COMMENTED, "config.yaml").text)
    assert data["server"] == {"port": 8317}
    assert data["routing"] == {
        "strategy": "fill-first",
        "retry": {"request-retry": 2, "max-retry-interval": 10},
    }
    assert data["upstream"]["codex"] == {"disable-codex-cloaking": True}
    assert data["client"]["codex"] == {"optimize-multi-agent-v2": True}
    assert data["access"]["api-keys"] == ["client-1", "client-2"]
    # Entries that differ only in their key share a group.
    (claude,) = data["api-keys"]["claude"]
    assert claude["keys"] == ["sk-ant-1", "sk-ant-2"]
    assert claude["base-url"] == "https://claude.example"
    (groq,) = data["api-keys"]["openai-compatibility"]
    assert groq["name"] == "groq"
    assert groq["keys"] == ["gsk-1", {"api-key": "gsk-2", "proxy-url": "direct"}]
    # cliproxy's own keys stay top-level.
    assert data["client-keys"][0]["name"] == "team"
    assert data["model-fallbacks"] == {"gpt-5": ["claude-sonnet-4-6"]}
    for legacy in ("port", "request-retry", "codex", "claude-api-key", "openai-compatibility"):
        assert legacy not in data


def test_comments_go_with_their_keys() -> None:
    text = migrate_text(COMMENTED, "config.yaml").text
    lines = text.splitlines()
    assert lines[0] == "# my proxy"
    assert lines[1] == "config-version: 8"
    for comment, key in (("# retries", "routing:"), ("# client keys", "access:")):
        assert lines[lines.index(comment) + 1] == key, text
    codex = lines.index("# codex switches")
    assert lines[codex + 1 : codex + 3] == ["# no cloak", "upstream:"], text
    for kept in ("# the port", "# seconds", "# fill one first", "# laptop", "# first", "# second"):
        assert kept in text, kept
    # A comment inside a moved block moves with it, indented to its new depth.
    models = lines.index("      # the models")
    assert lines[models + 1].strip() == "models:"
    assert lines[-1] == "# the end"


def test_in_a_mixed_file_a_shadowed_legacy_key_is_dropped() -> None:
    mixed = (
        "request-retry: 5\nport: 9000\nrouting: {retry: {request-retry: 1}}\n"
        "claude-api-key: [{api-key: old}]\napi-keys: {claude: [{keys: [new]}]}\n"
    )
    result = migrate_text(mixed, "mixed.yaml")
    loads_the_same(mixed, result.text)
    assert dict(result.migration.dropped) == {
        "request-retry": "routing.retry.request-retry",
        "claude-api-key": "api-keys.claude",
    }
    data = YAML(typ="safe").load(result.text)
    assert data["routing"]["retry"] == {"request-retry": 1}
    assert data["server"] == {"port": 9000}
    assert data["api-keys"] == {"claude": [{"keys": ["new"]}]}


def test_plain_dicts_migrate_without_comments() -> None:
    dumped = parse_config_text(LEGACY, "x.yaml").model_dump(mode="json", by_alias=True)
    tree = migrate(dumped).tree
    assert type(tree) is dict
    assert tree["routing"]["retry"]["request-retry"] == 2
    assert tree["api-keys"]["claude"][0]["keys"] == ["sk-ant-1", "sk-ant-2"]


def test_cli_prints_and_writes_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(COMMENTED)
    path.chmod(0o640)
    printed = runner.invoke(app, ["config", "migrate", "--to", "v8", str(path)])
    assert printed.exit_code == 0, printed.output
    assert path.read_text() == COMMENTED  # printing writes nothing
    loads_the_same(COMMENTED, printed.stdout)
    written = runner.invoke(app, ["config", "migrate", "--to", "v8", str(path), "--write"])
    assert written.exit_code == 0, written.output
    assert "written in the v8 layout" in written.stdout
    assert path.read_text() == printed.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the file keeps its mode
    assert load_config(path).model_dump() == parse_config_text(COMMENTED, "x").model_dump()
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temporary file left
    again = runner.invoke(app, ["config", "migrate", "--to", "v8", str(path), "--write"])
    assert "already in the v8 layout" in again.stdout
    checked = runner.invoke(app, ["config", "check", str(path)])
    assert "layout: v8 layout (config-version 8)" in checked.stdout


def test_cli_refuses_what_it_cannot_migrate(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("request-retry: -1\n")
    refused = runner.invoke(app, ["config", "migrate", "--to", "v8", str(path), "--write"])
    assert refused.exit_code == 2
    assert "request-retry: must be 0 or more" in refused.output
    assert path.read_text() == "request-retry: -1\n"
    other = runner.invoke(app, ["config", "migrate", "--to", "v7", str(path)])
    assert other.exit_code == 2 and "only v8" in other.output


@pytest.mark.parametrize(
    "value", ["!!str 1", "=", "<<", "[=, !!str 2]", "{inner: !!str 3}"], ids=repr
)
def test_tagged_scalars_under_an_unknown_key_migrate(value: str) -> None:
    """An unknown key may hold a scalar YAML tags explicitly (``!!str 1``) or implicitly
    (``=``, ``<<``). Both reads of the file hold the same tag and text there; the check that
    the migrated config reads the same must not take them for a difference (the management
    API refused every v8 write with a 500 once such a value was in the file)."""
    text = f"request-retry: 2\nnotes-of-mine:\n  kept: {value}\n"
    migrated = migrate_text(text, "config.yaml").text
    assert "config-version: 8" in migrated
    assert f"kept: {value}" in migrated


def test_a_changed_tagged_scalar_is_still_a_difference() -> None:
    from cliproxy.config.v8_migrate import differences

    before = parse_config_text("mine: !!str 1\n", "a.yaml").model_dump()
    after = parse_config_text("mine: !!str 2\n", "b.yaml").model_dump()
    assert differences(before, after) == ["mine"]
    assert differences(before, parse_config_text("mine: !!str 1\n", "c.yaml").model_dump()) == []
