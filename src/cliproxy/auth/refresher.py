"""Keeps OAuth access tokens fresh: on demand before a request, after an upstream 401, and
ahead of expiry in the background for the accounts used lately.

Like the vendors' CLIs, an account is refreshed when it is about to be used and its token is
due. The background pass only keeps accounts used within ``recent_use_window`` ready (an idle
Google account would otherwise be refreshed 24 times a day for nothing); an account unused for
longer is refreshed by its next request. Each refresh request has the CLI's own body shape and
user-agent (auth/flows.py, providers/client_profiles.py).

One refresh at a time per account: concurrent callers share the same in-flight refresh. A
rotated refresh token is written to the account's file before the new access token is handed
out (the store writes first). A refresh the token endpoint refuses for good marks the account
"needs login"; a transient failure (5xx, network) is retried later without marking it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.client_profiles import ClientIdentities
from cliproxy.providers.transport import UpstreamClient
from cliproxy.usage.events import RefreshOutcome, RefreshResult

from .catalog import catalog
from .device import discover
from .file_lock import exclusive_async
from .flows import OAuthFlow, default_flows
from .identity import refreshed_file
from .oauth import OAuthError, TokenError, TokenSender, refresh_grant
from .records import AccountState, AuthRecord
from .store import AuthStore

log = logging.getLogger(__name__)


class AccountNeedsLogin(ProxyError):
    """The account cannot be used until the user logs in again."""

    def __init__(self, record_id: str, reason: str) -> None:
        super().__init__(ErrorKind.AUTHENTICATION, f"account {record_id} needs login: {reason}")
        self.record_id = record_id
        self.reason = reason


class RefreshFailed(ProxyError):
    """A refresh failed for now (network, 5xx); another credential may serve the request."""

    def __init__(self, record_id: str, reason: str) -> None:
        super().__init__(ErrorKind.UPSTREAM, f"cannot refresh account {record_id}: {reason}")
        self.record_id = record_id


class Refresher:
    def __init__(
        self,
        store: AuthStore,
        *,
        flows: Mapping[str, OAuthFlow] | None = None,
        sender: TokenSender | None = None,
        identities: ClientIdentities | None = None,
        lead_time: float = 300.0,
        interval: float = 30.0,
        retry_delay: float = 60.0,
        recent_use_window: float = 24 * 3600.0,
        report: Callable[[RefreshOutcome], None] | None = None,
        across_processes: bool = False,
    ) -> None:
        """``lead_time``: refresh when fewer seconds than this are left. ``interval``: how
        often the background task looks. ``retry_delay``: wait after a transient failure.
        ``sender``: an UpstreamClient to share (proxies); one is made when omitted.
        ``report``: told how each token-endpoint call ended (the state hands in its observer
        hub's ``emit``, so the metrics count refreshes). ``across_processes``: other processes
        (the workers of one server) refresh the same files, see ``_refresh``."""
        self.store = store
        self.flows = dict(flows) if flows is not None else default_flows()
        self.lead_time = lead_time
        self.interval = interval
        self.retry_delay = retry_delay
        # Refreshes carry the vendor CLI's own user-agent, never an HTTP library's default.
        self.identities = identities or ClientIdentities()
        self._own_sender = sender is None
        self._sender: TokenSender = sender if sender is not None else UpstreamClient()
        self._inflight: dict[str, asyncio.Task[AuthRecord]] = {}
        self._discovered: dict[str, OAuthFlow] = {}  # issuer -> flow with its endpoints
        self._retry_at: dict[str, float] = {}  # monotonic time before which we don't retry
        # Background refreshes are for accounts used within this many seconds (0: none).
        self.recent_use_window = recent_use_window
        self._last_used: dict[str, float] = {}  # record id -> monotonic time of last use
        self._stop = asyncio.Event()
        self.refresh_count = 0  # token-endpoint calls made (for tests and metrics)
        self.report = report
        self.across_processes = across_processes

    # ----- on demand --------------------------------------------------------------------------

    async def ensure_fresh(self, record: AuthRecord | str) -> AuthRecord:
        """The account's current record with a token good for at least ``lead_time`` when
        possible. Raises AccountNeedsLogin, or RefreshFailed when the token has expired and
        could not be refreshed just now. A token still valid is returned even if its early
        refresh failed."""
        current = self._current(record)
        self._check_usable(current)
        self.mark_used(current.id)
        if not current.expires_within(self.lead(current)):
            return current
        if self._backing_off(current.id) and not current.expires_within(0):
            return current
        try:
            return await self._single_flight(current.id)
        except RefreshFailed:
            latest = self._current(current.id)
            if not latest.expires_within(0):
                return latest
            raise

    async def refresh_after_401(self, record: AuthRecord) -> AuthRecord:
        """The upstream refused ``record``'s access token: refresh it once. Callers that got
        the 401 with the same old token share one refresh; a caller whose token was already
        replaced gets the current record without another refresh."""
        current = self._current(record.id)
        self._check_usable(current)
        if current.access_token != record.access_token:
            return current
        return await self._single_flight(current.id)

    async def refresh(self, record_id: str) -> AuthRecord:
        """Refresh now, whatever the expiry (single-flight)."""
        return await self._single_flight(record_id)

    def _current(self, record: AuthRecord | str) -> AuthRecord:
        record_id = record if isinstance(record, str) else record.id
        current = self.store.get(record_id)
        if current is None:
            raise AccountNeedsLogin(record_id, "its auth file is gone")
        return current

    def _check_usable(self, record: AuthRecord) -> None:
        status = self.store.status(record)
        if status.state is AccountState.NEEDS_LOGIN:
            raise AccountNeedsLogin(record.id, status.reason)

    def _backing_off(self, record_id: str) -> bool:
        return time.monotonic() < self._retry_at.get(record_id, 0.0)

    async def _single_flight(self, record_id: str) -> AuthRecord:
        task = self._inflight.get(record_id)
        if task is None:
            task = asyncio.create_task(self._refresh(record_id), name=f"refresh {record_id}")
            self._inflight[record_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(record_id, None))
        # shield: one caller giving up (client disconnect) must not cancel the others' refresh.
        return await asyncio.shield(task)

    async def _refresh(self, record_id: str) -> AuthRecord:
        """With several processes on one auth directory, one account is refreshed by one of
        them at a time (a lock file beside its auth file), and a process that waited reads the
        file again before asking: a vendor that rotates refresh tokens accepts each one once,
        so a second refresh with the token the first just spent would lose the account."""
        if not self.across_processes:
            return await self._refresh_record(self._current(record_id))
        stale = self._current(record_id)
        async with exclusive_async(self.store.auth_dir / record_id, "refresh"):
            self.store.load()  # another process's refresh may not have been seen yet
            current = self._current(record_id)
            if current.access_token != stale.access_token:
                log.info("the access token of %s was refreshed by another worker", record_id)
                return current
            return await self._refresh_record(current)

    async def _refresh_record(self, record: AuthRecord) -> AuthRecord:
        record_id = record.id
        if not record.refresh_token:
            reason = "no refresh token in the auth file; log in again"
            self.store.mark_needs_login(record_id, reason)
            raise AccountNeedsLogin(record_id, reason)
        entry = catalog().get(record.type)
        minter = entry.mint_token if entry is not None else None
        flow = self.flows.get(record.type)
        if flow is None and minter is None:
            raise RefreshFailed(record_id, f"no token endpoint known for type {record.type!r}")
        if flow is not None and minter is None:
            flow = await self._endpoints(record_id, flow)
        self.refresh_count += 1
        started = time.perf_counter()
        result: RefreshResult = "failed"
        try:
            if minter is not None:
                tokens = await minter(record.raw, record.proxy_url)
            else:
                assert flow is not None
                tokens = await self._grant(record, flow)
        except TokenError as exc:
            if exc.permanent:
                result = "needs_login"
                reason = f"the refresh was refused ({exc}); run `cliproxy login {record.type}`"
                self.store.mark_needs_login(record_id, reason)
                raise AccountNeedsLogin(record_id, reason) from None
            self._retry_at[record_id] = time.monotonic() + self.retry_delay
            log.warning("refreshing %s failed, will retry: %s", record_id, exc)
            raise RefreshFailed(record_id, str(exc)) from None
        else:
            result = "ok"
        finally:
            self._report(record, result, time.perf_counter() - started)
        self._retry_at.pop(record_id, None)
        # The store writes the file (with any rotated refresh token) before memory changes.
        saved = self.store.save(record_id, refreshed_file(record, tokens, datetime.now(UTC)))
        log.info("refreshed the access token of %s", record_id)
        return saved.record

    async def _grant(self, record: AuthRecord, flow: OAuthFlow) -> Mapping[str, Any]:
        token_block = record.raw.get("token")
        token_block = token_block if isinstance(token_block, dict) else {}
        return await refresh_grant(
            self._sender,
            flow,
            record.refresh_token,
            client_id=str(token_block.get("client_id") or ""),
            client_secret=str(token_block.get("client_secret") or ""),
            proxy_url=record.proxy_url or None,
            headers=self._identity_headers(record),
        )

    def lead(self, record: AuthRecord) -> float:
        """Seconds before expiry to refresh: the kind's own lead (Antigravity refreshes 50
        minutes early, as its IDE does) when longer than the refresher's."""
        flow = self.flows.get(record.type)
        own = flow.refresh_lead_seconds if flow is not None else 0.0
        return max(self.lead_time, own)

    def _report(self, record: AuthRecord, result: RefreshResult, seconds: float) -> None:
        if self.report is not None:
            self.report(RefreshOutcome(record.id, record.type, result, seconds))

    def _identity_headers(self, record: AuthRecord) -> dict[str, str]:
        entry = catalog().get(record.type)
        if entry is None:
            return {}
        # The device id rides along where the vendor takes one (kimi: its account id).
        return self.identities.profile(entry.vendor).refresh_headers(record.account_id)

    async def _endpoints(self, record_id: str, flow: OAuthFlow) -> OAuthFlow:
        """An OIDC flow (xai) with the token endpoint its issuer's discovery names, looked
        up once per issuer."""
        if not flow.issuer:
            return flow
        if (found := self._discovered.get(flow.issuer)) is not None:
            return found
        default = catalog().entry(flow.provider).flow.issuer
        try:
            found = await discover(self._sender, flow, default)
        except OAuthError as exc:
            self._retry_at[record_id] = time.monotonic() + self.retry_delay
            raise RefreshFailed(record_id, str(exc)) from None
        self._discovered[flow.issuer] = found
        return found

    # ----- background -------------------------------------------------------------------------

    async def run(self) -> None:
        """Refresh accounts that are about to expire, every ``interval`` seconds, until stop().
        Cooling-down accounts are refreshed too, so they are ready when the cooldown ends."""
        self._stop.clear()
        while not self._stop.is_set():
            try:
                await self.refresh_due()
            except Exception:
                # A pass that fails as a whole (a bug, a vanished directory) must not end the
                # loop: refreshing silently stopping is how accounts quietly die.
                log.exception("token refresh pass failed; trying again in %.0f s", self.interval)
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass

    async def refresh_due(self) -> int:
        """One background pass; returns how many refreshes were attempted."""
        due = [
            record
            for record in self.store.records()
            if record.refresh_token
            and not record.disabled
            and self.store.status(record).state is not AccountState.NEEDS_LOGIN
            and record.expires_within(self.lead(record))
            and not self._backing_off(record.id)
            and self.used_lately(record.id)
        ]
        results = await asyncio.gather(
            *(self._single_flight(r.id) for r in due), return_exceptions=True
        )
        for record, result in zip(due, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, ProxyError):
                log.error("refreshing %s failed unexpectedly: %r", record.id, result)
        return len(due)

    def mark_used(self, record_id: str) -> None:
        self._last_used[record_id] = time.monotonic()

    def used_lately(self, record_id: str) -> bool:
        """Whether the account served (or was about to serve) a request within the window."""
        used = self._last_used.get(record_id)
        return used is not None and time.monotonic() - used <= self.recent_use_window

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        self.stop()
        for task in list(self._inflight.values()):
            task.cancel()
        if self._own_sender and isinstance(self._sender, UpstreamClient):
            await self._sender.close()
