"""The request path's writes to a SQLite ledger, on a plain ``sqlite3`` connection.

The ledger's queries, imports and schema go through SQLAlchemy (usage/ledger_store.py); its
writer, which adds every served request in batches, does not need to. Through the async engine
each batch took a greenlet, a pooled connection's checkout and reset, and half a dozen
round trips to aiosqlite's thread, each handing the GIL back and forth with the event loop:
about a third of what recording a request cost. Here a batch is one call, made from the
ledger's worker thread (the one that prices it): flatten, ``BEGIN``, one multi-row ``INSERT OR
IGNORE`` per chunk, ``COMMIT``. SQLite runs the statement without the GIL.

Calls come one at a time (the ledger's write lock) but from whichever worker thread
``asyncio.to_thread`` picks, hence ``check_same_thread=False``. The connection opens on the
first batch after the store made the file and its table, and takes the same pragmas (WAL, a
busy timeout for the CLI or another process writing the file).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cliproxy.usage.ledger_store import SQLITE_BUSY_TIMEOUT_MS, apply_sqlite_pragmas

# Rows per statement: 24 parameters each stay well under SQLite's 32,766 per statement.
CHUNK = 400


class SqliteRowWriter:
    """Inserts complete ledger rows, each a tuple of the values of ``columns`` in their order,
    into ``table`` of the file at ``path``."""

    def __init__(self, path: Path, table: str, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = tuple(columns)
        self._connection: sqlite3.Connection | None = None
        # A connection must never be closed, or used twice at once, while a thread writes on it
        # (sqlite3 would crash the process): an abandoned write (its task cancelled) finishes
        # before anyone else touches the connection.
        self._busy = threading.Lock()
        row = f"({', '.join('?' for _ in self.columns)})"
        head = f"INSERT OR IGNORE INTO {table} ({', '.join(self.columns)}) VALUES "
        # The statement for a full chunk, kept: sqlite3's statement cache finds it by its text.
        self._statement_of = {CHUNK: head + ", ".join(row for _ in range(CHUNK))}
        self._head, self._row = head, row

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` in one transaction; a row whose dedup key is stored is skipped.
        Raises what sqlite3 raises (the ledger logs it and counts the rows as dropped)."""
        if not rows:
            return
        with self._busy:
            self._write(rows)

    def _write(self, rows: Sequence[Sequence[Any]]) -> None:
        connection = self._connection or self._connect()
        connection.execute("BEGIN IMMEDIATE")  # the write lock now, waiting out another writer
        try:
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start : start + CHUNK]
                values = [value for row in chunk for value in row]
                connection.execute(self._statement(len(chunk)), values)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._busy:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()

    def _statement(self, rows: int) -> str:
        statement = self._statement_of.get(rows)
        if statement is None:
            statement = self._head + ", ".join(self._row for _ in range(rows))
        return statement

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
        )
        try:
            apply_sqlite_pragmas(connection, None)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection
