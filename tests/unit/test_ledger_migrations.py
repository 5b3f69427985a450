"""The ledger's schema under Alembic (usage/ledger_migrations.py), on a real SQLite file and a
real PostgreSQL database: a fresh database is upgraded to the model's exact schema, reopening
changes nothing, a SQLite ledger made before Alembic is adopted with its rows, and several
processes opening one fresh database at the same moment all succeed (PostgreSQL's advisory
lock, SQLite's BEGIN IMMEDIATE) and all their rows arrive. A file locked at start is waited for,
not moved aside, and client-keys' limits are seeded when such a late ledger opens."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from cliproxy.usage import ledger_store
from cliproxy.usage.key_limits import KeyLimits
from cliproxy.usage.ledger import Ledger, make_row
from cliproxy.usage.ledger_migrations import (
    VERSION_TABLE,
    current_revision,
    head_revision,
)
from cliproxy.usage.ledger_store import COLUMNS, LedgerStore, metadata, records
from tests.postgres_db import ledger_url

ROOT = Path(__file__).resolve().parents[2]

# The table exactly as cliproxy created it before it used Alembic (SQLAlchemy's create_all).
PRE_ALEMBIC_DDL = """
CREATE TABLE usage_records (
    id INTEGER NOT NULL, ts FLOAT NOT NULL, kind VARCHAR(16) NOT NULL, failed BOOLEAN NOT NULL,
    api_key VARCHAR NOT NULL, auth_index VARCHAR NOT NULL, source VARCHAR NOT NULL,
    provider VARCHAR NOT NULL, model VARCHAR NOT NULL, upstream_model VARCHAR NOT NULL,
    client_protocol VARCHAR NOT NULL, upstream_protocol VARCHAR NOT NULL,
    status INTEGER NOT NULL, error_kind VARCHAR, stream BOOLEAN NOT NULL,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
    total_tokens INTEGER NOT NULL, latency_ms FLOAT NOT NULL, ttft_ms FLOAT, cost_usd FLOAT,
    subscription BOOLEAN NOT NULL, dedup VARCHAR(64) NOT NULL,
    PRIMARY KEY (id), UNIQUE (dedup)
);
CREATE INDEX usage_records_ts ON usage_records (ts);
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ledger_url(request.param, tmp_path) as found:
        yield found


def _schema_difference(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    found: list[object] = compare_metadata(context, metadata)
    return found


async def test_a_fresh_database_gets_the_models_schema(url: str) -> None:
    store = LedgerStore(url)
    await store.open()
    assert store.engine is not None
    async with store.engine.connect() as conn:
        assert await conn.run_sync(current_revision) == head_revision()
        # What the revisions build is what the code reads and writes, column for column.
        assert await conn.run_sync(_schema_difference) == []
    row = make_row(ts=1_764_600_000.5, model="m", input_tokens=2**53, output_tokens=1)
    assert await store.insert([row]) == 1
    [stored] = await store.fetch()
    assert stored["input_tokens"] == 2**53  # 64-bit counts, on PostgreSQL too
    await store.close()

    again = LedgerStore(url)  # a restart: nothing to migrate, the row is still there
    await again.open()
    assert [r["model"] for r in await again.fetch()] == ["m"]
    await again.close()


async def test_a_ledger_from_before_alembic_is_adopted_with_its_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.sqlite"
    recent = time.time() - 3600  # within the retention, which opening enforces
    old_rows = [
        make_row(ts=recent + i, model=f"old-{i}", input_tokens=10 * i, api_key="team")
        for i in range(3)
    ]
    with sqlite3.connect(path) as db:
        db.executescript(PRE_ALEMBIC_DDL)
        placeholders = ", ".join("?" for _ in COLUMNS)
        db.executemany(
            f"INSERT INTO usage_records ({', '.join(COLUMNS)}) VALUES ({placeholders})",
            [tuple(row[name] for name in COLUMNS) for row in old_rows],
        )
    db.close()

    ledger = Ledger(f"sqlite+aiosqlite:///{path}", flush_interval=0.01)
    with caplog.at_level(logging.INFO, logger="cliproxy.usage"):
        assert await ledger.open()
    assert "adopted the ledger made before schema migrations" in caplog.text
    kept = await ledger.fetch()
    assert [(r["model"], r["input_tokens"], r["api_key"]) for r in kept] == [
        ("old-0", 0, "team"),
        ("old-1", 10, "team"),
        ("old-2", 20, "team"),
    ]
    assert await ledger.add_rows([dict(old_rows[0])]) == 0  # de-duplication still holds
    assert await ledger.add_rows([make_row(ts=recent + 10, model="new")]) == 1
    await ledger.close()

    with sqlite3.connect(path) as db:
        versions = db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        count = db.execute(f"SELECT count(*) FROM {records.name}").fetchone()
    db.close()
    assert versions == [(head_revision(),)] and head_revision() is not None
    assert count == (4,)


def _processes(url: str, tmp_path: Path, count: int, rows: int) -> list[subprocess.Popen[str]]:
    """``count`` workers (tests/unit/ledger_worker.py) released at one moment."""
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    workers = []
    for n in range(count):
        ready = tmp_path / f"ready-{n}"
        args = [sys.executable, "-m", "tests.unit.ledger_worker", url, str(ready), str(go)]
        workers.append(
            subprocess.Popen(
                [*args, str(rows), f"p{n}"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{n}").exists() for n in range(count)):
        assert time.monotonic() < deadline, "the workers never started"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
        time.sleep(0.02)
    go.touch()
    return workers


def test_processes_opening_one_fresh_database_at_once_all_write(url: str, tmp_path: Path) -> None:
    """Three processes migrate one empty database at the same moment (only one may create
    the table; the others must wait, not fail) and then write into it together: every row
    arrives (SQLite's writers wait for each other's lock instead of dropping rows)."""
    rows = 200
    workers = _processes(url, tmp_path, 3, rows)
    outcomes = [(w.wait(timeout=120), w.communicate()[1]) for w in workers]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes

    async def count() -> tuple[int, set[str]]:
        store = LedgerStore(url)
        await store.open()
        found = await store.fetch()
        await store.close()
        return len(found), {r["api_key"] for r in found}

    assert asyncio.run(count()) == (3 * rows, {"p0", "p1", "p2"})


async def test_a_file_locked_at_start_is_waited_for_not_moved_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holding the file's write lock past the busy timeout is no damage: the
    ledger stays off, keeps the file as it is, and opens once the lock is gone."""
    path = tmp_path / "usage.sqlite"
    url = f"sqlite+aiosqlite:///{path}"
    first = Ledger(url)
    await first.open()
    assert await first.add_rows([make_row(ts=time.time(), model="kept")]) == 1
    await first.close()
    monkeypatch.setattr(ledger_store, "SQLITE_BUSY_TIMEOUT_MS", 50)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    ledger = Ledger(url, reopen_interval=0.02)
    try:
        assert not await ledger.open()
        assert "locked" in ledger.error
        assert list(tmp_path.glob("usage.sqlite.broken-*")) == []
    finally:
        holder.rollback()
        holder.close()
    deadline = time.monotonic() + 10
    while not ledger.available:
        assert time.monotonic() < deadline, ledger.error
        await asyncio.sleep(0.02)
    assert [row["model"] for row in await ledger.fetch()] == ["kept"]
    await ledger.close()


async def test_client_key_limits_are_seeded_when_a_late_ledger_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger that opens after the start still seeds client-keys' day and month counts,
    without lowering what was counted meanwhile."""
    path = tmp_path / "usage.sqlite"
    url = f"sqlite+aiosqlite:///{path}"
    first = Ledger(url)
    await first.open()
    earlier = [
        make_row(ts=time.time() - 60, api_key="team-a", input_tokens=700, cost_usd=0.5),
        make_row(ts=time.time() - 50, api_key="team-b", input_tokens=10, cost_usd=0.001),
    ]
    assert await first.add_rows(earlier) == 2
    await first.close()
    monkeypatch.setattr(ledger_store, "SQLITE_BUSY_TIMEOUT_MS", 50)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    ledger = Ledger(url, reopen_interval=0.02)
    limits = KeyLimits(lambda: ledger.prices)
    try:
        assert not await ledger.open()
        await limits.load(ledger)  # the start: nothing to seed from
        assert limits.tokens == {}
        limits.add("team-b", 50, 0.01, time.time())  # counted while the ledger was off
        ledger.on_late_open = functools.partial(limits.load, ledger)
    finally:
        holder.rollback()
        holder.close()
    deadline = time.monotonic() + 10
    while "team-a" not in limits.tokens:
        assert time.monotonic() < deadline, ledger.error
        await asyncio.sleep(0.02)
    assert limits.tokens["team-a"][1] == 700 and limits.costs["team-a"][1] == 0.5
    # Not lowered to the ledger's 10: what was counted meanwhile may not all be written.
    assert limits.tokens["team-b"][1] == 50 and limits.costs["team-b"][1] == 0.01
    await ledger.close()
