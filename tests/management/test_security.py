"""Who may use /v0/management: availability, the key, lockout, remote clients, the secret hash."""

from __future__ import annotations

import time
from pathlib import Path

import bcrypt
import httpx
import pytest

from cliproxy.app import build_app
from cliproxy.config import load_config, parse_config_text
from cliproxy.management.security import client_address, presented_management_key
from tests.management.conftest import KEY, management_mount, write_config
from tests.proxy_server import ProxyServer


def test_disabled_without_secret_or_env_every_route_is_404(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    path = write_config(tmp_path, key="")
    with ProxyServer(load_config(path), config_path=path) as proxy:
        for route in ("/config", "/api-keys", "/nope", "/openapi.json"):
            reply = httpx.get(
                proxy.base_url + "/v0/management" + route,
                headers={"authorization": "Bearer anything"},
            )
            assert reply.status_code == 404
            assert reply.content == b""
            assert "x-cpa-version" not in reply.headers


def test_env_password_enables_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANAGEMENT_PASSWORD", "  env-pass  ")
    path = write_config(tmp_path, key="")
    with ProxyServer(load_config(path), config_path=path) as proxy:
        url = proxy.base_url + "/v0/management/debug"
        assert httpx.get(url, headers={"x-management-key": "env-pass"}).json() == {"debug": False}
        assert httpx.get(url, headers={"x-management-key": "env-pas"}).status_code == 401


def test_missing_and_wrong_key_are_401_and_right_key_passes(proxy: ProxyServer) -> None:
    url = proxy.base_url + "/v0/management/config"
    missing = httpx.get(url)
    assert missing.status_code == 401
    assert missing.json() == {"error": "missing management key"}
    assert missing.headers["x-cpa-version"]
    wrong = httpx.get(url, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid management key"}
    # Both spellings of the key, and the scheme in any case.
    assert httpx.get(url, headers={"authorization": f"bearer {KEY}"}).status_code == 200
    assert httpx.get(url, headers={"x-management-key": KEY}).status_code == 200
    # The client api-keys do not open the management API, and it needs none of them.
    assert httpx.get(url, headers={"authorization": "Bearer client-key-1"}).status_code == 401


def test_lockout_after_five_failures_and_its_expiry(proxy: ProxyServer) -> None:
    now = [1000.0]
    management_mount(proxy.app).management.guard.clock = lambda: now[0]
    url = proxy.base_url + "/v0/management/config"
    good = {"authorization": f"Bearer {KEY}"}
    for _ in range(5):
        assert httpx.get(url, headers={"authorization": "Bearer bad"}).status_code == 401
    banned = httpx.get(url, headers=good)
    assert banned.status_code == 403
    assert banned.json()["error"].startswith("IP banned due to too many failed attempts")
    now[0] += 29 * 60
    assert httpx.get(url, headers=good).status_code == 403
    now[0] += 61
    assert httpx.get(url, headers=good).status_code == 200


def test_success_resets_the_failure_count(proxy: ProxyServer) -> None:
    url = proxy.base_url + "/v0/management/config"
    for _ in range(2):
        for _ in range(4):
            assert httpx.get(url, headers={"x-management-key": "bad"}).status_code == 401
        assert httpx.get(url, headers={"x-management-key": KEY}).status_code == 200


def _asgi_client(app: object, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 1234))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://proxy")


async def test_remote_client_refused_unless_allow_remote(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    app = build_app(load_config(path), path)
    async with _asgi_client(app, "10.0.0.5") as client:
        reply = await client.get("/v0/management/config", headers={"x-management-key": KEY})
    assert reply.status_code == 403
    assert reply.json() == {"error": "remote management disabled"}

    text = path.read_text().replace(
        "remote-management:\n", "remote-management:\n  allow-remote: true\n"
    )
    remote_app = build_app(parse_config_text(text, "x"), None)
    async with _asgi_client(remote_app, "10.0.0.5") as client:
        reply = await client.get("/v0/management/config", headers={"x-management-key": KEY})
        assert reply.status_code == 200
        assert (await client.get("/v0/management/config")).status_code == 401


async def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    headers = {"x-management-key": KEY, "x-forwarded-for": "127.0.0.1", "x-real-ip": "127.0.0.1"}
    # A remote peer claiming to forward for localhost is still a remote peer.
    app = build_app(load_config(path), path)
    async with _asgi_client(app, "10.0.0.5") as client:
        assert (await client.get("/v0/management/config", headers=headers)).status_code == 403

    trusting = path.read_text().replace(
        "remote-management:\n", "remote-management:\n  trusted-proxies: [10.0.0.0/24]\n"
    )
    app = build_app(parse_config_text(trusting, "x"), None)
    async with _asgi_client(app, "10.0.0.5") as client:
        assert (await client.get("/v0/management/config", headers=headers)).status_code == 200
        # The proxy forwards for a remote client: refused, as that client would be.
        remote = {**headers, "x-forwarded-for": "127.0.0.1, 203.0.113.7"}
        assert (await client.get("/v0/management/config", headers=remote)).status_code == 403


def test_client_address_rules() -> None:
    trusted = ["10.0.0.0/8"]
    assert client_address("192.0.2.1", {"x-forwarded-for": "127.0.0.1"}, trusted) == "192.0.2.1"
    assert (
        client_address("10.1.1.1", {"x-forwarded-for": "1.2.3.4, 10.2.2.2"}, trusted) == "1.2.3.4"
    )
    assert client_address("10.1.1.1", {"x-forwarded-for": "junk"}, trusted) == "10.1.1.1"
    assert client_address("10.1.1.1", {"x-real-ip": "::1"}, trusted) == "::1"
    assert client_address("10.1.1.1", {"x-forwarded-for": "127.0.0.1"}, []) == "10.1.1.1"


def test_presented_key_forms() -> None:
    assert presented_management_key({"authorization": "Bearer abc"}) == "abc"
    assert presented_management_key({"authorization": "BEARER abc"}) == "abc"
    assert presented_management_key({"authorization": "abc"}) == "abc"
    assert presented_management_key({"x-management-key": " k "}) == "k"
    both = {"authorization": "Bearer a", "x-management-key": "b"}
    assert presented_management_key(both) == "a"


def test_plaintext_secret_is_hashed_into_the_file_keeping_comments(
    proxy: ProxyServer, config_file: Path
) -> None:
    text = config_file.read_text()
    assert KEY not in text
    line = next(line for line in text.splitlines() if "secret-key:" in line)
    assert "# hashed on first start" in line
    stored = line.split('"')[1]
    assert stored.startswith("$2")
    assert bcrypt.checkpw(KEY.encode(), stored.encode())
    for comment in ("# cliproxy test config", "# client keys", "# the first key", "# end of file"):
        assert comment in text
    assert config_file.stat().st_mode & 0o777 == 0o640
    assert proxy.state.runtime.config.remote_management.secret_key == stored
    # The hash now in the file is what the server checks against.
    reply = httpx.get(proxy.base_url + "/v0/management/config", headers={"x-management-key": KEY})
    assert reply.status_code == 200


def test_a_stored_hash_is_left_alone(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"from-the-reference", bcrypt.gensalt(4)).decode()
    path = write_config(tmp_path, key=hashed)
    before = path.read_bytes()
    with ProxyServer(load_config(path), config_path=path) as proxy:
        headers = {"authorization": "Bearer from-the-reference"}
        assert (
            httpx.get(proxy.base_url + "/v0/management/debug", headers=headers).status_code == 200
        )
    assert path.read_bytes() == before


def test_a_plaintext_secret_arriving_by_reload_is_hashed_too(
    proxy: ProxyServer, config_file: Path
) -> None:
    text = config_file.read_text()
    stored = next(line for line in text.splitlines() if "secret-key:" in line).split('"')[1]
    config_file.write_text(text.replace(stored, "rotated-key"))
    url = proxy.base_url + "/v0/management/debug"
    deadline = time.monotonic() + 8
    while httpx.get(url, headers={"x-management-key": "rotated-key"}).status_code != 200:
        assert time.monotonic() < deadline, "the reloaded key was never accepted"
        time.sleep(0.05)
    while "rotated-key" in config_file.read_text():
        assert time.monotonic() < deadline, "the reloaded plaintext key was never hashed"
        time.sleep(0.05)
    assert "# hashed on first start" in config_file.read_text()
    assert httpx.get(url, headers={"x-management-key": "rotated-key"}).status_code == 200
    assert httpx.get(url, headers={"x-management-key": KEY}).status_code == 401
