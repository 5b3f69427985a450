"""The usage ledger: one persisted record per client request, and one per failed upstream
attempt (marked ``kind="attempt"``; they do not count as requests).

It is an observer (usage/observers.py) whose hooks only keep the event in a buffer: a writer
task turns each batch into rows, prices them (usage/prices.py) and inserts them
(usage/sqlite_writer.py, usage/ledger_store.py) on a worker thread, off the request path. A write that fails (a full disk, a
database gone) is logged once (until the database answers again, which is logged too) and
counted, and the rows are dropped; no request ever waits for or fails because of the ledger.
A database that cannot be opened at start (a PostgreSQL server that does not answer, a SQLite
file another process holds locked) is tried again every ``reopen_interval`` seconds, the
records of the meantime waiting (up to ``max_pending``); its queries answer LedgerUnavailable
until then. Records older than ``retention_days`` are pruned.

The client key is stored as its name or its masked form (``sk-a…cdef``), never in full; the
credential as the ``auth_index`` the management lists show, through the ``resolver`` the
application hands in (it knows the auth files and the config keys, which this layer does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from cliproxy.model import ErrorKind
from cliproxy.usage.events import AttemptOutcome, RequestOutcome
from cliproxy.usage.ledger_store import (
    ANY,
    COLUMNS,
    Filters,
    LedgerStore,
    describe_error,
    records,
)
from cliproxy.usage.prices import Prices, Tokens
from cliproxy.usage.sqlite_writer import SqliteRowWriter

log = logging.getLogger(__name__)

REQUEST = "request"
ATTEMPT = "attempt"
DAY = 86400.0
# Times a record may carry: the epoch to the last day of year 9999 (what RFC 3339 can write).
EARLIEST, LATEST = 0.0, 253_402_214_400.0
# Refused by the proxy's own access check (no or a wrong client key, a remote client without
# api-keys): not recorded, so clients without a key cannot fill the ledger.
_ACCESS_REFUSALS = frozenset({ErrorKind.AUTHENTICATION, ErrorKind.PERMISSION})
PRUNE_EVERY = 3600.0
REOPEN_INTERVAL = 10.0


class LedgerUnavailable(Exception):
    """A query or import the database could not answer (its message says why)."""


class CredentialInfo(NamedTuple):
    auth_index: str  # as GET /auth-files and the key lists show it
    source: str  # the account's e-mail (or file name), or the masked upstream key
    subscription: bool  # an account (auth file): its cost is an equivalent API cost


Resolver = Callable[[str], CredentialInfo]
# An event the ledger keeps until it writes it, with the time (``clock``) it ended.
Ended = tuple[RequestOutcome | AttemptOutcome, float]


NO_CREDENTIAL = CredentialInfo("", "", False)


def _no_resolver(credential_id: str) -> CredentialInfo:
    return CredentialInfo(credential_id, "", False)


def timestamp_text(ts: float) -> str:
    """RFC 3339 in UTC, to the microsecond: ``2026-12-01T09:15:04.123456Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dedup_key(row: Mapping[str, Any]) -> str:
    """The same for the same record however it arrived (recorded here, or imported from an
    export of this ledger or of CLIProxyAPI's): made of the fields an export carries."""
    parts = (
        row["kind"],
        row["api_key"],
        row["model"],
        f"{row['ts']:.6f}",  # the stored value (rounded to the microsecond), written fast
        row["source"],
        row["auth_index"],
        "1" if row["failed"] else "0",
        *(str(row[k]) for k in ("input_tokens", "output_tokens", "reasoning_tokens")),
        *(str(row[k]) for k in ("cached_tokens", "total_tokens")),
    )
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
    # The time first: new records append at the end of the unique index instead of landing
    # at random places in it (which, once the index outgrew SQLite's page cache, made every
    # insert read pages and cost the proxy a fifth of its throughput).
    return f"{round(row['ts'] * 1_000_000):016x}{digest}"


def make_row(**fields: Any) -> dict[str, Any]:
    """A complete row from the given fields (the rest take their empty values)."""
    row: dict[str, Any] = {
        "ts": 0.0,
        "kind": REQUEST,
        "failed": False,
        "api_key": "",
        "auth_index": "",
        "source": "",
        "provider": "",
        "model": "",
        "upstream_model": "",
        "client_protocol": "",
        "upstream_protocol": "",
        "status": 0,
        "error_kind": None,
        "stream": False,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 0,
        "latency_ms": 0.0,
        "ttft_ms": None,
        "cost_usd": None,
        "subscription": False,
    }
    row.update(fields)
    row["ts"] = round(float(row["ts"]), 6)
    if not row["total_tokens"]:
        row["total_tokens"] = row["input_tokens"] + row["output_tokens"]
    row["dedup"] = dedup_key(row)
    return row


class Ledger:
    """The observer and the queries. ``open()`` on the event loop before use (until then
    events are buffered), ``close()`` at the end (writes what is pending)."""

    def __init__(
        self,
        url: str,
        *,
        retention_days: int = 90,
        prices: Prices | None = None,
        enabled: Callable[[], bool] = lambda: True,
        resolver: Resolver = _no_resolver,
        clock: Callable[[], float] = time.time,
        flush_interval: float = 0.2,
        max_batch: int = 500,
        max_pending: int = 50_000,
        reopen_interval: float | None = None,  # REOPEN_INTERVAL, read when made
    ) -> None:
        self.store = LedgerStore(url)
        self.retention_days = retention_days
        self.prices = prices or Prices()
        self.enabled = enabled
        self.resolver = resolver
        self.clock = clock
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.reopen_interval = REOPEN_INTERVAL if reopen_interval is None else reopen_interval
        self.available = False  # open succeeded
        self.error = ""  # why not, when it did not
        self.dropped = 0  # rows lost: the buffer was full, or their write failed
        self.write_failures = 0
        self._pending: list[Ended] = []  # events not written yet, with when they ended
        self._writer: asyncio.Task[None] | None = None
        self._reopener: asyncio.Task[None] | None = None
        self._failing = False  # the last write failed (logged once until one succeeds)
        # Called once a ledger that could not be opened at start opens (the application seeds
        # client-keys' limits from it then).
        self.on_late_open: Callable[[], Awaitable[None]] | None = None
        self._writing = asyncio.Lock()
        # A SQLite ledger's request rows go in through a plain connection (usage/sqlite_writer.py).
        self._rows: SqliteRowWriter | None = None
        self._in_flight: asyncio.Future[None] | None = None  # that writer's batch in a thread
        self._pruned_at = 0.0
        self._repair = True
        self._deferred = False  # open, but the file is created with the first record

    @property
    def where(self) -> str:
        return self.store.where

    # ----- lifecycle --------------------------------------------------------------------------

    async def open(self, *, repair: bool = True, retry: bool = True) -> bool:
        """Open (and create or upgrade) the database. Never raises: an unusable one is logged
        and the ledger stays unavailable (requests are served as ever), and it is tried again in
        the background (``retry``): a database server that was down, a file another process
        held locked. A SQLite file that does not exist yet is created with the first record,
        so an idle proxy leaves none behind."""
        self._repair = repair
        if self.store.path is not None and not self.store.path.exists():
            self.store.prepare()  # at start, not in the middle of the first requests
            self._deferred = True
            self.available = True
            self._kick()
            return True
        if not await self._open_store():
            if retry:
                self._reopener = asyncio.get_running_loop().create_task(
                    self._reopen_later(), name="usage ledger reopener"
                )
            return False
        await self._prune()
        self._kick()
        return True

    async def _open_store(self, *, quiet: bool = False) -> bool:
        self._deferred = False
        try:
            await self.store.open(repair=self._repair)
        except Exception as error:
            self.error = f"usage database {self.where} cannot be used: {describe_error(error)}"
            if not quiet:
                log.error("%s; usage is not recorded until it can", self.error)
            await self.store.close()
            self.available = False
            return False
        self.available = True
        self.error = ""
        self._close_rows()
        if self.store.path is not None:
            self._rows = SqliteRowWriter(self.store.path, records.name, COLUMNS)
        return True

    def _close_rows(self) -> None:
        rows, self._rows = self._rows, None
        if rows is not None:
            rows.close()

    async def _reopen_later(self) -> None:
        while not self.available:
            await asyncio.sleep(self.reopen_interval)
            async with self._writing:
                opened = await self._open_store(quiet=True)
            if opened:
                log.warning(
                    "usage database %s answers now: recording usage (%d records waited)",
                    self.where,
                    len(self._pending),
                )
                await self._prune()
                await self.flush()  # the records of the meantime, before anyone reads totals
                if self.on_late_open is not None:
                    try:
                        await self.on_late_open()
                    except Exception as error:
                        log.warning("usage database %s: after opening: %s", self.where, error)

    async def close(self) -> None:
        for task in (self._reopener, self._writer):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._writer = self._reopener = None
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            await asyncio.wait([in_flight])  # a batch its cancelled writer left in a thread
        if self.available:
            await self._write_pending()
        self.available = False
        self._deferred = False
        self._close_rows()
        await self.store.close()

    # ----- observer hooks (on the event loop, quick) ----------------------------------------
    # A hook only keeps the event and the time it ended; the writer turns a batch of them into
    # rows on its worker thread (_rows_of), where one tight loop over hundreds of events costs
    # about a third of building each row in place between two requests' work.

    def on_request(self, event: RequestOutcome) -> None:
        if not self.enabled():
            return
        if (
            event.attempts == 0
            and event.error_kind in _ACCESS_REFUSALS
            and not event.requested_model
        ):
            return
        self._add((event, self.clock()))

    def on_attempt(self, event: AttemptOutcome) -> None:
        """A failed attempt that reached its upstream (a token refresh's 401 is not one: the
        same credential is asked again)."""
        if event.ok or not event.sent or event.reauthorized or not self.enabled():
            return
        self._add((event, self.clock()))

    def _rows_of(self, ended: list[Ended]) -> list[dict[str, Any]]:
        """The rows of a batch, priced, as mappings (for the database driver's insert)."""
        return [dict(zip(COLUMNS, values, strict=True)) for values in self._values_of(ended)]

    def _values_of(self, ended: list[Ended]) -> list[tuple[Any, ...]]:
        """The rows of a batch, priced, each a tuple in COLUMNS order: what the SQLite writer
        binds, with no mapping built and taken apart again for each row."""
        rows = []
        for event, at in ended:
            if isinstance(event, RequestOutcome):
                rows.append(self._request_values(event, at))
            else:
                row = self._attempt_row(event, at)
                self._price_all([row])
                rows.append(tuple(row[name] for name in COLUMNS))
        return rows

    def _request_values(self, event: RequestOutcome, at: float) -> tuple[Any, ...]:
        """A request's row, priced, in COLUMNS order. Written out rather than through
        make_row, whose generic path (defaults, update, the general dedup) costs about three
        times as much; the same row (a test compares them)."""
        info = self.resolver(event.credential_id) if event.credential_id else NO_CREDENTIAL
        ts = round(at - event.latency, 6)
        failed = event.ending != "completed"
        api_key = event.client_key_name or event.client_key
        model, upstream_model, provider = (
            event.requested_model,
            event.upstream_model,
            event.provider,
        )
        input_tokens, output_tokens = event.input_tokens, event.output_tokens
        cached_tokens, reasoning_tokens = event.cached_tokens, event.reasoning_tokens
        total_tokens = input_tokens + output_tokens
        error_kind = event.error_kind
        first_token = event.first_token
        # dedup_key's text for int token counts, in one formatting step: the same key.
        text = (
            f"{REQUEST}\x1f{api_key}\x1f{model}\x1f{ts:.6f}\x1f{info.source}"
            f"\x1f{info.auth_index}\x1f{'1' if failed else '0'}\x1f{input_tokens:d}"
            f"\x1f{output_tokens:d}\x1f{reasoning_tokens:d}"
            f"\x1f{cached_tokens:d}\x1f{total_tokens:d}"
        )
        dedup = f"{round(ts * 1_000_000):016x}{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        cost = self.prices.cost(
            model, upstream_model, provider, Tokens(input_tokens, output_tokens, cached_tokens)
        )
        return (  # COLUMNS order (a test checks it)
            ts,
            REQUEST,
            failed,
            api_key,
            info.auth_index,
            info.source,
            provider,
            model,
            upstream_model,
            event.client_protocol,
            event.upstream_protocol,
            event.status,
            error_kind.value if error_kind is not None else None,
            event.stream,
            input_tokens,
            output_tokens,
            cached_tokens,
            reasoning_tokens,
            total_tokens,
            round(event.latency * 1000, 3),
            round(first_token * 1000, 3) if event.stream and first_token is not None else None,
            cost,
            info.subscription,
            dedup,
        )

    def _attempt_row(self, event: AttemptOutcome, at: float) -> dict[str, Any]:
        info = self.resolver(event.credential_id)
        return make_row(
            ts=at - event.latency,
            kind=ATTEMPT,
            failed=True,
            api_key=event.client_key_name or event.client_key,
            auth_index=info.auth_index,
            source=info.source,
            subscription=info.subscription,
            provider=event.provider,
            model=event.requested_model,
            upstream_model=event.upstream_model,
            status=event.status,
            error_kind=event.error_kind.value if event.error_kind is not None else None,
            latency_ms=round(event.latency * 1000, 3),
        )

    def _add(self, ended: Ended) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            if self.dropped == 1:
                log.warning(
                    "usage ledger %s falls behind: %d records wait; new ones are dropped",
                    self.where,
                    self.max_pending,
                )
            return
        self._pending.append(ended)
        self._kick()

    def _kick(self) -> None:
        if not self.available or not self._pending:
            return
        if self._writer is None or self._writer.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._writer = loop.create_task(self._write_soon(), name="usage ledger writer")

    async def _write_soon(self) -> None:
        while self._pending:
            await asyncio.sleep(self.flush_interval)
            await self._write_pending()

    async def _write_pending(self) -> None:
        async with self._writing:
            if self._deferred and self._pending and not await self._open_store():
                self.dropped += len(self._pending)
                self._pending.clear()
                return
            while self._pending and self.available:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                writer = self._rows
                try:
                    # Made into rows, priced (and, on SQLite, written) beside the event loop.
                    if writer is not None:
                        # Shielded: a cancelled writer task leaves the thread to finish (it
                        # cannot be stopped), and close() waits for it before closing.
                        self._in_flight = asyncio.ensure_future(
                            asyncio.to_thread(self._write_rows, writer, batch)
                        )
                        await asyncio.shield(self._in_flight)
                    else:
                        rows = await asyncio.to_thread(self._rows_of, batch)
                        await self.store.insert(rows, counted=False)
                except Exception as error:
                    if writer is not None:
                        writer.close()  # the next batch connects afresh (a replaced file)
                    self._write_failed(len(batch), error)
                else:
                    self._write_succeeded()
            if not self._deferred and self.clock() - self._pruned_at >= PRUNE_EVERY:
                await self._prune()

    def _write_rows(self, writer: SqliteRowWriter, ended: list[Ended]) -> None:
        writer.write(self._values_of(ended))

    def _write_failed(self, rows: int, error: Exception) -> None:
        self.write_failures += 1
        self.dropped += rows
        if not self._failing:
            self._failing = True
            log.error(
                "usage database %s: could not write %d records (dropped): %s; later "
                "failures are only counted until it answers again",
                self.where,
                rows,
                describe_error(error),
            )

    def _write_succeeded(self) -> None:
        if self._failing:
            self._failing = False
            log.warning(
                "usage database %s answers again: recording usage (%d records dropped so far)",
                self.where,
                self.dropped,
            )

    def _price_all(self, rows: list[dict[str, Any]]) -> None:
        prices = self.prices
        for row in rows:
            if row["cost_usd"] is None:
                tokens = Tokens(row["input_tokens"], row["output_tokens"], row["cached_tokens"])
                row["cost_usd"] = prices.cost(
                    row["model"], row["upstream_model"], row["provider"], tokens
                )

    async def _prune(self) -> None:
        self._pruned_at = self.clock()
        try:
            removed = await self.store.prune(self.clock() - self.retention_days * DAY)
        except Exception as error:
            log.warning("usage database %s: pruning failed: %s", self.where, describe_error(error))
            return
        if removed:
            log.info(
                "usage database %s: removed %d records older than %d days",
                self.where,
                removed,
                self.retention_days,
            )

    async def flush(self) -> None:
        """Write what is pending now (queries call it, so they see every finished request)."""
        if self.available and self._pending:
            await self._write_pending()

    # ----- queries ----------------------------------------------------------------------------

    async def fetch(
        self,
        filters: Filters = ANY,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        by_id: bool = False,
    ) -> list[dict[str, Any]]:
        await self.flush()
        if self._deferred:
            return []
        try:
            return await self.store.fetch(
                filters, limit=limit, offset=offset, newest_first=newest_first, by_id=by_id
            )
        except Exception as error:
            raise self._unavailable("read", error) from error

    async def count(self, filters: Filters = ANY) -> int:
        await self.flush()
        if self._deferred:
            return 0
        try:
            return await self.store.count(filters)
        except Exception as error:
            raise self._unavailable("read", error) from error

    async def totals(self, since: float) -> dict[str, tuple[int, float]]:
        """(tokens, cost in USD) of the requests since ``since`` per client key (its name or
        masked form); client-keys' limits start from them (usage/key_limits.py)."""
        await self.flush()
        if self._deferred or not self.available:
            return {}
        try:
            return await self.store.totals(since)
        except Exception as error:
            raise self._unavailable("read", error) from error

    async def add_rows(self, rows: list[dict[str, Any]]) -> int:
        """Insert complete rows now (an import); those already stored are skipped."""
        await self.flush()
        if not rows:
            return 0
        if self._deferred:
            async with self._writing:
                if self._deferred and not await self._open_store():
                    raise LedgerUnavailable(self.error)
        await asyncio.to_thread(self._price_all, rows)
        added = 0
        try:
            for start in range(0, len(rows), self.max_batch):
                added += await self.store.insert(rows[start : start + self.max_batch])
        except Exception as error:
            raise self._unavailable("write", error) from error
        return added

    def _unavailable(self, doing: str, error: Exception) -> LedgerUnavailable:
        reason = describe_error(error)
        log.warning("usage database %s: could not %s: %s", self.where, doing, reason)
        return LedgerUnavailable(f"usage database {self.where}: could not {doing}: {reason}")
