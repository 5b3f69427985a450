"""`cliproxy serve` with `workers: 2`, run as a real subprocess, for the workers tests.

Which worker answered is read from the `x-cliproxy-worker` header (`<index>; pid=<pid>`),
which the server adds only when it runs more than one worker. Every request here opens a
connection of its own, so the kernel's spreading over the workers' sockets is exercised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.e2e.test_cli import Served, serving
from tests.e2e.waiting import wait_until

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
    header = response.headers.get("x-cliproxy-worker")
    assert header is not None, (
        f"no x-cliproxy-worker on {response.request.url}: {response.status_code} "
        f"{dict(response.headers)} {response.text[:200]}"
    )
    index, _, pid = header.partition("; pid=")
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


@contextlib.contextmanager
def serving_two_workers(tmp_path: Path) -> Iterator[Served]:
    """The `two_workers` fixture (tests/e2e/conftest.py): yielded once both workers answer."""
    config = write_config(tmp_path)
    with serving(tmp_path, "--config", str(config)) as served:
        # The first worker answers health checks before the second has started.
        assert wait_until(lambda: len(workers_seen(served, 10)) == 2, 15), served.log()
        yield served
