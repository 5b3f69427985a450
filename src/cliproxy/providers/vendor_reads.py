"""What a subscription account's vendor says about it: the models it serves and its quota
windows. A provider supplies the requests and reads the replies (as data, no I/O here);
server/account_watch.py sends them, for the accounts in use, every few minutes at most.

Model lists replace the built-in table in /v1/models once read (retired models disappear with
the vendor's list). Quota windows end a cooldown as soon as the vendor shows its window reset,
and they are what the management API's quota view and `cliproxy accounts` show.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cliproxy.providers.base import Credential, UpstreamRequest


@dataclass(frozen=True, slots=True)
class QuotaWindow:
    """One limit window as the vendor reports it."""

    name: str  # e.g. "five_hour", "primary", or a Gemini model id
    used_percent: float | None
    resets_at: float | None  # epoch seconds

    def exhausted(self, now: float) -> bool:
        return (
            self.used_percent is not None
            and self.used_percent >= 100
            and (self.resets_at is None or self.resets_at > now)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "used_percent": self.used_percent,
            "resets_at": self.resets_at,
        }


@dataclass(frozen=True, slots=True)
class QuotaReading:
    windows: tuple[QuotaWindow, ...]
    read_at: float

    def exhausted(self, now: float | None = None) -> bool:
        """True while any window is used up and not yet reset."""
        moment = time.time() if now is None else now
        return any(window.exhausted(moment) for window in self.windows)

    def to_json(self) -> dict[str, Any]:
        return {"windows": [w.to_json() for w in self.windows], "read_at": self.read_at}


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def epoch(value: object) -> float | None:
    """Epoch seconds from a number or an RFC 3339 string (what the vendors' usage APIs send)."""
    if isinstance(value, str) and value and not value.replace(".", "", 1).isdigit():
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return number(value)


class VendorReads:
    """Mixin for account providers: the requests, the readers, and what was read per account."""

    def __init__(self) -> None:
        self._catalogs: dict[str, list[str]] = {}
        self._quotas: dict[str, QuotaReading] = {}

    # ----- what a provider supplies (None: the vendor offers no such read) ---------------------

    def models_request(self, credential: Credential) -> UpstreamRequest | None:
        return None

    def read_models(self, data: Any) -> list[str] | None:
        return None

    def quota_request(self, credential: Credential) -> UpstreamRequest | None:
        return None

    def read_quota(self, data: Any, now: float) -> QuotaReading | None:
        return None

    # ----- what was read ---------------------------------------------------------------------

    def remember_models(self, credential_id: str, models: list[str]) -> bool:
        """Keep an account's model list; True when it changed (the registry then rebuilds)."""
        if self._catalogs.get(credential_id) == models:
            return False
        self._catalogs[credential_id] = list(models)
        return True

    def catalog(self, credential_id: str) -> list[str] | None:
        return self._catalogs.get(credential_id)

    def remember_quota(self, credential_id: str, reading: QuotaReading) -> None:
        self._quotas[credential_id] = reading

    def quota(self, credential_id: str) -> QuotaReading | None:
        return self._quotas.get(credential_id)

    def quotas(self) -> Mapping[str, QuotaReading]:
        return dict(self._quotas)
