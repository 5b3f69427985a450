"""Config entries for upstream credentials: the API-key sections (`gemini-api-key`,
`claude-api-key`, `codex-api-key`), `openai-compatibility` providers, their model aliases and
request-scoped error rules. The top-level Config (schema.py) holds lists of these."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from . import known_keys
from .base import (
    ConfigModel,
    Headers,
    Prefix,
    check_http_url,
    check_proxy_url,
    check_regex,
    check_weight,
)


class ModelAlias(ConfigModel):
    """One `models:` item: upstream model `name`, client-visible `alias` (empty = same name)."""

    cliproxyapi_keys = known_keys.MODEL_ENTRY_KEYS

    name: str
    alias: str = ""

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("alias")
    @classmethod
    def _strip_alias(cls, value: str) -> str:
        return value.strip()

    @property
    def client_name(self) -> str:
        """The model id clients ask for."""
        return self.alias or self.name


class OAuthModelAlias(ModelAlias):
    """One `oauth-model-alias.<channel>` item. ``fork`` keeps the upstream name listed and
    routable beside the alias; without it the alias replaces the name."""

    fork: bool = False


ERROR_ACTIONS = ("stop", "stop-and-cooldown", "continue", "continue-and-cooldown")


class ErrorRule(ConfigModel):
    """One `request-scoped-errors` rule: an upstream error with this status whose body contains
    one of ``match`` or matches one of ``match-regexr`` (no patterns = any body) gets ``action``
    instead of the default handling."""

    status: int
    match: list[str] = Field(default_factory=list)
    match_regexr: list[str] = Field(default_factory=list)
    action: str

    @field_validator("action")
    @classmethod
    def _action(cls, value: str) -> str:
        spelled = value.strip().lower()
        if spelled not in ERROR_ACTIONS:
            raise ValueError(f"must be one of {', '.join(ERROR_ACTIONS)} (got {value!r})")
        return spelled

    @field_validator("match_regexr")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        return [check_regex(pattern) for pattern in value]

    @field_validator("status")
    @classmethod
    def _status(cls, value: int) -> int:
        if not 100 <= value <= 599:
            raise ValueError(f"must be an HTTP status between 100 and 599 (got {value})")
        return value


class _KeyEntry(ConfigModel):
    """What every credential entry has: a key (a bare string is accepted, as older configs
    wrote them), its own proxy and a weight for weighted-round-robin."""

    api_key: str = Field(default="", repr=False)
    proxy_url: str = ""
    weight: int = 1

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: int) -> int:
        return check_weight(value)

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_key(cls, data: Any) -> Any:
        # Older configs listed keys as plain strings.
        return {"api-key": data} if isinstance(data, str) else data

    @field_validator("api_key")
    @classmethod
    def _strip_key(cls, value: str) -> str:
        return value.strip()

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, value: str) -> str:
        return check_proxy_url(value)


class ProviderKey(_KeyEntry):
    """One entry of gemini-api-key / claude-api-key / codex-api-key."""

    cliproxyapi_keys = known_keys.PROVIDER_KEY_ENTRY_KEYS

    base_url: str = ""
    headers: Headers = Field(default_factory=dict)
    prefix: Prefix = ""
    models: list[ModelAlias] = Field(default_factory=list)
    excluded_models: list[str] = Field(default_factory=list)
    priority: int = 0
    # None = follow the global setting; true/false override it for this entry.
    disable_cooling: bool | None = None
    # None (or negative, as CLIProxyAPI writes "inherit") = the global request-retry.
    request_retry: int | None = None
    request_scoped_errors: list[ErrorRule] = Field(default_factory=list)

    @field_validator("request_retry")
    @classmethod
    def _request_retry(cls, value: int | None) -> int | None:
        return None if value is None or value < 0 else value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_http_url(value, required=False)

    @field_validator("excluded_models")
    @classmethod
    def _excluded(cls, value: list[str]) -> list[str]:
        # CLIProxyAPI matches exclusions case-insensitively: trim, lowercase, dedupe.
        seen: dict[str, None] = {}
        for item in value:
            if item.strip():
                seen.setdefault(item.strip().lower(), None)
        return list(seen)

    @property
    def is_empty(self) -> bool:
        return not self.api_key and not self.base_url


class OpenAIKeyEntry(_KeyEntry):
    """One `api-key-entries:` item of an openai-compatibility provider."""

    cliproxyapi_keys = known_keys.OPENAI_KEY_ENTRY_KEYS

    # cliproxy extension: CLIProxyAPI sets priority on the provider only; an entry's own
    # priority wins over the provider's when set.
    priority: int | None = None


class OpenAICompatibility(ConfigModel):
    """One `openai-compatibility:` provider (any OpenAI Chat Completions compatible upstream)."""

    cliproxyapi_keys = known_keys.OPENAI_PROVIDER_KEYS
    legacy_keys = {"api-keys": "use api-key-entries: [{api-key: ...}]"}

    name: str
    base_url: str
    prefix: Prefix = ""
    disabled: bool = False
    priority: int = 0
    disable_cooling: bool | None = None
    request_retry: int | None = None
    request_scoped_errors: list[ErrorRule] = Field(default_factory=list)
    headers: Headers = Field(default_factory=dict)
    api_key_entries: list[OpenAIKeyEntry] = Field(default_factory=list)
    models: list[ModelAlias] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _merge_legacy_api_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("api-keys"), list):
            return data
        merged = dict(data)
        entries = list(merged.get("api-key-entries") or [])
        entries.extend({"api-key": key} for key in merged.pop("api-keys") if isinstance(key, str))
        merged["api-key-entries"] = entries
        return merged

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("request_retry")
    @classmethod
    def _request_retry(cls, value: int | None) -> int | None:
        return None if value is None or value < 0 else value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_http_url(value, required=True)
