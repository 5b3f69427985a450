"""Typed configuration, shaped after CLIProxyAPI's config.yaml so existing files load unchanged.

Every model uses kebab-case aliases (the YAML spelling) and also accepts the Python field names.
Unmodelled keys are kept (``extra="allow"``); load.py classifies them as "known to CLIProxyAPI
but not supported yet" or "unknown" by walking the YAML tree against these models.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import known_keys
from .ampcode import AmpLegacyKeys
from .base import (
    ConfigModel,
    Headers,
    check_http_url,
    check_proxy_url,
)
from .client_identity import (
    AntigravityHeaderDefaults,
    ClaudeHeaderDefaults,
    CodexHeaderDefaults,
    GeminiCLIHeaderDefaults,
)
from .client_keys import ClientKey
from .durations import DEFAULT_AFFINITY_TTL_SECONDS, parse_duration
from .errors import ConfigProblem
from .model_fallbacks import check_fallbacks
from .payload import PayloadConfig
from .state_store import StateStoreConfig
from .upstreams import (
    ErrorRule,
    OAuthModelAlias,
    OpenAICompatibility,
    ProviderKey,
)
from .usage_database import check_usage_database, usage_database_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8317
DEFAULT_AUTH_DIR = "~/.cli-proxy-api"
ROUTING_STRATEGIES = ("round-robin", "fill-first", "weighted-round-robin")
# Spellings CLIProxyAPI's management API accepts for the same strategies.
_STRATEGY_SPELLINGS = {
    "": "round-robin",
    "round-robin": "round-robin",
    "roundrobin": "round-robin",
    "rr": "round-robin",
    "fill-first": "fill-first",
    "fillfirst": "fill-first",
    "ff": "fill-first",
    "weighted-round-robin": "weighted-round-robin",
    "weightedroundrobin": "weighted-round-robin",
    "wrr": "weighted-round-robin",
}
# CLIProxyAPI strategies we read but do not implement (none now; tree.py still consults it).
UNSUPPORTED_STRATEGIES: frozenset[str] = frozenset()


class TLSConfig(ConfigModel):
    enable: bool = False
    cert: str = ""
    key: str = ""


class RoutingConfig(ConfigModel):
    cliproxyapi_keys = known_keys.ROUTING_KEYS

    strategy: str = "round-robin"
    # Keep a conversation on the credential that served its previous turn (routing/affinity.py).
    session_affinity: bool = False
    # How long a binding lives after its last use: seconds or a Go duration ("1h", "30m").
    # 0 means the default hour, as in CLIProxyAPI.
    session_affinity_ttl: float = DEFAULT_AFFINITY_TTL_SECONDS
    # Subagent requests (a child session naming its parent) follow the parent's binding.
    session_affinity_subagents: bool = True

    @field_validator("session_affinity_ttl", mode="before")
    @classmethod
    def _affinity_ttl(cls, value: Any) -> float:
        seconds = parse_duration(value)
        return seconds or DEFAULT_AFFINITY_TTL_SECONDS

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        spelled = value.strip().lower()
        if spelled in _STRATEGY_SPELLINGS:
            return _STRATEGY_SPELLINGS[spelled]
        raise ValueError(f"must be one of {', '.join(ROUTING_STRATEGIES)} (got {value!r})")


class QuotaExceeded(ConfigModel):
    cliproxyapi_keys = known_keys.QUOTA_EXCEEDED_KEYS

    # Gemini accounts with several Cloud projects: try the next project on a quota 429.
    switch_project: bool = True
    # A quota 429 on a Gemini model: try its preview variant(s) before giving up.
    switch_preview_model: bool = True


class ChannelSettings(ConfigModel):
    """The `codex:` and `claude:` blocks: switches for one kind of subscription account."""

    cliproxyapi_keys = known_keys.CODEX_SETTINGS_KEYS

    # A rate limit rests only the model it hit (true) or the whole account (false). Absent:
    # what the vendor's limits are scoped to (routing/attempts.py rest_key; Codex plans limit
    # the account across models, Claude accounts are rested per model).
    model_level_cooling: bool | None = None


class RemoteManagement(ConfigModel):
    allow_remote: bool = False
    secret_key: str = Field(default="", repr=False)
    disable_control_panel: bool = False
    disable_auto_update_panel: bool = False
    panel_github_repository: str = ""
    # cliproxy extension: peers (CIDRs) whose X-Forwarded-For / X-Real-IP the management API
    # believes; from any other peer those headers are ignored and the socket address counts.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        clean = []
        for item in value:
            try:
                clean.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return clean


class OtelConfig(ConfigModel):
    """`otel:` (cliproxy extension): one OpenTelemetry span per request, exported over
    OTLP/HTTP, when `endpoint` is set and the `otel` extra is installed (docs/metrics.md)."""

    # The collector's OTLP/HTTP base URL (http://host:4318); /v1/traces is added unless the
    # URL already names a path ending in it.
    endpoint: str = ""
    service_name: str = "cliproxy"
    # Sent with every export (a hosted collector's API key, for instance).
    headers: Headers = Field(default_factory=dict, repr=False)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return check_http_url(value, required=False)

    @field_validator("service_name")
    @classmethod
    def _service_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty (the default is cliproxy)")
        return value

    @property
    def traces_url(self) -> str:
        base = self.endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


class ModelPrice(ConfigModel):
    """One `model-prices:` entry: USD per million tokens. `cached` (cache reads) defaults to
    `input`; reasoning tokens are output tokens and cost `output`."""

    input: float = 0.0
    output: float = 0.0
    cached: float | None = None

    @field_validator("input", "output", "cached")
    @classmethod
    def _price(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError(f"must be 0 or more (got {value})")
        return value


# More processes than this on one host is a mistake rather than a plan (each holds the whole
# app, its upstream connections and its watchers).
MAX_WORKERS = 64


class Config(AmpLegacyKeys):
    """The whole config file (the Amp fields come from config/ampcode.py). Build with load.load_config / parse_config_text / default_config."""

    cliproxyapi_keys = known_keys.TOP_LEVEL_KEYS
    legacy_keys = {
        "generative-language-api-key": "its keys are added to gemini-api-key",
        "auth": "api-keys of its config-api-key providers are added to api-keys",
    }

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # cliproxy's: processes serving the one port (serve.py's supervisor; docs/scaling.md).
    # Read at start: a reload that changes it is logged and waits for a restart.
    workers: int = 1
    tls: TLSConfig = Field(default_factory=TLSConfig)
    auth_dir: Path = Field(default_factory=lambda: Path(DEFAULT_AUTH_DIR).expanduser())
    api_keys: list[str] = Field(default_factory=list, repr=False)
    # Client keys with a name and a policy (config/client_keys.py), accepted like api-keys.
    client_keys: list[ClientKey] = Field(default_factory=list, repr=False)
    debug: bool = False
    proxy_url: str = ""
    request_retry: int = 3
    # Credentials tried per request at most (0 = all of them).
    max_retry_credentials: int = 0
    # Longest wait (seconds) for a cooling credential to come back before answering 429;
    # 0 or less never waits.
    max_retry_interval: float = 30.0
    force_model_prefix: bool = False
    disable_cooling: bool = False
    # GET /v1/ws (AI Studio Build relays): true requires a client key; false admits only
    # loopback peers from allowed browser origins (server/aistudio_ws.py).
    ws_auth: bool = False
    save_cooldown_status: bool = False
    # CLIProxyAPI's meaning: 0 = its legacy 60 s, negative = never cool on transient errors.
    # Absent, cliproxy rests 5 s.
    transient_error_cooldown_seconds: float = 5.0
    quota_exceeded: QuotaExceeded = Field(default_factory=QuotaExceeded)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    # Per OAuth channel (auth-file type: codex, claude, gemini, ...).
    oauth_model_alias: dict[str, list[OAuthModelAlias]] = Field(default_factory=dict)
    oauth_excluded_models: dict[str, list[str]] = Field(default_factory=dict)
    oauth_request_scoped_errors: dict[str, list[ErrorRule]] = Field(default_factory=dict)
    payload: PayloadConfig = Field(default_factory=PayloadConfig)
    claude_header_defaults: ClaudeHeaderDefaults = Field(default_factory=ClaudeHeaderDefaults)
    # Never send a Claude-account request that would draw from the plan's extra usage.
    claude_plan_limits_only: bool = False
    codex_header_defaults: CodexHeaderDefaults = Field(default_factory=CodexHeaderDefaults)
    codex: ChannelSettings = Field(default_factory=ChannelSettings)
    claude: ChannelSettings = Field(default_factory=ChannelSettings)
    remote_management: RemoteManagement = Field(default_factory=RemoteManagement)
    gemini_api_key: list[ProviderKey] = Field(default_factory=list)
    claude_api_key: list[ProviderKey] = Field(default_factory=list)
    codex_api_key: list[ProviderKey] = Field(default_factory=list)
    # Vertex AI (or a Vertex-compatible gateway) with an API key: `models` name the upstream
    # models and their aliases (providers/vertex.py).
    vertex_api_key: list[ProviderKey] = Field(default_factory=list)
    xai_api_key: list[ProviderKey] = Field(default_factory=list)
    openai_compatibility: list[OpenAICompatibility] = Field(default_factory=list)
    # cliproxy extensions (not in CLIProxyAPI):
    request_body_limit_mb: int = 32
    upstream_timeout_seconds: float = 600.0
    rate_limit_cooldown_seconds: float = 60.0  # a 429 that carries no reset hint
    max_cooldown_seconds: float = 6 * 3600.0  # cap on any reset hint
    demo: bool = False  # resolved in _resolve_demo when the file does not say
    gemini_cli_header_defaults: GeminiCLIHeaderDefaults = Field(
        default_factory=GeminiCLIHeaderDefaults
    )
    antigravity_header_defaults: AntigravityHeaderDefaults = Field(
        default_factory=AntigravityHeaderDefaults
    )
    # Browsers (server/browser.py): web origins besides this machine's that may call the LLM
    # routes ("*" only with api-keys), and Host names besides loopback and `host` accepted while
    # no api-keys are set (a DNS-rebinding page arrives with its own name as Host).
    cors_allowed_origins: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(default_factory=list)
    # Connections (server/listener.py): how long a client may take to send its request headers
    # and its body, how long an idle keep-alive connection stays open, and how many
    # connections and requests are served at once (more get 503).
    # Accounts used within this many hours are refreshed in the background ahead of expiry;
    # others when a request is about to use them (0: only on use).
    background_refresh_hours: float = 24.0
    # How often, at most, an account in use has its quota windows read from its vendor.
    quota_refresh_seconds: float = 300.0
    header_read_timeout_seconds: float = 10.0
    body_read_timeout_seconds: float = 60.0
    keep_alive_timeout_seconds: int = 30
    max_connections: int = 1000
    # CLIProxyAPI's: the main log also goes to logs/main.log, rotated; the log files together
    # stay under logs-max-total-size-mb (0: no total cap, each file rotated at 10 MB).
    logging_to_file: bool = False
    logs_max_total_size_mb: int = 0
    # Request logs (docs/logs.md): one file per generation request in the log directory; when
    # false, only failed requests are written (error-*.log), the newest error-logs-max-files
    # kept (0: no count cap). Both count towards logs-max-total-size-mb.
    request_log: bool = False
    error_logs_max_files: int = 10
    otel: OtelConfig = Field(default_factory=OtelConfig)
    # cliproxy's: where cooldowns, rotation counters and session bindings live (memory unless
    # state-store.redis-url is set; docs/scaling.md). Read at start: a reload does not move it.
    state_store: StateStoreConfig = Field(default_factory=StateStoreConfig)

    # The usage ledger (usage/ledger.py): CLIProxyAPI's switch (on unless the file says false),
    # where it lives ("" = <auth-dir>/usage.sqlite; a path, a sqlite:// or a postgresql:// URL:
    # config/usage_database.py), how many days of records are kept, and per-model price
    # overrides (USD per million tokens).
    usage_statistics_enabled: bool = True
    usage_database: str = ""
    usage_retention_days: int = 90
    # cliproxy's: GET /metrics and the Prometheus observer behind it (off: no per-request work
    # for metrics, and /metrics answers 404).
    metrics_enabled: bool = True
    model_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # cliproxy's: the models to try when every credential of a model failed (model_fallbacks.py).
    model_fallbacks: dict[str, list[str]] = Field(default_factory=dict)

    _warnings: list[str] = PrivateAttr(default_factory=list)
    _unsupported: list[tuple[str, int | None]] = PrivateAttr(default_factory=list)
    _warning_problems: list[ConfigProblem] = PrivateAttr(default_factory=list)
    _demo_explicit: bool = PrivateAttr(default=False)
    # The file's layout (config/v8_layout.py): "legacy", "v8" or "mixed".
    _layout: str = PrivateAttr(default="legacy")

    @field_validator("model_fallbacks")
    @classmethod
    def _fallbacks(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return check_fallbacks(value)

    @model_validator(mode="before")
    @classmethod
    def _merge_legacy_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        # The legacy sections are consumed here (not kept as extras) so their secrets don't
        # linger in repr() output; load.py still warns about them from the YAML tree.
        legacy_gemini = merged.pop("generative-language-api-key", None)
        if isinstance(legacy_gemini, list):
            current = merged.get("gemini-api-key")
            gemini = list(current) if isinstance(current, list) else []
            gemini.extend({"api-key": k} for k in legacy_gemini if isinstance(k, str))
            merged["gemini-api-key"] = gemini
        auth = merged.pop("auth", None)
        if isinstance(auth, dict) and isinstance(auth.get("providers"), list):
            current_keys = merged.get("api-keys")
            keys = list(current_keys) if isinstance(current_keys, list) else []
            for provider in auth["providers"]:
                if isinstance(provider, dict) and isinstance(provider.get("api-keys"), list):
                    for key in provider["api-keys"]:
                        if key not in keys:
                            keys.append(key)
            merged["api-keys"] = keys
        return merged

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        # CLIProxyAPI reads an empty host as "every interface".
        return value.strip() or "0.0.0.0"

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError(f"must be between 1 and 65535 (got {value})")
        return value

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int) -> int:
        if not 1 <= value <= MAX_WORKERS:
            raise ValueError(f"must be between 1 and {MAX_WORKERS} (got {value})")
        return value

    @field_validator("auth_dir", mode="before")
    @classmethod
    def _auth_dir(cls, value: Any) -> Any:
        if isinstance(value, str):
            return Path(value.strip() or DEFAULT_AUTH_DIR).expanduser()
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: list[str]) -> list[str]:
        return [key.strip() for key in value if key.strip()]

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, value: str) -> str:
        return check_proxy_url(value)

    @field_validator("request_retry")
    @classmethod
    def _request_retry(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"must be 0 or more (got {value})")
        return value

    @field_validator("request_body_limit_mb")
    @classmethod
    def _body_limit(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1 (got {value})")
        return value

    @field_validator("transient_error_cooldown_seconds")
    @classmethod
    def _transient(cls, value: float) -> float:
        # CLIProxyAPI: 0 keeps its legacy 60 s rest and a negative value turns it off (-1).
        if value == 0:
            return 60.0
        return -1.0 if value < 0 else value

    @field_validator("max_retry_credentials")
    @classmethod
    def _max_credentials(cls, value: int) -> int:
        return max(value, 0)

    @field_validator("oauth_excluded_models")
    @classmethod
    def _oauth_excluded(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        clean: dict[str, list[str]] = {}
        for channel, patterns in value.items():
            seen = dict.fromkeys(p.strip().lower() for p in patterns if p.strip())
            clean[channel.strip().lower()] = list(seen)
        return clean

    @field_validator(
        "rate_limit_cooldown_seconds", "max_cooldown_seconds", "background_refresh_hours"
    )
    @classmethod
    def _cooldown(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"must be 0 or more (got {value})")
        return value

    @field_validator("cors_allowed_origins")
    @classmethod
    def _cors_origins(cls, value: list[str], info: ValidationInfo) -> list[str]:
        origins = [origin.strip().rstrip("/") for origin in value if origin.strip()]
        if "*" in origins and not (info.data.get("api_keys") or info.data.get("client_keys")):
            raise ValueError(
                '"*" lets every web page the user opens use the proxy; it is accepted only '
                "together with api-keys (or list the origins that may call it)"
            )
        for origin in origins:
            if origin != "*" and "://" not in origin:
                raise ValueError(
                    f"{origin!r} is not an origin; write scheme://host[:port], "
                    "e.g. https://chat.example.com or http://*.example.com"
                )
        return origins

    @field_validator("logs_max_total_size_mb")
    @classmethod
    def _logs_cap(cls, value: int) -> int:
        return max(value, 0)  # CLIProxyAPI stores a negative cap as 0 (no cap)

    @field_validator("error_logs_max_files")
    @classmethod
    def _error_logs_cap(cls, value: int) -> int:
        return value if value >= 0 else 10  # CLIProxyAPI's: a negative count is the default

    @field_validator("allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, value: list[str]) -> list[str]:
        return [host.strip().lower() for host in value if host.strip()]

    @field_validator("usage_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1 day (got {value})")
        return value

    @field_validator("usage_database")
    @classmethod
    def _usage_database(cls, value: str) -> str:
        return check_usage_database(value)

    @field_validator("max_connections", "keep_alive_timeout_seconds")
    @classmethod
    def _positive_count(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1 (got {value})")
        return value

    @field_validator(
        "upstream_timeout_seconds",
        "header_read_timeout_seconds",
        "body_read_timeout_seconds",
        "quota_refresh_seconds",
    )
    @classmethod
    def _timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"must be greater than 0 (got {value})")
        return value

    @model_validator(mode="after")
    def _resolve_demo(self) -> Config:
        self._demo_explicit = "demo" in self.model_fields_set
        if not self._demo_explicit:
            self.demo = not self.has_providers()
        return self

    # --- derived views -------------------------------------------------------------------

    def has_providers(self) -> bool:
        """True when the file configures at least one upstream credential we can use."""
        return bool(
            self.gemini_api_key
            or self.claude_api_key
            or self.codex_api_key
            or any(entry.api_key for entry in self.vertex_api_key)
            or self.xai_api_key
            or any(not provider.disabled for provider in self.openai_compatibility)
        )

    @property
    def demo_explicit(self) -> bool:
        """True when the file set `demo:` itself (otherwise it follows has_providers())."""
        return self._demo_explicit

    @property
    def warnings(self) -> list[str]:
        """Non-fatal findings with file:line (unknown keys, legacy spellings, duplicates)."""
        return list(self._warnings)

    def unsupported_keys(self) -> list[str]:
        """Dotted paths of CLIProxyAPI keys present in the file that cliproxy ignores for now."""
        return [path for path, _line in self._unsupported]

    def unsupported_key_lines(self) -> list[tuple[str, int | None]]:
        """Like unsupported_keys() with the 1-based line of each key (None when unknown)."""
        return list(self._unsupported)

    def warning_problems(self) -> list[ConfigProblem]:
        """The warnings as problems (line, key path, message), for callers that place them."""
        return list(self._warning_problems)

    def set_findings(
        self,
        warnings: list[str],
        unsupported: list[tuple[str, int | None]],
        problems: Sequence[ConfigProblem] = (),
        layout: str = "legacy",
    ) -> None:
        """Used by the loader to attach what it found while reading the file."""
        self._warnings = list(warnings)
        self._unsupported = list(unsupported)
        self._warning_problems = list(problems)
        self._layout = layout

    @property
    def layout(self) -> str:
        """How the file was written: "legacy", "v8" (config-version 8 paths) or "mixed"."""
        return self._layout

    @property
    def client_key_values(self) -> list[str]:
        """Every key a client may present: api-keys, then those of client-keys."""
        return list(dict.fromkeys([*self.api_keys, *(entry.key for entry in self.client_keys)]))

    @property
    def usage_database_url(self) -> str:
        """The ledger's SQLAlchemy async URL (config/usage_database.py)."""
        return usage_database_url(self.usage_database, self.auth_dir)

    @property
    def request_body_limit_bytes(self) -> int:
        return self.request_body_limit_mb * 1024 * 1024
