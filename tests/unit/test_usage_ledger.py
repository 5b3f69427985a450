"""The usage ledger on a real SQLite file: events become rows off the request path, old rows are
pruned, a failing database is logged and counted (never raised), and costs come from the
price table or the config's model-prices."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cliproxy.config import parse_config_text
from cliproxy.config.schema import ModelPrice
from cliproxy.model import ErrorKind
from cliproxy.usage.events import AttemptOutcome, RequestOutcome
from cliproxy.usage.ledger import ATTEMPT, DAY, REQUEST, CredentialInfo, Ledger, make_row
from cliproxy.usage.ledger_store import Filters
from cliproxy.usage.ledger_views import summary
from cliproxy.usage.prices import Prices, Tokens
from tests.postgres_db import ledger_url


def _request(**changes: object) -> RequestOutcome:
    fields: dict[str, object] = {
        "client_key": "sk-a…cdef",
        "client_protocol": "openai_chat",
        "upstream_protocol": "anthropic",
        "requested_model": "sonnet",
        "upstream_model": "claude-sonnet-4-5",
        "credential_id": "claude-api-key[0]",
        "provider": "claude-api-key",
        "path": "translated",
        "stream": True,
        "status": 200,
        "error_kind": None,
        "ending": "completed",
        "input_tokens": 100,
        "output_tokens": 50,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "latency": 0.5,
        "first_token": 0.1,
        "attempts": 1,
        "bytes_out": 10,
    }
    fields.update(changes)
    return RequestOutcome(**fields)  # type: ignore[arg-type]


def _attempt(status: int) -> AttemptOutcome:
    return AttemptOutcome(
        credential_id="claude-api-key[0]",
        provider="claude-api-key",
        upstream_model="claude-sonnet-4-5",
        requested_model="sonnet",
        status=status,
        error_kind=ErrorKind.SERVER if status >= 400 else None,
        latency=0.2,
        number=1,
    )


def _resolve(credential_id: str) -> CredentialInfo:
    return CredentialInfo("abcdef0123456789", "sk-u…key1", False)


def _ledger(tmp_path: Path, **options: object) -> Ledger:
    url = f"sqlite+aiosqlite:///{tmp_path / 'usage.sqlite'}"
    return Ledger(url, resolver=_resolve, flush_interval=0.01, **options)  # type: ignore[arg-type]


async def test_events_become_rows(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    await ledger.open()
    assert not (tmp_path / "usage.sqlite").exists()  # created with the first record
    ledger.on_attempt(_attempt(500))
    ledger.on_attempt(_attempt(200))  # a successful attempt is the request's own record
    ledger.on_request(_request())
    rows = sorted(await ledger.fetch(), key=lambda row: str(row["kind"]))
    assert [row["kind"] for row in rows] == [ATTEMPT, REQUEST]
    attempt, request = rows
    assert (attempt["failed"], attempt["status"], attempt["error_kind"]) == (True, 500, "server")
    assert request["auth_index"] == "abcdef0123456789"
    assert (request["model"], request["upstream_model"]) == ("sonnet", "claude-sonnet-4-5")
    assert request["ttft_ms"] == pytest.approx(100)
    assert request["cost_usd"] > 0  # claude-sonnet-4-5 from the price table
    assert await ledger.count(Filters(kind=REQUEST)) == 1
    await ledger.close()
    assert (tmp_path / "usage.sqlite").exists()


async def test_recording_off(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, enabled=lambda: False)
    await ledger.open()
    ledger.on_request(_request())
    ledger.on_attempt(_attempt(500))
    assert await ledger.fetch() == []
    await ledger.close()
    assert not (tmp_path / "usage.sqlite").exists()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"stream": False, "first_token": None, "client_key_name": "team"},
        {"ending": "error", "status": 529, "error_kind": ErrorKind.OVERLOADED, "credential_id": ""},
        {"cached_tokens": 7, "reasoning_tokens": 3, "latency": 1.234_567_89},
    ],
)
def test_the_request_path_row_is_make_rows_row(changes: dict[str, object]) -> None:
    """on_request writes its row out by hand (it runs once per request); it must be the row,
    dedup key included, that make_row builds from the same fields, or an import of an export
    would record the same request twice."""
    now = 1_790_000_000.123_456_7
    ledger = Ledger("sqlite+aiosqlite:///unused", resolver=_resolve, clock=lambda: now)
    event = _request(**changes)
    ledger.on_request(event)
    (row,) = ledger._rows_of(ledger._pending)
    info = _resolve("") if event.credential_id else CredentialInfo("", "", False)
    expected = make_row(
        ts=now - event.latency,
        failed=event.ending != "completed",
        api_key=event.client_key_name or event.client_key,
        auth_index=info.auth_index,
        source=info.source,
        subscription=info.subscription,
        provider=event.provider,
        model=event.requested_model,
        upstream_model=event.upstream_model,
        client_protocol=event.client_protocol,
        upstream_protocol=event.upstream_protocol,
        status=event.status,
        error_kind=event.error_kind.value if event.error_kind else None,
        stream=event.stream,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cached_tokens=event.cached_tokens,
        reasoning_tokens=event.reasoning_tokens,
        latency_ms=round(event.latency * 1000, 3),
        ttft_ms=round(event.first_token * 1000, 3) if event.first_token is not None else None,
    )
    # A request's row is priced as it is made; make_row leaves pricing to the writer.
    tokens = Tokens(event.input_tokens, event.output_tokens, event.cached_tokens)
    cost = ledger.prices.cost(event.requested_model, event.upstream_model, event.provider, tokens)
    assert row["cost_usd"] == pytest.approx(cost, rel=1e-9)
    expected["cost_usd"] = row["cost_usd"]
    assert row == expected
    assert list(row) == list(expected)


async def test_old_records_are_pruned(tmp_path: Path) -> None:
    now = time.time()
    ledger = _ledger(tmp_path, retention_days=7)
    await ledger.open()
    old = make_row(ts=now - 8 * DAY, model="old", total_tokens=1)
    recent = make_row(ts=now - 6 * DAY, model="recent", total_tokens=1)
    assert await ledger.add_rows([old, recent]) == 2
    assert await ledger.add_rows([dict(old), dict(recent)]) == 0  # de-duplicated
    await ledger.close()
    reopened = _ledger(tmp_path, retention_days=7)
    await reopened.open()  # prunes at start (and hourly after)
    assert [row["model"] for row in await reopened.fetch()] == ["recent"]
    await reopened.close()


async def test_a_failing_database_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = _ledger(tmp_path)
    await ledger.open()
    ledger.on_request(_request())
    await ledger.flush()
    with sqlite3.connect(tmp_path / "usage.sqlite") as other:
        other.execute("DROP TABLE usage_records")
    with caplog.at_level(logging.ERROR, logger="cliproxy.usage"):
        ledger.on_request(_request())
        ledger.on_request(_request(requested_model="other"))
        await ledger.flush()
    assert ledger.write_failures == 1 and ledger.dropped == 2
    assert str(tmp_path / "usage.sqlite") in caplog.text
    await ledger.close()


async def test_an_unusable_location_leaves_the_ledger_off(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    ledger = Ledger(f"sqlite+aiosqlite:///{blocker / 'sub' / 'usage.sqlite'}")
    # Nothing to open until the first record; that one finds the place unusable.
    await ledger.open()
    ledger.on_request(_request())
    await ledger.flush()
    assert not ledger.available and "cannot be used" in ledger.error
    await ledger.close()


def test_summary_percentiles_and_alignment() -> None:
    base = 1_764_600_000.0  # 2025-12-01T14:40:00Z
    rows = [
        {**make_row(ts=base + i, model="m", latency_ms=float(ms)), "id": i}
        for i, ms in enumerate([10, 20, 30, 40, 1000])
    ]
    [bucket] = summary(rows, "model", "hour")
    assert bucket["start"] == "2025-12-01T14:00:00Z"
    assert (bucket["requests"], bucket["latency_ms_p50"], bucket["latency_ms_p95"]) == (
        5,
        30.0,
        1000.0,
    )
    [day] = summary(rows, "model", "day")
    assert day["start"] == "2025-12-01T00:00:00Z"


# ----- prices ----------------------------------------------------------------------------------


def test_model_prices_override_the_table() -> None:
    prices = Prices({"Sonnet": ModelPrice(input=1.0, output=2.0, cached=0.5)})
    tokens = Tokens(input=1_000_000, output=1_000_000, cached=400_000)
    # 600k input at $1, 400k cached at $0.5, 1M output at $2.
    assert prices.cost("sonnet", "claude-sonnet-4-5", "claude", tokens) == pytest.approx(2.8)
    # Without `cached`, cache reads cost the input price.
    plain = Prices({"x": ModelPrice(input=1.0, output=1.0)})
    assert plain.cost("x", "x", "openai", tokens) == pytest.approx(2.0)


def test_table_prices_and_unknown_models() -> None:
    prices = Prices()
    tokens = Tokens(input=1000, output=1000)
    # A subscription account's equivalent API cost: the vendor's list price for the model.
    assert prices.cost("claude-opus-4-5", "claude-opus-4-5", "claude", tokens) > 0
    assert prices.cost("my-alias", "gpt-4o", "codex-api-key", tokens) > 0  # the upstream name
    assert prices.cost("no-such-model-xyz", "no-such-model-xyz", "chat-sim", tokens) is None
    assert prices.cost("demo-echo", "demo-echo", "demo", tokens) == 0.0
    assert prices.cost("no-such-model-xyz", "", "x", Tokens()) == 0.0


def test_a_settled_price_answers_as_the_first_lookup_did() -> None:
    """Prices keeps what prices a (requested, upstream, provider) after the first lookup; the
    answers from then on must be those a fresh table gives for any tokens."""
    names = [
        ("sonnet", "claude-sonnet-4-5", "claude"),
        ("my-alias", "gpt-4o", "codex-api-key"),
        ("no-such-model-xyz", "no-such-model-xyz", "chat-sim"),
        ("demo-echo", "demo-echo", "demo"),
        ("priced", "anything", "openai"),
    ]
    overrides = {"priced": ModelPrice(input=3.0, output=4.0)}
    kept = Prices(overrides)
    sizes = [Tokens(1000, 500, 200), Tokens(), Tokens(250_000, 10, 0), Tokens(7, 3, 7)]
    for tokens in sizes:
        for requested, upstream, provider in names:
            fresh = Prices(overrides).cost(requested, upstream, provider, tokens)
            assert kept.cost(requested, upstream, provider, tokens) == fresh
    # Each settled after its first lookup; the demo's are free before any lookup.
    assert set(kept._plans) == set(names) - {("demo-echo", "demo-echo", "demo")}


def test_config_keys() -> None:
    config = parse_config_text(
        "auth-dir: /tmp/a\nmodel-prices: {m: {input: 1, output: 2}}\n", "inline"
    )
    assert config.usage_statistics_enabled is True
    assert config.usage_retention_days == 90
    assert config.usage_database_url == "sqlite+aiosqlite:////tmp/a/usage.sqlite"
    assert config.model_prices["m"].output == 2.0 and config.model_prices["m"].cached is None
    elsewhere = parse_config_text("usage-database: sqlite:///tmp/u.db\n", "inline")
    assert elsewhere.usage_database_url == "sqlite+aiosqlite:///tmp/u.db"
    assert config.warnings == [] and config.unsupported_keys() == []


# ----- the same queries on SQLite and PostgreSQL -----------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ledger_url(request.param, tmp_path) as url:
        yield url


async def test_every_query_reads_the_same_on_both_backends(backend_url: str) -> None:
    """What the management routes, the console, client-keys' limits and `cliproxy usage` ask
    of the ledger, on each backend."""
    now = time.time()
    ledger = Ledger(backend_url, resolver=_resolve, flush_interval=0.01, retention_days=7)
    await ledger.open()
    ledger.on_request(_request(client_key_name="team-a"))
    ledger.on_request(_request(client_key_name="team-b", status=502, ending="failed"))
    ledger.on_attempt(_attempt(500))
    old = make_row(ts=now - 8 * DAY, model="old", api_key="team-a")
    assert await ledger.add_rows([old, make_row(ts=now - 3600, model="earlier", api_key="x")]) == 2
    assert await ledger.add_rows([dict(old)]) == 0

    rows = await ledger.fetch(Filters(kind=REQUEST))
    assert [row["model"] for row in rows] == ["old", "earlier", "sonnet", "sonnet"]  # by time
    assert all(type(row["failed"]) is bool and type(row["stream"]) is bool for row in rows)
    assert await ledger.count(Filters(kind=REQUEST, failed=True)) == 1
    assert await ledger.count(Filters(status=502, api_key="team-b")) == 1
    assert await ledger.count(Filters(kind=ATTEMPT, auth_index="abcdef0123456789")) == 1
    newest = await ledger.fetch(Filters(kind=REQUEST), limit=2, offset=1, newest_first=True)
    assert [row["api_key"] for row in newest] == ["team-a", "x"]
    ids = sorted(row["id"] for row in rows)  # the order they were recorded (/usage-queue's)
    after = await ledger.fetch(Filters(kind=REQUEST, after_id=ids[0]), limit=10, by_id=True)
    assert [row["id"] for row in after] == ids[1:]
    recent = await ledger.fetch(Filters(since=now - DAY, until=now + DAY, kind=REQUEST))
    assert len(recent) == 3
    totals = await ledger.totals(now - DAY)
    assert set(totals) == {"team-a", "team-b", "x"}
    assert totals["team-a"][0] == 150 and totals["team-a"][1] > 0
    [bucket] = summary([row for row in recent if row["api_key"] == "team-a"], "api-key", "day")
    assert (bucket["group"], bucket["requests"], bucket["input_tokens"]) == ("team-a", 1, 100)
    await ledger.close()

    reopened = Ledger(backend_url, retention_days=7)
    await reopened.open()  # pruning at start, on either backend
    assert "old" not in {row["model"] for row in await reopened.fetch()}
    await reopened.close()


def test_a_ledger_made_with_its_first_record_loads_alembic_at_open(tmp_path: Path) -> None:
    """The file waits for the first record, the migration machinery does not: imported then,
    in the middle of serving, it held up the event loop for a tenth of a second or more."""
    script = f"""
import asyncio, sys
from cliproxy.usage.ledger import Ledger
async def main():
    ledger = Ledger("sqlite+aiosqlite:///{tmp_path / "usage.sqlite"}")
    assert "alembic" not in sys.modules
    await ledger.open()
    assert "alembic" in sys.modules, "alembic is imported only with the first record"
    await ledger.close()
asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "usage.sqlite").exists()
