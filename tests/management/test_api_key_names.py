"""/v8/management/access/api-key-names: names for client keys by the SHA-256 of the key, kept in
api-key-names.json beside the config file (atomic, 0600), at most 128 characters a name and
10,000 names, an empty name removing one; the usage ledger (so /v0/management/usage, the
console) and the request logs show the name, a client-keys entry's own name winning."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cliproxy.config import load_config
from tests.proxy_server import ProxyServer

PASSWORD = "names-pass"
N = "/api-key-names"
CONFIG = """\
demo: true
request-log: true
api-keys: [client-key-1, client-key-2]
client-keys:
  - name: team-policy
    key: sk-policy-0123456789
auth-dir: {auth_dir}
"""


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    monkeypatch.setenv("MANAGEMENT_PASSWORD", PASSWORD)
    monkeypatch.setenv("WRITABLE_PATH", str(tmp_path / "writable"))
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(auth_dir=tmp_path / "auths"))
    with ProxyServer(load_config(path), config_path=path) as proxy:
        yield proxy


@pytest.fixture
def names(server: ProxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url + "/v8/management/access",
        headers={"x-management-key": PASSWORD},
        timeout=30,
    ) as client:
        yield client


def stored(server: ProxyServer) -> Any:
    path = Path(server.config_path or "").parent / "api-key-names.json"
    return orjson.loads(path.read_bytes())


def test_names_are_merged_and_kept_beside_the_config_file(
    names: httpx.Client, server: ProxyServer
) -> None:
    assert names.get(N).json() == {"names": {}}
    reply = names.patch(N, json={"names": {sha("client-key-1"): " Team "}})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"names": {sha("client-key-1"): "Team"}}
    path = Path(server.config_path or "").parent / "api-key-names.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stored(server) == {"names": {sha("client-key-1"): "Team"}}
    # A merge: other names stay; an upper-case hash is the same key.
    names.patch(N, json={"names": {sha("client-key-2").upper(): "Ops"}})
    assert names.get(N).json()["names"] == {
        sha("client-key-1"): "Team",
        sha("client-key-2"): "Ops",
    }
    # only_if_absent leaves named keys alone and names the others.
    other = sha("client-key-3")
    body = {"names": {sha("client-key-1"): "Renamed", other: "New"}, "only_if_absent": True}
    assert names.patch(N, json=body).json()["names"][sha("client-key-1")] == "Team"
    assert names.get(N).json()["names"][other] == "New"
    # An empty name is a tombstone: the name goes.
    names.patch(N, json={"names": {other: "", sha("client-key-2"): ""}})
    assert stored(server) == {"names": {sha("client-key-1"): "Team"}}
    # The file is read at start.
    server.state.key_names.names = {}
    server.state.key_names.load()
    assert server.state.key_names.names == {sha("client-key-1"): "Team"}


def test_limits_and_shapes_are_refused_and_nothing_is_written(
    names: httpx.Client, server: ProxyServer
) -> None:
    names.patch(N, json={"names": {sha("client-key-1"): "Team"}})
    before = stored(server)
    too_long = names.patch(N, json={"names": {sha("x"): "n" * 129}})
    assert too_long.status_code == 400
    assert "at most 128 characters (got 129)" in too_long.json()["error"]
    assert names.patch(N, json={"names": {sha("x"): "n" * 128}}).status_code == 200
    many = {sha(f"key-{n}"): f"name {n}" for n in range(10_000)}
    too_many = names.patch(N, json={"names": many})
    assert too_many.status_code == 400
    assert "at most 10000 key names (this change makes 10002)" in too_many.json()["error"]
    assert names.patch(N, json={"names": {"not-a-hash": "x"}}).status_code == 422
    assert names.patch(N, json={"names": {sha("x"): 5}}).status_code == 422
    assert names.patch(N, json={"names": []}).status_code == 422
    assert names.patch(N, json={"names": {}, "only_if_absent": "yes"}).status_code == 422
    assert names.patch(N, content=b"{").status_code == 400
    assert stored(server) == {"names": {**before["names"], sha("x"): "n" * 128}}


def test_names_show_in_the_usage_and_the_request_log(
    names: httpx.Client, server: ProxyServer
) -> None:
    names.patch(
        N,
        json={"names": {sha("client-key-1"): "Team", sha("sk-policy-0123456789"): "Ignored"}},
    )
    for key in ("client-key-1", "client-key-2", "sk-policy-0123456789"):
        reply = httpx.post(
            server.base_url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert reply.status_code == 200, reply.text
    management = server.base_url + "/v0/management"
    headers = {"x-management-key": PASSWORD}
    usage = httpx.get(management + "/usage", headers=headers).json()["usage"]
    # Named by api-key-names; unnamed: masked; a client-keys entry: its own name wins.
    assert set(usage["apis"]) == {"Team", "clie…ey-2", "team-policy"}
    requests = httpx.get(management + "/usage/requests", headers=headers).json()["requests"]
    assert {r["api_key"] for r in requests} == {"Team", "clie…ey-2", "team-policy"}
    # Each request's log file names its client key the same way.
    files = httpx.get(management + "/request-logs", headers=headers).json()["files"]
    seen = {
        httpx.get(management + f"/request-logs/{item['id']}", headers=headers).json()["request"][
            "client_key"
        ]
        for item in files
    }
    assert seen == {"Team", "clie…ey-2", "team-policy"}


def test_without_a_config_file_names_cannot_be_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANAGEMENT_PASSWORD", PASSWORD)
    with ProxyServer("demo: true\n") as proxy:
        url = proxy.base_url + "/v8/management/access/api-key-names"
        headers = {"x-management-key": PASSWORD}
        assert httpx.get(url, headers=headers).json() == {"names": {}}
        reply = httpx.patch(url, headers=headers, json={"names": {sha("k"): "n"}})
        assert reply.status_code == 409 and "without a config file" in reply.json()["error"]
