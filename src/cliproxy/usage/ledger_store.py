"""Where the usage ledger's records live: one table behind one small interface.

SQLAlchemy Core over an async engine: SQLite through aiosqlite by default (a file beside the
auth files, which several processes on one host may share: WAL, and a long busy timeout so a
writer waits for another's lock instead of dropping its rows), or PostgreSQL through asyncpg
(one ledger for every instance). Every record is one row; ``dedup`` (unique) makes
re-inserting a record (an import of an export, or of a record another instance wrote) a
no-op. The schema is Alembic's, brought up to date at every open (usage/ledger_migrations.py).

A SQLite file that is not a database, or a corrupt one, is reported (the log names the file),
moved aside as ``<name>.broken-<time>`` and replaced by a new one: a bad file never stops the
server. One that is only busy (locked by another process past the busy timeout) is kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import ColumnElement

log = logging.getLogger(__name__)

metadata = MetaData()
# Counts may come from an import up to 2**53; SQLite stores every integer in 64 bits anyway, and
# its id stays INTEGER (the rowid). The revisions in usage/migrations/ make this same table.
_COUNT = BigInteger()

records = Table(
    "usage_records",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("ts", Float, nullable=False),  # arrival, epoch seconds (UTC), to the microsecond
    Column("kind", String(16), nullable=False),  # "request" or "attempt" (a failed attempt)
    Column("failed", Boolean, nullable=False),
    Column("api_key", String, nullable=False),  # the client key's name or masked form
    Column("auth_index", String, nullable=False),
    Column("source", String, nullable=False),  # the account's e-mail or the masked key
    Column("provider", String, nullable=False),
    Column("model", String, nullable=False),  # as the client asked
    Column("upstream_model", String, nullable=False),
    Column("client_protocol", String, nullable=False),
    Column("upstream_protocol", String, nullable=False),
    Column("status", Integer, nullable=False),
    Column("error_kind", String, nullable=True),
    Column("stream", Boolean, nullable=False),
    Column("input_tokens", _COUNT, nullable=False),
    Column("output_tokens", _COUNT, nullable=False),
    Column("cached_tokens", _COUNT, nullable=False),
    Column("reasoning_tokens", _COUNT, nullable=False),
    Column("total_tokens", _COUNT, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float, nullable=True),  # streams only
    Column("cost_usd", Float, nullable=True),  # None: no price known for the model
    Column("subscription", Boolean, nullable=False),  # cost_usd is an equivalent API cost
    Column("dedup", String(64), nullable=False, unique=True),
    Index("usage_records_ts", "ts"),
)

COLUMNS = tuple(column.name for column in records.columns if column.name != "id")
# The request path's batches on SQLite go in as one multi-row INSERT per chunk: one statement
# step releases the GIL once for the whole chunk, where executemany (and Core's per-row
# parameter processing) hands the GIL between the writer thread and the event loop once per
# row, a convoy that cost the proxy a fifth of its throughput at full load.
_SQLITE_CHUNK = 400  # rows per statement: 400 x 24 parameters, under SQLite's 32,766
_SQLITE_ROW = f"({', '.join('?' for _ in COLUMNS)})"


def _sqlite_insert(rows: int) -> str:
    values = ", ".join(_SQLITE_ROW for _ in range(rows))
    return f"INSERT OR IGNORE INTO {records.name} ({', '.join(COLUMNS)}) VALUES {values}"


@dataclass(frozen=True, slots=True)
class Filters:
    """What a query selects; ``None`` is "any"."""

    since: float | None = None  # ts >= since
    until: float | None = None  # ts < until
    kind: str | None = None
    failed: bool | None = None
    status: int | None = None
    model: str | None = None
    provider: str | None = None
    api_key: str | None = None
    auth_index: str | None = None
    after_id: int | None = None  # id > after_id (rows recorded after that one)

    def clauses(self) -> list[ColumnElement[bool]]:
        c = records.c
        found: list[ColumnElement[bool]] = []
        if self.after_id is not None:
            found.append(c.id > self.after_id)
        if self.since is not None:
            found.append(c.ts >= self.since)
        if self.until is not None:
            found.append(c.ts < self.until)
        for column, value in (
            (c.kind, self.kind),
            (c.failed, self.failed),
            (c.status, self.status),
            (c.model, self.model),
            (c.provider, self.provider),
            (c.api_key, self.api_key),
            (c.auth_index, self.auth_index),
        ):
            if value is not None:
                found.append(column == value)
        return found


ANY = Filters()


def _quiet_alembic() -> None:
    """Before Alembic is imported: its import announces each of its plugins at INFO, and each
    migration context speaks too; our own lines say what changed (unless someone set its
    level)."""
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        alembic_log.setLevel(logging.WARNING)


class LedgerStore:
    """The ledger's table at ``url`` (a SQLAlchemy async URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine | None = None
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.path: Path | None = (
            Path(parsed.database).expanduser()
            if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:")
            else None
        )

    @property
    def where(self) -> str:
        """For log lines: the file, or the URL without its password."""
        if self.path is not None:
            return str(self.path)
        return make_url(self.url).render_as_string(hide_password=True)

    @staticmethod
    def prepare() -> None:
        """Import what opening needs (Alembic: a tenth of a second, a second on a slow host)
        now, for a ledger that opens later: done on the first record, the import would stall
        the event loop while it serves."""
        _quiet_alembic()
        import cliproxy.usage.ledger_migrations  # noqa: F401

    async def open(self, *, repair: bool = True) -> None:
        """Connect and bring the schema up to date. A damaged SQLite file is moved aside and
        replaced (``repair``); any other error (a locked file, a server that does not answer)
        is raised, the file left as it is."""
        try:
            await self._connect()
        except DatabaseError as error:
            await self.close()
            if not repair or self.path is None or not self.path.exists():
                raise
            if not _is_broken(error):
                raise  # (locked by another process for too long, say: its rows stay)
            aside = self._move_aside()
            log.error(
                "usage database %s is broken (%s); moved it to %s and started a new one",
                self.path,
                error.orig if error.orig is not None else error,
                aside,
            )
            await self._connect()

    async def _connect(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(self.url, **_engine_options(self.dialect))
        if self.dialect == "sqlite":
            event.listen(engine.sync_engine, "connect", apply_sqlite_pragmas)
        self.engine = engine
        if self.dialect == "sqlite":
            async with engine.connect() as conn:
                checked = (await conn.execute(text("PRAGMA quick_check"))).scalar()
                if checked != "ok":
                    raise DatabaseError("PRAGMA quick_check", None, ValueError(str(checked)))
        # Alembic is imported here, when a ledger opens: a tenth of a second that the other
        # importers of this module (the CLI's commands, an embedding program) need not pay.
        _quiet_alembic()
        from cliproxy.usage.ledger_migrations import migrate

        await migrate(engine, self.where)

    def _move_aside(self) -> Path:
        assert self.path is not None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.broken-{stamp}")
        self.path.replace(aside)
        for suffix in ("-wal", "-shm", "-journal"):
            companion = self.path.with_name(self.path.name + suffix)
            if companion.exists():
                companion.replace(aside.with_name(aside.name + suffix))
        return aside

    def _engine(self) -> AsyncEngine:
        if self.engine is None:
            raise RuntimeError(f"usage database {self.where} is not open")
        return self.engine

    async def insert(self, rows: Sequence[Mapping[str, Any]], *, counted: bool = True) -> int:
        """Add rows; a row whose ``dedup`` is already stored is skipped. Returns how many
        were added (an import reports it); ``counted=False`` skips the two counts, which read
        the whole table, and returns 0: the request path's writes need no answer."""
        if not rows:
            return 0
        engine = self._engine()
        statement: Any
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement = pg_insert(records).on_conflict_do_nothing(index_elements=["dedup"])
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(records).on_conflict_do_nothing(index_elements=["dedup"])
        async with engine.begin() as conn:
            if not counted and self.dialect == "sqlite":
                for start in range(0, len(rows), _SQLITE_CHUNK):
                    chunk = rows[start : start + _SQLITE_CHUNK]
                    values = tuple(row[name] for row in chunk for name in COLUMNS)
                    await conn.exec_driver_sql(_sqlite_insert(len(chunk)), values)
                return 0
            if not counted:
                await conn.execute(statement, [dict(row) for row in rows])
                return 0
            # The ids of the rows that went in: counting the table before and after would
            # also count what another instance (or process) wrote meanwhile.
            added = await conn.execute(
                statement.returning(records.c.id), [dict(row) for row in rows]
            )
            return len(added.all())

    async def fetch(
        self,
        filters: Filters = ANY,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        by_id: bool = False,
    ) -> list[dict[str, Any]]:
        """Rows in time order (``by_id``: in the order they were recorded)."""
        query = select(records).where(and_(True, *filters.clauses()))
        if by_id:
            query = query.order_by(records.c.id)
        else:
            order = records.c.ts.desc() if newest_first else records.c.ts
            query = query.order_by(order, records.c.id.desc() if newest_first else records.c.id)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        async with self._engine().connect() as conn:
            result = await conn.execute(query)
            return [dict(row._mapping) for row in result]

    async def count(self, filters: Filters = ANY) -> int:
        query = select(func.count()).select_from(records).where(and_(True, *filters.clauses()))
        async with self._engine().connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def totals(self, since: float) -> dict[str, tuple[int, float]]:
        """(tokens, cost in USD) of the request records since ``since``, per client key."""
        c = records.c
        query = (
            select(c.api_key, func.sum(c.total_tokens), func.sum(c.cost_usd))
            .where(c.ts >= since, c.kind == "request")
            .group_by(c.api_key)
        )
        async with self._engine().connect() as conn:
            result = await conn.execute(query)
            return {
                str(key): (int(tokens or 0), float(cost or 0.0)) for key, tokens, cost in result
            }

    async def prune(self, before: float) -> int:
        """Remove records older than ``before`` (epoch seconds); returns how many."""
        async with self._engine().begin() as conn:
            result = await conn.execute(delete(records).where(records.c.ts < before))
            return int(result.rowcount or 0)

    async def close(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            await engine.dispose()


# asyncpg's connect timeout (its default is a minute, which a server starting against a
# database host that does not answer would wait), and one for any statement.
PG_CONNECT_TIMEOUT = 5.0
PG_COMMAND_TIMEOUT = 30.0
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _engine_options(dialect: str) -> dict[str, Any]:
    if dialect != "postgresql":
        return {}
    return {
        # A connection the server dropped (a restart, a failover) is found out and replaced
        # before use, so the ledger writes again as soon as the database is back.
        "pool_pre_ping": True,
        "connect_args": {"timeout": PG_CONNECT_TIMEOUT, "command_timeout": PG_COMMAND_TIMEOUT},
    }


def describe_error(error: BaseException) -> str:
    """What went wrong, in one line: the driver's message, without the SQL and parameters
    SQLAlchemy adds to it."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    message = " ".join(str(error).split())
    return message or type(error).__name__


# SQLite's result codes for a file that is not a database, or a damaged one.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def _is_broken(error: DatabaseError) -> bool:
    """The file itself is bad (so it is moved aside), not merely busy or refused."""
    orig = error.orig
    if isinstance(orig, ValueError):  # PRAGMA quick_check found damage
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(orig).lower()
    return "not a database" in text or "malformed" in text


def apply_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: the CLI (and other readers) read while the server writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        # Another process writing the same file holds its lock for a moment: wait for it (the
        # writer task is off the request path) rather than fail and drop the batch.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
