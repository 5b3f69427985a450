"""One usage ledger for several instances (docs/scaling.md): two real cliproxy servers on one
PostgreSQL database (or one SQLite file) both write it, and each one's /v0/management/usage
shows every request. PostgreSQL away at start or mid-run (cut by a TCP relay, so the shared
server keeps running for everyone else): requests are served as ever, the failure is logged
once naming the database with its password masked, the usage routes answer 503 saying so (as
does `cliproxy usage`), and the ledger writes again once the database is back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from cliproxy.cli import app as cli_app
from cliproxy.usage import ledger as ledger_module
from tests.e2e.tcp_relay import TcpRelay
from tests.postgres_db import PASSWORD, fresh_database
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim

MGMT = "shared-ledger-management-key"
CONFIG = """
request-retry: 0
max-retry-interval: 0
remote-management:
  secret-key: {mgmt}
usage-database: {database}
claude-api-key:
  - api-key: up-claude-key
    base-url: {claude}
    models: [{{name: up-claude, alias: sonnet}}]
"""


def _config(database: str, sim: AnthropicSim) -> str:
    return CONFIG.format(mgmt=MGMT, database=database, claude=sim.base_url)


def _ask(proxy: ProxyServer) -> int:
    body = {"model": "sonnet", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(
        f"{proxy.base_url}/v1/messages",
        json=body,
        headers={"anthropic-version": "2023-06-01"},
        timeout=10,
    )
    return reply.status_code


def _usage(proxy: ProxyServer) -> httpx.Response:
    return httpx.get(
        f"{proxy.base_url}/v0/management/usage",
        headers={"authorization": f"Bearer {MGMT}"},
        timeout=10,
    )


def _wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.05)


def _total(proxy: ProxyServer) -> int | None:
    reply = _usage(proxy)
    if reply.status_code != 200:
        return None
    total: int = reply.json()["usage"]["total_requests"]
    return total


@pytest.fixture(params=["postgresql", "sqlite-file"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite-file":
        yield str(tmp_path / "shared-usage.sqlite")
        return
    with fresh_database() as url:
        yield url


def test_two_instances_write_one_ledger_and_each_shows_all(
    database: str, anthropic_sim: AnthropicSim, tmp_path: Path
) -> None:
    config = _config(database, anthropic_sim)
    with ProxyServer(config) as first, ProxyServer(config) as second:
        for _ in range(3):
            assert _ask(first) == 200
        for _ in range(2):
            assert _ask(second) == 200
        for proxy in (first, second):
            _wait_for(f"{proxy.base_url} shows all 5", lambda p=proxy: _total(p) == 5)
        usage = _usage(second).json()["usage"]
        details = usage["apis"]
        [model] = [m for api in details.values() for m in api["models"].values()]
        assert len(model["details"]) == 5
        requests = httpx.get(
            f"{first.base_url}/v0/management/usage/requests",
            headers={"authorization": f"Bearer {MGMT}"},
            timeout=10,
        ).json()
        ids = [r["id"] for r in requests["requests"]]
        assert requests["total"] == 5 and len(set(ids)) == 5
    # `cliproxy usage --database` reads the same ledger, a file or a URL, whatever the config.
    bare = tmp_path / "config.yaml"
    bare.write_text("port: 8399\n")
    printed = CliRunner().invoke(
        cli_app, ["usage", "--config", str(bare), "--database", database], env={"COLUMNS": "200"}
    )
    assert printed.exit_code == 0, printed.output
    assert "sonnet" in printed.output and " 5 " in printed.output, printed.output


@contextlib.contextmanager
def _relayed_database() -> Iterator[tuple[str, TcpRelay]]:
    """A fresh database reached through a relay the test can cut."""
    with fresh_database() as url, TcpRelay(urlsplit(url).port or 5432) as relay:
        parts = urlsplit(url)
        netloc = f"{parts.username}:{PASSWORD}@127.0.0.1:{relay.port}"
        yield parts._replace(netloc=netloc).geturl(), relay


def _masked_netloc(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.username}:***@{parts.hostname}:{parts.port}"


def _secret_nowhere(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    assert PASSWORD not in caplog.text
    for text in texts:
        assert PASSWORD not in text


def _records(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if words in r.getMessage()]


def test_postgres_away_at_start(
    anthropic_sim: AnthropicSim,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(ledger_module, "REOPEN_INTERVAL", 0.2)
    with _relayed_database() as (url, relay), caplog.at_level(logging.INFO):
        relay.cut()
        with ProxyServer(_config(url, anthropic_sim)) as proxy:
            for _ in range(3):
                assert _ask(proxy) == 200  # served as ever
            reply = _usage(proxy)
            assert reply.status_code == 503
            error: str = reply.json()["error"]
            assert f"postgresql+asyncpg://{_masked_netloc(url)}/" in error
            time.sleep(0.5)  # a few quiet retries
            assert len(_records(caplog, "cannot be used")) == 1, caplog.text
            config = tmp_path / "config.yaml"
            config.write_text(f"usage-database: {url}\n")
            printed = CliRunner().invoke(cli_app, ["usage", "--config", str(config)])
            assert printed.exit_code == 1 and _masked_netloc(url) in printed.output
            relay.restore()
            # Back: the requests of the meantime waited, and are written now.
            _wait_for("the ledger opens", lambda: _total(proxy) == 3)
            assert _records(caplog, "answers now")
            _secret_nowhere(caplog, error, printed.output)


def test_postgres_away_mid_run(
    anthropic_sim: AnthropicSim, caplog: pytest.LogCaptureFixture
) -> None:
    with _relayed_database() as (url, relay), ProxyServer(_config(url, anthropic_sim)) as proxy:
        assert _ask(proxy) == 200
        _wait_for("the first request is recorded", lambda: _total(proxy) == 1)
        ledger = proxy.state.ledger
        with caplog.at_level(logging.INFO):
            relay.cut()
            for _ in range(3):
                assert _ask(proxy) == 200
                _wait_for("a write fails", lambda: ledger.write_failures >= 1)
            reply = _usage(proxy)
            assert reply.status_code == 503, reply.text
            error: str = reply.json()["error"]
            assert error.startswith(f"usage database postgresql+asyncpg://{_masked_netloc(url)}/")
            assert "Traceback" not in error and "[SQL:" not in error
            failures = _records(caplog, "could not write")
            assert len(failures) == 1 and _masked_netloc(url) in failures[0].getMessage()
            relay.restore()
            assert _ask(proxy) == 200
            # The records of the outage were dropped (the ledger's policy); later ones are kept.
            _wait_for("the ledger writes again", lambda: _total(proxy) == 2)
            assert _records(caplog, "answers again")
            _secret_nowhere(caplog, error)


def test_two_instances_starting_together_share_a_fresh_database(
    anthropic_sim: AnthropicSim,
) -> None:
    """Both migrate the empty database as they start and neither is left without its ledger
    (across processes the advisory lock makes them take turns: tests/unit/
    test_ledger_migrations.py starts three processes at once)."""
    with fresh_database() as url:
        config = _config(url, anthropic_sim)
        servers: list[Any] = [ProxyServer(config), ProxyServer(config)]
        with contextlib.ExitStack() as stack:
            threads = [threading.Thread(target=s.start) for s in servers]
            for thread in threads:
                thread.start()
            for thread, server in zip(threads, servers, strict=True):
                thread.join(30)
                stack.callback(server.stop)
            assert all(s.state.ledger.available for s in servers)
            for server in servers:
                assert _ask(server) == 200
            _wait_for("both requests in one ledger", lambda: _total(servers[0]) == 2)
