"""GET/PUT/PATCH/DELETE /client-keys: keys listed masked, a generated key shown in full once,
masked echoes keep their keys, writes land in the file with its comments and apply live, and
refusals name the entry and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

from tests.management.conftest import assert_comments_kept
from tests.proxy_server import ProxyServer


def on_disk(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text()).get("client-keys")


def models_status(proxy: ProxyServer, key: str) -> int:
    reply = httpx.get(proxy.base_url + "/v1/models", headers={"authorization": f"Bearer {key}"})
    return reply.status_code


def test_crud_with_a_generated_key(
    api: httpx.Client, proxy: ProxyServer, config_file: Path
) -> None:
    assert api.get("/client-keys").json() == {"client-keys": []}
    reply = api.put(
        "/client-keys",
        json=[
            {"name": "team-a", "key": "sk-team-a-secret-1", "allowed-models": ["claude-*"]},
            {"name": "team-b", "requests-per-minute": 30, "max-budget-usd-per-month": 20},
        ],
    )
    assert reply.status_code == 200, reply.text
    [generated] = reply.json()["generated-keys"]
    assert generated["name"] == "team-b" and generated["key"].startswith("sk-")
    assert len(generated["key"]) > 40
    listed = api.get("/client-keys").json()["client-keys"]
    assert listed == [
        {"name": "team-a", "key": "sk-t…et-1", "allowed-models": ["claude-*"]},
        {
            "name": "team-b",
            "key": generated["key"][:4] + "…" + generated["key"][-4:],
            "requests-per-minute": 30,
            "max-budget-usd-per-month": 20.0,
        },
    ]
    assert generated["key"] not in api.get("/client-keys").text  # shown once only
    assert [entry["key"] for entry in on_disk(config_file)] == [
        "sk-team-a-secret-1",
        generated["key"],
    ]
    assert_comments_kept(config_file.read_text())
    # Applied live: both keys are client keys now.
    assert models_status(proxy, generated["key"]) == 200
    assert models_status(proxy, "sk-team-a-secret-1") == 200

    # The list echoed back as GET showed it keeps the keys.
    assert api.put("/client-keys", json={"items": listed}).status_code == 200
    assert [entry["key"] for entry in on_disk(config_file)] == [
        "sk-team-a-secret-1",
        generated["key"],
    ]

    # PATCH: change a limit, remove one (null), add an entry by a new name.
    change = {
        "name": "team-b",
        "value": {"requests-per-minute": 5, "max-budget-usd-per-month": None},
    }
    reply = api.patch("/client-keys", json=change)
    assert reply.status_code == 200 and "generated-keys" not in reply.json()
    reply = api.patch("/client-keys", json={"name": "team-c", "value": {"tokens-per-day": 1000}})
    [fresh] = reply.json()["generated-keys"]
    assert fresh["name"] == "team-c"
    entries = on_disk(config_file)
    assert entries[1] == {"key": generated["key"], "name": "team-b", "requests-per-minute": 5}
    assert entries[2] == {"name": "team-c", "tokens-per-day": 1000, "key": fresh["key"]}
    assert models_status(proxy, fresh["key"]) == 200
    # An empty key rotates it: the new one is shown once, the old one stops working.
    reply = api.patch("/client-keys", json={"index": 2, "value": {"key": ""}})
    [rotated] = reply.json()["generated-keys"]
    assert rotated["key"] != fresh["key"]
    assert models_status(proxy, fresh["key"]) == 401
    assert models_status(proxy, rotated["key"]) == 200

    # DELETE by name and by index.
    assert api.delete("/client-keys", params={"name": "TEAM-C"}).status_code == 200
    assert api.delete("/client-keys", params={"index": 0}).status_code == 200
    assert [entry["name"] for entry in on_disk(config_file)] == ["team-b"]
    assert models_status(proxy, "sk-team-a-secret-1") == 401
    assert api.delete("/client-keys", params={"name": "absent"}).status_code == 404
    assert api.delete("/client-keys").status_code == 400
    assert_comments_kept(config_file.read_text())


def test_refusals_name_the_entry_and_leave_the_file(api: httpx.Client, config_file: Path) -> None:
    before = config_file.read_bytes()
    cases = [
        ([{"name": "a", "requests-per-minute": 0}], "client-keys[0].requests-per-minute"),
        ([{"name": "a"}, {"name": "A"}], "client-keys[1].name: duplicate client key name"),
        ([{"name": "a", "colour": "red"}], "client-keys[0].colour: unknown field"),
        ([{"name": "a", "key": "sk-x…abcd"}], "client-keys[0].key"),
        ([{"key": "sk-no-name-1234"}], "client-keys[0].name"),
        ([{"name": "a", "key": "client-key-1"}], "also listed in api-keys"),
    ]
    for body, message in cases:
        reply = api.put("/client-keys", json=body)
        assert reply.status_code == 422, (body, reply.text)
        assert message in reply.json()["error"], (body, reply.text)
    assert api.patch("/client-keys", json={"index": 3, "value": {}}).status_code == 404
    assert api.patch("/client-keys", json={"value": {}}).status_code == 422
    assert config_file.read_bytes() == before


def test_the_config_dump_masks_client_keys(api: httpx.Client) -> None:
    assert (
        api.put("/client-keys", json=[{"name": "a", "key": "sk-full-secret-9"}]).status_code == 200
    )
    dumped = api.get("/config")
    assert dumped.json()["client-keys"][0]["key"] == "sk-f…et-9"
    assert "sk-full-secret-9" not in dumped.text


def test_a_bad_limit_names_its_field(api: httpx.Client, config_file: Path) -> None:
    before = config_file.read_bytes()
    reply = api.patch("/client-keys", json={"name": "new", "value": {"requests-per-minute": 0}})
    assert reply.status_code == 422
    body = reply.json()
    assert body["field"] == "client-keys[0].requests-per-minute"
    assert body["problems"][0]["message"] == (
        "must be at least 1, or left out for no limit (got 0)"
    )
    assert config_file.read_bytes() == before
