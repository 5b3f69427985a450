"""Client api-keys and the provider credential lists: each write lands in the file (comments
kept), is applied live, and a refused payload leaves the file byte-identical."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from tests.management.conftest import assert_comments_kept
from tests.proxy_server import ProxyServer


def on_disk(path: Path, key: str) -> Any:
    return YAML(typ="safe").load(path.read_text()).get(key)


def models_status(proxy: ProxyServer, key: str) -> int:
    reply = httpx.get(proxy.base_url + "/v1/models", headers={"authorization": f"Bearer {key}"})
    return reply.status_code


def model_ids(proxy: ProxyServer) -> set[str]:
    reply = httpx.get(
        proxy.base_url + "/v1/models", headers={"authorization": "Bearer client-key-1"}
    )
    return {model["id"] for model in reply.json()["data"]}


def test_put_api_keys_applies_live(
    api: httpx.Client, proxy: ProxyServer, config_file: Path
) -> None:
    assert api.get("/api-keys").json() == {"api-keys": ["client-key-1", "client-key-2"]}
    assert models_status(proxy, "fresh-key") == 401
    reply = api.put("/api-keys", json=["client-key-1", " fresh-key ", "fresh-key"])
    assert reply.status_code == 200, reply.text
    assert on_disk(config_file, "api-keys") == ["client-key-1", "fresh-key"]
    assert models_status(proxy, "fresh-key") == 200
    assert models_status(proxy, "client-key-2") == 401
    assert api.put("/api-keys", json={"items": ["only"]}).status_code == 200
    assert on_disk(config_file, "api-keys") == ["only"]
    assert_comments_kept(config_file.read_text())


def test_patch_api_keys(api: httpx.Client, config_file: Path) -> None:
    assert api.patch("/api-keys", json={"index": 1, "value": "second"}).status_code == 200
    assert api.patch("/api-keys", json={"old": "client-key-1", "new": "first"}).status_code == 200
    assert api.patch("/api-keys", json={"old": "absent", "new": "third"}).status_code == 200
    assert on_disk(config_file, "api-keys") == ["first", "second", "third"]
    text = config_file.read_text()
    assert re.search(r"- first +# the first key\n", text)  # an item's comment stays with it
    assert_comments_kept(text)


@pytest.mark.parametrize(
    ("method", "kwargs", "status", "message"),
    [
        ("PUT", {"json": [1, "a"]}, 422, "api-keys[0]: must be a string"),
        ("PUT", {"json": {"keys": []}}, 422, "api-keys: must be an array"),
        ("PATCH", {"json": {"index": "0", "value": "x"}}, 422, "index: must be a whole number"),
        ("PATCH", {"json": {"index": 0}}, 422, "value: must be a non-empty string"),
        ("PATCH", {"json": {"index": 9, "value": "x"}}, 404, "item not found"),
        ("PATCH", {"json": {"x": 1}}, 422, "missing fields"),
        ("DELETE", {}, 400, "missing index or value"),
        ("DELETE", {"params": {"index": "x"}}, 422, "index: must be a whole number"),
        ("DELETE", {"params": {"value": "nope"}}, 404, "item not found"),
    ],
)
def test_api_keys_refusals(
    api: httpx.Client,
    config_file: Path,
    method: str,
    kwargs: dict[str, Any],
    status: int,
    message: str,
) -> None:
    before = config_file.read_bytes()
    reply = api.request(method, "/api-keys", **kwargs)
    assert reply.status_code == status
    assert message in reply.json()["error"]
    assert config_file.read_bytes() == before


def test_delete_api_keys(api: httpx.Client, config_file: Path, proxy: ProxyServer) -> None:
    assert api.delete("/api-keys", params={"value": "client-key-2"}).status_code == 200
    assert on_disk(config_file, "api-keys") == ["client-key-1"]
    assert models_status(proxy, "client-key-2") == 401
    assert api.delete("/api-keys", params={"index": 0}).status_code == 200
    assert on_disk(config_file, "api-keys") == []
    assert_comments_kept(config_file.read_text())


def test_provider_entries_carry_their_auth_index(api: httpx.Client) -> None:
    entries = api.get("/claude-api-key").json()["claude-api-key"]
    # The reference's derivation: SHA-256 of "<section>:<base-url>+<api-key>", 16 hex digits.
    expected = [
        hashlib.sha256(b"claude-api-key:http://127.0.0.1:9/claude+sk-ant-1").hexdigest()[:16],
        hashlib.sha256(b"claude-api-key:+sk-ant-2").hexdigest()[:16],
    ]
    assert [e["auth-index"] for e in entries] == expected
    assert entries[0]["base-url"] == "http://127.0.0.1:9/claude"
    assert api.get("/gemini-api-key").json() == {"gemini-api-key": []}
    # Stable: removing the first entry leaves the second's index as it was, and the index
    # still reaches that credential (reset-quota resolves it to the router's id).
    assert api.delete("/claude-api-key", params={"index": 0}).status_code == 200
    [left] = api.get("/claude-api-key").json()["claude-api-key"]
    assert left["auth-index"] == expected[1]
    reply = api.post("/reset-quota", json={"auth_index": expected[1]})
    assert reply.status_code == 200, reply.text


def test_put_echoed_entries_is_written_compactly(api: httpx.Client, config_file: Path) -> None:
    entries = api.get("/claude-api-key").json()["claude-api-key"]
    entries[1]["weight"] = 3
    entries[1]["headers"] = {"x-team": " blue ", "": "dropped", "x-empty": ""}
    assert api.put("/claude-api-key", json=entries).status_code == 200
    assert on_disk(config_file, "claude-api-key") == [
        {"api-key": "sk-ant-1", "base-url": "http://127.0.0.1:9/claude"},
        {"api-key": "sk-ant-2", "weight": 3, "headers": {"x-team": "blue"}},
    ]
    assert_comments_kept(config_file.read_text())


def test_patch_provider_entry(api: httpx.Client, config_file: Path, proxy: ProxyServer) -> None:
    reply = api.patch(
        "/claude-api-key", json={"match": "sk-ant-2", "value": {"priority": 4, "prefix": "team"}}
    )
    assert reply.status_code == 200, reply.text
    assert on_disk(config_file, "claude-api-key")[1] == {
        "api-key": "sk-ant-2",
        "priority": 4,
        "prefix": "team",
    }
    assert proxy.state.runtime.config.claude_api_key[1].priority == 4
    assert (
        api.patch("/claude-api-key", json={"index": 1, "value": {"prefix": None}}).status_code
        == 200
    )
    assert "prefix" not in on_disk(config_file, "claude-api-key")[1]
    text = config_file.read_text()
    assert "# nothing listens on port 9" in text
    assert_comments_kept(text)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"index": 0, "value": {"weight": -2}}, 422, "claude-api-key[0].weight"),
        ({"index": 0, "value": {"base-url": "ftp://x"}}, 422, "claude-api-key[0].base-url"),
        ({"index": 0, "value": "x"}, 422, "value: must be an object"),
        ({"value": {"weight": 2}}, 422, "index or match"),
        ({"match": "absent", "value": {"weight": 2}}, 404, "item not found"),
        ({"index": 7, "value": {"weight": 2}}, 404, "item not found"),
    ],
)
def test_patch_provider_refusals(
    api: httpx.Client, config_file: Path, body: dict[str, Any], status: int, message: str
) -> None:
    before = config_file.read_bytes()
    reply = api.patch("/claude-api-key", json=body)
    assert reply.status_code == status
    assert message in reply.json()["error"]
    assert config_file.read_bytes() == before


def test_delete_provider_entry(api: httpx.Client, config_file: Path) -> None:
    assert api.delete("/claude-api-key").status_code == 400
    assert api.delete("/claude-api-key", params={"api-key": "absent"}).status_code == 404
    assert api.delete("/claude-api-key", params={"api-key": "sk-ant-1"}).status_code == 200
    assert [e["api-key"] for e in on_disk(config_file, "claude-api-key")] == ["sk-ant-2"]
    assert api.delete("/claude-api-key", params={"index": 0}).status_code == 200
    assert on_disk(config_file, "claude-api-key") == []
    assert_comments_kept(config_file.read_text())


def test_ambiguous_api_key_needs_base_url(api: httpx.Client, config_file: Path) -> None:
    pair = [
        {"api-key": "same", "base-url": "http://a.test"},
        {"api-key": "same", "base-url": "http://b.test"},
    ]
    assert api.put("/gemini-api-key", json=pair).status_code == 200
    reply = api.delete("/gemini-api-key", params={"api-key": "same"})
    assert reply.status_code == 400
    assert "base-url is required" in reply.json()["error"]
    both = {"api-key": "same", "base-url": "http://b.test"}
    assert api.delete("/gemini-api-key", params=both).status_code == 200
    assert on_disk(config_file, "gemini-api-key") == [pair[0]]


@pytest.mark.parametrize("section", ["gemini-api-key", "codex-api-key"])
def test_other_key_sections(api: httpx.Client, config_file: Path, section: str) -> None:
    assert (
        api.put(
            f"/{section}", json={"items": [{"api-key": "k1", "models": [{"name": "m1"}]}]}
        ).status_code
        == 200
    )
    entries = api.get(f"/{section}").json()[section]
    assert entries[0]["auth-index"] == hashlib.sha256(f"{section}:+k1".encode()).hexdigest()[:16]
    assert entries[0]["models"][0]["name"] == "m1"
    bad = api.put(f"/{section}", json=["k2"])
    assert bad.status_code == 422
    assert f"{section}[0]: must be an object" in bad.json()["error"]


def test_openai_compatibility_applies_live(
    api: httpx.Client, config_file: Path, proxy: ProxyServer
) -> None:
    provider = {
        "name": "local",
        "base-url": "http://127.0.0.1:9/v1",
        "api-key-entries": [{"api-key": "upstream-secret"}],
        "models": [{"name": "llama-3.1-8b", "alias": "local-llama"}],
    }
    assert api.put("/openai-compatibility", json=[provider]).status_code == 200
    assert "local-llama" in model_ids(proxy)
    rows = api.get("/openai-compatibility").json()["openai-compatibility"]
    assert rows[0]["auth-index"] == hashlib.sha256(b"openai-compatibility:local").hexdigest()[:16]
    seed = b"openai-compatibility:http://127.0.0.1:9/v1+upstream-secret"
    assert rows[0]["api-key-entries"][0]["auth-index"] == hashlib.sha256(seed).hexdigest()[:16]
    # PATCH by name; an echoed auth-index is never written.
    patch = {"name": "local", "value": {"models": [{"name": "qwen"}], "auth-index": "x"}}
    assert api.patch("/openai-compatibility", json=patch).status_code == 200
    assert "qwen" in model_ids(proxy)
    assert "auth-index" not in config_file.read_text()
    missing_url = api.put("/openai-compatibility", json=[{"name": "x"}])
    assert missing_url.status_code == 422
    assert "openai-compatibility[0].base-url" in missing_url.json()["error"]
    assert api.delete("/openai-compatibility", params={"name": "local"}).status_code == 200
    assert "local-llama" not in model_ids(proxy)
    assert_comments_kept(config_file.read_text())


def test_vertex_api_key(api: httpx.Client, config_file: Path) -> None:
    entry = {
        "api-key": "vk",
        "base-url": "https://vertex.example",
        "models": [{"name": "g", "alias": "v-g"}],
    }
    assert api.put("/vertex-api-key", json=[entry]).status_code == 200
    rows = api.get("/vertex-api-key").json()["vertex-api-key"]
    # A served section: GET shows the entry with the schema's defaults filled in.
    assert len(rows) == 1
    assert rows[0] | entry == rows[0]
    assert (
        rows[0]["auth-index"]
        == (hashlib.sha256(b"vertex-api-key:https://vertex.example+vk").hexdigest()[:16])
    )
    assert on_disk(config_file, "vertex-api-key") == [entry]
    before = config_file.read_bytes()
    for bad, message in (
        ({"base-url": "https://x"}, "vertex-api-key[0].api-key: is required"),
        ({"api-key": "k", "models": [{"name": "g"}]}, "vertex-api-key[0].models[0]"),
    ):
        reply = api.put("/vertex-api-key", json=[bad])
        assert reply.status_code == 422
        assert message in reply.json()["error"]
    assert config_file.read_bytes() == before


def test_refusals_name_the_field(api: httpx.Client, config_file: Path) -> None:
    """Besides the message, a refusal names the value in `field` (and a whole-config check
    lists each problem), so a form can show it by its input (docs/management-api.md)."""
    before = config_file.read_bytes()
    reply = api.patch(
        "/claude-api-key", json={"index": 0, "value": {"weight": -2, "base-url": "ftp://x"}}
    )
    assert reply.status_code == 422
    body = reply.json()
    assert set(body) == {"error", "field", "problems"}
    assert body["field"] == "claude-api-key[0].base-url"
    assert [(p["field"], p["message"]) for p in body["problems"]] == [
        ("claude-api-key[0].base-url", "must be an http:// or https:// URL (got 'ftp://x')"),
        ("claude-api-key[0].weight", "must be 0 or more (got -2)"),
    ]
    assert all(isinstance(p["line"], int) for p in body["problems"])
    assert body["error"].startswith("claude-api-key[0].")  # the message as before
    # A route's own check: the path its message starts with.
    reply = api.put("/vertex-api-key", json=[{"api-key": "k", "models": [{"name": "m"}]}])
    assert reply.json() == {
        "error": "vertex-api-key[0].models[0]: needs both name and alias",
        "field": "vertex-api-key[0].models[0]",
    }
    reply = api.put("/api-keys", json=[1])
    assert reply.json() == {"error": "api-keys[0]: must be a string", "field": "api-keys[0]"}
    # A message that names no single value has no field.
    reply = api.patch("/claude-api-key", json={"value": {"weight": 2}})
    assert "field" not in reply.json()
    assert config_file.read_bytes() == before
