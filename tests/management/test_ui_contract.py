"""Contract tests: the calls the CLIProxyAPI Management Center (CPAMC) makes, shaped as it sends
them, against a real server, asserting the fields and types the page reads.

Source read: router-for-me/Cli-Proxy-API-Management-Center at f60c8ca683b1. The comment above
each test names the UI file whose request/response handling it mirrors (src/services/api/*.ts
unless said otherwise). The page runs from another origin in these tests (a panel hosted on
another port, or the hosted one), so every call carries an Origin header and CORS is checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ruamel.yaml import YAML

from tests.management.conftest import KEY, assert_comments_kept
from tests.proxy_server import ProxyServer

PANEL_ORIGIN = "http://127.0.0.1:5173"
# What axios sends with every call of the UI's client (client.ts; the interceptor adds
# `Authorization: Bearer <key>`). Its JSON Content-Type default goes out only with a body,
# which httpx's json= does too; for FormData the browser sets multipart with its boundary.
AXIOS_HEADERS = {"accept": "application/json, text/plain, */*", "origin": PANEL_ORIGIN}
FAR = "2099-01-01T00:00:00Z"


@pytest.fixture
def ui(proxy: ProxyServer) -> Iterator[httpx.Client]:
    """The panel's axios instance: base URL = server + /v0/management (utils/connection.ts
    computeApiUrl), the key as a Bearer token."""
    with httpx.Client(
        base_url=proxy.base_url + "/v0/management",
        headers={**AXIOS_HEADERS, "authorization": f"Bearer {KEY}"},
        timeout=10,
    ) as client:
        yield client


def on_disk(path: Path, key: str) -> Any:
    return YAML(typ="safe").load(path.read_text()).get(key)


def auth_dir(proxy: ProxyServer) -> Path:
    path: Path = proxy.state.auth_store.auth_dir
    return path


def write_auth(proxy: ProxyServer, name: str, content: dict[str, Any]) -> Path:
    path = auth_dir(proxy) / name
    path.write_bytes(orjson.dumps(content))
    path.chmod(0o600)
    return path


def codex_id_token(plan: str = "plus", account: str = "acct-42") -> str:
    """An unsigned JWT shaped like Codex's id_token (only the claims are read)."""
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()

    claims = {
        "email": "coder@example.com",
        "https://api.openai.com/auth": {"chatgpt_account_id": account, "chatgpt_plan_type": plan},
    }
    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


CODEX = {
    "type": "codex",
    "access_token": "at-codex",
    "refresh_token": "rt-codex",
    "email": "coder@example.com",
    "expired": FAR,
}
CLAUDE = {"type": "claude", "access_token": "at", "refresh_token": "rt", "email": "c@example.com"}


# ----- connection and login ---------------------------------------------------------------------


# client.ts / utils/connection.ts: a panel on another origin sends a preflight without the key
# before each call; it must succeed and must not count as a failed login (5 would ban the IP).
def test_preflight_from_another_origin_is_answered_without_the_key(proxy: ProxyServer) -> None:
    for _ in range(7):
        reply = httpx.options(
            proxy.base_url + "/v0/management/auth-files/status",
            headers={
                "origin": PANEL_ORIGIN,
                "access-control-request-method": "PATCH",
                "access-control-request-headers": "authorization,content-type",
            },
        )
        assert reply.status_code in (200, 204), reply.text
        assert reply.headers["access-control-allow-origin"] in ("*", PANEL_ORIGIN)
        allowed = reply.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "PATCH" in reply.headers["access-control-allow-methods"]
    # Still not banned: the key works after more preflights than the failure limit.
    reply = httpx.get(
        proxy.base_url + "/v0/management/config",
        headers={"authorization": f"Bearer {KEY}", "origin": PANEL_ORIGIN},
    )
    assert reply.status_code == 200


# stores/useAuthStore.ts login = configApi.getConfig() (config.ts); client.ts reads the
# X-CPA-* headers to show the version and decide whether plugin pages exist.
def test_login_probe_get_config_with_version_headers(ui: httpx.Client) -> None:
    reply = ui.get("/config")
    assert reply.status_code == 200
    headers = reply.headers
    assert headers["access-control-allow-origin"] in ("*", PANEL_ORIGIN)
    exposed = {h.strip().lower() for h in headers["access-control-expose-headers"].split(",")}
    assert {"x-cpa-version", "x-cpa-build-date", "x-cpa-support-plugin"} <= exposed
    assert headers["x-cpa-version"]
    assert headers["x-cpa-build-date"]
    # readBooleanHeader accepts 1/true/yes/on and 0/false/no/off; false hides plugin pages.
    assert headers["x-cpa-support-plugin"] == "false"


# transformers.ts normalizeConfigResponse: the fields the dashboard, System and provider pages
# read from GET /config, with the types it accepts (booleans must be real booleans).
def test_get_config_fields_the_ui_reads(ui: httpx.Client) -> None:
    raw = ui.get("/config").json()
    for key in (
        "debug",
        "request-log",
        "logging-to-file",
        "ws-auth",
        "force-model-prefix",
        "usage-statistics-enabled",
    ):
        assert isinstance(raw[key], bool), key
    assert raw["request-log"] is False and raw["logging-to-file"] is False
    assert isinstance(raw["proxy-url"], str)
    assert isinstance(raw["request-retry"], int)
    assert isinstance(raw["logs-max-total-size-mb"], int)
    assert isinstance(raw["quota-exceeded"]["switch-project"], bool)
    assert isinstance(raw["quota-exceeded"]["switch-preview-model"], bool)
    assert raw["routing"]["strategy"] == "round-robin"
    assert raw["api-keys"] == ["client-key-1", "client-key-2"]
    claude = raw["claude-api-key"]
    assert [entry["api-key"] for entry in claude] == ["sk-ant-1", "sk-ant-2"]
    assert claude[0]["base-url"] == "http://127.0.0.1:9/claude"
    assert "remote-management" not in raw  # the secret never leaves


# config.ts updateRequestLog (System page) → PUT /request-log {value}; the page re-reads
# request-log from GET /config.
def test_request_log_toggle(ui: httpx.Client, config_file: Path) -> None:
    assert ui.put("/request-log", json={"value": True}).json() == {"status": "ok"}
    assert ui.get("/config").json()["request-log"] is True
    assert on_disk(config_file, "request-log") is True


# client.ts handleError: any 401 logs the panel out; parseApiErrorResponse (apiError.ts) shows
# `message`, else the `error` string. The browser can only read it with CORS headers on it.
def test_wrong_key_is_401_with_a_readable_error(proxy: ProxyServer) -> None:
    reply = httpx.get(
        proxy.base_url + "/v0/management/config",
        headers={**AXIOS_HEADERS, "authorization": "Bearer not-the-key"},
    )
    assert reply.status_code == 401
    assert reply.headers["access-control-allow-origin"] in ("*", PANEL_ORIGIN)
    assert isinstance(reply.json()["error"], str)


# ----- Config page: the YAML editor -------------------------------------------------------------


# configFile.ts fetchConfigYaml / saveConfigYaml: text in, raw YAML out with
# Content-Type application/yaml.
def test_config_yaml_round_trip(ui: httpx.Client, config_file: Path) -> None:
    reply = ui.get("/config.yaml", headers={"accept": "application/yaml, text/yaml, text/plain"})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/yaml")
    text = reply.text
    assert "# client keys" in text
    saved = ui.put(
        "/config.yaml",
        content=text.replace("debug: false", "debug: true").encode(),
        headers={"content-type": "application/yaml", "accept": "application/json, text/plain, */*"},
    )
    assert saved.status_code == 200, saved.text
    assert ui.get("/config").json()["debug"] is True
    assert_comments_kept(config_file.read_text())


# ----- api keys ---------------------------------------------------------------------------------


# apiKeys.ts: list reads data['api-keys']; replace PUTs a bare array; update PATCHes
# {index, value}; delete is DELETE ?index=.
def test_api_keys_calls(ui: httpx.Client, config_file: Path) -> None:
    assert ui.get("/api-keys").json()["api-keys"] == ["client-key-1", "client-key-2"]
    assert ui.put("/api-keys", json=["k1", "k2", "k3"]).status_code == 200
    assert ui.patch("/api-keys", json={"index": 1, "value": "k2b"}).status_code == 200
    assert ui.delete("/api-keys?index=2").status_code == 200
    assert ui.get("/api-keys").json()["api-keys"] == ["k1", "k2b"]
    assert on_disk(config_file, "api-keys") == ["k1", "k2b"]


# ----- AI providers -----------------------------------------------------------------------------


# providers.ts mutateLatestProviderList: GET /config, take the raw section list as served
# (unknown fields and all), merge the edited entry, PUT /<section> with the whole list.
def test_provider_read_modify_write_keeps_the_file_tidy(
    ui: httpx.Client, config_file: Path
) -> None:
    latest = ui.get("/config").json()["claude-api-key"]
    created = {
        "api-key": "sk-ant-3",
        "base-url": "https://api.example.com",
        "models": [{"name": "claude-x", "alias": "cx"}],
        "disable-cooling": True,
        "cloak": {"mode": "auto"},
        "experimental-cch-signing": True,
    }
    assert ui.put("/claude-api-key", json=[*latest, created]).status_code == 200
    # An update of the new entry, again from the latest GET /config.
    latest = ui.get("/config").json()["claude-api-key"]
    assert latest[2]["models"] == [{"name": "claude-x", "alias": "cx"}]
    latest[2] = {**latest[2], "prefix": "team"}
    assert ui.put("/claude-api-key", json=latest).status_code == 200
    entries = on_disk(config_file, "claude-api-key")
    assert entries[0] == {"api-key": "sk-ant-1", "base-url": "http://127.0.0.1:9/claude"}
    assert entries[1] == {"api-key": "sk-ant-2"}  # echoed defaults are not written back
    assert entries[2]["prefix"] == "team" and entries[2]["cloak"] == {"mode": "auto"}
    assert_comments_kept(config_file.read_text())


# providers.ts buildProviderDeleteQuery always sends base-url, empty when the entry has none;
# it must remove exactly that entry, not the same key's entries that have a base-url.
def test_provider_delete_by_key_and_empty_base_url(ui: httpx.Client, config_file: Path) -> None:
    latest = ui.get("/config").json()["claude-api-key"]
    twin = {"api-key": "sk-ant-2", "base-url": "https://eu.example.com"}
    assert ui.put("/claude-api-key", json=[*latest, twin]).status_code == 200
    reply = ui.delete("/claude-api-key?api-key=sk-ant-2&base-url=")
    assert reply.status_code == 200, reply.text
    assert on_disk(config_file, "claude-api-key")[1:] == [twin]
    reply = ui.delete("/claude-api-key?api-key=sk-ant-2&base-url=https%3A%2F%2Feu.example.com")
    assert reply.status_code == 200, reply.text
    assert [e["api-key"] for e in on_disk(config_file, "claude-api-key")] == ["sk-ant-1"]


# providers.ts getOpenAIProviders reads data['openai-compatibility'] (name, base-url,
# api-key-entries[{api-key, proxy-url, weight, auth-index}], disabled); the enable switch is
# PATCH {index, value: {disabled}}; delete is DELETE ?index=.
def test_openai_compatibility_calls(ui: httpx.Client, config_file: Path) -> None:
    provider = {
        "name": "openrouter",
        "base-url": "https://openrouter.ai/api/v1",
        "api-key-entries": [{"api-key": "or-1"}, {"api-key": "or-2", "weight": 3}],
        "models": [{"name": "vendor/model", "alias": "m", "image": True}],
        "test-model": "vendor/model",
        "disabled": False,
    }
    assert ui.put("/openai-compatibility", json=[provider]).status_code == 200
    patched = ui.patch("/openai-compatibility", json={"index": 0, "value": {"disabled": True}})
    assert patched.status_code == 200, patched.text
    listed = ui.get("/openai-compatibility").json()["openai-compatibility"]
    assert listed[0]["name"] == "openrouter" and listed[0]["disabled"] is True
    entries = listed[0]["api-key-entries"]
    assert [e["api-key"] for e in entries] == ["or-1", "or-2"]
    assert entries[1]["weight"] == 3
    assert all(isinstance(e["auth-index"], str) and e["auth-index"] for e in entries)
    on_file = on_disk(config_file, "openai-compatibility")[0]
    assert on_file["api-key-entries"] == [{"api-key": "or-1"}, {"api-key": "or-2", "weight": 3}]
    assert ui.delete("/openai-compatibility?index=0").status_code == 200
    assert ui.get("/openai-compatibility").json()["openai-compatibility"] == []


# providers.ts: the Interactions card writes its own section the same way. cliproxy keeps it
# (not served yet); vertex-api-key and xai-api-key are served (test_keys_routes.py,
# test_xai_api_key_section_is_served).
@pytest.mark.parametrize(
    ("section", "entry"),
    [
        ("interactions-api-key", {"api-key": "AIza-1", "excluded-models": ["gemini-1*"]}),
    ],
)
def test_sections_cliproxy_only_keeps(
    ui: httpx.Client, config_file: Path, section: str, entry: dict[str, Any]
) -> None:
    latest = ui.get("/config").json().get(section, [])
    assert latest == []
    assert ui.put(f"/{section}", json=[*latest, entry]).status_code == 200
    assert ui.get("/config").json()[section] == [entry]
    listed = ui.get(f"/{section}").json()[section]
    assert listed[0]["api-key"] == entry["api-key"] and listed[0]["auth-index"]
    base = entry.get("base-url", "")
    query = httpx.QueryParams({"api-key": entry["api-key"], "base-url": base})
    assert ui.delete(f"/{section}?{query}").status_code == 200
    assert on_disk(config_file, section) == []


def test_xai_api_key_section_is_served(ui: httpx.Client, config_file: Path) -> None:
    entry = {"api-key": "xai-1", "base-url": "https://api.x.ai/v1", "websockets": True}
    assert ui.put("/xai-api-key", json=[entry]).status_code == 200
    (served,) = ui.get("/config").json()["xai-api-key"]
    assert {k: served[k] for k in entry} == entry
    listed = ui.get("/xai-api-key").json()["xai-api-key"]
    assert listed[0]["api-key"] == "xai-1" and listed[0]["auth-index"]
    query = httpx.QueryParams({"api-key": "xai-1", "base-url": entry["base-url"]})
    assert ui.delete(f"/xai-api-key?{query}").status_code == 200
    assert on_disk(config_file, "xai-api-key") == []


@pytest.mark.parametrize("channel", ["xai", "kimi"])
def test_model_definitions_of_device_login_channels(ui: httpx.Client, channel: str) -> None:
    models = ui.get(f"/model-definitions/{channel}").json()["models"]
    assert models and all(m["id"].startswith(("grok-", "kimi-")) for m in models)


# ----- auth files -------------------------------------------------------------------------------


# authFiles.ts list + normalizeAuthFileEntry, types/authFile.ts, utils/recentRequests.ts and
# utils/quota/resolvers.ts (Codex plan and account id from the id_token object).
def test_auth_files_list_fields(ui: httpx.Client, proxy: ProxyServer) -> None:
    write_auth(proxy, "codex-coder.json", {**CODEX, "id_token": codex_id_token()})
    write_auth(proxy, "claude-c.json", {**CLAUDE, "disabled": True})
    files = ui.get("/auth-files").json()["files"]
    by_name = {f["name"]: f for f in files}
    assert set(by_name) == {"codex-coder.json", "claude-c.json"}
    for entry in files:
        assert isinstance(entry["type"], str) and isinstance(entry["provider"], str)
        assert isinstance(entry["auth_index"], str) and entry["auth_index"]
        assert isinstance(entry["disabled"], bool) and isinstance(entry["unavailable"], bool)
        assert isinstance(entry["status"], str)
        assert entry["runtime_only"] is False and entry["source"] == "file"
        assert isinstance(entry["success"], int) and isinstance(entry["failed"], int)
        buckets = entry["recent_requests"]
        assert 0 < len(buckets) <= 20
        assert all(set(b) >= {"time", "success", "failed"} for b in buckets)
        datetime.fromisoformat(entry["modtime"].replace("Z", "+00:00"))  # readDateField
    assert by_name["claude-c.json"]["disabled"] is True
    codex = by_name["codex-coder.json"]
    assert codex["email"] == "coder@example.com"
    assert codex["id_token"]["plan_type"] == "plus"
    assert codex["id_token"]["chatgpt_account_id"] == "acct-42"


# authFiles.ts uploadFiles (multipart, one `file` part per file), deleteFiles (DELETE with a
# JSON body {names}), deleteAll (?all=true); normalizeBatch*Response reads status/files/failed.
def test_auth_files_upload_and_delete(ui: httpx.Client, proxy: ProxyServer) -> None:
    parts = [
        ("file", ("codex-a.json", orjson.dumps(CODEX), "application/json")),
        ("file", ("claude-b.json", orjson.dumps(CLAUDE), "application/json")),
    ]
    reply = ui.post("/auth-files", files=parts)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok" and sorted(body["files"]) == ["claude-b.json", "codex-a.json"]
    reply = ui.request("DELETE", "/auth-files", json={"names": ["codex-a.json"]})
    assert reply.status_code == 200 and reply.json()["status"] == "ok"
    assert not (auth_dir(proxy) / "codex-a.json").exists()
    reply = ui.delete("/auth-files", params={"all": "true"})
    assert reply.status_code == 200 and reply.json()["status"] == "ok"
    assert ui.get("/auth-files").json()["files"] == []


# authFiles.ts setStatus → {status, disabled}; download (blob of the file); getModelsForAuthFile
# reads data.models[{id, ...}].
def test_auth_file_status_download_models(ui: httpx.Client, proxy: ProxyServer) -> None:
    path = write_auth(proxy, "codex-a.json", CODEX)
    reply = ui.patch("/auth-files/status", json={"name": "codex-a.json", "disabled": True})
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok" and reply.json()["disabled"] is True
    assert orjson.loads(path.read_bytes())["disabled"] is True
    download = ui.get("/auth-files/download?name=codex-a.json")
    assert download.status_code == 200 and download.content == path.read_bytes()
    models = ui.get("/auth-files/models?name=codex-a.json").json()["models"]
    assert models and all(isinstance(m["id"], str) for m in models)


# features/authFiles/hooks/useAuthFilesPrefixProxyEditor.ts buildAuthFileFieldsPatch: only the
# changed fields, `weight: null` to clear, headers as a diff ('' removes one), using_api for
# xAI files; authFiles.ts requestManualRefresh back-dates `expired` (ISO with milliseconds).
def test_auth_file_fields_as_the_editor_sends_them(ui: httpx.Client, proxy: ProxyServer) -> None:
    path = write_auth(proxy, "codex-a.json", {**CODEX, "weight": 2, "headers": {"X-Old": "1"}})
    patch = {
        "name": "codex-a.json",
        "prefix": "team",
        "proxy_url": "socks5://127.0.0.1:1080",
        "priority": 5,
        "weight": None,
        "disable_cooling": True,
        "note": "night shift",
        "excluded_models": ["gpt-4*"],
        "websockets": True,
        "using_api": True,
        "headers": {"X-Old": "", "X-New": "2"},
    }
    reply = ui.patch("/auth-files/fields", json=patch)
    assert reply.status_code == 200, reply.text
    saved = orjson.loads(path.read_bytes())
    assert "weight" not in saved and saved["headers"] == {"X-New": "2"}
    assert saved["prefix"] == "team" and saved["using_api"] is True
    assert saved["excluded_models"] == ["gpt-4*"] and saved["access_token"] == "at-codex"
    refresh = ui.patch(
        "/auth-files/fields", json={"name": "codex-a.json", "expired": "2026-01-01T00:00:00.000Z"}
    )
    assert refresh.status_code == 200, refresh.text
    assert orjson.loads(path.read_bytes())["expired"] == "2026-01-01T00:00:00Z"


# authFiles.ts get/save/delete/replaceOauthExcludedModels: GET reads
# data['oauth-excluded-models']; PATCH {provider, models}; DELETE ?provider=; PUT a bare map.
def test_oauth_excluded_models_calls(ui: httpx.Client, config_file: Path) -> None:
    assert ui.get("/oauth-excluded-models").json()["oauth-excluded-models"] == {}
    body = {"provider": "codex", "models": ["gpt-5*"]}
    assert ui.patch("/oauth-excluded-models", json=body).status_code == 200
    replaced = {"codex": ["gpt-5*"], "claude": ["claude-3*"]}
    assert ui.put("/oauth-excluded-models", json=replaced).status_code == 200
    assert ui.delete("/oauth-excluded-models?provider=claude").status_code == 200
    assert ui.get("/oauth-excluded-models").json()["oauth-excluded-models"] == {"codex": ["gpt-5*"]}
    assert on_disk(config_file, "oauth-excluded-models") == {"codex": ["gpt-5*"]}


# authFiles.ts saveOauthModelAlias PATCH {channel, aliases:[{name, alias, fork?,
# force-mapping?}]}; deleteOauthModelAlias PATCHes aliases: [] (DELETE only after a 405);
# normalizeOauthModelAlias reads data['oauth-model-alias'][channel][{name, alias, fork}].
def test_oauth_model_alias_calls(ui: httpx.Client) -> None:
    aliases = [
        {"name": "gpt-5", "alias": "g5", "fork": True},
        {"name": "gpt-5-codex", "alias": "g5c", "force-mapping": True},
    ]
    assert ui.patch("/oauth-model-alias", json={"channel": "codex", "aliases": aliases}).is_success
    served = ui.get("/oauth-model-alias").json()["oauth-model-alias"]["codex"]
    assert [(a["name"], a["alias"]) for a in served] == [("gpt-5", "g5"), ("gpt-5-codex", "g5c")]
    assert served[0]["fork"] is True and served[1]["force-mapping"] is True
    cleared = ui.patch("/oauth-model-alias", json={"channel": "codex", "aliases": []})
    assert cleared.status_code == 200
    assert "codex" not in ui.get("/oauth-model-alias").json()["oauth-model-alias"]


# vertex.ts importCredential (OAuth page, Vertex card): multipart `file` + `location`; the
# card shows project_id, email and location from the answer (tests/e2e/test_vertex.py routes it).
def test_vertex_import(ui: httpx.Client, proxy: ProxyServer) -> None:
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
    reply = ui.post(
        "/vertex/import",
        files=[("file", ("sa.json", orjson.dumps(account), "application/json"))],
        data={"location": "asia-northeast1"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["status"], body["project_id"], body["email"], body["location"]) == (
        "ok",
        "p-1",
        "sa@p-1.iam.gserviceaccount.com",
        "asia-northeast1",
    )
    assert [p.name for p in auth_dir(proxy).iterdir()] == ["vertex-p-1.json"]
    listed = ui.get("/auth-files").json()["files"]
    assert [(f["name"], f["type"]) for f in listed] == [("vertex-p-1.json", "vertex")]
    bad = ui.post(
        "/vertex/import",
        files=[("file", ("sa.json", b"{}", "application/json"))],
    )
    assert bad.status_code == 400 and "project_id" in bad.json()["error"]


# ----- calls served by the ops and OAuth routes (regression guards for the shapes) --------------


# logs.ts normalizeLogsResponse: lines[], latest-timestamp (unix s), next-cursor, then polls
# with cursor + after; clearLogs; fetchErrorLogs reads files[].
def test_logs_calls(ui: httpx.Client) -> None:
    first = ui.get("/logs", params={"limit": 10000})
    assert first.status_code == 200
    body = first.json()
    assert isinstance(body["lines"], list) and isinstance(body["latest-timestamp"], int)
    cursor = body["next-cursor"]
    assert isinstance(cursor, str) and cursor
    again = ui.get("/logs", params={"cursor": cursor, "after": body["latest-timestamp"] - 1})
    assert again.status_code == 200 and isinstance(again.json()["lines"], list)
    assert isinstance(ui.get("/request-error-logs").json()["files"], list)
    assert ui.delete("/logs").status_code == 200


# apiKeyUsage.ts + components/providers/utils.ts: {provider: {"<base-url>|<api-key>":
# {success, failed, recent_requests}}}, base-url as configured (empty → "|key").
def test_api_key_usage_keys(ui: httpx.Client) -> None:
    usage = ui.get("/api-key-usage").json()
    claude = usage["claude"]
    assert set(claude) == {"http://127.0.0.1:9/claude|sk-ant-1", "|sk-ant-2"}
    entry = claude["|sk-ant-2"]
    assert isinstance(entry["success"], int) and isinstance(entry["failed"], int)
    assert len(entry["recent_requests"]) == 20


# version.ts checkLatest reads data['latest-version'] (System page).
def test_latest_version_key(ui: httpx.Client) -> None:
    reply = ui.get("/latest-version")
    assert reply.status_code == 200 and isinstance(reply.json()["latest-version"], str)


# authFiles.ts getModelDefinitions reads data.models[{id, display_name}] (alias editor).
def test_model_definitions_for_a_served_channel(ui: httpx.Client) -> None:
    models = ui.get("/model-definitions/claude").json()["models"]
    assert models and all(isinstance(m["id"], str) for m in models)


# oauth.ts startAuth (GET /<provider>-auth-url?is_webui=true → {url, state}), submitCallback
# (POST /oauth-callback {provider, redirect_url}) and getAuthStatus ({status: ok|wait|error}).
def test_codex_login_start_paste_and_poll(ui: httpx.Client) -> None:
    started = ui.get("/codex-auth-url", params={"is_webui": "true"}).json()
    assert started["url"].startswith("https://") and started["state"]
    redirect = f"http://localhost:1455/auth/callback?code=abc&state={started['state']}"
    pasted = ui.post("/oauth-callback", json={"provider": "codex", "redirect_url": redirect})
    assert pasted.status_code == 200 and pasted.json()["status"] == "ok"
    status = ui.get("/get-auth-status", params={"state": started["state"]}).json()
    assert status["status"] in ("ok", "wait", "error")


# pages/OAuthPage.tsx: one card per provider; cards cliproxy cannot serve must fail readably
# (the page shows `error`), not with "no route".
@pytest.mark.parametrize("provider", ["qwen"])
def test_login_cards_cliproxy_cannot_serve_get_a_readable_refusal(
    ui: httpx.Client, provider: str
) -> None:
    reply = ui.get(f"/{provider}-auth-url", params={"is_webui": "true"})
    assert reply.status_code == 422
    assert provider in reply.json()["error"] and "not supported" in reply.json()["error"]


# components/oauth-model-alias editor: loads /model-definitions/:channel for every preset.
@pytest.mark.parametrize("channel", ["aistudio"])
def test_model_definitions_of_foreign_channels_are_empty_catalogues(
    ui: httpx.Client, channel: str
) -> None:
    reply = ui.get(f"/model-definitions/{channel}")
    assert reply.status_code == 200
    assert reply.json() == {"channel": channel, "models": []}
    assert ui.get("/model-definitions/codex").json()["models"]
    assert ui.get("/model-definitions/vertex").json()["models"]  # a kind of ours since wave 2
    assert ui.get("/model-definitions/antigravity").json()["models"]
    assert ui.get("/model-definitions/nonsense").status_code == 400


# pages/OAuthPage.tsx also asks GET /plugins for plugin login cards.
def test_plugins_list_is_empty(ui: httpx.Client) -> None:
    assert ui.get("/plugins").json() == {"plugins_enabled": False, "plugins_dir": "", "plugins": []}
