"""/v8/management over HTTP against a real server: the config tree (whole config and one v8 path,
bare JSON values, PUT replaces, PATCH merges objects and replaces lists and scalars, the file
migrated to the v8 layout by the first write with its comments kept), path and value errors,
the same guard as /v0/management, and every other route of the tree (most are /v0 handlers
under their v8 names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ruamel.yaml import YAML

from cliproxy.config import load_config
from tests.management.conftest import KEY, management_mount
from tests.proxy_server import ProxyServer
from tests.simulators.oauth_sim import (  # noqa: F401 (pytest fixtures)
    OAuthSim,
    oauth_sim_fixture,
    oauth_sim_server_fixture,
)

V8 = "/v8/management"


def on_disk(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def same_config(path: Path, before: dict[str, Any], **changed: Any) -> None:
    """The file loads to the config it loaded to before, but for ``changed`` fields."""
    after = load_config(path).model_dump()
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed
    }
    for field, value in changed.items():
        assert after[field] == value, field


# --- reads ----------------------------------------------------------------------------------


def test_get_config_is_the_live_config_in_the_v8_layout(v8: httpx.Client) -> None:
    config = v8.get("/config").json()
    assert config["config-version"] == 8
    assert config["server"]["port"] == 8317
    assert config["routing"]["strategy"] == "round-robin"
    assert config["routing"]["retry"]["request-retry"] == 3  # the default, filled in
    assert config["access"]["api-keys"] == ["client-key-1", "client-key-2"]
    keys = [[item["api-key"] for item in g["keys"]] for g in config["api-keys"]["claude"]]
    assert keys == [["sk-ant-1"], ["sk-ant-2"]]
    assert "secret-key" not in config["management"]  # never shown as JSON
    for legacy in ("request-retry", "port", "remote-management", "claude-api-key", "debug"):
        assert legacy not in config


def test_get_one_path_answers_the_bare_value(v8: httpx.Client) -> None:
    assert v8.get("/config/routing/retry/request-retry").json() == 3
    assert v8.get("/config/routing/retry").json() == {
        "request-retry": 3,
        "max-retry-credentials": 0,
        "max-retry-interval": 30,
    }
    assert v8.get("/config/observability/logs/debug").json() is False
    assert v8.get("/config/routing/retry/request-retry/").json() == 3  # a trailing slash
    # A path the layout has that holds nothing: 404 not_found (the console's cue to default).
    unset = v8.get("/config/model-fallbacks/gpt-5")
    assert unset.status_code == 404
    assert unset.json() == {
        "error": "not_found",
        "message": "config path model-fallbacks/gpt-5: not set",
        "path": "model-fallbacks/gpt-5",
    }


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("routing/retry/nope", "routing.retry.nope: unknown key"),
        ("no-such-setting", "no-such-setting: unknown key"),
        ("request-retry", "in the v8 layout it is routing.retry.request-retry"),
        ("claude-api-key", "its entries are groups in api-keys.claude"),
        ("server/debug", "debug is observability.logs.debug"),
        ("api-keys/claude/0", "paths address mapping keys, not indexes"),
        ("access/api-keys/0", "access.api-keys is a list"),
        ("routing/strategy/x", "routing.strategy holds a value"),
    ],
)
def test_a_path_the_layout_does_not_have_is_404_naming_it(
    v8: httpx.Client, config_file: Path, path: str, named: str
) -> None:
    before = config_file.read_bytes()
    for method, body in (("GET", None), ("PUT", 1), ("PATCH", 1), ("DELETE", None)):
        reply = v8.request(method, "/config/" + path, json=body)
        assert reply.status_code == 404, (method, reply.text)
        assert reply.json()["error"] == "unknown_path"
        assert reply.json()["path"] == path
        assert f"config path {path}: " in reply.json()["message"]
        assert named in reply.json()["message"], (method, reply.text)
    assert config_file.read_bytes() == before


# --- writes ---------------------------------------------------------------------------------


def test_a_v8_write_migrates_the_file_keeping_comments_and_applies_it(
    v8: httpx.Client, config_file: Path, proxy: ProxyServer
) -> None:
    before = load_config(config_file).model_dump()
    reply = v8.put("/config/routing/retry/request-retry", json=5)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"status": "ok"}
    data = on_disk(config_file)
    assert data["config-version"] == 8
    assert data["routing"]["retry"]["request-retry"] == 5
    assert data["server"]["port"] == 8317
    assert data["access"]["api-keys"] == ["client-key-1", "client-key-2"]
    assert data["api-keys"]["claude"][0]["keys"] == ["sk-ant-1"]
    assert data["oauth"]["auth-dir"] and data["management"]["secret-key"].startswith("$2")
    for legacy in ("port", "claude-api-key", "remote-management", "auth-dir"):
        assert legacy not in data
    assert isinstance(data["api-keys"], dict)  # groups, not the client keys
    text = config_file.read_text()
    lines = text.splitlines()
    assert lines[0] == "# cliproxy test config"
    for comment, key in (
        ("# client keys", "access:"),
        ("# upstream keys", "api-keys:"),
        ("# how requests are spread", "routing:"),
    ):
        assert lines[lines.index(comment) + 1] == key, text
    for kept in ("# not used by the test server", "# the first key", "# nothing listens on port 9"):
        assert kept in text
    assert lines[-1] == "# end of file"
    same_config(config_file, before, request_retry=5)
    assert proxy.state.runtime.config.request_retry == 5  # applied live
    v0 = httpx.get(
        proxy.base_url + "/v0/management/request-retry", headers={"x-management-key": KEY}
    )
    assert v0.json() == {"request-retry": 5}
    assert v8.get("/config/routing/retry/request-retry").json() == 5


def test_a_bad_value_is_422_naming_the_v8_path_and_changes_nothing(
    v8: httpx.Client, config_file: Path, proxy: ProxyServer
) -> None:
    before = config_file.read_bytes()
    reply = v8.put("/config/routing/retry/request-retry", json=-1)
    assert reply.status_code == 422
    body = reply.json()
    assert body["error"] == "invalid_config"
    assert body["message"].startswith("routing.retry.request-retry: must be 0 or more")
    assert body["problems"][0]["key"] == "routing.retry.request-retry"
    reply = v8.patch("/config/routing", json={"retry": {"max-retry-interval": "soon"}})
    assert reply.status_code == 422
    assert reply.json()["problems"][0]["key"] == "routing.retry.max-retry-interval"
    # A key unknown inside the value: 422 naming it (the path itself exists).
    reply = v8.patch("/config/routing", json={"retry": {"nope": 1}})
    assert reply.status_code == 422
    assert reply.json()["problems"][0]["key"] == "routing.retry.nope"
    assert config_file.read_bytes() == before  # still the legacy file, byte for byte
    assert proxy.state.runtime.config.request_retry == 3


def test_put_replaces_and_patch_merges_objects_and_replaces_lists(
    v8: httpx.Client, config_file: Path
) -> None:
    assert v8.put("/config/routing/retry", json={"request-retry": 1}).status_code == 200
    reply = v8.patch("/config/routing", json={"retry": {"max-retry-interval": 9}})
    assert reply.status_code == 200, reply.text
    routing = on_disk(config_file)["routing"]
    # PATCH merged: strategy and request-retry are still there.
    assert routing == {
        "strategy": "round-robin",
        "retry": {"request-retry": 1, "max-retry-interval": 9},
    }
    # PUT replaced the whole object: what it did not name is gone.
    assert v8.put("/config/routing/retry", json={"max-retry-credentials": 2}).status_code == 200
    assert on_disk(config_file)["routing"]["retry"] == {"max-retry-credentials": 2}
    # Lists and scalars are replaced, not merged.
    assert v8.patch("/config/access", json={"api-keys": ["only-key"]}).status_code == 200
    assert on_disk(config_file)["access"]["api-keys"] == ["only-key"]
    assert v8.patch("/config/routing/strategy", json="fill-first").status_code == 200
    assert v8.get("/config/routing/strategy").json() == "fill-first"
    # null in a PATCH removes the key; DELETE removes one too (nothing there: nothing changes).
    assert v8.patch("/config/routing", json={"retry": None}).status_code == 200
    assert "retry" not in on_disk(config_file)["routing"]
    assert v8.delete("/config/routing/strategy").status_code == 200
    assert "routing" not in on_disk(config_file)  # left empty, so removed
    before = config_file.read_bytes()
    assert v8.delete("/config/routing/strategy").status_code == 200
    assert config_file.read_bytes() == before
    assert load_config(config_file).routing.strategy == "round-robin"


def test_whole_config_get_put_round_trip_changes_nothing(
    v8: httpx.Client, config_file: Path
) -> None:
    assert v8.put("/config/observability/logs/debug", json=True).status_code == 200
    migrated = config_file.read_bytes()  # the v8 layout now
    whole = v8.get("/config").json()
    assert v8.put("/config", json=whole).status_code == 200
    assert config_file.read_bytes() == migrated  # no default spelled out, the secret kept
    assert v8.get("/config").json() == whole
    # PATCH /config merges; PUT /config drops what it leaves out (but the secret).
    assert v8.patch("/config", json={"requests": {"proxy-url": "direct"}}).status_code == 200
    assert on_disk(config_file)["requests"] == {"proxy-url": "direct"}
    reply = v8.put("/config", json={"server": {"port": 8317}, "access": {"api-keys": ["k"]}})
    assert reply.status_code == 200, reply.text
    data = on_disk(config_file)
    assert set(data) == {"server", "access", "management"}
    assert data["management"]["secret-key"].startswith("$2")


def test_whole_config_writes_refuse_legacy_names_and_unknown_keys(
    v8: httpx.Client, config_file: Path
) -> None:
    before = config_file.read_bytes()
    cases = [
        ({"request-retry": 2}, "request-retry", "routing.retry.request-retry"),
        ({"api-keys": ["client-key"]}, "api-keys", "access.api-keys"),
        ({"routing": {"nope": 1}}, "routing.nope", "unknown key"),
        ({"server": {"debug": True}}, "server.debug", "observability.logs.debug"),
    ]
    for body, key, said in cases:
        reply = v8.patch("/config", json=body)
        assert reply.status_code == 422, reply.text
        assert reply.json()["problems"][0]["key"] == key
        assert said in reply.json()["message"]
    assert v8.put("/config", json=["not", "an", "object"]).status_code == 422
    assert v8.put("/config", content=b"{not json").status_code == 400
    assert config_file.read_bytes() == before


def test_masked_client_keys_sent_back_keep_their_keys(v8: httpx.Client, config_file: Path) -> None:
    entries = [{"name": "team-a", "key": "sk-team-a-0123456789"}]
    assert v8.put("/config/client-keys", json=entries).status_code == 200
    shown = v8.get("/config/client-keys").json()
    assert shown[0]["key"] == "sk-t…6789"
    assert v8.put("/config/client-keys", json=shown).status_code == 200
    assert on_disk(config_file)["client-keys"][0]["key"] == "sk-team-a-0123456789"
    made = v8.patch("/config", json={"client-keys": [*shown, {"name": "team-b"}]})
    assert made.status_code == 200
    generated = made.json()["generated-keys"]
    assert [g["name"] for g in generated] == ["team-b"] and generated[0]["key"].startswith("sk-")


def test_config_yaml_is_the_file_as_written(v8: httpx.Client, config_file: Path) -> None:
    reply = v8.get("/config.yaml")
    assert reply.status_code == 200
    assert reply.text == config_file.read_text()
    text = reply.text.replace("strategy: round-robin", "strategy: fill-first")
    assert v8.put("/config.yaml", content=text.encode()).json() == {
        "ok": True,
        "changed": ["config"],
    }
    assert v8.get("/config/routing/strategy").json() == "fill-first"
    assert "remote-management:" in config_file.read_text()  # the text as given: not migrated
    assert v8.put("/config.yaml", content=b"port: [").status_code == 400


def test_writes_without_a_config_file_are_409(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANAGEMENT_PASSWORD", "env-pass")
    with ProxyServer("demo: true\n") as proxy:
        url = proxy.base_url + V8
        headers = {"x-management-key": "env-pass"}
        assert httpx.get(url + "/config/routing/strategy", headers=headers).status_code == 200
        reply = httpx.put(url + "/config/routing/strategy", headers=headers, json="fill-first")
        assert reply.status_code == 409 and reply.json()["error"] == "no_config_file"


# --- the guard ------------------------------------------------------------------------------


def test_the_v8_tree_has_the_v0_guard_and_shares_its_lockout(proxy: ProxyServer) -> None:
    url = proxy.base_url + V8 + "/config"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url).json() == {"error": "missing management key"}
    assert httpx.get(url, headers={"authorization": "Bearer client-key-1"}).status_code == 401
    ok = httpx.get(url, headers={"x-management-key": KEY})
    assert ok.status_code == 200 and ok.headers["x-cpa-version"]
    now = [1000.0]
    management_mount(proxy.app, V8).management.guard.clock = lambda: now[0]
    for _ in range(5):
        assert httpx.get(url, headers={"x-management-key": "bad"}).status_code == 401
    for tree in ("/v8/management", "/v0/management"):  # one guard: banned in both trees
        banned = httpx.get(proxy.base_url + tree + "/config", headers={"x-management-key": KEY})
        assert banned.status_code == 403
        assert banned.json()["error"].startswith("IP banned")


async def test_remote_clients_are_refused_as_in_v0(config_file: Path) -> None:
    from cliproxy.app import build_app

    app = build_app(load_config(config_file), config_file)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
        reply = await client.get(V8 + "/config", headers={"x-management-key": KEY})
    assert reply.status_code == 403
    assert reply.json() == {"error": "remote management disabled"}


def test_disabled_api_is_404_in_both_trees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.management.conftest import write_config

    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    path = write_config(tmp_path, key="")
    with ProxyServer(load_config(path), config_path=path) as proxy:
        for route in ("/config", "/credentials", "/oauth/callback?state=x&code=y"):
            reply = httpx.get(proxy.base_url + V8 + route, headers={"x-management-key": "x"})
            assert reply.status_code == 404 and reply.content == b""


# --- the other routes -----------------------------------------------------------------------


def test_credentials_are_the_auth_file_routes(
    v8: httpx.Client, proxy: ProxyServer, oauth_sim: OAuthSim
) -> None:
    proxy.state.refresher.flows = oauth_sim.flows()
    account = oauth_sim.auth_file("claude", expires_in=3600)
    files = [("file", ("claude-user.json", orjson.dumps(account), "application/json"))]
    uploaded = v8.post("/credentials", files=files)
    assert uploaded.status_code == 200 and uploaded.json()["status"] == "ok"
    listed = v8.get("/credentials").json()["files"]
    assert [(f["name"], f["type"]) for f in listed] == [("claude-user.json", "claude")]
    assert v8.get("/credentials/download", params={"name": "claude-user.json"}).json() == account
    models = v8.get("/credentials/models", params={"name": "claude-user.json"}).json()
    assert models["models"]
    status = v8.patch("/credentials/status", json={"name": "claude-user.json", "disabled": True})
    assert status.status_code == 200 and status.json()["disabled"] is True
    fields = v8.patch("/credentials/fields", json={"name": "claude-user.json", "note": "hi"})
    assert fields.status_code == 200, fields.text
    refreshed = v8.post("/credentials/refresh", params={"name": "claude-user.json"})
    assert refreshed.status_code == 200, refreshed.text
    assert oauth_sim.refresh_calls == 1
    assert v8.delete("/credentials", params={"name": "claude-user.json"}).json() == {"status": "ok"}
    assert v8.get("/credentials").json()["files"] == []


def test_oauth_routes_start_poll_cancel_and_finish_logins(
    v8: httpx.Client, proxy: ProxyServer
) -> None:
    started = v8.get("/oauth/auth-url", params={"provider": "codex"})
    assert started.status_code == 200, started.text
    state = started.json()["state"]
    assert started.json()["url"].startswith("https://")
    assert v8.get("/oauth/status", params={"state": state}).json() == {"status": "wait"}
    assert v8.delete("/oauth/session", params={"state": state}).json() == {
        "status": "ok",
        "cancelled": True,
    }
    assert v8.get("/oauth/auth-url", params={"provider": "claude"}).status_code == 200
    refused = v8.get("/oauth/auth-url", params={"provider": "qwen"})
    assert refused.status_code == 422 and "qwen logins are not supported" in refused.json()["error"]
    assert v8.get("/oauth/auth-url").status_code == 400
    # The callback needs no key (the single-use state is the capability), as /v0's.
    other = v8.get("/oauth/auth-url", params={"provider": "codex"}).json()["state"]
    url = proxy.base_url + V8 + "/oauth/callback"
    finished = httpx.post(url, json={"state": other, "error": "access_denied"})
    assert finished.status_code == 200, finished.text
    assert httpx.get(url, params={"state": "nope-state", "code": "c"}).status_code == 404
    assert v8.get("/oauth/status", params={"state": other}).json()["status"] == "error"


def test_oauth_import_of_a_vertex_service_account(v8: httpx.Client, proxy: ProxyServer) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "p-1",
        "client_email": "sa@p-1.iam.gserviceaccount.com",
        "private_key": pem,
    }
    files = [("file", ("sa.json", orjson.dumps(account), "application/json"))]
    reply = v8.post("/oauth/import", params={"provider": "vertex"}, files=files)
    assert reply.status_code == 200, reply.text
    assert reply.json()["project_id"] == "p-1"
    assert [f["name"] for f in v8.get("/credentials").json()["files"]] == ["vertex-p-1.json"]
    assert v8.post("/oauth/import", params={"provider": "codex"}, files=files).status_code == 422
    assert v8.post("/oauth/import", files=files).status_code == 400


def test_routing_observability_server_and_requests_routes(v8: httpx.Client) -> None:
    reset = v8.post("/routing/cooldown/reset", json={"all": True})
    assert reset.status_code == 200 and reset.json()["all"] is True
    codex = v8.get("/routing/model-definitions/codex").json()
    assert codex["channel"] == "codex" and codex["models"]
    assert v8.get("/routing/model-definitions/nope").status_code == 400
    logs = v8.get("/observability/logs", params={"limit": 5}).json()
    assert isinstance(logs["lines"], list) and "next-cursor" in logs
    assert v8.delete("/observability/logs").json()["success"] is True
    assert isinstance(v8.get("/observability/logs/errors").json()["files"], list)
    assert v8.get("/observability/logs/errors/error-nope.log").status_code == 404
    assert v8.get("/observability/logs/requests/0123abcd").status_code == 404
    assert v8.get("/observability/logs/requests/not-an-id").status_code == 400
    usage = v8.get("/observability/usage/api-keys").json()
    assert "claude" in usage
    assert v8.get("/observability/usage/queue").json() == []
    assert v8.get("/server/latest-version").json()["latest-version"]
    call = v8.post("/requests/api-call", json={"method": "GET", "url": "https://example.com/"})
    assert call.status_code in (400, 403) and "error" in call.json()
    assert v8.get("/plugins").json()["plugins"] == []


def test_usage_queue_hands_each_request_out_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MANAGEMENT_PASSWORD", "env-pass")
    path = tmp_path / "config.yaml"
    path.write_text(f"demo: true\napi-keys: [client-key-1]\nauth-dir: {tmp_path}\n")
    with ProxyServer(load_config(path), config_path=path) as proxy:
        for word in ("one", "two"):
            reply = httpx.post(
                proxy.base_url + "/v1/chat/completions",
                headers={"authorization": "Bearer client-key-1"},
                json={"model": "demo-echo", "messages": [{"role": "user", "content": word}]},
            )
            assert reply.status_code == 200, reply.text
        queue = proxy.base_url + V8 + "/observability/usage/queue"
        headers = {"x-management-key": "env-pass"}
        first = httpx.get(queue, headers=headers).json()
        assert [r["model"] for r in first] == ["demo-echo"]
        rest = httpx.get(queue, headers=headers, params={"count": 10}).json()
        assert len(rest) == 1 and rest[0]["id"] > first[0]["id"]
        assert httpx.get(queue, headers=headers, params={"count": 10}).json() == []
        # The same queue under its /v0 name.
        assert (
            httpx.get(proxy.base_url + "/v0/management/usage-queue", headers=headers).json() == []
        )


def test_openapi_document_of_the_tree(v8: httpx.Client) -> None:
    document = v8.get("/openapi.json").json()
    assert document["servers"] == [{"url": V8}]
    paths = document["paths"]
    assert {"get", "put", "patch", "delete"} <= set(paths["/config/{path}"])
    assert paths["/observability/logs"]["get"]["x-cliproxy-v0"] == "/logs"
    assert "provider" in str(paths["/oauth/auth-url"]["get"]["parameters"])
