"""Small helpers the subscription-account providers (codex, claude, gemini_cli) share."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def client_header(headers: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` the client sent with a non-blank value (names are lower-case)."""
    for name in names:
        value = headers.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


def merge_csv(*groups: Iterable[str] | str | None) -> str:
    """Comma-separated values from every group, in order, each once (e.g. anthropic-beta)."""
    seen: dict[str, None] = {}
    for group in groups:
        if group is None:
            continue
        values = group.split(",") if isinstance(group, str) else group
        for value in values:
            value = value.strip()
            if value:
                seen.setdefault(value, None)
    return ",".join(seen)


def header_float(headers: Mapping[str, str], name: str) -> float | None:
    """A numeric response header, or None when it is absent or not a finite number."""
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
