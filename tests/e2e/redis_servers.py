"""What the Redis e2e tests share: the Redis at 127.0.0.1:6379 (CLIPROXY_TEST_REDIS_URL
overrides) under a key prefix of each test's own, deleted afterwards; a redis-server of a
test's own for outages; and waiting for instances to have exchanged their writes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.proxy_server import ProxyServer

REDIS_URL = os.environ.get("CLIPROXY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


# Named fixtures, so a test module imports them without shadowing its parameters.
@pytest.fixture(name="prefix")
def prefix_fixture() -> Iterator[str]:
    if not reachable(REDIS_URL):
        pytest.skip(f"no Redis answers at {REDIS_URL} (set CLIPROXY_TEST_REDIS_URL)")
    name = f"cliproxy-test-{uuid.uuid4().hex[:12]}:"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    doomed = list(client.scan_iter(match=name + "*", count=500))
    if doomed:
        client.delete(*doomed)


def settle(*proxies: ProxyServer) -> None:
    """Wait until every instance has sent its writes, then for pub/sub to carry them over
    (loopback: milliseconds). Requests to a gateway are not simultaneous in these tests."""
    deadline = time.monotonic() + 5
    for proxy in proxies:
        link = proxy.state.pool.link
        while link is not None and link._pending and time.monotonic() < deadline:
            time.sleep(0.01)
    time.sleep(0.1)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class OwnRedis:
    """A redis-server of this test's own on a free port, stopped and started at will."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = closed_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not reachable(self.url):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(5)
            self.process = None


@pytest.fixture(name="own_redis")
def own_redis_fixture() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
