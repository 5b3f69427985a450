"""The reference Management Center's /v8/management calls, made as it makes them (path, query,
bare JSON body) against a real server, asserting the fields it reads (issue 20: "the reference
console's v8 calls succeed"). The calls come from the console's v8 sources and contract tests
(router-for-me/Cli-Proxy-API-Management-Center: tests/managementV8Api.test.ts,
tests/providerGroupsV8.test.ts, src/services/api/apiKeyNames.ts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from cliproxy.config import load_config
from tests.management.conftest import KEY
from tests.proxy_server import ProxyServer


def on_disk(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def v0_entries(proxy: ProxyServer, route: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{proxy.base_url}/v0/management/{route}", headers={"authorization": f"Bearer {KEY}"}
    )
    entries: list[dict[str, Any]] = reply.json()[route]
    return entries


# --- provider groups: GET /config, PUT /config/api-keys/<family> ------------------------------


def test_provider_groups_read_as_key_objects_with_their_auth_index(
    v8: httpx.Client, proxy: ProxyServer
) -> None:
    """The providers page reads `api-keys.<family>[].keys[]` as objects: `api-key`, the per-key
    settings, and the `auth-index` it joins usage and cooldown resets on (the /v0 list's)."""
    groups = v8.get("/config").json()["api-keys"]["claude"]
    v0 = {entry["api-key"]: entry for entry in v0_entries(proxy, "claude-api-key")}
    assert [[item["api-key"] for item in group["keys"]] for group in groups] == [
        ["sk-ant-1"],
        ["sk-ant-2"],
    ]
    for group in groups:
        (item,) = group["keys"]
        assert item["auth-index"] == v0[item["api-key"]]["auth-index"]
        assert item["weight"] == 1  # a per-key setting sits on the key, not the group
        assert "weight" not in group
    assert groups[0]["base-url"] == "http://127.0.0.1:9/claude"  # a group setting stays
    assert v8.get("/config/api-keys/claude").json() == groups
    # The index a read shows resets that key's cooldown, as the console sends it.
    index = groups[0]["keys"][0]["auth-index"]
    reset = v8.post("/routing/cooldown/reset", json={"auth_index": index})
    assert reset.status_code == 200, reset.text


def test_groups_written_back_with_an_edit_keep_the_rest(
    v8: httpx.Client, proxy: ProxyServer, config_file: Path
) -> None:
    """A row edit is the family's whole list PUT back, read fields (the auth index too)
    included: accepted, the index not stored, only the edited key changed."""
    before = load_config(config_file)
    groups = v8.get("/config/api-keys/claude").json()
    groups[1]["keys"][0]["weight"] = 5
    reply = v8.put("/config/api-keys/claude", json=groups)
    assert reply.status_code == 200, reply.text
    assert "auth-index" not in config_file.read_text()
    after = load_config(config_file)
    assert [k.weight for k in after.claude_api_key] == [1, 5]
    assert [k.api_key for k in after.claude_api_key] == [k.api_key for k in before.claude_api_key]
    assert after.claude_api_key[0].base_url == before.claude_api_key[0].base_url
    assert [e["weight"] for e in v0_entries(proxy, "claude-api-key")] == [1, 5]
    # The whole config read and written back keeps the file as it is (the index dropped).
    written = config_file.read_bytes()
    assert v8.put("/config", json=v8.get("/config").json()).status_code == 200
    assert config_file.read_bytes() == written


def test_a_new_group_as_the_console_creates_it(v8: httpx.Client, config_file: Path) -> None:
    """An empty family gets its first group: `{name, base-url, keys: [{api-key, priority}]}`."""
    group = {
        "name": "gemini-1",
        "base-url": "https://example.invalid",
        "keys": [{"api-key": "fixture", "priority": 3}],
    }
    reply = v8.put("/config/api-keys/gemini", json=[group])
    assert reply.status_code == 200, reply.text
    (key,) = load_config(config_file).gemini_api_key
    assert (key.api_key, key.base_url, key.priority) == ("fixture", "https://example.invalid", 3)
    (read,) = v8.get("/config/api-keys/gemini").json()
    assert read["keys"][0]["api-key"] == "fixture" and read["keys"][0]["auth-index"]


def test_group_names_in_the_file_are_read_and_kept_through_edits(
    v8: httpx.Client, config_file: Path
) -> None:
    """A v8 file names its groups (`name: team`); the console shows them and sends them back
    with every edit of the family, so the file keeps them."""
    named = [
        {"name": "team", "base-url": "http://127.0.0.1:9/claude", "keys": ["sk-ant-1", "sk-ant-3"]},
        {"name": "solo", "keys": [{"api-key": "sk-ant-2", "weight": 2}]},
    ]
    assert v8.put("/config/api-keys/claude", json=named).status_code == 200
    groups = v8.get("/config").json()["api-keys"]["claude"]
    assert [g["name"] for g in groups] == ["team", "solo"]
    assert [[k["api-key"] for k in g["keys"]] for g in groups] == [
        ["sk-ant-1", "sk-ant-3"],
        ["sk-ant-2"],
    ]
    groups[1]["keys"][0]["weight"] = 4
    assert v8.put("/config/api-keys/claude", json=groups).status_code == 200
    in_file = on_disk(config_file)["api-keys"]["claude"]
    assert [g["name"] for g in in_file] == ["team", "solo"]
    assert [k.weight for k in load_config(config_file).claude_api_key] == [1, 1, 4]
    written = config_file.read_bytes()
    assert v8.put("/config", json=v8.get("/config").json()).status_code == 200
    assert config_file.read_bytes() == written


def test_openai_compatible_providers_read_and_rotate_a_key(
    v8: httpx.Client, proxy: ProxyServer, config_file: Path
) -> None:
    """An `openai-compatibility` group is a provider: its `keys[]` objects carry their own
    index and the group the provider's, both as `/v0/management/openai-compatibility` shows
    them; a rotated key written back with the rest read keeps the other key."""
    provider = {
        "name": "compat",
        "base-url": "http://127.0.0.1:9/v1",
        "keys": [{"api-key": "k1"}, {"api-key": "k2"}],
        "models": [{"name": "m", "alias": "a"}],
    }
    assert v8.put("/config/api-keys/openai-compatibility", json=[provider]).status_code == 200
    (read,) = v8.get("/config/api-keys/openai-compatibility").json()
    (v0,) = v0_entries(proxy, "openai-compatibility")
    assert read["auth-index"] == v0["auth-index"]
    assert [k["auth-index"] for k in read["keys"]] == [
        k["auth-index"] for k in v0["api-key-entries"]
    ]
    read["keys"][0]["api-key"] = "k1-rotated"
    reply = v8.put("/config/api-keys/openai-compatibility", json=[read])
    assert reply.status_code == 200, reply.text
    (compat,) = load_config(config_file).openai_compatibility
    assert [k.api_key for k in compat.api_key_entries] == ["k1-rotated", "k2"]
    assert "auth-index" not in config_file.read_text()


# --- config values: GET/PUT/PATCH/DELETE /config/<path> -------------------------------------


def not_set(reply: httpx.Response) -> bool:
    """What the console's config reader takes for "not in the file, use the default":
    404 with the machine code `not_found` in `error` (other 404s it reports)."""
    return reply.status_code == 404 and reply.json()["error"] == "not_found"


def test_client_keys_are_a_bare_list_replaced_whole(v8: httpx.Client, config_file: Path) -> None:
    """`apiKeysApi`: GET /config/access/api-keys, then PUT the edited list back."""
    keys = v8.get("/config/access/api-keys").json()
    assert keys == ["client-key-1", "client-key-2"]
    reply = v8.put("/config/access/api-keys", json=[keys[0], "client-key-3"])
    assert reply.status_code == 200, reply.text
    assert load_config(config_file).api_keys == ["client-key-1", "client-key-3"]
    assert v8.get("/config/access/api-keys").json() == ["client-key-1", "client-key-3"]


def test_oauth_maps_written_one_provider_at_a_time(v8: httpx.Client, config_file: Path) -> None:
    """`authFilesApi`: the model-alias and excluded-models maps read whole, PATCHed with one
    provider's list, and one provider DELETEd by path."""
    assert v8.get("/config/oauth/model-alias").json() == {}
    alias = {"name": "gpt-5", "alias": "g5", "force-mapping": True}
    assert v8.patch("/config/oauth/model-alias", json={"codex": [alias]}).status_code == 200
    assert v8.patch("/config/oauth/excluded-models", json={"codex": ["o1*"]}).status_code == 200
    (read,) = v8.get("/config/oauth/model-alias").json()["codex"]
    assert (read["name"], read["alias"], read["force-mapping"]) == ("gpt-5", "g5", True)
    assert v8.get("/config/oauth/excluded-models").json() == {"codex": ["o1*"]}
    assert load_config(config_file).oauth_excluded_models == {"codex": ["o1*"]}
    assert v8.delete("/config/oauth/model-alias/codex").status_code == 200
    assert v8.delete("/config/oauth/excluded-models/codex").status_code == 200
    assert v8.get("/config/oauth/model-alias").json() == {}
    assert v8.get("/config/oauth/excluded-models").json() == {}


def test_a_value_not_set_is_the_not_found_the_console_defaults_on(v8: httpx.Client) -> None:
    """`pluginsApi.getConfig` (and every reader of one config path) falls back to its default
    on 404 `not_found` only; a path the layout does not have stays an error it reports."""
    assert not_set(v8.get("/config/plugins/configs/example"))
    assert v8.put("/config/plugins/configs/example", json={"enabled": True}).status_code == 200
    assert v8.put("/config/plugins/configs/example/enabled", json=False).status_code == 200
    assert v8.get("/config/plugins/configs/example").json() == {"enabled": False}
    unknown = v8.get("/config/no-such-section")
    assert unknown.status_code == 404 and not not_set(unknown)


@pytest.mark.parametrize(
    ("path", "value", "field", "read"),
    [
        ("observability/logs/request-log", True, "request_log", True),
        ("observability/logs/logging-to-file", True, "logging_to_file", True),
        ("routing/strategy", "fill-first", None, "fill-first"),
    ],
)
def test_settings_are_bare_values(
    v8: httpx.Client,
    config_file: Path,
    path: str,
    value: Any,
    field: str | None,
    read: Any,
) -> None:
    """`configApi.updateRequestLog(true)` and its neighbours: `PUT /config/<path>` with a bare
    JSON value (no `{"value": ...}`), read back bare."""
    reply = v8.put(f"/config/{path}", json=value)
    assert reply.status_code == 200, reply.text
    assert v8.get(f"/config/{path}").json() == read
    config = load_config(config_file)
    assert (getattr(config, field) if field else config.routing.strategy) == read


# --- plugins ---------------------------------------------------------------------------------


def test_the_plugin_page_finds_no_plugins_and_an_empty_store(v8: httpx.Client) -> None:
    """`pluginsApi.list` and `pluginStoreApi.list`: cliproxy loads no plugins, so both lists
    are empty, and an install (`?source=&version=`, body `{version}`) names what is missing."""
    installed = v8.get("/plugins").json()
    assert installed["plugins_enabled"] is False and installed["plugins"] == []
    store = v8.get("/plugins/store")
    assert store.status_code == 200, store.text
    assert store.json()["plugins"] == [] and store.json()["total"] == 0
    install = v8.post(
        "/plugins/store/example/install",
        params={"source": "official", "version": "1.2.3"},
        json={"version": "1.2.3"},
    )
    assert install.status_code == 404
    assert install.json()["error"] == "not_found" and "example" in install.json()["message"]
    refused = v8.post("/plugins/store/example/install", json={"version": 3})
    assert refused.status_code == 422 and refused.json()["field"] == "version"


# --- logins: /oauth/auth-url, /oauth/status, /oauth/callback, /oauth/session ------------------


def test_a_login_as_the_console_runs_it(v8: httpx.Client, proxy: ProxyServer) -> None:
    """`oauthApi`: start with `?provider=claude&is_webui=true` (the UI's "anthropic"), poll
    `?state=`, post the pasted redirect URL to the callback, or cancel the session."""
    started = v8.get("/oauth/auth-url", params={"provider": "claude", "is_webui": "true"})
    assert started.status_code == 200, started.text
    state = started.json()["state"]
    assert started.json()["url"].startswith("https://")
    assert v8.get("/oauth/status", params={"state": state}).json() == {"status": "wait"}
    pasted = f"http://localhost:54545/callback?error=access_denied&state={state}"
    callback = v8.post("/oauth/callback", json={"provider": "claude", "redirect_url": pasted})
    assert callback.status_code == 200 and callback.json()["status"] == "ok", callback.text
    assert v8.get("/oauth/status", params={"state": state}).json()["status"] == "error"
    other = v8.get("/oauth/auth-url", params={"provider": "codex", "is_webui": "true"}).json()
    cancelled = v8.delete("/oauth/session", params={"state": other["state"]}).json()
    assert cancelled == {"status": "ok", "cancelled": True}


# --- credentials -----------------------------------------------------------------------------


def test_credentials_as_the_console_lists_edits_and_deletes_them(
    v8: httpx.Client, proxy: ProxyServer
) -> None:
    """`authFilesApi`: files uploaded in one form (`file` parts), the list's `files[]` fields,
    status and field PATCHes by `name`, models and download by `?name=`, a delete sent as
    `{"names": [...]}`, and `?all=true`."""
    upload = v8.post(
        "/credentials",
        files=[
            ("file", (name, b'{"type":"claude","email":"' + name.encode() + b'"}'))
            for name in ("a.json", "b.json")
        ],
    )
    assert upload.status_code == 200, upload.text
    assert upload.json()["uploaded"] == 2 and upload.json()["files"] == ["a.json", "b.json"]
    files = {f["name"]: f for f in v8.get("/credentials").json()["files"]}
    assert set(files) == {"a.json", "b.json"}
    for row in files.values():
        assert row["auth_index"] and row["provider"] == "claude" and row["disabled"] is False
    status = v8.patch("/credentials/status", json={"name": "a.json", "disabled": True})
    assert status.status_code == 200 and status.json()["disabled"] is True
    fields = v8.patch("/credentials/fields", json={"name": "a.json", "priority": 3, "note": "n"})
    assert fields.status_code == 200, fields.text
    (a,) = [f for f in v8.get("/credentials").json()["files"] if f["name"] == "a.json"]
    assert a["disabled"] is True and a["priority"] == 3 and a["note"] == "n"
    models = v8.get("/credentials/models", params={"name": "a.json"}).json()["models"]
    assert models and all("id" in model for model in models)
    assert v8.get("/credentials/download", params={"name": "a.json"}).json()["email"] == "a.json"
    deleted = v8.request("DELETE", "/credentials", json={"names": ["a.json", "nope.json"]})
    assert deleted.status_code == 207, deleted.text
    assert deleted.json()["files"] == ["a.json"]
    assert [f["name"] for f in deleted.json()["failed"]] == ["nope.json"]
    assert v8.delete("/credentials", params={"all": "true"}).json()["deleted"] == 1
    assert v8.get("/credentials").json()["files"] == []


# --- logs, usage, version, key names ---------------------------------------------------------


def test_the_read_only_pages(v8: httpx.Client) -> None:
    """`logsApi`, `apiKeyUsageApi`, `versionApi`, `sharedApiKeyNamesApi`: the fields read."""
    logs = v8.get("/observability/logs", params={"limit": 10}).json()
    assert isinstance(logs["lines"], list)
    assert isinstance(logs["line-count"], int) and isinstance(logs["latest-timestamp"], int)
    assert isinstance(v8.get("/observability/logs/errors").json()["files"], list)
    assert isinstance(v8.get("/observability/usage/api-keys").json(), dict)
    assert isinstance(v8.get("/server/latest-version").json()["latest-version"], str)
    digest = "ab" * 32  # the console accepts only 64 lowercase hex digits as a key
    named = v8.patch("/access/api-key-names", json={"names": {digest: "Team"}})
    assert named.status_code == 200 and named.json() == {"names": {digest: "Team"}}
    kept = v8.patch(
        "/access/api-key-names", json={"names": {digest: "Other"}, "only_if_absent": True}
    )
    assert kept.json() == {"names": {digest: "Team"}}
    assert v8.get("/access/api-key-names").json() == {"names": {digest: "Team"}}
