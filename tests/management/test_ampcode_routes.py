"""/v0/management/ampcode...: each setting read, written into the file's ampcode block (the
comments kept), applied live, and refused with a message naming the field."""

from __future__ import annotations

from pathlib import Path

import httpx
from ruamel.yaml import YAML

from tests.management.conftest import assert_comments_kept


def _file(config_file: Path) -> dict:  # type: ignore[type-arg]
    return dict(YAML(typ="safe").load(config_file.read_text()))


def test_ampcode_settings_round_trip(api: httpx.Client, config_file: Path) -> None:
    whole = api.get("/ampcode").json()["ampcode"]
    assert whole["enabled"] is False and whole["upstream-url"] == "https://ampcode.com"

    assert api.put("/ampcode/upstream-url", json={"value": "http://127.0.0.1:9"}).status_code == 200
    assert api.patch("/ampcode/upstream-api-key", json={"value": "amp-k"}).status_code == 200
    assert api.put("/ampcode/force-model-mappings", json={"value": True}).status_code == 200
    assert (
        api.patch("/ampcode/restrict-management-to-localhost", json={"value": True}).status_code
        == 200
    )
    assert api.get("/ampcode/upstream-url").json() == {"upstream-url": "http://127.0.0.1:9"}
    assert api.get("/ampcode/force-model-mappings").json() == {"force-model-mappings": True}
    whole = api.get("/ampcode").json()["ampcode"]
    assert whole["enabled"] is True and whole["upstream-api-key"] == "amp-k"
    assert whole["restrict-management-to-localhost"] is True

    mappings = [{"from": "claude-opus-.*", "to": "local-a"}, {"from": "gpt-9", "to": "local-b"}]
    assert api.put("/ampcode/model-mappings", json=mappings).status_code == 200
    update = {"value": [{"from": "gpt-9", "to": "local-c"}]}
    assert api.patch("/ampcode/model-mappings", json=update).status_code == 200
    got = api.get("/ampcode/model-mappings").json()["model-mappings"]
    assert [(m["from"], m["to"]) for m in got] == [
        ("claude-opus-.*", "local-a"),
        ("gpt-9", "local-c"),
    ]
    assert (
        api.request("DELETE", "/ampcode/model-mappings", params={"from": "gpt-9"}).status_code
        == 200
    )
    assert len(api.get("/ampcode/model-mappings").json()["model-mappings"]) == 1

    keys = {"value": [{"upstream-api-key": "amp-team", "api-keys": ["client-key-2"]}]}
    assert api.put("/ampcode/upstream-api-keys", json=keys).status_code == 200
    assert api.get("/ampcode/upstream-api-keys").json()["upstream-api-keys"] == keys["value"]
    assert api.request("DELETE", "/ampcode/upstream-api-keys").status_code == 200
    assert api.get("/ampcode/upstream-api-keys").json()["upstream-api-keys"] == []

    assert api.delete("/ampcode/upstream-api-key").status_code == 200
    written = _file(config_file)["ampcode"]
    assert written["upstream-url"] == "http://127.0.0.1:9"
    assert "upstream-api-key" not in written
    assert written["model-mappings"] == [{"from": "claude-opus-.*", "to": "local-a"}]
    assert_comments_kept(config_file.read_text())


def test_ampcode_writes_replace_the_legacy_spelling(api: httpx.Client, config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + "amp-upstream-url: http://127.0.0.1:10\n")
    assert api.put("/config.yaml", content=config_file.read_bytes()).status_code == 200
    assert api.get("/ampcode/upstream-url").json() == {"upstream-url": "http://127.0.0.1:10"}
    assert (
        api.put("/ampcode/upstream-url", json={"value": "http://127.0.0.1:11"}).status_code == 200
    )
    written = _file(config_file)
    assert "amp-upstream-url" not in written
    assert written["ampcode"]["upstream-url"] == "http://127.0.0.1:11"


def test_ampcode_refusals_name_the_field(api: httpx.Client, config_file: Path) -> None:
    before = config_file.read_text()
    bad_type = api.put("/ampcode/force-model-mappings", json={"value": "yes"})
    assert bad_type.status_code == 422 and "force-model-mappings" in bad_type.text
    bad_url = api.put("/ampcode/upstream-url", json={"value": "ftp://x"})
    assert bad_url.status_code == 422 and "ampcode.upstream-url" in bad_url.text
    bad_regex = api.put("/ampcode/model-mappings", json=[{"from": "(", "to": "b"}])
    assert bad_regex.status_code == 422 and "model-mappings[0].from" in bad_regex.text
    missing = api.patch("/ampcode/model-mappings", json={"value": [{"from": "a"}]})
    assert missing.status_code == 422 and "to" in missing.json()["error"]
    gone = api.request("DELETE", "/ampcode/model-mappings", params={"from": "nope"})
    assert gone.status_code == 404
    assert config_file.read_text() == before
