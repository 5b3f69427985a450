"""GET /config, /config.yaml, the scalar settings and the OAuth-channel maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from cliproxy.config import parse_config_text
from tests.management.conftest import KEY, assert_comments_kept
from tests.proxy_server import ProxyServer


def file_value(path: Path, *keys: str) -> Any:
    node: Any = YAML(typ="safe").load(path.read_text())
    for key in keys:
        node = node[key]
    return node


def test_get_config_hides_where_it_listens_and_the_secret(api: httpx.Client) -> None:
    reply = api.get("/config")
    assert reply.status_code == 200
    body = reply.json()
    assert body["api-keys"] == ["client-key-1", "client-key-2"]
    assert body["claude-api-key"][0]["api-key"] == "sk-ant-1"
    assert body["routing"]["strategy"] == "round-robin"
    for hidden in ("host", "port", "auth-dir", "remote-management"):
        assert hidden not in body
    assert reply.headers["x-cpa-support-plugin"] == "false"


def test_get_config_yaml_is_the_file(api: httpx.Client, config_file: Path) -> None:
    reply = api.get("/config.yaml")
    assert reply.status_code == 200
    assert reply.content == config_file.read_bytes()
    assert reply.headers["content-type"].startswith("application/yaml")
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["x-content-type-options"] == "nosniff"


def test_put_config_yaml_writes_and_applies(api: httpx.Client, config_file: Path) -> None:
    text = config_file.read_text().replace("debug: false", "debug: true  # now on")
    reply = api.put("/config.yaml", content=text, headers={"content-type": "application/yaml"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"ok": True, "changed": ["config"]}
    assert config_file.read_text() == text
    assert api.get("/debug").json() == {"debug": True}


def test_put_config_yaml_hashes_a_new_plaintext_secret(
    api: httpx.Client, proxy: ProxyServer, config_file: Path
) -> None:
    text = config_file.read_text()
    old_hash = file_value(config_file, "remote-management", "secret-key")
    new_text = text.replace(old_hash, "second-secret")
    assert api.put("/config.yaml", content=new_text).status_code == 200
    assert "second-secret" not in config_file.read_text()
    assert "# hashed on first start" in config_file.read_text()
    url = proxy.base_url + "/v0/management/debug"
    assert httpx.get(url, headers={"x-management-key": "second-secret"}).status_code == 200
    assert httpx.get(url, headers={"x-management-key": KEY}).status_code == 401


@pytest.mark.parametrize(
    ("text", "status", "code", "names"),
    [
        ("api-keys: [a\nport: 1\n", 400, "invalid_yaml", "YAML"),
        ("- just\n- a list\n", 400, "invalid_yaml", "mapping"),
        ("port: 0\n", 422, "invalid_config", "port"),
        (
            "claude-api-key:\n  - api-key: k\n    weight: -3\n",
            422,
            "invalid_config",
            "claude-api-key[0].weight",
        ),
    ],
)
def test_put_config_yaml_refusals_leave_the_file_untouched(
    api: httpx.Client, config_file: Path, text: str, status: int, code: str, names: str
) -> None:
    before = config_file.read_bytes()
    reply = api.put("/config.yaml", content=text)
    assert reply.status_code == status
    assert reply.json()["error"] == code
    assert names in reply.json()["message"]
    assert str(config_file) not in reply.json()["message"]
    if code == "invalid_config":
        assert reply.json()["field"] == names
    assert config_file.read_bytes() == before


SCALAR_CASES = [
    ("debug", True, "debug", ("debug",), True),
    ("request-retry", 5, "request-retry", ("request-retry",), 5),
    ("max-retry-credentials", 2, "max-retry-credentials", ("max-retry-credentials",), 2),
    ("max-retry-interval", 7, "max-retry-interval", ("max-retry-interval",), 7),
    ("force-model-prefix", True, "force-model-prefix", ("force-model-prefix",), True),
    (
        "proxy-url",
        "socks5://127.0.0.1:1080",
        "proxy-url",
        ("proxy-url",),
        "socks5://127.0.0.1:1080",
    ),
    (
        "quota-exceeded/switch-project",
        False,
        "switch-project",
        ("quota-exceeded", "switch-project"),
        False,
    ),
    (
        "quota-exceeded/switch-preview-model",
        False,
        "switch-preview-model",
        ("quota-exceeded", "switch-preview-model"),
        False,
    ),
    ("routing/strategy", "ff", "strategy", ("routing", "strategy"), "fill-first"),
    ("routing/strategy", "wrr", "strategy", ("routing", "strategy"), "weighted-round-robin"),
    ("logging-to-file", True, "logging-to-file", ("logging-to-file",), True),
    ("logs-max-total-size-mb", -4, "logs-max-total-size-mb", ("logs-max-total-size-mb",), 0),
    ("error-logs-max-files", -1, "error-logs-max-files", ("error-logs-max-files",), 10),
    (
        "usage-statistics-enabled",
        True,
        "usage-statistics-enabled",
        ("usage-statistics-enabled",),
        True,
    ),
    ("request-log", True, "request-log", ("request-log",), True),
    ("ws-auth", True, "ws-auth", ("ws-auth",), True),
]


@pytest.mark.parametrize(("route", "value", "json_key", "path", "stored"), SCALAR_CASES)
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_scalar_settings(
    api: httpx.Client,
    config_file: Path,
    method: str,
    route: str,
    value: Any,
    json_key: str,
    path: tuple[str, ...],
    stored: Any,
) -> None:
    reply = api.request(method, f"/{route}", json={"value": value})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"status": "ok"}
    assert file_value(config_file, *path) == stored
    assert api.get(f"/{route}").json() == {json_key: stored}
    assert_comments_kept(config_file.read_text())


@pytest.mark.parametrize(
    ("route", "body", "status", "message"),
    [
        ("debug", {"value": "yes"}, 422, "value: must be a boolean"),
        ("debug", {}, 422, "value: is required"),
        ("debug", [True], 422, "body: must be a JSON object"),
        ("request-retry", {"value": True}, 422, "value: must be a whole number"),
        ("request-retry", {"value": -1}, 422, "request-retry: must be 0 or more"),
        ("proxy-url", {"value": "ftp://x"}, 422, "proxy-url: must start with"),
        ("routing/strategy", {"value": "random"}, 422, "invalid strategy"),
    ],
)
def test_scalar_bad_payloads_leave_the_file_untouched(
    api: httpx.Client, config_file: Path, route: str, body: Any, status: int, message: str
) -> None:
    before = config_file.read_bytes()
    reply = api.put(f"/{route}", json=body)
    assert reply.status_code == status
    assert message in reply.json()["error"]
    assert config_file.read_bytes() == before


def test_not_json_is_400_invalid_body(api: httpx.Client) -> None:
    reply = api.put("/debug", content=b"{nope")
    assert reply.status_code == 400
    assert reply.json() == {"error": "invalid body"}


def test_delete_proxy_url_clears_it(
    api: httpx.Client, config_file: Path, proxy: ProxyServer
) -> None:
    assert api.put("/proxy-url", json={"value": "http://127.0.0.1:3128"}).status_code == 200
    assert proxy.state.runtime.config.proxy_url == "http://127.0.0.1:3128"
    assert api.delete("/proxy-url").json() == {"status": "ok"}
    assert file_value(config_file, "proxy-url") == ""
    assert proxy.state.runtime.config.proxy_url == ""


def test_file_keeps_its_mode_after_a_write(api: httpx.Client, config_file: Path) -> None:
    assert api.put("/debug", json={"value": True}).status_code == 200
    assert config_file.stat().st_mode & 0o777 == 0o640
    assert not [p for p in config_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_oauth_excluded_models(api: httpx.Client, config_file: Path, proxy: ProxyServer) -> None:
    assert api.get("/oauth-excluded-models").json() == {"oauth-excluded-models": {}}
    put = api.put("/oauth-excluded-models", json={"items": {"Codex": [" GPT-5* ", "gpt-5*"]}})
    assert put.status_code == 200, put.text
    assert file_value(config_file, "oauth-excluded-models") == {"codex": ["gpt-5*"]}
    assert proxy.state.runtime.config.oauth_excluded_models == {"codex": ["gpt-5*"]}
    assert (
        api.patch(
            "/oauth-excluded-models", json={"provider": "claude", "models": ["x"]}
        ).status_code
        == 200
    )
    assert api.get("/oauth-excluded-models").json()["oauth-excluded-models"] == {
        "codex": ["gpt-5*"],
        "claude": ["x"],
    }
    assert (
        api.patch("/oauth-excluded-models", json={"provider": "claude", "models": []}).status_code
        == 200
    )
    missing = api.patch("/oauth-excluded-models", json={"provider": "kimi", "models": []})
    assert missing.status_code == 404
    assert api.delete("/oauth-excluded-models", params={"provider": "nope"}).status_code == 404
    assert api.delete("/oauth-excluded-models").status_code == 400
    assert api.delete("/oauth-excluded-models", params={"provider": "codex"}).status_code == 200
    assert file_value(config_file, "oauth-excluded-models") == {}
    bad = api.put("/oauth-excluded-models", json={"codex": "gpt-5"})
    assert bad.status_code == 422
    assert "oauth-excluded-models.codex" in bad.json()["error"]
    assert api.patch("/oauth-excluded-models", json={"models": ["a"]}).status_code == 422
    assert_comments_kept(config_file.read_text())


def test_oauth_model_alias(api: httpx.Client, config_file: Path, proxy: ProxyServer) -> None:
    aliases = [{"name": "gpt-5", "alias": "g5", "fork": True}]
    assert api.put("/oauth-model-alias", json={"codex": aliases}).status_code == 200
    live = proxy.state.runtime.config.oauth_model_alias["codex"][0]
    assert (live.name, live.alias, live.fork) == ("gpt-5", "g5", True)
    reply = api.patch(
        "/oauth-model-alias", json={"channel": "claude", "aliases": [{"name": "a", "alias": "b"}]}
    )
    assert reply.status_code == 200
    assert set(api.get("/oauth-model-alias").json()["oauth-model-alias"]) == {"codex", "claude"}
    assert api.delete("/oauth-model-alias", params={"channel": "codex"}).status_code == 200
    assert list(file_value(config_file, "oauth-model-alias")) == ["claude"]
    bad = api.patch("/oauth-model-alias", json={"channel": "claude", "aliases": [{"alias": "b"}]})
    assert bad.status_code == 422
    assert "aliases[0].name" in bad.json()["error"]


def test_without_a_config_file_writes_are_409(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    config = parse_config_text(
        f"remote-management: {{secret-key: {KEY}}}\nauth-dir: {tmp_path}\n", "x"
    )
    with (
        ProxyServer(config) as proxy,
        httpx.Client(
            base_url=proxy.base_url + "/v0/management", headers={"x-management-key": KEY}
        ) as client,
    ):
        reply = client.put("/debug", json={"value": True})
        assert reply.status_code == 409
        assert "without a config file" in reply.json()["error"]
        assert client.get("/config.yaml").status_code == 404
        assert client.get("/debug").json() == {"debug": False}


def test_a_failed_write_is_500_and_changes_nothing(
    api: httpx.Client, config_file: Path, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cliproxy.management import config_file as module

    def refuse(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "_write_atomically", refuse)
    before = config_file.read_bytes()
    reply = api.put("/debug", json={"value": True})
    assert reply.status_code == 500
    assert reply.json() == {"error": "failed to save config: No space left on device"}
    assert config_file.read_bytes() == before
    assert proxy.state.runtime.config.debug is False
