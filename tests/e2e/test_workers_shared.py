"""`workers: N`: what the workers share. One ledger, config edits and management writes (at
once, too), auth files, /metrics summed over the workers, and the pool state through Redis.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from tests.e2e.test_cli import Served, serving
from tests.e2e.test_redis_state import REDIS_URL, _keys, _rate_limit
from tests.e2e.waiting import wait_until
from tests.e2e.workers_server import (
    CLIENT_KEY,
    KEY,
    chat,
    get,
    worker_of,
    workers_seen,
    write_config,
)
from tests.simulators import AnthropicSim


def test_both_workers_serve_and_share_one_ledger(two_workers: Served, tmp_path: Path) -> None:
    served = two_workers
    # The ledger file is made by the first worker before the second starts: two workers
    # making it with their first records at once collided on creating its table.
    ledger = tmp_path / "auths" / "usage.sqlite"
    assert ledger.exists()
    # Eight at a time, so both workers write at once.
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: chat(served), range(120)))
    assert {reply.status_code for reply in replies} == {200}
    assert {worker_of(reply)[0] for reply in replies} == {1, 2}
    # One banner for the whole server, naming the worker count and the pool state.
    output = served.output()
    assert output.count("cliproxy listening on") == 1
    assert "workers:             2 processes on this port" in output
    assert output.count("pool state:") == 1
    assert "without state-store: each worker keeps its own cooldowns" in served.log()
    # Both workers write the same SQLite ledger (WAL, several writer processes).

    def recorded() -> int:
        with sqlite3.connect(ledger) as db:
            return int(
                db.execute("SELECT count(*) FROM usage_records WHERE kind='request'").fetchone()[0]
            )

    assert wait_until(lambda: recorded() == 120), served.log()
    assert "broken" not in served.log()


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


def test_client_key_names_given_on_either_worker_are_all_kept_and_read_everywhere(
    two_workers: Served,
) -> None:
    served = two_workers
    api = {"authorization": f"Bearer {KEY}"}
    names_url = served.base_url + "/v8/management/access/api-key-names"
    wanted = {hashlib.sha256(f"sk-team-{n}".encode()).hexdigest(): f"team {n}" for n in range(8)}

    def patch(item: tuple[str, str]) -> int:
        reply = httpx.patch(names_url, json={"names": dict([item])}, headers=api, timeout=10)
        return reply.status_code

    # Eight names given at once on either worker: each merges into the file as it is then.
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(patch, wanted.items())) == {200}

    def read_by_every_worker() -> bool:
        seen: dict[int, list[bool]] = {}
        for _ in range(20):
            answer = httpx.get(names_url, headers=api, timeout=10)
            seen.setdefault(worker_of(answer)[0], []).append(answer.json()["names"] == wanted)
        return set(seen) == {1, 2} and all(all(v) for v in seen.values())

    assert wait_until(read_by_every_worker), served.log()


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
    # (Each request is counted as its reply ends, a moment after the client has it.)
    wanted = {(1, 30.0, 0.0), (2, 30.0, 0.0)}
    assert wait_until(lambda: {scraped_requests(served) for _ in range(20)} == wanted)
    # A worker that dies takes nothing with it: its counts stay in the sum.
    (victim,) = workers_seen(served)[2]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: workers_seen(served, 10).get(2, {victim}) != {victim}, 15)
    assert {scraped_requests(served)[1:] for _ in range(10)} == {(30.0, 0.0)}


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the test Redis, its keys deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis answers at {REDIS_URL} (set CLIPROXY_TEST_REDIS_URL)")
    prefix = f"cliproxy-test-workers-{uuid.uuid4().hex[:12]}:"
    yield prefix
    doomed = list(client.scan_iter(match=prefix + "*", count=500))
    if doomed:
        client.delete(*doomed)


def test_workers_share_a_rest_through_the_state_store(
    tmp_path: Path, anthropic_sim: AnthropicSim, redis_prefix: str
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

        # The rest reaches the other worker over pub/sub: each worker's /metrics counts the
        # credentials it sees cooling.
        def cooling_everywhere() -> bool:
            seen: dict[int, float] = {}
            for _ in range(20):
                reply = get(served, "/metrics")
                seen[worker_of(reply)[0]] = sum(
                    sample.value
                    for family in text_string_to_metric_families(reply.text)
                    for sample in family.samples
                    if sample.name == "cliproxy_credentials"
                    and sample.labels.get("state") == "cooling"
                )
            return seen == {1: 1.0, 2: 1.0}

        assert wait_until(cooling_everywhere), served.log()
        answered = {ask() for _ in range(20)}
    assert answered == {1, 2}
    # The worker that did not see the 429 skipped first-key too: it learnt of the rest.
    assert _keys(anthropic_sim)[2:] == ["second-key"] * 20
