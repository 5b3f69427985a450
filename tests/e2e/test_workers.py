"""`workers: N`: `cliproxy serve` as a real subprocess with two worker processes on one port.

Which worker answered is read from the `x-cliproxy-worker` header (`<index>; pid=<pid>`),
which the server adds only when it runs more than one worker. Every request here opens a
connection of its own, so the kernel's spreading over the workers' sockets is exercised.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from tests.e2e.test_cli import Served, clean_env, cli_command, run_cli, serving
from tests.e2e.test_redis_state import REDIS_URL, _keys, _rate_limit
from tests.e2e.test_redis_state import prefix as redis_prefix  # noqa: F401  (a fixture)
from tests.e2e.waiting import wait_until
from tests.simulators import AnthropicSim

KEY = "mgmt-secret-workers"
CLIENT_KEY = "sk-client-workers-1"


def write_config(tmp_path: Path, extra: str = "") -> Path:
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"demo: true\nworkers: 2\nauth-dir: {auth_dir}\n"
        f"remote-management:\n  secret-key: {KEY}\n{extra}"
    )
    return path


def worker_of(response: httpx.Response) -> tuple[int, int]:
    """(worker index, pid) from the header."""
    index, _, pid = response.headers["x-cliproxy-worker"].partition("; pid=")
    return int(index), int(pid)


def get(served: Served, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(served.base_url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


def chat(served: Served, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"model": "demo-echo", "messages": [{"role": "user", "content": "hello"}]}
    return httpx.post(
        served.base_url + "/v1/chat/completions", json=body, headers=headers, timeout=10
    )


def workers_seen(served: Served, requests: int = 40) -> dict[int, set[int]]:
    """Worker index -> pids seen answering /healthz over ``requests`` fresh connections."""
    seen: dict[int, set[int]] = {}
    for _ in range(requests):
        response = get(served, "/healthz")
        assert response.status_code == 200, response.text
        index, pid = worker_of(response)
        seen.setdefault(index, set()).add(pid)
    return seen


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def worker_pids(served: Served) -> set[int]:
    children = Path(f"/proc/{served.process.pid}/task/{served.process.pid}/children")
    return {int(pid) for pid in children.read_text().split()}


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Served]:
    config = write_config(tmp_path)
    with serving(tmp_path, "--config", str(config)) as served:
        # The first worker answers health checks before the second has started.
        assert wait_until(lambda: len(workers_seen(served, 10)) == 2, 15), served.log()
        yield served


def test_both_workers_serve_and_share_one_ledger(two_workers: Served, tmp_path: Path) -> None:
    served = two_workers
    answered: set[int] = set()
    for _ in range(30):
        response = chat(served)
        assert response.status_code == 200, response.text
        answered.add(worker_of(response)[0])
    assert answered == {1, 2}
    # One banner for the whole server, naming the worker count and the pool state.
    output = served.output()
    assert output.count("cliproxy listening on") == 1
    assert "workers:             2 processes on this port" in output
    assert output.count("pool state:") == 1
    assert "without state-store: each worker keeps its own cooldowns" in served.log()
    # Both workers write the same SQLite ledger (WAL, several writer processes).
    ledger = tmp_path / "auths" / "usage.sqlite"

    def recorded() -> int:
        with sqlite3.connect(ledger) as db:
            return int(
                db.execute("SELECT count(*) FROM usage_records WHERE kind='request'").fetchone()[0]
            )

    assert wait_until(lambda: ledger.exists() and recorded() == 30), served.log()


def test_a_killed_worker_is_restarted_and_requests_keep_succeeding(two_workers: Served) -> None:
    served = two_workers
    before = workers_seen(served)
    (victim,) = before[2]
    os.kill(victim, signal.SIGKILL)
    # Requests go on while worker 2 is down and restarting: the others (and, once it is
    # back, worker 2 on the socket it left behind) answer every one.
    for _ in range(20):
        assert chat(served).status_code == 200
    assert wait_until(lambda: workers_seen(served, 10).get(2, {victim}) != {victim}, 15), (
        served.log()
    )
    log = served.log()
    assert f"worker 2 (pid {victim}) was killed by SIGKILL" in log
    assert "worker 2 started again" in log
    assert workers_seen(served)[1] == before[1]  # worker 1 was left alone


def test_sigterm_stops_every_worker(two_workers: Served) -> None:
    served = two_workers
    pids = worker_pids(served)
    assert len(pids) == 2
    chat(served)  # so that the workers have metrics files

    def metrics_files() -> list[Path]:
        shared = Path(tempfile.gettempdir()).glob("cliproxy-metrics-*/*.db")
        return [path for path in shared if int(path.stem.rpartition("_")[2]) in pids]

    assert metrics_files()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=15) == 0
    assert wait_until(lambda: not any(alive(pid) for pid in pids)), pids
    assert "all workers stopped" in served.log()
    assert metrics_files() == []  # the supervisor removed the directory


def test_workers_do_not_outlive_a_killed_supervisor(two_workers: Served) -> None:
    served = two_workers
    pids = worker_pids(served)
    served.process.kill()
    served.process.wait(timeout=5)
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 15), pids


def test_a_config_edit_reaches_both_workers(two_workers: Served, tmp_path: Path) -> None:
    served = two_workers
    config = tmp_path / "config.yaml"
    # The management key in the file was replaced by its hash at start: keep that line.
    config.write_text(config.read_text() + f"api-keys: [{CLIENT_KEY}]\n")

    def refused_everywhere() -> bool:
        statuses: dict[int, set[int]] = {}
        for _ in range(20):
            response = chat(served)
            statuses.setdefault(worker_of(response)[0], set()).add(response.status_code)
        return statuses == {1: {401}, 2: {401}}

    assert wait_until(refused_everywhere, 10), served.log()
    with_key = {"authorization": f"Bearer {CLIENT_KEY}"}
    assert {chat(served, with_key).status_code for _ in range(10)} == {200}


def test_a_management_write_on_one_worker_is_read_back_from_every_worker(
    two_workers: Served,
) -> None:
    served = two_workers
    api = {"authorization": f"Bearer {KEY}"}
    path = "/v0/management/request-retry"
    response = httpx.put(served.base_url + path, json={"value": 7}, headers=api, timeout=10)
    assert response.status_code == 200, response.text
    written_by = worker_of(response)[0]

    def every_worker_reads_7() -> bool:
        values: dict[int, set[int]] = {}
        for _ in range(20):
            answer = get(served, path, headers=api)
            values.setdefault(worker_of(answer)[0], set()).add(answer.json()["request-retry"])
        return values == {1: {7}, 2: {7}}

    assert wait_until(every_worker_reads_7, 10), (written_by, served.log())


def test_management_writes_on_both_workers_at_once_all_reach_the_file(
    two_workers: Served, tmp_path: Path
) -> None:
    served = two_workers
    api = {"authorization": f"Bearer {KEY}"}
    base = served.base_url + "/v0/management/"
    for round_ in range(1, 4):
        # Six settings written at once, each on a connection of its own (so on either
        # worker): each write reads the file, changes one key and writes it back.
        wanted: dict[str, object] = {
            "request-retry": round_,
            "max-retry-credentials": round_ + 1,
            "max-retry-interval": round_ + 10,
            "logs-max-total-size-mb": round_ + 20,
            "force-model-prefix": round_ % 2 == 1,
            "quota-exceeded/switch-project": round_ % 2 == 0,
        }

        def put(item: tuple[str, object]) -> tuple[int, int]:
            reply = httpx.put(base + item[0], json={"value": item[1]}, headers=api, timeout=10)
            return reply.status_code, worker_of(reply)[0]

        with ThreadPoolExecutor(len(wanted)) as pool:
            results = list(pool.map(put, wanted.items()))
        assert {status for status, _ in results} == {200}
        tree = YAML(typ="safe").load((tmp_path / "config.yaml").read_text())
        found = {key: tree.get(key) for key in wanted if "/" not in key}
        found["quota-exceeded/switch-project"] = tree["quota-exceeded"]["switch-project"]
        assert found == wanted, (round_, results)


def test_an_auth_file_uploaded_to_one_worker_is_listed_and_deleted_by_every_worker(
    two_workers: Served,
) -> None:
    served = two_workers
    api = {"authorization": f"Bearer {KEY}"}
    account = {"type": "claude", "access_token": "at", "refresh_token": "rt", "email": "c@x.io"}
    files = served.base_url + "/v0/management/auth-files"
    uploaded = httpx.post(
        files, params={"name": "claude-c.json"}, json=account, headers=api, timeout=10
    )
    assert uploaded.status_code == 200, uploaded.text

    def listed_by_every_worker() -> set[tuple[int, tuple[str, ...]]]:
        seen = set()
        for _ in range(20):
            answer = httpx.get(files, headers=api, timeout=10)
            names = tuple(entry["name"] for entry in answer.json()["files"])
            seen.add((worker_of(answer)[0], names))
        return seen

    assert wait_until(
        lambda: listed_by_every_worker() == {(1, ("claude-c.json",)), (2, ("claude-c.json",))}
    ), served.log()
    deleted = httpx.delete(files, params={"name": "claude-c.json"}, headers=api, timeout=10)
    assert deleted.status_code == 200, deleted.text
    assert wait_until(lambda: listed_by_every_worker() == {(1, ()), (2, ())}), served.log()


def scraped_requests(served: Served) -> tuple[int, float, float]:
    """(worker, requests counted, open streams) from one /metrics scrape."""
    reply = get(served, "/metrics")
    assert reply.status_code == 200, reply.text
    counted = streams = 0.0
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == "cliproxy_requests_total":
                counted += sample.value
            elif sample.name == "cliproxy_active_streams":
                streams += sample.value
    return worker_of(reply)[0], counted, streams


def test_metrics_from_any_worker_count_every_worker(two_workers: Served) -> None:
    served = two_workers
    answered = {worker_of(chat(served))[0] for _ in range(30)}
    assert answered == {1, 2}
    scrapes = {scraped_requests(served) for _ in range(20)}
    assert scrapes == {(1, 30.0, 0.0), (2, 30.0, 0.0)}
    # A worker that dies takes nothing with it: its counts stay in the sum.
    (victim,) = workers_seen(served)[2]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: workers_seen(served, 10).get(2, {victim}) != {victim}, 15)
    assert {scraped_requests(served)[1:] for _ in range(10)} == {(30.0, 0.0)}


def test_workers_share_a_rest_through_the_state_store(
    tmp_path: Path,
    anthropic_sim: AnthropicSim,
    redis_prefix: str,  # noqa: F811
) -> None:
    keys = "".join(
        f"  - api-key: {key}\n    base-url: {anthropic_sim.base_url}\n"
        "    models: [{name: up-claude, alias: pooled}]\n"
        for key in ("first-key", "second-key")
    )
    config = write_config(
        tmp_path,
        "request-retry: 1\nmax-retry-interval: 0\nrouting: {strategy: fill-first}\n"
        f"state-store: {{redis-url: '{REDIS_URL}', key-prefix: '{redis_prefix}'}}\n"
        f"claude-api-key:\n{keys}",
    )
    # first-key is rate limited for 120 s; second-key answers.
    anthropic_sim.queue(*[_rate_limit(anthropic_sim, "first-key")] * 60)
    body = {"model": "pooled", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    with serving(tmp_path, "--config", str(config)) as served:
        assert wait_until(lambda: len(workers_seen(served, 10)) == 2, 15), served.log()
        assert "without state-store" not in served.log()
        assert "pool state:          redis" in served.output()

        def ask() -> int:
            reply = httpx.post(served.base_url + "/v1/messages", json=body, timeout=10)
            assert reply.status_code == 200, reply.text
            return worker_of(reply)[0]

        ask()
        assert _keys(anthropic_sim) == ["first-key", "second-key"]
        time.sleep(0.5)  # the rest reaches the other worker over pub/sub (loopback)
        answered = {ask() for _ in range(20)}
    assert answered == {1, 2}
    # The worker that did not see the 429 skipped first-key too: it learnt of the rest.
    assert _keys(anthropic_sim)[2:] == ["second-key"] * 20


def test_one_worker_runs_as_before_without_a_supervisor(tmp_path: Path) -> None:
    config = write_config(tmp_path).read_text().replace("workers: 2", "workers: 1")
    (tmp_path / "config.yaml").write_text(config)
    with serving(tmp_path, "--config", str(tmp_path / "config.yaml")) as served:
        response = get(served, "/healthz")
        assert "x-cliproxy-worker" not in response.headers
        assert worker_pids(served) == set()  # the server is this very process
        assert "workers:" not in served.output()


def test_the_command_line_overrides_the_worker_count(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with serving(tmp_path, "--config", str(config), "--workers", "3") as served:
        assert wait_until(lambda: len(workers_seen(served, 12)) == 3, 20), served.log()


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "between 1 and 64 (got 0)"), ("x", "whole number (got 'x')")],
)
def test_a_bad_worker_count_is_a_config_error_naming_the_key(
    tmp_path: Path, value: str, message: str
) -> None:
    config = write_config(tmp_path).read_text().replace("workers: 2", f"workers: {value}")
    (tmp_path / "config.yaml").write_text(config)
    result = run_cli("serve", "--config", "config.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "config.yaml:2: workers: must be" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_worker_count_on_the_command_line_is_refused(tmp_path: Path) -> None:
    result = run_cli("serve", "--workers", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--workers" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_reported_once_by_the_supervisor(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [*cli_command(), "serve", "-c", str(config), "--port", port],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=15,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "worker 1 started" not in result.stderr
