"""`workers: N`: the supervisor's side. Two workers serve one port (plain and TLS), a killed
worker is restarted while requests go on, SIGTERM stops them all and a killed supervisor
leaves none behind; one worker is the single process of before; bad counts are refused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import httpx
import orjson
import pytest
import trustme

from tests.e2e.test_cli import Served, clean_env, cli_command, free_port, run_cli, serving
from tests.e2e.waiting import wait_until
from tests.e2e.workers_server import (
    alive,
    chat,
    get,
    worker_of,
    worker_pids,
    workers_seen,
    write_config,
)
from tests.simulators import OpenAIChatSim, Reply


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


def test_sigterm_lets_a_running_stream_finish(
    tmp_path: Path, openai_chat_sim: OpenAIChatSim
) -> None:
    provider = (
        "openai-compatibility:\n  - name: slow\n"
        f"    base-url: {openai_chat_sim.base_url}\n"
        "    api-key-entries: [{api-key: sim-key}]\n"
        "    models: [{name: up-slow, alias: slow}]\n"
    )
    config = write_config(tmp_path, provider)
    # Ten pieces, 0.2 s apart: the stop arrives in the middle of the stream.
    openai_chat_sim.queue(Reply.text("abcdefghij", chunk_size=1, delay=0.2))
    body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with serving(tmp_path, "--config", str(config)) as served:
        with httpx.stream(
            "POST", served.base_url + "/v1/chat/completions", json=body, timeout=20
        ) as reply:
            assert reply.status_code == 200
            lines = reply.iter_lines()
            received = [next(lines)]
            served.process.send_signal(signal.SIGTERM)
            received.extend(lines)
        assert served.process.wait(timeout=15) == 0
    text = "".join(
        orjson.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in received
        if line.startswith("data: {") and orjson.loads(line[6:])["choices"]
    )
    assert text == "abcdefghij"
    assert "data: [DONE]" in received


def test_workers_do_not_outlive_a_killed_supervisor(two_workers: Served) -> None:
    served = two_workers
    pids = worker_pids(served)
    served.process.kill()
    served.process.wait(timeout=5)
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 15), pids


def test_both_workers_serve_tls_on_the_one_port(tmp_path: Path) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    issued.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    config = write_config(tmp_path, "tls: {enable: true, cert: server.crt, key: server.key}\n")
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    port = free_port()
    process = subprocess.Popen(
        [*cli_command(), "serve", "--config", str(config), "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.err").open("wb"),
    )
    try:

        def answered_by() -> set[int]:
            seen = set()
            for _ in range(20):
                with contextlib.suppress(httpx.TransportError):
                    reply = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trusting)
                    assert reply.status_code == 200
                    seen.add(worker_of(reply)[0])
            return seen

        assert wait_until(lambda: answered_by() == {1, 2}, 20), (tmp_path / "serve.err").read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


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
