"""`state-store:` (cliproxy extension): where the pool's state lives (docs/scaling.md).

Unset, cooldowns, rotation counters, session bindings, client-keys counts, management lockouts
and OAuth login states stay in the process, as they always have. With `redis-url`, several
cliproxy processes share them through one Redis.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import field_validator

from .base import ConfigModel

REDIS_SCHEMES = ("redis", "rediss")


class StateStoreConfig(ConfigModel):
    # redis://[user:password@]host[:port][/db] or rediss:// for TLS; "" keeps state in memory.
    redis_url: str = ""
    # Put in front of every key and of the pub/sub channel, so gateways (or tests) sharing one
    # Redis do not see each other's state.
    key_prefix: str = "cliproxy:"

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        parts = urlsplit(value)
        scheme = parts.scheme.lower()
        # The URL may hold a password, so only its scheme is echoed back.
        if scheme not in REDIS_SCHEMES:
            got = f"scheme {scheme!r}" if scheme else "no scheme"
            raise ValueError(f"must be a redis:// or rediss:// URL (got {got})")
        check_address(parts, "must name a Redis host")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _key_prefix(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty (the default is cliproxy:)")
        return value

    @property
    def shared(self) -> bool:
        return bool(self.redis_url)


def check_address(parts: SplitResult, no_host: str) -> None:
    """A server URL's host and port, or ValueError (``no_host`` when it names no host)."""
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("has a port that is not a number") from None
    if not parts.hostname:
        raise ValueError(no_host)


def masked_url(url: str) -> str:
    """The URL with any password replaced, fit for logs and the banner."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))
