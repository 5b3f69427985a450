"""Config loading: CLIProxyAPI files load unchanged, every problem names its line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cliproxy.config import (
    Config,
    ConfigError,
    ConfigProblem,
    check_config,
    default_config,
    load_config,
    parse_config_text,
)

# Built from the shapes in CLIProxyAPI's config.example.yaml (current and older releases).
CLIPROXYAPI_CONFIG = """\
# Server host/interface to bind to.
host: ""
port: 8318
tls:
  enable: false
  cert: ""
  key: ""
remote-management:
  allow-remote: false
  secret-key: "$2a$10$abcdefghijklmnopqrstuv"
  disable-control-panel: true
  panel-github-repository: "https://github.com/example/panel"
auth-dir: "~/.cli-proxy-api"
api-keys:
  - "your-api-key-1"
  - "your-api-key-2"
debug: false
pprof:
  enable: false
  addr: "127.0.0.1:8316"
commercial-mode: true
logging-to-file: false
usage-statistics-enabled: true
proxy-url: "socks5://user:pass@192.168.1.1:1080/"
request-retry: 5
max-retry-interval: 30
quota-exceeded:
  switch-project: true
  switch-preview-model: true
routing:
  strategy: "fill-first"
  session-affinity: false
ws-auth: true
gemini-api-key:
  - api-key: "AIzaSy...01"
    prefix: "test"
    base-url: "https://generativelanguage.googleapis.com"
    headers:
      X-Custom-Header: "custom-value"
    proxy-url: "socks5://proxy.example.com:1080"
    models:
      - name: "gemini-2.5-flash"
        alias: "gemini-flash"
    excluded-models:
      - "Gemini-2.5-Pro"
      - "gemini-2.5-*"
  - api-key: "AIzaSy...02"
codex-api-key:
  - api-key: "sk-atSM..."
    base-url: "https://www.example.com"
    proxy-url: "direct"
claude-api-key:
  - api-key: "sk-ant-1"
  - api-key: "sk-ant-2"
    base-url: "https://www.example.com"
    models:
      - name: "claude-3-5-sonnet-20241022"
        alias: "claude-sonnet-latest"
    cloak:
      mode: "auto"
openai-compatibility:
  - name: "openrouter"
    prefix: "or"
    base-url: "https://openrouter.ai/api/v1"
    headers:
      X-Custom-Header: "custom-value"
    api-key-entries:
      - api-key: "sk-or-v1-...b780"
        proxy-url: "socks5://proxy.example.com:1080"
      - api-key: "sk-or-v1-...b781"
    models:
      - name: "moonshotai/kimi-k2:free"
        alias: "kimi-k2"
  - name: "local"
    disabled: true
    base-url: "http://127.0.0.1:11434/v1"
vertex-api-key:
  - api-key: "vk-123..."
    base-url: "https://example.com/api"
oauth-excluded-models:
  claude:
    - "claude-3-5-haiku-20241022"
payload:
  default:
    - models:
        - name: "gemini-2.5-pro"
      params:
        "generationConfig.thinkingConfig.thinkingBudget": 32768
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse_config_text(textwrap.dedent(text), "config.yaml")
    return info.value.problems


def only_problem(text: str) -> ConfigProblem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- a real CLIProxyAPI file ------------------------------------------------------------------


def test_cliproxyapi_config_loads_unchanged(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, CLIPROXYAPI_CONFIG))

    assert cfg.host == "0.0.0.0"  # "" means every interface, as in CLIProxyAPI
    assert cfg.port == 8318
    assert cfg.auth_dir == Path("~/.cli-proxy-api").expanduser()
    assert cfg.api_keys == ["your-api-key-1", "your-api-key-2"]
    assert cfg.proxy_url == "socks5://user:pass@192.168.1.1:1080/"
    assert cfg.request_retry == 5
    assert cfg.routing.strategy == "fill-first"
    assert cfg.remote_management.disable_control_panel is True
    assert cfg.remote_management.secret_key.startswith("$2a$")

    gemini = cfg.gemini_api_key[0]
    assert gemini.api_key == "AIzaSy...01"
    assert gemini.prefix == "test"
    assert gemini.headers == {"X-Custom-Header": "custom-value"}
    assert gemini.models[0].name == "gemini-2.5-flash"
    assert gemini.models[0].client_name == "gemini-flash"
    assert gemini.excluded_models == ["gemini-2.5-pro", "gemini-2.5-*"]
    assert cfg.gemini_api_key[1].base_url == ""
    assert cfg.codex_api_key[0].proxy_url == "direct"
    assert [key.api_key for key in cfg.claude_api_key] == ["sk-ant-1", "sk-ant-2"]

    router = cfg.openai_compatibility[0]
    assert router.name == "openrouter"
    assert router.base_url == "https://openrouter.ai/api/v1"
    assert router.api_key_entries[0].api_key == "sk-or-v1-...b780"
    assert router.api_key_entries[0].proxy_url == "socks5://proxy.example.com:1080"
    assert router.api_key_entries[1].proxy_url == ""
    assert router.models[0].alias == "kimi-k2"
    assert cfg.openai_compatibility[1].disabled is True

    assert cfg.demo is False  # providers are configured
    assert cfg.warnings == []


def test_cliproxyapi_only_keys_are_listed_not_fatal(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, CLIPROXYAPI_CONFIG))

    assert cfg.unsupported_keys() == [
        "commercial-mode",
        "claude-api-key[1].cloak",
    ]
    assert cfg.ws_auth is True  # read since the AI Studio relay (GET /v1/ws)
    assert cfg.vertex_api_key[0].base_url == "https://example.com/api"  # served since wave 2
    # Keys set to false/empty ask for nothing we lack, so they are not reported.
    assert "logging-to-file" not in cfg.unsupported_keys()
    assert "routing.session-affinity" not in cfg.unsupported_keys()
    # Kept, so nothing the user wrote is lost.
    assert cfg.model_extra is not None
    assert cfg.model_extra["commercial-mode"] is True
    lines = dict(cfg.unsupported_key_lines())
    assert lines["commercial-mode"] == 21
    assert cfg.usage_statistics_enabled is True


def test_request_log_keys_are_supported() -> None:
    cfg = parse_config_text("request-log: true\nerror-logs-max-files: 3\n", "c.yaml")
    assert (cfg.request_log, cfg.error_logs_max_files) == (True, 3)
    assert cfg.unsupported_keys() == []
    assert default_config().request_log is False
    assert default_config().error_logs_max_files == 10
    # CLIProxyAPI's: a negative count means the default; 0 means no count cap.
    assert parse_config_text("error-logs-max-files: -1\n", "c").error_logs_max_files == 10
    assert parse_config_text("error-logs-max-files: 0\n", "c").error_logs_max_files == 0


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, CLIPROXYAPI_CONFIG))
    assert "your-api-key-1" not in repr(cfg)
    assert "AIzaSy...01" not in repr(cfg)
    assert "$2a$" not in repr(cfg)


def test_legacy_shapes_are_accepted() -> None:
    cfg = parse_config_text(
        textwrap.dedent(
            """\
            auth:
              providers:
                - name: default
                  type: config-api-key
                  api-keys: ["k1", "k2"]
            generative-language-api-key:
              - "AIza-old-1"
            gemini-api-key:
              - "AIza-plain"
            openai-compatibility:
              - name: old
                base-url: https://example.com/v1
                api-keys:
                  - sk-old-1
                models:
                  - plain-model-name
            """
        ),
        "config.yaml",
    )
    assert cfg.api_keys == ["k1", "k2"]
    assert [key.api_key for key in cfg.gemini_api_key] == ["AIza-plain", "AIza-old-1"]
    assert cfg.openai_compatibility[0].api_key_entries[0].api_key == "sk-old-1"
    assert cfg.openai_compatibility[0].models[0].client_name == "plain-model-name"
    assert len(cfg.warnings) == 3
    assert cfg.warnings[0].startswith("config.yaml:1: auth: legacy key")
    assert any("openai-compatibility[0].api-keys" in w for w in cfg.warnings)


def test_routing_strategy_spellings() -> None:
    assert parse_config_text("routing: {strategy: RR}", "c").routing.strategy == "round-robin"
    assert parse_config_text("routing: {strategy: ff}", "c").routing.strategy == "fill-first"
    weighted = parse_config_text("routing:\n  strategy: weighted-round-robin\n", "c")
    assert weighted.routing.strategy == "weighted-round-robin"
    assert weighted.unsupported_key_lines() == []


# --- defaults and the demo switch --------------------------------------------------------------


def test_default_config() -> None:
    cfg = default_config()
    assert (cfg.host, cfg.port) == ("127.0.0.1", 8317)
    assert cfg.api_keys == []
    assert cfg.demo is True
    assert cfg.request_retry == 3
    assert cfg.routing.strategy == "round-robin"
    assert cfg.request_body_limit_mb == 32
    assert cfg.request_body_limit_bytes == 32 * 1024 * 1024
    assert cfg.upstream_timeout_seconds == 600
    assert cfg.auth_dir == Path.home() / ".cli-proxy-api"
    assert cfg.unsupported_keys() == [] and cfg.warnings == []


def test_empty_file_and_empty_values_mean_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# only a comment\n")) == default_config()
    cfg = parse_config_text("api-keys:\nport:\n", "c")
    assert cfg.api_keys == [] and cfg.port == 8317


def test_demo_follows_providers_unless_explicit() -> None:
    with_provider = "claude-api-key:\n  - api-key: sk-1\n"
    assert parse_config_text(with_provider, "c").demo is False
    assert parse_config_text(with_provider + "demo: true\n", "c").demo is True
    assert parse_config_text("demo: false\n", "c").demo is False
    disabled_only = "openai-compatibility:\n  - {name: x, base-url: 'http://h', disabled: true}\n"
    assert parse_config_text(disabled_only, "c").demo is True


def test_extensions_are_read() -> None:
    cfg = parse_config_text("request-body-limit-mb: 4\nupstream-timeout-seconds: 30\n", "c")
    assert cfg.request_body_limit_mb == 4
    assert cfg.upstream_timeout_seconds == 30


def test_python_field_names_also_work() -> None:
    cfg = Config.model_validate({"api_keys": ["a"], "request_retry": 0})
    assert cfg.api_keys == ["a"] and cfg.request_retry == 0


# --- errors: line and key path -----------------------------------------------------------------


def test_bad_strategy_names_line_and_choices() -> None:
    problem = only_problem(
        """\
        port: 8317
        routing:
          strategy: rand
        """
    )
    assert str(problem) == (
        "config.yaml:3: routing.strategy: must be one of round-robin, fill-first, "
        "weighted-round-robin (got 'rand')"
    )


def test_missing_required_key_in_list_item() -> None:
    problem = only_problem(
        """\
        openai-compatibility:
          - name: ok
            base-url: https://a.example/v1
          - name: broken
            api-key-entries:
              - api-key: sk
        """
    )
    assert (problem.line, problem.key_path) == (4, "openai-compatibility[1].base-url")
    assert problem.message == "is required"


@pytest.mark.parametrize(
    ("text", "line", "key_path", "fragment"),
    [
        ("port: 0\n", 1, "port", "between 1 and 65535 (got 0)"),
        ("workers: 0\n", 1, "workers", "between 1 and 64 (got 0)"),
        ("workers: 65\n", 1, "workers", "between 1 and 64 (got 65)"),
        ("workers: x\n", 1, "workers", "whole number (got 'x')"),
        ("debug: false\nport: http\n", 2, "port", "whole number (got 'http')"),
        ("request-retry: -1\n", 1, "request-retry", "0 or more"),
        ("debug: maybe\n", 1, "debug", "true or false (got 'maybe')"),
        ("api-keys: {a: b}\n", 1, "api-keys", "must be a list (got a mapping)"),
        ("tls: true\n", 1, "tls", "must be a mapping of keys (got True)"),
        ("proxy-url: ftp://u:secret@h\n", 1, "proxy-url", "(got scheme 'ftp')"),
        ("proxy-url: DIRECT\nx: [1\ny: 2\n", 3, "", "flow sequence started on line 2"),
        (
            "gemini-api-key:\n  - api-key: k\n    base-url: generativelanguage.googleapis.com\n",
            3,
            "gemini-api-key[0].base-url",
            "http:// or https:// URL",
        ),
        (
            "claude-api-key:\n  - api-key: k\n    headers: [a]\n",
            3,
            "claude-api-key[0].headers",
            "must be a mapping of keys",
        ),
        (
            "codex-api-key:\n  - api-key: k\n    prefix: a/b\n",
            3,
            "codex-api-key[0].prefix",
            "without '/'",
        ),
        (
            "openai-compatibility:\n  - name: x\n    base-url: http://h\n"
            "    api-key-entries:\n      - api-key: k\n        proxy-url: gopher://p\n",
            6,
            "openai-compatibility[0].api-key-entries[0].proxy-url",
            "socks5://",
        ),
        (
            "claude-api-key:\n  - api-key: k\n    models:\n      - alias: a\n",
            4,
            "claude-api-key[0].models[0].name",
            "is required",
        ),
        ("request-body-limit-mb: 0\n", 1, "request-body-limit-mb", "at least 1"),
        ("upstream-timeout-seconds: 0\n", 1, "upstream-timeout-seconds", "greater than 0"),
    ],
)
def test_error_kinds(text: str, line: int, key_path: str, fragment: str) -> None:
    problem = only_problem(text)
    assert (problem.line, problem.key_path) == (line, key_path)
    assert fragment in problem.message
    assert "secret" not in str(problem)


def test_secret_values_are_not_echoed() -> None:
    problem = only_problem("claude-api-key:\n  - api-key: true\n")
    assert problem.key_path == "claude-api-key[0].api-key"
    assert problem.message == "must be a string (got a bool)"


def test_duplicate_yaml_key_is_a_syntax_error() -> None:
    problem = only_problem("port: 1\nport: 2\n")
    assert problem.line == 2 and "duplicate key" in problem.message


def test_top_level_must_be_a_mapping() -> None:
    assert "mapping of keys" in only_problem("- a\n- b\n").message


def test_several_problems_reported_in_file_order() -> None:
    problems = problems_of("routing:\n  strategy: x\nport: 70000\ndebug: 3\n")
    assert [p.key_path for p in problems] == ["routing.strategy", "port", "debug"]
    assert [p.line for p in problems] == [2, 3, 4]


def test_duplicate_provider_names_are_an_error() -> None:
    problem = only_problem(
        """\
        openai-compatibility:
          - name: Router
            base-url: https://a.example
          - name: router
            base-url: https://b.example
        """
    )
    assert (problem.line, problem.key_path) == (4, "openai-compatibility[1].name")
    assert "already used by openai-compatibility[0]" in problem.message


def test_tls_needs_existing_files(tmp_path: Path) -> None:
    path = write(tmp_path, "tls:\n  enable: true\n  cert: cert.pem\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:1: tls.key: is required when tls.enable is true",  # no key line: points at tls
        f"{path}:3: tls.cert: file not found: {tmp_path / 'cert.pem'}",
    ]

    (tmp_path / "cert.pem").write_text("c")
    (tmp_path / "key.pem").write_text("k")
    path.write_text("tls:\n  enable: true\n  cert: cert.pem\n  key: key.pem\n")
    cfg = load_config(path)
    assert cfg.tls.cert == str(tmp_path / "cert.pem")  # relative to the config file
    assert cfg.tls.key == str(tmp_path / "key.pem")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: config file not found"


# --- warnings --------------------------------------------------------------------------------


def test_unknown_keys_warn_with_line_and_suggestion() -> None:
    cfg = parse_config_text(
        "port: 8317\nrotuing:\n  strategy: fill-first\nrouting:\n  stratgy: x\n", "config.yaml"
    )
    assert cfg.warnings == [
        "config.yaml:2: rotuing: unknown key, ignored (did you mean 'routing'?)",
        "config.yaml:5: routing.stratgy: unknown key, ignored (did you mean 'strategy'?)",
    ]
    assert cfg.routing.strategy == "round-robin"


def test_alias_duplicates_warn() -> None:
    cfg = parse_config_text(
        textwrap.dedent(
            """\
            openai-compatibility:
              - name: pool
                base-url: http://h
                models:
                  - {name: a, alias: fast}
                  - {name: b, alias: fast}
                  - {name: a, alias: fast}
            """
        ),
        "c.yaml",
    )
    assert len(cfg.warnings) == 2
    assert cfg.warnings[0].startswith("c.yaml:6: openai-compatibility[0].models[1].alias:")
    assert "shared between the upstream models" in cfg.warnings[0]
    assert "repeats models[0]" in cfg.warnings[1]


def test_empty_provider_entries_are_skipped_with_warning() -> None:
    cfg = parse_config_text("gemini-api-key:\n  - api-key: ''\n  - api-key: k\n", "c")
    assert [key.api_key for key in cfg.gemini_api_key] == ["k"]
    assert cfg.warnings == ["c:2: gemini-api-key[0]: has no api-key or base-url; skipped"]


def test_only_empty_provider_entries_keep_demo_on() -> None:
    assert parse_config_text("claude-api-key:\n  - api-key: ''\n", "c").demo is True


# --- config check ------------------------------------------------------------------------------


def test_check_config_ok(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 9000\ncommercial-mode: true\ntypo-key: 1\n")
    status, lines = check_config(path)
    assert status == 0
    assert lines == [
        f"warning: {path}:3: typo-key: unknown key, ignored",
        f"not supported yet (ignored): {path}:2: commercial-mode",
        "layout: legacy layout",
        f"{path}: OK (1 warning, 1 not supported yet)",
    ]


def test_check_config_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 0\ntypo-key: 1\n")
    status, lines = check_config(path)
    assert status == 2
    assert lines == [
        f"{path}:1: port: must be between 1 and 65535 (got 0)",
        f"warning: {path}:2: typo-key: unknown key, ignored",
        f"{path}: 1 error, config not usable",
    ]


def test_check_config_missing_file(tmp_path: Path) -> None:
    status, lines = check_config(tmp_path / "missing.yaml")
    assert status == 2
    assert "config file not found" in lines[0]


def test_yaml_merge_keys_work() -> None:
    cfg = parse_config_text(
        textwrap.dedent(
            """\
            x-shared: &shared
              base-url: https://x.example/v1
              bogus: 1
            openai-compatibility:
              - <<: *shared
                name: a
            """
        ),
        "c",
    )
    assert cfg.openai_compatibility[0].base_url == "https://x.example/v1"
    assert "c:5: openai-compatibility[0].bogus: unknown key, ignored" in cfg.warnings


_FUZZ_KEYS = st.sampled_from(
    [
        "port", "tls", "api-keys", "models", "name", "alias", "base-url", "routing", "strategy",
        "openai-compatibility", "claude-api-key", "gemini-api-key", "api-key", "headers",
        "proxy-url", "api-key-entries", "api-keys", "auth", "providers", "enable", "cert",
        "generative-language-api-key", "demo", "host", "auth-dir", "prefix",
    ]
)  # fmt: skip
_FUZZ_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_FUZZ_KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_FUZZ_KEYS, _FUZZ_VALUES, max_size=5))
def test_any_shape_gives_config_or_config_error(data: dict[str, object]) -> None:
    # Whatever the shape, the result is a Config or a ConfigError: never a traceback.
    text = orjson.dumps(data).decode()
    try:
        parse_config_text(text, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, ConfigProblem) for p in exc.problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("request-retry: 0x7fffffffffffffffffff\n", "request-retry: number is too large"),
        ("max-retry-interval: 1e400\n", "max-retry-interval: must be a finite number"),
        ('proxy-url: "\\ud800"\n', "proxy-url: contains an unpaired surrogate escape"),
        ("debug: !!timestamp 2001-99-99\n", "a value cannot be read"),
        ("a: " + "[" * 2000 + "]" * 2000 + "\n", "nested too deeply"),
    ],
)
def test_values_no_setting_can_hold_are_config_errors(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "c.yaml")
    assert expected in str(caught.value)


def test_an_inline_merge_key_is_read() -> None:
    cfg = parse_config_text("<<: {debug: true}\nport: 9000\n", "c.yaml")
    assert cfg.debug is True and cfg.port == 9000
