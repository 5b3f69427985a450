"""Reading each subscription account's model list and quota windows from its vendor.

The providers say what to ask and how to read it (providers/vendor_reads.py); this loop asks,
politely: a model list once per account and again every few hours, quota windows only for the
accounts in use (used lately, or resting after a limit) and at most every ``interval`` seconds
each. When the vendor shows an account's windows have reset, its rate-limit rests end at once
instead of waiting out a reset hint that outlives the real reset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from cliproxy.auth.records import AccountState, AuthRecord
from cliproxy.model import ProxyError
from cliproxy.providers.base import Credential, UpstreamRequest
from cliproxy.providers.vendor_reads import VendorReads
from cliproxy.routing.build import account_base_url
from cliproxy.routing.cooldown import RATE_LIMIT
from cliproxy.server.periodic import Periodic

if TYPE_CHECKING:
    from cliproxy.state import AppState

log = logging.getLogger(__name__)

READ_TIMEOUT = 20.0


class AccountWatch(Periodic):
    what = "reading accounts from their vendors"

    def __init__(
        self, state: AppState, *, interval: float = 300.0, catalog_interval: float = 6 * 3600.0
    ) -> None:
        super().__init__()
        self.state = state
        self.interval = interval  # per account, for quota reads
        self.catalog_interval = catalog_interval
        self._quota_read_at: dict[str, float] = {}
        self._catalog_read_at: dict[str, float] = {}

    def pause(self) -> float:
        return min(self.interval, 60.0)

    async def pass_once(self, *, force: bool = False) -> None:
        """One look at every account; ``force`` ignores the intervals (tests, the CLI)."""
        now = time.monotonic()
        reads: list[Coroutine[Any, Any, bool]] = []
        for record in self._accounts():
            provider = self.state.account_providers.get(record.type)
            if not isinstance(provider, VendorReads):
                continue
            credential = record.credential(account_base_url(record))
            if force or now - self._catalog_read_at.get(record.id, -1e18) >= self.catalog_interval:
                self._catalog_read_at[record.id] = now
                reads.append(self._read_models(provider, record, credential))
            due = force or now - self._quota_read_at.get(record.id, -1e18) >= self.interval
            if due and (force or self._in_use(record.id)):
                self._quota_read_at[record.id] = now
                reads.append(self._read_quota(provider, record, credential))
        changed = await asyncio.gather(*reads)
        if any(changed):
            self.state.rebuild()

    def _accounts(self) -> list[AuthRecord]:
        store = self.state.auth_store
        return [
            record
            for record in store.records()
            if not record.disabled
            and record.access_token
            and not record.expires_within(0)
            and store.status(record).state is not AccountState.NEEDS_LOGIN
        ]

    def _in_use(self, record_id: str) -> bool:
        if self.state.refresher.used_lately(record_id):
            return True
        return any(c.credential_id == record_id for c in self.state.cooldowns.snapshot())

    async def _read_models(
        self, provider: VendorReads, record: AuthRecord, credential: Credential
    ) -> bool:
        request = provider.models_request(credential)
        data = await self._get(request, record) if request is not None else None
        models = provider.read_models(data) if data is not None else None
        if models is None:
            return False
        changed = provider.remember_models(record.id, models)
        if changed:
            log.info("%s: the vendor lists %d models", record.id, len(models))
        return changed

    async def _read_quota(
        self, provider: VendorReads, record: AuthRecord, credential: Credential
    ) -> bool:
        request = provider.quota_request(credential)
        data = await self._get(request, record) if request is not None else None
        reading = provider.read_quota(data, time.time()) if data is not None else None
        if reading is None:
            return False
        provider.remember_quota(record.id, reading)
        if not reading.exhausted():
            self._end_rests(record.id)
        return False

    def _end_rests(self, record_id: str) -> None:
        """The vendor shows every window open again: rate-limit rests end now."""
        book = self.state.cooldowns
        limited = [
            c
            for c in book.snapshot()
            if c.credential_id == record_id and c.reason.startswith(RATE_LIMIT)
        ]
        if not limited:
            return
        for rest in limited:
            book.clear(record_id, rest.model)
        left = [c.until for c in book.snapshot() if c.credential_id == record_id]
        until = datetime.fromtimestamp(max(left), UTC) if left else None
        self.state.auth_store.mark_cooling(record_id, until)
        log.info(
            "%s: the vendor shows its limits reset; %d rest(s) ended early", record_id, len(limited)
        )

    async def _get(self, request: UpstreamRequest, record: AuthRecord) -> Any:
        """The vendor's JSON answer, or None (logged at debug: many gateways lack these)."""
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                response = await self.state.upstream.send(request, record.proxy_url or None)
                try:
                    status, raw = response.status, await response.read()
                finally:
                    response.release()
        except (TimeoutError, ProxyError, OSError) as exc:
            log.debug("%s: %s unanswered: %s", record.id, request.url, exc)
            return None
        except Exception as exc:  # aiohttp's own errors; never let one end the loop
            log.debug("%s: %s failed: %r", record.id, request.url, exc)
            return None
        if status != 200:
            log.debug("%s: %s answered %d", record.id, request.url, status)
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.debug("%s: %s answered with something that is not JSON", record.id, request.url)
            return None
