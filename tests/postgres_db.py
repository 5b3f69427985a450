"""A PostgreSQL database of its own for each test, on the server at 127.0.0.1:5432.

``CLIPROXY_TEST_DATABASE_URL`` names a database to connect to for creating and dropping the
test databases (default: ``postgresql://postgres@127.0.0.1:5432/test``; the current user is
tried when ``postgres`` is refused). Every database made here is dropped afterwards, open
connections and all. A test is skipped, saying so, only when no server answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cliproxy.config.usage_database import usage_database_url

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
# A password in every URL handed to cliproxy: the server trusts loopback, so it is never
# checked, but tests look for it in logs and replies (it must never be there).
PASSWORD = "pg-s3cret-do-not-show"


def _candidates() -> list[str]:
    given = os.environ.get("CLIPROXY_TEST_DATABASE_URL")
    if given:
        return [given]
    parts = urlsplit(DEFAULT_URL)
    mine = parts._replace(netloc=f"{getpass.getuser()}@{parts.hostname}:{parts.port}")
    return [DEFAULT_URL, urlunsplit(mine)]


def _run(coroutine: Any) -> Any:
    """Run ``coroutine`` to its end on a loop of its own (callers may be inside one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_admin: list[str | None] = []


def admin_url() -> str | None:
    """The URL that connects (found once), or None when no server answers."""
    if not _admin:
        found = None
        for url in _candidates():
            try:
                _run(_execute(url, "SELECT 1"))
            except (OSError, asyncpg.PostgresError, TimeoutError):
                continue
            found = url
            break
        _admin.append(found)
    return _admin[0]


def _with_database(url: str, name: str, *, password: bool) -> str:
    parts = urlsplit(url)
    user = parts.username or getpass.getuser()
    secret = f":{PASSWORD}" if password else ""
    netloc = f"{user}{secret}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, f"/{name}", parts.query, ""))


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database; yields its ``postgresql://`` URL (with PASSWORD in it)."""
    admin = admin_url()
    if admin is None:
        pytest.skip(
            f"no PostgreSQL answers at {', '.join(_candidates())} (set CLIPROXY_TEST_DATABASE_URL)"
        )
    name = f"cliproxy_test_{uuid.uuid4().hex[:12]}"
    _run(_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(admin, name, password=True)
    finally:
        _run(_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` in the database at ``url`` (a test's own look at what was written)."""

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url, timeout=3)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    rows: list[tuple[Any, ...]] = _run(fetch())
    return rows


@contextlib.contextmanager
def ledger_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh ledger's SQLAlchemy URL, as cliproxy makes it from usage-database: a SQLite
    file in ``tmp_path`` (``backend`` "sqlite") or a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield usage_database_url(str(tmp_path / "usage.sqlite"), tmp_path)
        return
    with fresh_database() as database:
        yield usage_database_url(database, tmp_path)
