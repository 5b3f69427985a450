"""Durations as config values: a number of seconds or a Go duration string ("1h30m").

CLIProxyAPI's Go config writes durations the Go way; this sits at the bottom with the rest of
the config so the schema needs nothing from the layers above it.
"""

from __future__ import annotations

import re
from typing import Any

# How long a session stays bound to the credential that served it (routing.session-affinity-ttl).
DEFAULT_AFFINITY_TTL_SECONDS = 3600.0


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a Go duration string ("1h", "30m", "1h30m",
    "90s", "500ms"); a bare number in a string counts as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as '1h' or a number of seconds (got {value})")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_go_duration(value.strip())
    else:
        raise ValueError(f"must be a duration such as '1h' or a number of seconds (got {value!r})")
    if seconds < 0:
        raise ValueError(f"must not be negative (got {value!r})")
    return seconds


_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def _parse_go_duration(text: str) -> float:
    if _NUMBER.fullmatch(text):
        return float(text)
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    position, total = 0, 0.0
    while position < len(body):
        part = _DURATION_PART.match(body, position)
        if part is None:
            break
        total += float(part.group(1)) * _UNITS[part.group(2)]
        position = part.end()
    if not body or position != len(body):
        raise ValueError(
            f"must be a duration such as '1h', '30m' or '1h30m', or a number of seconds "
            f"(got {text!r})"
        )
    return sign * total
