"""/api-call checks a URL path as the upstream will read it: decoded once, with every spelling
that decoding could turn into another path (encoded slashes, double encoding, dot segments)
refused before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from cliproxy.config import load_config
from cliproxy.management.api_call import Allowed, Target, check_url
from cliproxy.management.auth_files import auth_index
from cliproxy.management.common import ApiError
from tests.proxy_server import ProxyServer
from tests.simulators import RecordedRequest
from tests.simulators.codex_backend_sim import CodexBackendSim

TOKEN = "codex-token-paths"
NAME = "codex-paths.json"


@pytest.fixture(scope="module")
def codex_sim() -> Iterator[CodexBackendSim]:
    with CodexBackendSim(api_keys={TOKEN}) as sim:
        yield sim


@pytest.fixture
def proxy(
    config_file: Path, codex_sim: CodexBackendSim, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProxyServer]:
    """The shared test server, with one codex account whose base URL is the simulator."""
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    codex_sim.reset()
    account = {
        "type": "codex",
        "access_token": TOKEN,
        "refresh_token": "rt",
        "email": "paths@example.com",
        "account_id": "acct-paths",
        "expired": "2099-01-01T00:00:00Z",
        "base_url": codex_sim.base_url,
    }
    path = config_file.parent / "auths" / NAME
    path.write_bytes(orjson.dumps(account))
    path.chmod(0o600)
    with ProxyServer(load_config(config_file), config_path=config_file) as server:
        yield server


def call(api: httpx.Client, proxy: ProxyServer, url: str) -> httpx.Response:
    index = auth_index("codex", proxy.state.auth_store.auth_dir / NAME)
    body = {
        "auth_index": index,
        "method": "GET",
        "url": url,
        "header": {"Authorization": "Bearer $TOKEN$", "X-Test-Call": "api-call"},
    }
    return api.post("/api-call", json=body)


@pytest.mark.parametrize(
    ("path", "status", "problem"),
    [
        ("/backend-api/wham/..%2Fcodex/responses", 403, "encoded slash"),
        ("/backend-api/wham/..%2fcodex/responses", 403, "encoded slash"),
        ("/backend-api/wham/..%5Ccodex/responses", 403, "encoded slash or backslash"),
        ("/backend-api/wham/..%252Fcodex/responses", 403, "double encoding"),
        ("/backend-api/wham/%252E%252E/codex/responses", 403, "double encoding"),
        ("/backend-api/wham/..;/codex/responses", 403, "dot segments"),
        ("/backend-api/wham/usage%00", 403, "control characters"),
        ("/backend-api/wham/usage%zz", 400, "must start a %XX escape"),
        ("/backend-api/wham/usage%ff", 400, "do not decode to UTF-8"),
    ],
)
def test_paths_that_decode_elsewhere_are_refused_before_sending(
    api: httpx.Client,
    proxy: ProxyServer,
    codex_sim: CodexBackendSim,
    path: str,
    status: int,
    problem: str,
) -> None:
    reply = call(api, proxy, codex_sim.base_url + path)
    assert reply.status_code == status, reply.text
    assert problem in reply.json()["error"]
    assert _relayed(codex_sim) == []


def test_an_encoded_path_that_decodes_to_an_allowed_one_is_admitted(
    api: httpx.Client, proxy: ProxyServer, codex_sim: CodexBackendSim
) -> None:
    # "wh%61m" is "wham": the allowlist is matched against what the upstream reads.
    reply = call(api, proxy, codex_sim.base_url + "/backend-api/wh%61m/usage")
    assert reply.status_code == 200, reply.text
    assert reply.json()["status_code"] == 200
    assert _relayed(codex_sim)[-1].headers["authorization"] == f"Bearer {TOKEN}"


def _relayed(sim: CodexBackendSim) -> list[RecordedRequest]:
    """What /api-call sent (the proxy also reads the account's models and usage on its own)."""
    return [r for r in sim.requests + sim.reads if r.headers.get("x-test-call") == "api-call"]


def test_check_url_decodes_before_matching_prefixes() -> None:
    allowed = Allowed.of("https://vendor.example", ("/api/quota/",))
    assert allowed is not None
    target = Target(label="account x", proxy_url=None, allowed=(allowed,))
    check_url(target, "https://vendor.example/api/quota/today")
    check_url(target, "https://vendor.example/api/%71uota/today")  # %71 is "q"
    refused = {
        "https://vendor.example/api/quota/..%2F..%2Fadmin": "encoded slash",
        "https://vendor.example/api/quota/%2e%2e/%2e%2e/admin": "dot segments",
        "https://vendor.example/api/quota/..%5cadmin": "backslash",
        "https://vendor.example/api/quota/..%25%32%46admin": "double encoding",
        "https://vendor.example/api/quota/x/.;/y": "dot segments",
        "https://vendor.example/api/quota%2Fx": "encoded slash",
        "https://vendor.example/api/quot%61x/today": "not an endpoint",  # decodes to quotax
    }
    for url, problem in refused.items():
        with pytest.raises(ApiError) as error:
            check_url(target, url)
        assert error.value.status == 403, url
        assert problem in error.value.message, (url, error.value.message)
