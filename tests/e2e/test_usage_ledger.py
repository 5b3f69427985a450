"""The usage ledger over HTTP: requests through the official SDKs, then the management usage
routes (CLIProxyAPI's snapshot, our summary and record list, export and import), with the
auth-index the management lists show; the ledger file survives a restart, a broken one is
moved aside, `usage-statistics-enabled: false` records nothing, and `cliproxy usage` prints the
table. The tests marked ``on_both`` run once on the default SQLite file and once on a fresh
PostgreSQL database of their own (tests/postgres_db.py)."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from typer.testing import CliRunner

from cliproxy.cli import app as cli_app
from tests.postgres_db import PASSWORD, fresh_database
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, OpenAIChatSim, Reply
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim

CLIENT_KEY = "sk-client-abcdef-123456"
MASKED = "sk-c…3456"
MGMT = "usage-management-key"
ACCOUNT_TOKEN = "claude-account-token"
FAR = "2099-01-01T00:00:00Z"

CONFIG = """
auth-dir: {auth_dir}
api-keys: [{client_key}]
request-retry: 0
max-retry-interval: 0
remote-management:
  secret-key: {mgmt}
model-prices:
  priced-model: {{input: 1.0, output: 2.0, cached: 0.5}}
openai-compatibility:
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: up-chat-key}}]
    models: [{{name: up-chat, alias: priced-model}}]
claude-api-key:
  - api-key: up-claude-key
    base-url: {claude}
    models: [{{name: claude-sonnet-4-5, alias: sonnet}}, {{name: up-broken, alias: broken}}]
{extra}
"""


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[OpenAIChatSim, AnthropicSim, ClaudeOAuthSim]]:
    with (
        OpenAIChatSim() as chat,
        AnthropicSim() as claude,
        ClaudeOAuthSim(api_keys={ACCOUNT_TOKEN}) as account,
    ):
        yield chat, claude, account


Sims = tuple[OpenAIChatSim, AnthropicSim, ClaudeOAuthSim]
Start = Callable[..., ProxyServer]
on_both = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def ledger_line(backend: str) -> Iterator[Callable[[Path], str]]:
    """The config line that puts the ledger of ``auth_dir`` where the backend says: nothing
    for SQLite (the file in the auth dir), a fresh database per auth dir for PostgreSQL."""
    databases: dict[Path, str] = {}
    with contextlib.ExitStack() as stack:

        def line(auth_dir: Path) -> str:
            if backend == "sqlite":
                return ""
            if auth_dir not in databases:
                databases[auth_dir] = stack.enter_context(fresh_database())
            return f"usage-database: {databases[auth_dir]}\n"

        yield line


def _write_account(auth_dir: Path, base_url: str) -> None:
    raw = {
        "type": "claude",
        "access_token": ACCOUNT_TOKEN,
        "refresh_token": "rt",
        "email": "pro@example.com",
        "expired": FAR,
        "base_url": base_url,
    }
    (auth_dir / "claude-pro.json").write_text(json.dumps(raw))


@pytest.fixture
def start(
    sims: Sims, tmp_path: Path, backend: str, ledger_line: Callable[[Path], str]
) -> Iterator[Start]:
    """Starts a proxy on ``auth_dir`` (default: this test's tmp dir, with one Claude account);
    every proxy started is stopped at the end."""
    chat, claude, account = sims
    for sim in sims:
        sim.reset()
    started: list[ProxyServer] = []

    def run(auth_dir: Path = tmp_path, extra: str = "") -> ProxyServer:
        auth_dir.mkdir(parents=True, exist_ok=True)
        _write_account(auth_dir, account.base_url)
        text = CONFIG.format(
            auth_dir=auth_dir,
            client_key=CLIENT_KEY,
            mgmt=MGMT,
            chat=chat.base_url,
            claude=claude.base_url,
            extra=ledger_line(auth_dir) + extra,
        )
        server = ProxyServer(text).start()
        started.append(server)
        assert server.state.ledger.store.dialect == backend
        return server

    yield run
    for server in started:
        server.stop()


def _mgmt(proxy: ProxyServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{proxy.base_url}/v0/management{path}",
        params=params,
        headers={"authorization": f"Bearer {MGMT}"},
        timeout=10,
    )


def _usage(proxy: ProxyServer, total: int | None = None) -> dict[str, Any]:
    """GET /usage, waiting (briefly) until it holds ``total`` requests: a reply's record is
    written just after its last byte."""
    deadline = time.monotonic() + 5
    while True:
        reply = _mgmt(proxy, "/usage")
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        if total is None or body["usage"]["total_requests"] >= total:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"usage never reached {total}: {body}")
        time.sleep(0.05)


def _openai(proxy: ProxyServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def _anthropic(proxy: ProxyServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0)


def _three_requests(proxy: ProxyServer, sims: Sims) -> None:
    chat, claude, account = sims
    chat.queue(Reply.text("priced", input_tokens=1000, output_tokens=500, cached_tokens=200))
    claude.queue(Reply.text("sonnet answer", input_tokens=40, output_tokens=10, chunk_size=3))
    account.queue(Reply.text("opus answer", input_tokens=30, output_tokens=20))
    _openai(proxy).chat.completions.create(
        model="priced-model", messages=[{"role": "user", "content": "hi"}]
    )
    with _anthropic(proxy).messages.stream(
        model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        stream.until_done()
    _anthropic(proxy).messages.create(
        model="claude-opus-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )


def _auth_indexes(proxy: ProxyServer) -> dict[str, str]:
    """The auth-index of each credential as the management lists show it."""
    found: dict[str, str] = {}
    compat = _mgmt(proxy, "/openai-compatibility").json()["openai-compatibility"]
    found["chat"] = compat[0]["api-key-entries"][0]["auth-index"]
    found["claude-key"] = _mgmt(proxy, "/claude-api-key").json()["claude-api-key"][0]["auth-index"]
    files = _mgmt(proxy, "/auth-files").json()["files"]
    found["account"] = next(f["auth_index"] for f in files if f["name"] == "claude-pro.json")
    return found


# ----- the snapshot, the summary, the records ---------------------------------------------------


@on_both
def test_sdk_requests_in_the_usage_snapshot(start: Start, sims: Sims) -> None:
    proxy = start()
    _three_requests(proxy, sims)
    body = _usage(proxy, total=3)
    usage = body["usage"]
    assert (usage["total_requests"], usage["success_count"], usage["failure_count"]) == (3, 3, 0)
    assert body["failed_requests"] == 0
    assert usage["total_tokens"] == 1500 + 50 + 50
    assert list(usage["apis"]) == [MASKED]  # the masked client key, never the key itself
    models = usage["apis"][MASKED]["models"]
    assert set(models) == {"priced-model", "sonnet", "claude-opus-4-5"}  # as the client asked
    indexes = _auth_indexes(proxy)
    [priced] = models["priced-model"]["details"]
    assert priced["tokens"] == {
        "input_tokens": 1000,
        "output_tokens": 500,
        "reasoning_tokens": 0,
        "cached_tokens": 200,
        "total_tokens": 1500,
    }
    assert priced["auth_index"] == indexes["chat"]
    assert priced["failed"] is False
    assert priced["timestamp"].endswith("Z") and priced["latency_ms"] >= 0
    assert models["sonnet"]["details"][0]["auth_index"] == indexes["claude-key"]
    [opus] = models["claude-opus-4-5"]["details"]
    assert opus["auth_index"] == indexes["account"]
    assert opus["source"] == "pro@example.com"
    today = priced["timestamp"][:10]
    assert usage["requests_by_day"] == {today: 3}
    assert sum(usage["requests_by_hour"].values()) == 3
    assert all(len(hour) == 2 for hour in usage["requests_by_hour"])
    assert sum(usage["tokens_by_day"].values()) == usage["total_tokens"]
    assert CLIENT_KEY not in json.dumps(body)


@on_both
def test_summary_by_model_with_cost(start: Start, sims: Sims) -> None:
    proxy = start()
    _three_requests(proxy, sims)
    _usage(proxy, total=3)
    reply = _mgmt(proxy, "/usage/summary", **{"group-by": "model", "bucket": "hour"})
    assert reply.status_code == 200, reply.text
    buckets = {b["group"]: b for b in reply.json()["buckets"]}
    assert set(buckets) == {"priced-model", "sonnet", "claude-opus-4-5"}
    priced = buckets["priced-model"]
    assert (priced["requests"], priced["failed"]) == (1, 0)
    assert (priced["input_tokens"], priced["output_tokens"], priced["cached_tokens"]) == (
        1000,
        500,
        200,
    )
    # model-prices: 800 input at $1, 200 cached at $0.5, 500 output at $2 per million.
    assert priced["cost_usd"] == pytest.approx(0.0019)
    assert priced["latency_ms_p50"] is not None and priced["latency_ms_p95"] >= 0
    # From the price table: an API key's cost, and an account's equivalent API cost.
    assert buckets["sonnet"]["cost_usd"] > 0
    assert buckets["claude-opus-4-5"]["cost_usd"] > 0
    start_time = priced["start"]
    assert start_time.endswith(":00:00Z")  # UTC, aligned to the hour
    by_day = _mgmt(proxy, "/usage/summary", **{"group-by": "account", "bucket": "day"}).json()
    indexes = _auth_indexes(proxy)
    assert {b["group"] for b in by_day["buckets"]} == set(indexes.values())
    assert all(b["start"].endswith("T00:00:00Z") for b in by_day["buckets"])
    upstream = _mgmt(proxy, "/usage/summary", **{"group-by": "upstream-model"}).json()
    assert {b["group"] for b in upstream["buckets"]} == {"up-chat", "claude-sonnet-4-5"} | {
        "claude-opus-4-5"
    }
    # A window that holds none of them.
    old = _mgmt(proxy, "/usage/summary", **{"from": "2020-01-01T00:00:00Z", "to": "2020-01-02"})
    assert old.status_code == 200 and old.json()["buckets"] == []


@on_both
def test_summary_filters_and_minute_buckets(start: Start, sims: Sims) -> None:
    """The summary takes /usage/requests' exact-match filters (the console's Usage page
    narrows by them) and minute buckets (its last-hour view)."""
    proxy = start()
    _three_requests(proxy, sims)
    _usage(proxy, total=3)
    indexes = _auth_indexes(proxy)

    def groups(**params: str) -> dict[str, int]:
        reply = _mgmt(proxy, "/usage/summary", **params)
        assert reply.status_code == 200, reply.text
        found: dict[str, int] = {}
        for b in reply.json()["buckets"]:
            found[b["group"]] = found.get(b["group"], 0) + b["requests"]
        return found

    assert groups(**{"group-by": "model", "provider": "claude-api-key"}) == {"sonnet": 1}
    assert groups(**{"group-by": "provider", "model": "priced-model"}) == {
        "openai-compatibility:chat-sim": 1
    }
    by_account = {"group-by": "model", "auth-index": indexes["account"]}
    assert groups(**by_account) == {"claude-opus-4-5": 1}
    assert groups(**{"group-by": "account", "api-key": MASKED}) == {i: 1 for i in indexes.values()}
    assert groups(**{"api-key": "someone-else"}) == {}
    minutes = _mgmt(proxy, "/usage/summary", bucket="minute").json()
    assert minutes["bucket"] == "minute"
    assert sum(b["requests"] for b in minutes["buckets"]) == 3
    assert all(b["start"].endswith(":00Z") for b in minutes["buckets"])


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"group-by": "colour"}, "group-by"),
        ({"bucket": "week"}, "bucket"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "from"),
        ({"from": "0001-01-01T00:00:00Z"}, "from"),
    ],
)
def test_summary_refuses_bad_parameters(start: Start, params: dict[str, str], named: str) -> None:
    reply = _mgmt(start(), "/usage/summary", **params)
    assert reply.status_code == 400
    assert reply.json()["error"].startswith(f"{named}:")


@on_both
def test_failed_request_and_its_attempt(start: Start, sims: Sims) -> None:
    proxy = start()
    _chat, claude, _account = sims
    claude.queue(Reply.error(500, "upstream broke"))
    with pytest.raises(anthropic.APIStatusError):
        _anthropic(proxy).messages.create(
            model="broken", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    usage = _usage(proxy, total=1)["usage"]
    # One client request (failed); its failed attempt is a record of its own, not a request.
    assert (usage["total_requests"], usage["failure_count"]) == (1, 1)
    [detail] = usage["apis"][MASKED]["models"]["broken"]["details"]
    assert detail["failed"] is True
    attempts = _mgmt(proxy, "/usage/requests", kind="attempt").json()
    assert attempts["total"] >= 1
    attempt = attempts["requests"][0]
    assert (attempt["kind"], attempt["failed"], attempt["status"]) == ("attempt", True, 500)
    assert attempt["model"] == "broken" and attempt["upstream_model"] == "up-broken"
    assert attempt["auth_index"] == _auth_indexes(proxy)["claude-key"]
    failed = _mgmt(proxy, "/usage/requests", status="failed").json()
    assert failed["total"] == 1 and failed["requests"][0]["kind"] == "request"


@on_both
def test_request_list_pages_and_filters(start: Start, sims: Sims) -> None:
    proxy = start()
    _three_requests(proxy, sims)
    _usage(proxy, total=3)
    page = _mgmt(proxy, "/usage/requests", limit=2).json()
    assert (page["total"], len(page["requests"])) == (3, 2)
    rest = _mgmt(proxy, "/usage/requests", limit=2, offset=2).json()
    assert len(rest["requests"]) == 1
    ids = [r["id"] for r in page["requests"] + rest["requests"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    [sonnet] = _mgmt(proxy, "/usage/requests", model="sonnet").json()["requests"]
    assert (sonnet["stream"], sonnet["provider"], sonnet["upstream_model"]) == (
        True,
        "claude-api-key",
        "claude-sonnet-4-5",
    )
    assert sonnet["ttft_ms"] is not None and sonnet["ttft_ms"] <= sonnet["latency_ms"]
    [opus] = _mgmt(proxy, "/usage/requests", model="claude-opus-4-5").json()["requests"]
    assert opus["subscription"] is True and opus["ttft_ms"] is None
    assert _mgmt(proxy, "/usage/requests", provider="nobody").json()["total"] == 0
    assert _mgmt(proxy, "/usage/requests", limit="many").status_code == 400
    assert _mgmt(proxy, "/usage/requests", status="maybe").status_code == 400


# ----- persistence, export and import ----------------------------------------------------------


@on_both
def test_totals_survive_a_restart_and_the_cli_reads_them(
    start: Start, sims: Sims, tmp_path: Path, ledger_line: Callable[[Path], str]
) -> None:
    auth_dir = tmp_path / "kept"
    first = start(auth_dir)
    _three_requests(first, sims)
    before = _usage(first, total=3)
    first.stop()
    second = start(auth_dir)
    after = _usage(second)
    assert after == before

    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {auth_dir}\n{ledger_line(auth_dir)}")
    result = CliRunner().invoke(cli_app, ["usage", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    for expected in ("priced-model", "sonnet", "claude-opus-4-5", "pro@example.com", "Total"):
        assert expected in result.output
    assert "0.0019" in result.output  # the priced model's cost
    assert CLIENT_KEY not in result.output


def test_the_cli_without_a_ledger(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {tmp_path / 'empty'}\n")
    result = CliRunner().invoke(cli_app, ["usage", "--config", str(config)])
    assert result.exit_code == 0
    assert "No usage recorded yet" in result.output


@on_both
def test_export_then_import_is_idempotent(start: Start, sims: Sims, tmp_path: Path) -> None:
    source = start(tmp_path / "source")
    _three_requests(source, sims)
    _usage(source, total=3)
    exported = _mgmt(source, "/usage/export").json()
    assert exported["version"] == 1 and exported["exported_at"].endswith("Z")
    assert exported["usage"]["total_requests"] == 3

    def post(proxy: ProxyServer, body: Any) -> httpx.Response:
        return httpx.post(
            f"{proxy.base_url}/v0/management/usage/import",
            json=body,
            headers={"authorization": f"Bearer {MGMT}"},
        )

    # Into the ledger it came from: all of it is already there.
    again = post(source, exported).json()
    assert (again["added"], again["skipped"], again["total_requests"]) == (0, 3, 3)

    target = start(tmp_path / "target")
    first = post(target, exported)
    assert first.status_code == 200, first.text
    assert first.json() == {"added": 3, "skipped": 0, "total_requests": 3, "failed_requests": 0}
    second = post(target, exported).json()
    assert (second["added"], second["skipped"], second["total_requests"]) == (0, 3, 3)
    assert _usage(target)["usage"] == exported["usage"]

    # Version 0 (the bare snapshot) is read too; a foreign record is added once.
    foreign = {
        "version": 0,
        "usage": {
            "apis": {
                "team-key": {
                    "models": {
                        "gpt-4o": {
                            "details": [
                                {
                                    "timestamp": "2026-11-30T09:15:04.123456789+02:00",
                                    "latency_ms": 850,
                                    "source": "someone@example.com",
                                    "auth_index": "0123456789abcdef",
                                    "tokens": {"input_tokens": 10, "output_tokens": 5},
                                    "failed": False,
                                },
                                {"timestamp": "not a time"},
                            ]
                        }
                    }
                }
            }
        },
    }
    assert post(target, foreign).json()["added"] == 1
    assert post(target, foreign).json()["added"] == 0
    usage = _usage(target)["usage"]
    [detail] = usage["apis"]["team-key"]["models"]["gpt-4o"]["details"]
    assert detail["timestamp"] == "2026-11-30T07:15:04.123456Z"
    assert detail["tokens"]["total_tokens"] == 15
    # Shapes it cannot read are refused with the field named.
    assert post(target, {"version": 7, "usage": {}}).status_code == 422
    assert post(target, {"usage": {"apis": []}}).json()["error"].startswith("usage.apis")
    assert post(target, ["not", "an", "export"]).status_code == 422


# ----- a broken file, recording off ------------------------------------------------------------


def test_a_broken_database_is_moved_aside(
    start: Start, sims: Sims, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auth_dir = tmp_path / "broken"
    auth_dir.mkdir()
    database = auth_dir / "usage.sqlite"
    database.write_bytes(b"this is not a database; " * 100)
    with caplog.at_level(logging.ERROR, logger="cliproxy.usage"):
        proxy = start(auth_dir)
    assert any(str(database) in r.getMessage() for r in caplog.records), caplog.text
    [aside] = list(auth_dir.glob("usage.sqlite.broken-*"))
    assert aside.read_bytes().startswith(b"this is not a database")
    _three_requests(proxy, sims)
    assert _usage(proxy, total=3)["usage"]["total_requests"] == 3


@on_both
def test_requests_refused_for_their_key_are_not_recorded(start: Start, sims: Sims) -> None:
    proxy = start()
    stranger = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(
            model="priced-model", messages=[{"role": "user", "content": "hi"}]
        )
    _three_requests(proxy, sims)
    usage = _usage(proxy, total=3)["usage"]
    assert usage["total_requests"] == 3 and list(usage["apis"]) == [MASKED]


def test_recording_off_records_nothing(start: Start, sims: Sims) -> None:
    proxy = start(extra="usage-statistics-enabled: false")
    _three_requests(proxy, sims)
    time.sleep(0.3)
    usage = _usage(proxy)["usage"]
    assert usage["total_requests"] == 0 and usage["apis"] == {}
    setting = _mgmt(proxy, "/usage-statistics-enabled").json()
    assert setting == {"usage-statistics-enabled": False}


def test_a_database_that_fails_later_never_fails_a_request(
    start: Start, sims: Sims, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auth_dir = tmp_path / "failing"
    proxy = start(auth_dir)
    _three_requests(proxy, sims)
    _usage(proxy, total=3)
    with sqlite3.connect(auth_dir / "usage.sqlite") as other:
        other.execute("DROP TABLE usage_records")
    with caplog.at_level(logging.ERROR, logger="cliproxy.usage"):
        _three_requests(proxy, sims)  # each answered as ever
        time.sleep(0.5)
    assert str(auth_dir / "usage.sqlite") in caplog.text
    assert proxy.state.ledger.write_failures >= 1
    # The routes say so, naming the file, rather than failing with a 500.
    reply = _mgmt(proxy, "/usage")
    assert reply.status_code == 503 and str(auth_dir / "usage.sqlite") in reply.json()["error"]
