"""Vertex AI end to end: a service-account key imported (CLI and management route), its token
minted at the simulator's token endpoint and renewed, requests from all four client protocols
reaching the project's regional (or global) URL, and `vertex-api-key` entries routed."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from google import genai
from google.genai import types as gtypes
from typer.testing import CliRunner

from cliproxy.cli_auth import auth_app
from cliproxy.config import load_config
from tests.e2e.clients import CLIENTS, ask
from tests.proxy_server import ProxyServer
from tests.simulators.reply import Reply
from tests.simulators.vertex_sim import VertexSim

KEY = "mgmt-secret-vertex"
VERTEX_KEY = "vertex-express-key"
PROJECT = "sim-project"


@pytest.fixture(scope="module")
def _vertex_server() -> Iterator[VertexSim]:
    with VertexSim(api_keys={VERTEX_KEY}) as sim:
        yield sim


@pytest.fixture
def vertex_sim(_vertex_server: VertexSim) -> VertexSim:
    _vertex_server.reset()
    return _vertex_server


def write_config(tmp_path: Path, sim: VertexSim) -> Path:
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
remote-management:
  secret-key: "{KEY}"
auth-dir: "{auth_dir}"
max-retry-interval: 0
vertex-api-key:
  - api-key: {VERTEX_KEY}
    base-url: {sim.base_url}
    headers: {{x-extra: from-config}}
    models:
      - {{name: gemini-2.5-flash, alias: vx-flash}}
"""
    )
    return path


@pytest.fixture
def proxy(
    tmp_path: Path, vertex_sim: VertexSim, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProxyServer]:
    # The service accounts' regional hosts are all the simulator (the path still names the
    # project and region); the host itself is checked in tests/unit/test_vertex_provider.py.
    monkeypatch.setenv("CLIPROXY_VERTEX_BASE_URL", vertex_sim.base_url)
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    path = write_config(tmp_path, vertex_sim)
    with ProxyServer(load_config(path), config_path=path) as server:
        yield server


def management(proxy: ProxyServer) -> httpx.Client:
    return httpx.Client(
        base_url=proxy.base_url + "/v0/management",
        headers={"authorization": f"Bearer {KEY}"},
        timeout=10,
    )


def import_key(proxy: ProxyServer, key: dict[str, Any] | bytes, **fields: str) -> httpx.Response:
    data = key if isinstance(key, bytes) else orjson.dumps(key)
    with management(proxy) as api:
        return api.post(
            "/vertex/import", files=[("file", ("sa.json", data, "application/json"))], data=fields
        )


def auth_dir(proxy: ProxyServer) -> Path:
    path: Path = proxy.state.auth_store.auth_dir
    return path


# ----- import ------------------------------------------------------------------------------------


def test_management_import_writes_the_reference_file_and_routes_it(
    proxy: ProxyServer, vertex_sim: VertexSim
) -> None:
    key = vertex_sim.service_account(PROJECT)
    reply = import_key(proxy, key, location="europe-west4", prefix="vx")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok"
    assert body["project_id"] == PROJECT and body["email"] == key["client_email"]
    assert body["location"] == "europe-west4"
    written = auth_dir(proxy) / f"vertex-{PROJECT}.json"
    assert body["auth-file"] == str(written)
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    saved = orjson.loads(written.read_bytes())
    assert saved == {
        "service_account": key,
        "project_id": PROJECT,
        "email": key["client_email"],
        "location": "europe-west4",
        "type": "vertex",
        "prefix": "vx",
    }
    with management(proxy) as api:
        listing = api.get("/auth-files")
    assert "PRIVATE KEY" not in listing.text  # the key never leaves in a listing
    (entry,) = listing.json()["files"]
    assert (entry["type"], entry["email"], entry["project_id"]) == (
        "vertex",
        key["client_email"],
        PROJECT,
    )
    assert entry["location"] == "europe-west4"
    answer = ask("openai_chat", proxy.base_url, "vx/gemini-2.5-pro", "hi there", False)
    assert answer.text == "echo: hi there"
    call = vertex_sim.last_request
    assert call.path == (
        f"/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/"
        "gemini-2.5-pro:generateContent"
    )
    assert call.headers["authorization"].startswith("Bearer ya29.sim-")


@pytest.mark.parametrize(
    ("mangle", "field"),
    [
        (lambda key: {k: v for k, v in key.items() if k != "private_key"}, "private_key"),
        (lambda key: {k: v for k, v in key.items() if k != "client_email"}, "client_email"),
        (lambda key: {**key, "project_id": ""}, "project_id"),
        (lambda key: {**key, "type": "authorized_user"}, "service_account"),
        (lambda key: orjson.dumps(key)[:200], "not valid JSON"),
        (lambda key: b"not json at all", "not valid JSON"),
    ],
)
def test_management_import_refuses_a_bad_key_and_keeps_what_was_there(
    proxy: ProxyServer, vertex_sim: VertexSim, mangle: Any, field: str
) -> None:
    key = vertex_sim.service_account(PROJECT)
    assert import_key(proxy, key).status_code == 200
    written = auth_dir(proxy) / f"vertex-{PROJECT}.json"
    before = written.read_bytes()
    bad = mangle(key)
    reply = import_key(proxy, bad if isinstance(bad, bytes) else orjson.dumps(bad))
    assert reply.status_code == 400
    assert field in reply.json()["error"]
    assert reply.json()["error"].startswith("file:")
    assert sorted(p.name for p in auth_dir(proxy).iterdir()) == [written.name]
    assert written.read_bytes() == before  # an earlier import is never replaced or deleted


def test_management_import_without_a_file_part(proxy: ProxyServer) -> None:
    with management(proxy) as api:
        reply = api.post(
            "/vertex/import", content=b"{}", headers={"content-type": "application/json"}
        )
        assert reply.status_code == 400 and "file" in reply.json()["error"]
        reply = api.post("/vertex/import", files=[("other", ("x", b"{}"))])
        assert reply.status_code == 400 and "'file'" in reply.json()["error"]


def cli(*args: str) -> Any:
    return CliRunner().invoke(
        auth_app, ["login", "vertex", *args], env={"COLUMNS": "250", "CLIPROXY_CONFIG": ""}
    )


def test_cli_import(tmp_path: Path, vertex_sim: VertexSim) -> None:
    key_file = tmp_path / "sa.json"
    key = vertex_sim.service_account("cli-project")
    key_file.write_bytes(orjson.dumps(key))
    target = tmp_path / "auths"
    result = cli(
        "--service-account",
        str(key_file),
        "--location",
        "global",
        "--prefix",
        "team",
        "--auth-dir",
        str(target),
    )
    assert result.exit_code == 0, result.output
    assert "Imported" in result.output and key["client_email"] in result.output
    written = target / "vertex-cli-project.json"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    saved = orjson.loads(written.read_bytes())
    assert saved["location"] == "global" and saved["prefix"] == "team"
    assert saved["service_account"] == key and saved["type"] == "vertex"
    # A re-import keeps the user's own settings and prefix unless a new one is given.
    written.write_bytes(orjson.dumps({**saved, "priority": 5}))
    again = cli("--service-account", str(key_file), "--auth-dir", str(target))
    assert again.exit_code == 0 and "Updated" in again.output
    saved = orjson.loads(written.read_bytes())
    assert saved["priority"] == 5 and saved["prefix"] == "team"
    assert saved["location"] == "us-central1"
    listing = CliRunner().invoke(
        auth_app, ["accounts", "--auth-dir", str(target)], env={"COLUMNS": "250"}
    )
    assert listing.exit_code == 0, listing.output
    assert key["client_email"] in listing.output and "needs login" not in listing.output
    assert "PRIVATE KEY" not in listing.output


def test_cli_import_refuses_bad_files(tmp_path: Path, vertex_sim: VertexSim) -> None:
    key = vertex_sim.service_account("cli-project")
    target = tmp_path / "auths"
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(orjson.dumps(key)[:150])
    no_key = tmp_path / "nokey.json"
    no_key.write_bytes(orjson.dumps({k: v for k, v in key.items() if k != "private_key"}))
    for path, message in ((truncated, "not valid JSON"), (no_key, "private_key is missing")):
        result = cli("--service-account", str(path), "--auth-dir", str(target))
        assert result.exit_code == 1
        assert "Not imported" in result.output and message in result.output
        assert str(path) in result.output.replace("\n", "")
        assert path.exists()  # the user's file is reported, never deleted
    assert not target.exists() or list(target.iterdir()) == []
    missing = cli("--auth-dir", str(target))
    assert missing.exit_code == 2 and "--service-account" in missing.output
    gone = cli("--service-account", str(tmp_path / "nope.json"), "--auth-dir", str(target))
    assert gone.exit_code == 1 and "Cannot read" in gone.output


# ----- tokens ------------------------------------------------------------------------------------


def test_token_is_minted_once_reused_and_renewed(proxy: ProxyServer, vertex_sim: VertexSim) -> None:
    assert import_key(proxy, vertex_sim.service_account(PROJECT)).status_code == 200
    for _ in range(2):
        assert ask("openai_chat", proxy.base_url, "gemini-2.5-pro", "a", False).text == "echo: a"
    assert vertex_sim.grants == 1  # cached until shortly before it expires
    first = vertex_sim.last_request.headers["authorization"]
    # The token is written beside the key, so a restart reuses it; never the key in a log.
    saved = orjson.loads((auth_dir(proxy) / f"vertex-{PROJECT}.json").read_bytes())
    assert saved["access_token"] == first.removeprefix("Bearer ") and saved["expired"]

    # The upstream stops taking it (expired early, revoked): one new token, the request passes.
    vertex_sim.expire_tokens()
    assert ask("openai_chat", proxy.base_url, "gemini-2.5-pro", "b", False).text == "echo: b"
    assert vertex_sim.grants == 2
    assert vertex_sim.last_request.headers["authorization"] != first

    # A token that expires within the refresh lead time (5 min) is renewed before it is used,
    # with no 401 first.
    vertex_sim.token_lifetime = 120
    vertex_sim.expire_tokens()
    ask("openai_chat", proxy.base_url, "gemini-2.5-pro", "c", False)
    for _ in range(2):
        grants, sent = vertex_sim.grants, len(vertex_sim.requests)
        assert ask("openai_chat", proxy.base_url, "gemini-2.5-pro", "d", False).text == "echo: d"
        assert (vertex_sim.grants, len(vertex_sim.requests)) == (grants + 1, sent + 1)


def test_a_key_the_token_endpoint_refuses(proxy: ProxyServer, vertex_sim: VertexSim) -> None:
    key = vertex_sim.service_account(PROJECT)
    other = vertex_sim.service_account(PROJECT, name="other")
    # A key whose signature does not match its account: Google's invalid_grant.
    key["private_key"] = other["private_key"]
    assert import_key(proxy, key).status_code == 200
    reply = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}]},
        timeout=10,
    )
    assert reply.status_code in (401, 503), reply.text
    assert "Invalid JWT Signature" in reply.text or "needs login" in reply.text
    assert vertex_sim.requests == []  # nothing reached the model without a token


# ----- requests in every client protocol ---------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_service_account_serves_every_client(
    proxy: ProxyServer, vertex_sim: VertexSim, client: str, stream: bool
) -> None:
    assert (
        import_key(proxy, vertex_sim.service_account(PROJECT), location="global").status_code == 200
    )
    vertex_sim.queue(Reply.text("from vertex", input_tokens=11, output_tokens=4))
    answer = ask(client, proxy.base_url, "gemini-2.5-pro", "hello", stream)
    assert answer.text == "from vertex"
    assert (answer.input_tokens, answer.output_tokens) == (11, 4)
    call = vertex_sim.last_request
    method = "streamGenerateContent" if stream else "generateContent"
    assert call.path == (
        f"/v1/projects/{PROJECT}/locations/global/publishers/google/models/gemini-2.5-pro:{method}"
    )
    assert call.query == ({"alt": "sse"} if stream else {})
    assert "x-goog-api-key" not in call.headers


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_vertex_api_key_serves_every_client(
    proxy: ProxyServer, vertex_sim: VertexSim, client: str, stream: bool
) -> None:
    answer = ask(client, proxy.base_url, "vx-flash", "hello", stream)
    assert answer.text == "echo: hello"
    call = vertex_sim.last_request
    method = "streamGenerateContent" if stream else "generateContent"
    assert call.path == f"/v1/publishers/google/models/gemini-2.5-flash:{method}"
    assert call.query == ({"alt": "sse"} if stream else {})
    assert call.headers["x-goog-api-key"] == VERTEX_KEY
    assert call.headers["x-extra"] == "from-config"
    assert "authorization" not in call.headers


def test_count_tokens_and_model_list(proxy: ProxyServer, vertex_sim: VertexSim) -> None:
    assert import_key(proxy, vertex_sim.service_account(PROJECT)).status_code == 200
    vertex_sim.token_count = 42
    gem = genai.Client(
        api_key="k",
        http_options=gtypes.HttpOptions(
            base_url=proxy.base_url, retry_options=gtypes.HttpRetryOptions(attempts=1)
        ),
    )
    counted = gem.models.count_tokens(model="gemini-2.5-pro", contents="count me")
    assert counted.total_tokens == 42
    assert vertex_sim.last_request.path.endswith(
        "/locations/us-central1/publishers/google/models/gemini-2.5-pro:countTokens"
    )
    assert "generateContentRequest" not in vertex_sim.last_request.json
    counted = gem.models.count_tokens(model="vx-flash", contents="count me too")
    assert counted.total_tokens == 42
    assert vertex_sim.last_request.path == (
        "/v1/publishers/google/models/gemini-2.5-flash:countTokens"
    )
    assert vertex_sim.last_request.headers["x-goog-api-key"] == VERTEX_KEY
    # Other protocols' counts are estimated locally (as for every Gemini upstream).
    claude = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
    sent = len(vertex_sim.requests)
    counted_claude = claude.messages.count_tokens(
        model="gemini-2.5-pro", messages=[{"role": "user", "content": "count me too"}]
    )
    assert counted_claude.input_tokens > 0 and len(vertex_sim.requests) == sent
    listed = httpx.get(proxy.base_url + "/v1/models", timeout=10).json()["data"]
    ids = {model["id"] for model in listed}
    assert {"vx-flash", "gemini-2.5-pro", "gemini-2.5-flash"} <= ids


def test_upstream_errors_are_classified(proxy: ProxyServer, vertex_sim: VertexSim) -> None:
    vertex_sim.queue(Reply.error(429, retry_after=30))
    reply = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": "vx-flash", "messages": [{"role": "user", "content": "x"}]},
        timeout=10,
    )
    assert reply.status_code == 429
    cooling = proxy.state.cooldowns.available_at("vertex-api-key[0]", "gemini-2.5-flash")
    assert cooling is not None  # the RetryInfo / Retry-After reset rests the key
    vertex_sim.reset()
    bad = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": "gemini-2.5-nonexistent", "messages": [{"role": "user", "content": "x"}]},
        timeout=10,
    )
    assert bad.status_code in (404, 400)  # no account yet: no route for the name
