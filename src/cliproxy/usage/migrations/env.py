"""Alembic's environment for the usage ledger.

cliproxy runs it itself (usage/ledger_migrations.py) on a connection it already holds, inside
the transaction that also holds the migration lock. A developer writing a new revision runs
Alembic from a shell instead, with an alembic.ini whose ``script_location`` is this directory
and the database given as ``-x url=`` (a SQLAlchemy async URL)::

    alembic -x url=sqlite+aiosqlite:///usage.sqlite revision --autogenerate -m "what changes"
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from cliproxy.usage.ledger_migrations import VERSION_TABLE
from cliproxy.usage.ledger_store import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite alters a table by copying it; Alembic's batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the ledger's database: alembic -x url=<SQLAlchemy async URL> ...")
    asyncio.run(_run_on(url))


_main()
