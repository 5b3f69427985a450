"""One process of a multi-process ledger test: opens the ledger at URL (migrating it) and
writes ROWS records in small batches, all processes at once.

    python -m tests.unit.ledger_worker URL READY_FILE GO_FILE ROWS TAG

It touches READY_FILE once imported, waits for GO_FILE (so every process opens the database
at the same moment), and exits 0 when all its records went in, else 1 with the error.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from cliproxy.usage.ledger import make_row
from cliproxy.usage.ledger_store import LedgerStore, describe_error

BATCH = 25


async def work(url: str, rows: int, tag: str) -> None:
    store = LedgerStore(url)
    await store.open()
    try:
        base = time.time()
        for start in range(0, rows, BATCH):
            batch = [
                make_row(ts=base + i / 1000, model=f"{tag}-{i}", api_key=tag)
                for i in range(start, min(start + BATCH, rows))
            ]
            await store.insert(batch, counted=False)
    finally:
        await store.close()


def main() -> int:
    url, ready, go, rows, tag = sys.argv[1:6]
    Path(ready).touch()
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            print("never told to go", file=sys.stderr)
            return 1
        time.sleep(0.005)
    try:
        asyncio.run(work(url, int(rows), tag))
    except Exception as error:
        print(f"{type(error).__name__}: {describe_error(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
