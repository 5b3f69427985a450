"""`client-keys`: client keys with a name and a policy (models they may use, and limits).

A key in this list is accepted like one in `api-keys`; its `name` stands for it in logs, the
usage ledger and the management lists. Absent limits do not limit. The server enforces them in
server/key_policy.py.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from .base import ConfigModel


class ClientKey(ConfigModel):
    """One `client-keys` entry."""

    key: str = Field(repr=False)
    name: str
    # `*` wildcards on the model name as the client sends it, case-insensitive; None = every.
    allowed_models: list[str] | None = None
    requests_per_minute: int | None = None
    tokens_per_day: int | None = None
    max_budget_usd_per_month: float | None = None
    max_concurrent_requests: int | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty (the key clients present)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty (it stands for the key in logs and usage)")
        return value

    @field_validator("allowed_models")
    @classmethod
    def _models(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return list(dict.fromkeys(pattern.strip() for pattern in value if pattern.strip()))

    @field_validator("requests_per_minute", "tokens_per_day", "max_concurrent_requests")
    @classmethod
    def _count(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"must be at least 1, or left out for no limit (got {value})")
        return value

    @field_validator("max_budget_usd_per_month")
    @classmethod
    def _budget(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError(f"must be 0 or more, or left out for no limit (got {value})")
        return value

    def allows(self, model: str) -> bool:
        """True when the key may use ``model`` (the name as the client sent it)."""
        if self.allowed_models is None:
            return True
        return any(_wildcard(pattern).fullmatch(model) for pattern in self.allowed_models)


_COMPILED: dict[str, re.Pattern[str]] = {}


def _wildcard(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters, the rest literally, ignoring case."""
    found = _COMPILED.get(pattern)
    if found is None:
        body = ".*".join(re.escape(piece) for piece in pattern.split("*"))
        found = re.compile(body, re.IGNORECASE | re.DOTALL)
        if len(_COMPILED) < 4096:
            _COMPILED[pattern] = found
    return found
