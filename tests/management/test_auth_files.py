"""Management API, auth files: list, upload, download, delete, disable, edit, refresh, quota.

Every test runs twice: against the routes mounted over an AppState in a small ASGI app
("mounted"), and against the real server through /v0/management with the management key
("server"), so the payloads and the wiring are both checked.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from cliproxy import app as server_app
from cliproxy.config import parse_config_text
from cliproxy.management.routes_auth_files import ROUTES
from cliproxy.state import AppState
from cliproxy.usage.request_counts import BUCKETS, RequestCounts, counts_of
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.codex_backend_sim import CodexBackendSim
from tests.simulators.oauth_sim import (  # noqa: F401 (pytest fixtures)
    OAuthSim,
    oauth_sim_fixture,
    oauth_sim_server_fixture,
)

KEY = "auth-files-test-key"
PREFIX = "/v0/management"
FAR = "2099-01-01T00:00:00Z"


@dataclass
class Api:
    client: httpx.AsyncClient
    state: AppState
    auth_dir: Path

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, PREFIX + path, **kwargs)

    def write(self, name: str, content: dict[str, Any]) -> Path:
        path = self.auth_dir / name
        path.write_bytes(orjson.dumps(content))
        path.chmod(0o600)
        return path

    def read(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads((self.auth_dir / name).read_bytes())
        return data


def config_text(auth_dir: Path) -> str:
    return f'auth-dir: "{auth_dir}"\nremote-management:\n  secret-key: "{KEY}"\n'


@pytest.fixture(params=["mounted", "server"])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir()
    headers = {"authorization": f"Bearer {KEY}"}
    if request.param == "mounted":
        state = AppState(parse_config_text(config_text(auth_dir), "test.yaml"))
        app = Starlette(routes=[Mount(PREFIX, routes=ROUTES), *server_app.ROUTES])
        app.state.cliproxy = state
        app.add_middleware(server_app.ErrorMiddleware)  # upstream refusals as JSON, as served
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers, timeout=10
        ) as client:
            yield Api(client, state, auth_dir)
        await state.close()
        return
    with ProxyServer(config_text(auth_dir)) as server:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=headers, timeout=10
        ) as client:
            yield Api(client, server.state, auth_dir)


@pytest.fixture(scope="module")
def codex_sim() -> Iterator[CodexBackendSim]:
    with CodexBackendSim(api_keys={"codex-token-1"}) as sim:
        yield sim


def codex_file(base_url: str = "", **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "type": "codex",
        "access_token": "codex-token-1",
        "refresh_token": "rt-codex",
        "email": "coder@example.com",
        "account_id": "acct-1",
        "expired": FAR,
        "last_refresh": "2025-01-01T00:00:00Z",
    }
    if base_url:
        raw["base_url"] = base_url
    return {**raw, **extra}


CLAUDE = {"type": "claude", "access_token": "at", "refresh_token": "rt", "email": "c@example.com"}
GEMINI = {
    "type": "gemini",
    "token": {"access_token": "g", "refresh_token": "r", "expiry": FAR},
    "project_id": "proj-1",
    "email": "g@example.com",
}


def multipart(*files: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (name, data, "application/json")) for name, data in files]


# ----- listing --------------------------------------------------------------------------------


async def test_list_shows_every_file_with_its_state(api: Api) -> None:
    api.write("codex-coder.json", codex_file())
    api.write("Claude-c.json", CLAUDE)
    api.write("gemini-g.json", {**GEMINI, "disabled": True})
    api.write("broken.json", {"type": "codex", "access_token": 5})
    response = await api.call("GET", "/auth-files")
    assert response.status_code == 200
    files = response.json()["files"]
    assert [f["name"] for f in files] == [
        "broken.json",
        "Claude-c.json",
        "codex-coder.json",
        "gemini-g.json",
    ]
    by_name = {f["name"]: f for f in files}
    codex = by_name["codex-coder.json"]
    assert codex["type"] == codex["provider"] == "codex"
    assert codex["email"] == "coder@example.com"
    assert codex["status"] == "active" and codex["disabled"] is False
    assert codex["expiry"] == FAR
    assert codex["last_refresh"] == "2025-01-01T00:00:00Z"
    assert codex["account_id"] == "acct-1"
    assert len(codex["auth_index"]) == 16 and int(codex["auth_index"], 16) >= 0
    assert codex["size"] == (api.auth_dir / "codex-coder.json").stat().st_size
    assert codex["success"] == 0 and len(codex["recent_requests"]) == BUCKETS
    assert by_name["gemini-g.json"]["status"] == "disabled"
    assert by_name["gemini-g.json"]["project_id"] == "proj-1"
    broken = by_name["broken.json"]
    assert broken["status"] == "error" and "access_token" in broken["status_message"]
    # Filter by name and by auth_index.
    one = await api.call("GET", "/auth-files", params={"auth_index": codex["auth_index"]})
    assert [f["name"] for f in one.json()["files"]] == ["codex-coder.json"]


async def test_list_shows_request_counts_and_cooldowns(api: Api) -> None:
    api.write("codex-coder.json", codex_file())
    counts = counts_of(api.state)
    counts.record("codex-coder.json", True)
    counts.record("codex-coder.json", True)
    counts.record("codex-coder.json", False)
    api.state.cooldowns.cool("codex-coder.json", "gpt-5", time.time() + 120, "rate-limit (429)")
    entry = (await api.call("GET", "/auth-files")).json()["files"][0]
    assert (entry["success"], entry["failed"]) == (2, 1)
    assert entry["recent_requests"][-1]["success"] == 2
    assert entry["next_retry_after"] is not None


# ----- upload ---------------------------------------------------------------------------------


async def test_upload_one_file(api: Api) -> None:
    data = orjson.dumps(codex_file(note="uploaded"))
    response = await api.call("POST", "/auth-files", files=multipart(("codex-new.json", data)))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    path = api.auth_dir / "codex-new.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert api.read("codex-new.json") == orjson.loads(data)
    assert api.state.auth_store.get("codex-new.json") is not None
    listed = (await api.call("GET", "/auth-files")).json()["files"]
    assert [f["name"] for f in listed] == ["codex-new.json"]


async def test_upload_raw_json_with_name(api: Api) -> None:
    response = await api.call(
        "POST", "/auth-files", params={"name": "claude-raw.json"}, content=orjson.dumps(CLAUDE)
    )
    assert response.status_code == 200, response.text
    assert api.read("claude-raw.json") == CLAUDE
    missing_name = await api.call("POST", "/auth-files", content=orjson.dumps(CLAUDE))
    assert missing_name.status_code == 400


async def test_upload_many_with_one_bad_is_207(api: Api) -> None:
    files = multipart(
        ("codex-a.json", orjson.dumps(codex_file())),
        ("claude-b.json", orjson.dumps(CLAUDE)),
        ("bad.json", b'{"type": "qwen"}'),
        ("notjson.json", b"{oops"),
    )
    response = await api.call("POST", "/auth-files", files=files)
    assert response.status_code == 207, response.text
    body = response.json()
    assert body["status"] == "partial"
    assert body["uploaded"] == 2 and sorted(body["files"]) == ["claude-b.json", "codex-a.json"]
    assert sorted(f["name"] for f in body["failed"]) == ["bad.json", "notjson.json"]
    assert "qwen" in next(f for f in body["failed"] if f["name"] == "bad.json")["error"]
    assert sorted(p.name for p in api.auth_dir.iterdir()) == ["claude-b.json", "codex-a.json"]


async def test_upload_many_all_good(api: Api) -> None:
    files = multipart(("a.json", orjson.dumps(CLAUDE)), ("b.json", orjson.dumps(GEMINI)))
    response = await api.call("POST", "/auth-files", files=files)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "uploaded": 2, "files": ["a.json", "b.json"]}


async def test_upload_of_one_bad_file_is_refused(api: Api) -> None:
    bad = await api.call("POST", "/auth-files", files=multipart(("x.json", b'{"type": 1}')))
    assert bad.status_code == 422 and "type" in bad.json()["error"]
    wrong_suffix = await api.call("POST", "/auth-files", files=multipart(("x.txt", b"{}")))
    assert wrong_suffix.status_code == 400
    no_files = await api.call("POST", "/auth-files", data={"field": "value"}, files={})
    assert no_files.status_code == 400
    assert list(api.auth_dir.iterdir()) == []


# ----- download -------------------------------------------------------------------------------


async def test_download_gives_the_file_bytes(api: Api) -> None:
    path = api.write("claude-c.json", {**CLAUDE, "unknown_thing": [1, 2]})
    response = await api.call("GET", "/auth-files/download", params={"name": "claude-c.json"})
    assert response.status_code == 200
    assert response.content == path.read_bytes()
    assert response.headers["content-disposition"].startswith("attachment")
    missing = await api.call("GET", "/auth-files/download", params={"name": "nope.json"})
    assert missing.status_code == 404
    no_name = await api.call("GET", "/auth-files/download")
    assert no_name.status_code == 400


# ----- delete ---------------------------------------------------------------------------------


async def test_delete_one(api: Api) -> None:
    api.write("a.json", CLAUDE)
    api.write("b.json", CLAUDE)
    api.state.auth_store.load()
    response = await api.call("DELETE", "/auth-files", params={"name": "a.json"})
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert sorted(p.name for p in api.auth_dir.iterdir()) == ["b.json"]
    assert api.state.auth_store.get("a.json") is None  # out of routing before the reply
    again = await api.call("DELETE", "/auth-files", params={"name": "a.json"})
    assert again.status_code == 404


async def test_delete_batch_by_body_and_by_repeated_name(api: Api) -> None:
    for name in ("a.json", "b.json", "c.json", "d.json"):
        api.write(name, CLAUDE)
    response = await api.call(
        "DELETE", "/auth-files", content=orjson.dumps({"names": ["a.json", "b.json"]})
    )
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "deleted": 2, "files": ["a.json", "b.json"]}
    listed = await api.call(
        "DELETE", "/auth-files", params=[("name", "c.json"), ("name", "missing.json")]
    )
    assert listed.status_code == 207
    assert listed.json()["files"] == ["c.json"]
    assert listed.json()["failed"][0]["name"] == "missing.json"
    as_list = await api.call("DELETE", "/auth-files", content=orjson.dumps(["d.json"]))
    assert as_list.status_code == 200
    assert list(api.auth_dir.iterdir()) == []


async def test_delete_all(api: Api) -> None:
    for name in ("a.json", "b.json", "broken.json"):
        api.write(name, CLAUDE if name != "broken.json" else {"type": 3})
    (api.auth_dir / "keep.txt").write_text("not an auth file")
    response = await api.call("DELETE", "/auth-files", params={"all": "true"})
    assert response.status_code == 200 and response.json() == {"status": "ok", "deleted": 3}
    assert [p.name for p in api.auth_dir.iterdir()] == ["keep.txt"]
    assert (await api.call("GET", "/auth-files")).json() == {"files": []}
    nothing = await api.call("DELETE", "/auth-files")
    assert nothing.status_code == 400


# ----- names that leave the auth directory ------------------------------------------------------

HOSTILE = ["../victim.json", "..\\victim.json", "/etc/victim.json", "sub/x.json", "a\x00.json",
           "C:victim.json", ".json", "..", "victim.txt"]  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
async def test_traversal_names_are_rejected(api: Api, name: str) -> None:
    victim = api.auth_dir.parent / "victim.json"
    victim.write_bytes(orjson.dumps(CLAUDE))
    before = victim.read_bytes()
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/auth-files/download", {"params": {"name": name}}),
        ("DELETE", "/auth-files", {"params": {"name": name}}),
        ("DELETE", "/auth-files", {"content": orjson.dumps({"names": ["ok.json", name]})}),
        ("POST", "/auth-files", {"params": {"name": name}, "content": orjson.dumps(CLAUDE)}),
        ("PATCH", "/auth-files/status", {"json": {"name": name, "disabled": True}}),
        ("PATCH", "/auth-files/fields", {"json": {"name": name, "note": "x"}}),
        ("POST", "/auth-files/refresh", {"params": {"name": name}}),
    ]
    if "\x00" not in name:  # httpx percent-encodes a NUL in a part's filename: harmless
        calls.append(("POST", "/auth-files", {"files": multipart((name, orjson.dumps(CLAUDE)))}))
    for method, path, kwargs in calls:
        response = await api.call(method, path, **kwargs)
        assert response.status_code == 400, (method, path, response.status_code, response.text)
    assert victim.read_bytes() == before
    assert list(api.auth_dir.iterdir()) == []


# ----- disable / enable -----------------------------------------------------------------------


async def ask_codex(api: Api) -> httpx.Response:
    body = {"model": "gpt-5-codex", "messages": [{"role": "user", "content": "hi"}]}
    return await api.client.post("/v1/chat/completions", json=body)


async def test_disabled_account_no_longer_serves(api: Api, codex_sim: CodexBackendSim) -> None:
    codex_sim.reset()
    api.write("codex-coder.json", codex_file(codex_sim.base_url, keep={"me": 1}))
    api.state.auth_store.load()
    codex_sim.queue(Reply.text("served by the account"))
    served = await ask_codex(api)
    assert served.status_code == 200, served.text
    assert served.json()["choices"][0]["message"]["content"] == "served by the account"
    assert len(codex_sim.requests) == 1

    off = await api.call(
        "PATCH", "/auth-files/status", json={"name": "codex-coder.json", "disabled": True}
    )
    assert off.status_code == 200 and off.json()["disabled"] is True
    on_disk = api.read("codex-coder.json")
    assert on_disk["disabled"] is True and on_disk["keep"] == {"me": 1}
    refused = await ask_codex(api)
    assert refused.status_code != 200
    assert len(codex_sim.requests) == 1  # the upstream was not asked
    listed = (await api.call("GET", "/auth-files")).json()["files"][0]
    assert listed["status"] == "disabled"

    on = await api.call(
        "PATCH", "/auth-files/status", json={"name": "codex-coder.json", "disabled": False}
    )
    assert on.status_code == 200 and api.read("codex-coder.json")["disabled"] is False
    codex_sim.queue(Reply.text("back again"))
    again = await ask_codex(api)
    assert again.json()["choices"][0]["message"]["content"] == "back again"


async def test_status_payload_errors(api: Api) -> None:
    api.write("a.json", CLAUDE)
    before = (api.auth_dir / "a.json").read_bytes()
    for body in ({"name": "a.json"}, {"name": "a.json", "disabled": "yes"}, ["a.json"]):
        response = await api.call("PATCH", "/auth-files/status", json=body)
        assert response.status_code == 400, body
    missing = await api.call(
        "PATCH", "/auth-files/status", json={"name": "x.json", "disabled": True}
    )
    assert missing.status_code == 404
    assert (api.auth_dir / "a.json").read_bytes() == before


# ----- fields ---------------------------------------------------------------------------------


async def test_patch_fields_keeps_unknown_fields(api: Api) -> None:
    api.write("codex-coder.json", codex_file(custom={"nested": [1, 2]}, headers={"X-Old": "1"}))
    response = await api.call(
        "PATCH",
        "/auth-files/fields",
        json={
            "name": "codex-coder.json",
            "prefix": "/team/",
            "priority": 5,
            "weight": 3,
            "note": "shared account",
            "proxy-url": "socks5://127.0.0.1:1080",
            "excluded-models": ["GPT-5.1*"],
            "headers": {"X-New": "2", "X-Old": ""},
            "websockets": True,
        },
    )
    assert response.status_code == 200, response.text
    disk = api.read("codex-coder.json")
    assert disk["custom"] == {"nested": [1, 2]}
    assert disk["access_token"] == "codex-token-1" and disk["account_id"] == "acct-1"
    assert disk["prefix"] == "team" and disk["priority"] == 5 and disk["weight"] == 3
    assert disk["note"] == "shared account" and disk["websockets"] is True
    assert disk["proxy_url"] == "socks5://127.0.0.1:1080" and "proxy-url" not in disk
    assert disk["excluded_models"] == ["gpt-5.1*"]
    assert disk["headers"] == {"X-New": "2"}
    record = api.state.auth_store.get("codex-coder.json")
    assert record is not None and record.prefix == "team" and record.priority == 5
    models = await api.call("GET", "/auth-files/models", params={"name": "codex-coder.json"})
    ids = [m["id"] for m in models.json()["models"]]
    assert "team/gpt-5.5" in ids and not any(i.startswith("team/gpt-5.1") for i in ids)

    cleared = await api.call(
        "PATCH", "/auth-files/fields", json={"name": "codex-coder.json", "priority": None}
    )
    assert cleared.status_code == 200
    assert "priority" not in api.read("codex-coder.json")


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"priority": "high"}, 422, "priority"),
        ({"weight": -1}, 422, "weight"),
        ({"proxy_url": "ftp://x"}, 422, "proxy_url"),
        ({"prefix": "a/b"}, 422, "prefix"),
        ({"excluded_models": "gpt-5"}, 422, "excluded_models"),
        ({"access_token": "stolen"}, 422, "access_token"),
        ({"base_url": "http://evil.example"}, 422, "base_url"),
        ({"proxy_url": "direct", "proxy-url": "none"}, 400, "proxy_url"),
        ({}, 400, "no fields"),
    ],
)
async def test_patch_fields_payload_errors_leave_the_file(
    api: Api, body: dict[str, Any], status: int, named: str
) -> None:
    path = api.write("codex-coder.json", codex_file())
    before = path.read_bytes()
    response = await api.call("PATCH", "/auth-files/fields", json={"name": path.name, **body})
    assert response.status_code == status, response.text
    assert named in response.json()["error"]
    assert path.read_bytes() == before


# ----- refresh --------------------------------------------------------------------------------


async def test_forced_refresh_against_the_oauth_simulator(api: Api, oauth_sim: OAuthSim) -> None:
    api.state.refresher.flows = oauth_sim.flows()
    old = oauth_sim.auth_file("claude", expires_in=3600)
    api.write("claude-user.json", {**old, "note": "kept"})
    response = await api.call("POST", "/auth-files/refresh", params={"name": "claude-user.json"})
    assert response.status_code == 200, response.text
    assert oauth_sim.refresh_calls == 1
    disk = api.read("claude-user.json")
    assert disk["access_token"] != old["access_token"]
    assert oauth_sim.access_token_valid(disk["access_token"])
    assert disk["note"] == "kept"
    assert response.json()["file"]["expiry"] == disk["expired"]

    oauth_sim.revoke(disk["refresh_token"])
    refused = await api.call("POST", "/auth-files/refresh", json={"name": "claude-user.json"})
    assert refused.status_code == 409
    listed = (await api.call("GET", "/auth-files")).json()["files"][0]
    assert listed["needs_login"] is True and listed["status"] == "error"
    missing = await api.call("POST", "/auth-files/refresh", params={"name": "nobody.json"})
    assert missing.status_code == 404


# ----- quota ----------------------------------------------------------------------------------


async def test_quota_view_and_reset(api: Api, codex_sim: CodexBackendSim) -> None:
    codex_sim.reset()
    api.write("codex-coder.json", codex_file(codex_sim.base_url))
    api.write("claude-c.json", CLAUDE)
    api.state.auth_store.load()
    codex_sim.queue(Reply.text("ok"))
    assert (await ask_codex(api)).status_code == 200
    api.state.cooldowns.cool("claude-c.json", "claude-sonnet-4-5", time.time() + 300, "rate-limit")

    accounts = {a["name"]: a for a in (await api.call("GET", "/quota")).json()["accounts"]}
    usage = accounts["codex-coder.json"]["usage"]
    assert usage["primary"]["used_percent"] == 12.5
    assert usage["secondary"]["window_minutes"] == 10080
    claude = accounts["claude-c.json"]
    assert [c["model"] for c in claude["cooldowns"]] == ["claude-sonnet-4-5"]
    assert 0 < claude["cooldowns"][0]["seconds_left"] <= 300

    reset = await api.call("POST", "/reset-quota", json={"auth_index": claude["auth_index"]})
    assert reset.status_code == 200
    assert reset.json()["models"] == ["claude-sonnet-4-5"]
    assert api.state.cooldowns.available_at("claude-c.json", "claude-sonnet-4-5") is None
    # A config API key is named by its routing id (its `auth-index` in the provider lists).
    api.state.cooldowns.cool("claude-api-key[0]", "claude-x", time.time() + 60, "rate-limit")
    by_id = await api.call("POST", "/reset-quota", json={"auth_index": "claude-api-key[0]"})
    assert by_id.status_code == 200 and by_id.json()["models"] == ["claude-x"]
    unknown = await api.call("POST", "/reset-quota", json={"auth_index": "0000000000000000"})
    assert unknown.status_code == 404
    assert (await api.call("POST", "/reset-quota", json={})).status_code == 400


# ----- counters (unit) ------------------------------------------------------------------------


def test_request_counts_keep_totals_and_twenty_buckets() -> None:
    now = [1_000_000.0]
    counts = RequestCounts(lambda: now[0])
    counts.record("a", True)
    counts.record("a", False)
    now[0] += 600 * 3
    counts.record("a", True)
    assert counts.totals("a") == (2, 1)
    recent = counts.recent("a")
    assert len(recent) == BUCKETS
    assert (recent[-1]["success"], recent[-4]["success"], recent[-4]["failed"]) == (1, 1, 1)
    now[0] += 600 * BUCKETS  # the old buckets age out, the totals stay
    assert all(row["success"] == row["failed"] == 0 for row in counts.recent("a"))
    assert counts.totals("a") == (2, 1)
    assert counts.totals("b") == (0, 0)
    assert os.sep not in recent[0]["time"] and "-" in recent[0]["time"]
