"""The base of every config section and the field checks several sections share."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
PROXY_WORDS = ("direct", "none")


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class ConfigModel(BaseModel):
    """Base for every config section: YAML spelling, Python names, extra keys kept."""

    model_config = ConfigDict(
        alias_generator=_kebab,
        populate_by_name=True,
        extra="allow",
        coerce_numbers_to_str=True,  # Go's yaml decodes `- 12345` into a string field fine
    )
    # Keys CLIProxyAPI understands in this section that we parse but do not act on yet.
    cliproxyapi_keys: ClassVar[frozenset[str]] = frozenset()
    # Old spellings we still accept; each maps to a hint shown as a warning.
    legacy_keys: ClassVar[dict[str, str]] = {}


def check_http_url(value: str, *, required: bool) -> str:
    value = value.strip()
    if not value:
        if required:
            raise ValueError("is required (an http:// or https:// URL)")
        return value
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL (got {value!r})")
    return value


def check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
    return pattern


def check_proxy_url(value: str) -> str:
    value = value.strip()
    if not value or value.lower() in PROXY_WORDS:
        return value.lower()
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    # Proxy URLs often carry credentials, so only the scheme is echoed back.
    if scheme not in PROXY_SCHEMES:
        allowed = ", ".join(f"{s}://" for s in PROXY_SCHEMES)
        got = f"scheme {scheme!r}" if scheme else "no scheme"
        raise ValueError(f"must start with one of {allowed} or be 'direct'/'none' (got {got})")
    if not parts.hostname:
        raise ValueError("must name a proxy host")
    return value


def check_weight(value: int) -> int:
    # 0 is what a file that does not care writes (Go's zero value): the same as the default 1.
    if value < 0:
        raise ValueError(f"must be 0 or more (got {value})")
    return value or 1


def _clean_headers(value: Any) -> Any:
    # Same normalisation as CLIProxyAPI: trim names and values, drop empty pairs.
    if not isinstance(value, dict):
        return value
    clean: dict[str, Any] = {}
    for key, val in value.items():
        name = str(key).strip()
        text = str(val).strip() if isinstance(val, (str, int, float)) else val
        if name and text != "":
            clean[name] = text
    return clean


def _clean_prefix(value: str) -> str:
    prefix = value.strip().strip("/")
    if "/" in prefix:
        raise ValueError(f"must be a single path segment without '/' (got {value!r})")
    return prefix


# Field types shared by every entry that has them, so each section does not repeat validators.
Headers = Annotated[dict[str, str], BeforeValidator(_clean_headers)]
Prefix = Annotated[str, AfterValidator(_clean_prefix)]
