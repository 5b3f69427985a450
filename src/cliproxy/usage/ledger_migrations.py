"""The ledger's schema, kept by Alembic (the revisions are in usage/migrations/versions/).

Every start upgrades the database to the newest revision, on SQLite and PostgreSQL alike:

- a fresh database gets every revision from the first;
- a SQLite ledger made before cliproxy used Alembic (the table, no version table) is adopted:
  stamped at the baseline, whose schema it has, then upgraded, its rows untouched;
- several instances starting at once against one database take turns: on PostgreSQL a
  transaction-scoped advisory lock is held around the check and the upgrade (so two of them
  never both create the table), on SQLite the migration runs in a ``BEGIN IMMEDIATE``
  transaction, which holds the file's write lock from the start (the others wait for it
  through their busy timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).with_name("migrations")
# Our own name for Alembic's version table: a PostgreSQL database shared with another
# application that uses Alembic keeps that one's "alembic_version" apart.
VERSION_TABLE = "cliproxy_usage_version"
RECORDS_TABLE = "usage_records"
BASELINE = "0001"
# pg_advisory_xact_lock's key: any 64-bit number, the same in every cliproxy ("cliproxy" in hex).
LOCK_KEY = 0x636C6970726F7879
# Alembic's `context` is one module-wide object, so two ledgers of one process (embedded
# proxies, tests) migrate one at a time; taken without blocking the event loop.
_IN_PROCESS = threading.Lock()


@contextlib.asynccontextmanager
async def _one_at_a_time() -> AsyncIterator[None]:
    while not _IN_PROCESS.acquire(blocking=False):
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        _IN_PROCESS.release()


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(SCRIPTS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _upgrade(connection: Connection) -> tuple[str | None, str | None, bool]:
    """(revision before, after, whether an old ledger was adopted); in the caller's
    transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    tables = set(inspect(connection).get_table_names())
    config = alembic_config(connection)
    adopted = RECORDS_TABLE in tables and VERSION_TABLE not in tables
    if adopted:
        command.stamp(config, BASELINE)
    before = current_revision(connection)
    command.upgrade(config, "head")
    return before, current_revision(connection), adopted


async def migrate(engine: AsyncEngine, where: str) -> None:
    """Bring the ledger at ``engine`` (shown as ``where``) to the newest schema."""
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        alembic_log.setLevel(logging.WARNING)  # its per-start chatter; our lines say what changed
    async with _one_at_a_time(), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        before, after, adopted = await conn.run_sync(_upgrade)
        await conn.commit()
    if adopted:
        log.info(
            "usage database %s: adopted the ledger made before schema migrations (revision %s)",
            where,
            BASELINE,
        )
    if before != after:
        log.info("usage database %s: schema upgraded from %s to %s", where, before, after)
