"""The reference system's v8 layout: a v8 file and a legacy file of the same meaning load to
the same config; a mixed file follows the precedence rule (a v8 path wins by presence, even
false or null); problems are reported on the user's line, under the path as the file spells it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliproxy.config import ConfigError
from cliproxy.config.load import check_config, parse_config_text

LEGACY = """
host: 127.0.0.1
port: 9317
auth-dir: /tmp/cliproxy-v8-test
api-keys: [sk-client-1, sk-client-2]
remote-management: {secret-key: "", allow-remote: false}
request-retry: 2
max-retry-interval: 7
disable-cooling: true
transient-error-cooldown-seconds: 9
proxy-url: socks5://127.0.0.1:1080
debug: true
request-log: true
usage-statistics-enabled: false
force-model-prefix: true
routing: {strategy: fill-first}
oauth-excluded-models: {claude: [claude-3-*]}
codex: {model-level-cooling: true}
claude-api-key:
  - api-key: sk-ant-1
    base-url: https://claude.example
    priority: 2
    models: [{name: claude-sonnet-4-6, alias: sonnet}]
  - api-key: sk-ant-2
    base-url: https://claude.example
    priority: 2
    models: [{name: claude-sonnet-4-6, alias: sonnet}]
gemini-api-key:
  - api-key: AIza-1
openai-compatibility:
  - name: groq
    base-url: https://api.groq.example/v1
    api-key-entries: [{api-key: gsk-1}, {api-key: gsk-2, proxy-url: direct}]
    models: [{name: llama-4, alias: llama}]
"""

V8 = """
config-version: 8
server: {host: 127.0.0.1, port: 9317}
management: {secret-key: "", allow-remote: false}
access: {api-keys: [sk-client-1, sk-client-2]}
routing:
  strategy: fill-first
  force-model-prefix: true
  retry: {request-retry: 2, max-retry-interval: 7}
  cooldown: {disable-cooling: true, transient-error-cooldown-seconds: 9}
requests: {proxy-url: "socks5://127.0.0.1:1080"}
oauth:
  auth-dir: /tmp/cliproxy-v8-test
  excluded-models: {claude: [claude-3-*]}
upstream:
  codex: {model-level-cooling: true}
observability:
  logs: {debug: true, request-log: true}
  usage: {usage-statistics-enabled: false}
api-keys:
  claude:
    - name: main
      base-url: https://claude.example
      priority: 2
      keys: [sk-ant-1, sk-ant-2]
      models: [{name: claude-sonnet-4-6, alias: sonnet}]
  gemini:
    - keys: [AIza-1]
  openai-compatibility:
    - name: groq
      base-url: https://api.groq.example/v1
      keys: [gsk-1, {api-key: gsk-2, proxy-url: direct}]
      models: [{name: llama-4, alias: llama}]
"""


def test_a_v8_file_and_a_legacy_file_of_the_same_meaning_load_to_the_same_config() -> None:
    legacy = parse_config_text(LEGACY, "legacy.yaml")
    v8 = parse_config_text(V8, "v8.yaml")
    assert v8.model_dump() == legacy.model_dump()
    assert (legacy.layout, v8.layout) == ("legacy", "v8")
    assert v8.port == 9317 and v8.request_retry == 2 and v8.routing.strategy == "fill-first"
    assert [k.api_key for k in v8.claude_api_key] == ["sk-ant-1", "sk-ant-2"]
    assert v8.codex.model_level_cooling is True
    assert v8.warnings == legacy.warnings


def test_in_a_mixed_file_the_v8_path_wins_by_presence_even_false_or_null() -> None:
    mixed = parse_config_text(
        "request-retry: 5\ndisable-cooling: true\nmax-retry-interval: 3\nport: 9000\n"
        "routing: {retry: {request-retry: 1, max-retry-interval: null},"
        " cooldown: {disable-cooling: false}}\n",
        "mixed.yaml",
    )
    assert mixed.layout == "mixed"
    assert mixed.request_retry == 1
    assert mixed.disable_cooling is False  # v8 false beats legacy true
    assert mixed.max_retry_interval == 30.0  # v8 null: unset, the default applies
    assert mixed.port == 9000  # a legacy key with no v8 twin is read as ever


def test_v8_groups_replace_the_legacy_list_of_their_family() -> None:
    config = parse_config_text(
        "claude-api-key: [{api-key: old}]\napi-keys: {claude: [{keys: [new-1, new-2]}]}\n",
        "groups.yaml",
    )
    assert [k.api_key for k in config.claude_api_key] == ["new-1", "new-2"]


def test_problems_name_the_v8_path_on_the_users_line() -> None:
    text = "config-version: 8\nserver:\n  host: 127.0.0.1\n  port: not-a-port\n"
    with pytest.raises(ConfigError) as error:
        parse_config_text(text, "bad.yaml")
    problem = error.value.problems[0]
    assert problem.key_path == "server.port" and problem.line == 4
    text = "api-keys:\n  claude:\n    - keys: [k1]\n      base-url: not a url\n"
    with pytest.raises(ConfigError) as error:
        parse_config_text(text, "bad-group.yaml")
    problem = error.value.problems[0]
    assert problem.key_path.startswith("api-keys.claude[0]")
    assert "base-url" in problem.key_path and problem.line == 4


def test_config_check_names_the_layout(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(V8)
    status, lines = check_config(path)
    assert status == 0
    assert "layout: v8 layout (config-version 8)" in lines
