"""`cliproxy usage`: the last day's requests, tokens and cost by model and account, read from
the usage ledger (usage-database) of the config."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cliproxy.cli_auth import ConfigOption, _load_config

HoursOption = Annotated[
    float, typer.Option("--hours", min=0.01, help="How far back to look (default: 24 h).")
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="The ledger: a SQLite file or a postgresql:// URL (default: the config's "
        "usage-database).",
    ),
]


def usage(
    config: ConfigOption = None, hours: HoursOption = 24.0, database: DatabaseOption = None
) -> None:
    """Requests, tokens and cost of the last day, by model and account."""
    from cliproxy.usage.ledger import Ledger

    console = Console(highlight=False)
    cfg = _load_config(None, config, console)
    if database is not None:
        # A URL as usage-database takes it; anything else names a file.
        where = database if "://" in database else str(Path(database).expanduser())
        cfg = cfg.model_copy(update={"usage_database": where})
    ledger = Ledger(cfg.usage_database_url)
    path = ledger.store.path
    if path is not None and not path.exists():
        console.print(f"No usage recorded yet ({escape(str(path))} does not exist).")
        return
    rows = asyncio.run(_read(ledger, time.time() - hours * 3600))
    if rows is None:
        console.print(f"[red]error[/] {escape(ledger.error)}")
        raise typer.Exit(1)
    span = f"{hours:g} h"
    console.print(f"Usage of the last {span} from {escape(ledger.where)}")
    if not rows:
        console.print("No requests in that time.")
        return
    console.print(usage_table(rows))
    if any(row["subscription"] for row in rows):
        console.print("≈: accounts (subscriptions): what the same tokens would cost on the API")


async def _read(ledger: Any, since: float) -> list[dict[str, Any]] | None:
    from cliproxy.usage.ledger import REQUEST
    from cliproxy.usage.ledger_store import Filters

    # Never repair from here: a broken file is the server's to move aside.
    if not await ledger.open(repair=False, retry=False):
        return None
    try:
        rows: list[dict[str, Any]] = await ledger.fetch(Filters(since=since, kind=REQUEST))
        return rows
    finally:
        await ledger.close()


def _account(row: Mapping[str, Any]) -> str:
    if row["source"] and row["auth_index"]:
        return f"{row['source']} ({row['auth_index']})"
    return row["source"] or row["auth_index"] or "-"


def usage_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    tallies: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["model"] or "-", _account(row))
        tally = tallies.setdefault(
            key,
            {
                "requests": 0,
                "failed": 0,
                "input": 0,
                "output": 0,
                "cached": 0,
                "cost": 0.0,
                "priced": False,
                "subscription": False,
            },
        )
        tally["requests"] += 1
        tally["failed"] += bool(row["failed"])
        tally["input"] += row["input_tokens"]
        tally["output"] += row["output_tokens"]
        tally["cached"] += row["cached_tokens"]
        if row["cost_usd"] is not None:
            tally["cost"] += row["cost_usd"]
            tally["priced"] = True
        tally["subscription"] |= bool(row["subscription"])
    table = Table(title="Requests, tokens and cost by model and account")
    for name in ("Model", "Account"):
        table.add_column(name)
    for name in ("Requests", "Failed", "Input", "Output", "Cached", "Cost (USD)"):
        table.add_column(name, justify="right")
    totals = {"requests": 0, "failed": 0, "input": 0, "output": 0, "cached": 0, "cost": 0.0}
    for (model, account), tally in sorted(tallies.items()):
        for name in totals:
            totals[name] += tally[name]
        cost = (
            f"{'≈' if tally['subscription'] else ''}{tally['cost']:.4f}" if tally["priced"] else "-"
        )
        table.add_row(
            escape(model),
            escape(account),
            str(tally["requests"]),
            str(tally["failed"]),
            f"{tally['input']:,}",
            f"{tally['output']:,}",
            f"{tally['cached']:,}",
            cost,
        )
    table.add_section()
    table.add_row(
        "Total",
        "",
        str(totals["requests"]),
        str(totals["failed"]),
        f"{totals['input']:,}",
        f"{totals['output']:,}",
        f"{totals['cached']:,}",
        f"{totals['cost']:.4f}",
    )
    return table
