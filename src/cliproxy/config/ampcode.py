"""The `ampcode:` block (the Amp CLI integration, docs/amp.md) and its legacy top-level
spellings (`amp-upstream-url`, `amp-upstream-api-key`, `amp-model-mappings`,
`amp-restrict-management-to-localhost`), which older CLIProxyAPI files still carry.

The integration is on when the file has an `ampcode:` block (even `ampcode: {}`) or any legacy
key: a file that never mentions Amp keeps `/api/provider/...` answering 404 for models nobody
here serves, and never sends a request to ampcode.com.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from .base import ConfigModel, check_http_url, check_regex

DEFAULT_UPSTREAM_URL = "https://ampcode.com"


class AmpUpstreamKey(ConfigModel):
    """One `upstream-api-keys` entry: the Amp key sent upstream for these client keys."""

    upstream_api_key: str = Field(repr=False)
    api_keys: list[str] = Field(default_factory=list, repr=False)

    @field_validator("upstream_api_key")
    @classmethod
    def _key(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("is required (the Amp key sent upstream for these api-keys)")
        return value

    @field_validator("api_keys")
    @classmethod
    def _clients(cls, value: list[str]) -> list[str]:
        return [key.strip() for key in value if key.strip()]


class AmpModelMapping(ConfigModel):
    """`{from, to}`: a model Amp asks for, served as another one. `from` is an exact name or,
    when it holds regex characters, a pattern matched against the whole name."""

    regex: bool = False
    from_: str = Field(alias="from")
    to: str

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty (the model name Amp asks for)")
        if info.data.get("regex") or _looks_like_regex(value):
            check_regex(value)
        return value

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty (a model served here)")
        return value

    def matches(self, model: str) -> bool:
        if self.from_.lower() == model.lower():
            return True
        if not (self.regex or _looks_like_regex(self.from_)):
            return False
        try:
            return re.fullmatch(self.from_, model, flags=re.IGNORECASE) is not None
        except re.error:
            return False


_REGEX_CHARS = frozenset("*+?[](){}|^$\\")


def _looks_like_regex(text: str) -> bool:
    return any(char in _REGEX_CHARS for char in text)


class AmpCode(ConfigModel):
    upstream_url: str = DEFAULT_UPSTREAM_URL
    upstream_api_key: str = Field(default="", repr=False)
    upstream_api_keys: list[AmpUpstreamKey] = Field(default_factory=list, repr=False)
    model_mappings: list[AmpModelMapping] = Field(default_factory=list)
    # Mappings win over a local credential serving the asked-for model itself.
    force_model_mappings: bool = False
    # The control-plane proxy (/api/threads, /auth, ...) answers loopback clients only.
    restrict_management_to_localhost: bool = False

    @field_validator("upstream_url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        if isinstance(value, str):
            return check_http_url(value, required=False).rstrip("/") or DEFAULT_UPSTREAM_URL
        return value

    @field_validator("upstream_api_key")
    @classmethod
    def _api_key(cls, value: str) -> str:
        return value.strip()

    def mapping_for(self, model: str) -> AmpModelMapping | None:
        return next((m for m in self.model_mappings if m.matches(model)), None)


class AmpLegacyKeys(ConfigModel):
    """Config's legacy Amp fields, kept as fields (not merged before validation) so that a bad
    value is reported under the key the file wrote. `ampcode:` wins where both say something."""

    amp_upstream_url: str | None = None
    amp_upstream_api_key: str | None = Field(default=None, repr=False)
    amp_model_mappings: list[AmpModelMapping] | None = None
    amp_restrict_management_to_localhost: bool | None = None
    ampcode: AmpCode | None = None

    @field_validator("amp_upstream_url")
    @classmethod
    def _legacy_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value, required=False)

    @property
    def amp(self) -> AmpCode | None:
        """The effective Amp settings, or None when the file does not turn Amp on."""
        legacy = {
            "upstream_url": self.amp_upstream_url or None,
            "upstream_api_key": self.amp_upstream_api_key,
            "model_mappings": self.amp_model_mappings,
            "restrict_management_to_localhost": self.amp_restrict_management_to_localhost,
        }
        given = {name: value for name, value in legacy.items() if value is not None}
        if self.ampcode is None and not given:
            return None
        block = self.ampcode or AmpCode()
        filled = {name: v for name, v in given.items() if name not in block.model_fields_set}
        return block.model_copy(update=filled) if filled else block
