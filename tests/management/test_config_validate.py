"""POST /config.yaml/validate over HTTP, and the line every config.yaml refusal carries.

The route checks a whole config as PUT /config.yaml would and saves nothing; its refusals are
PUT's (400 invalid_yaml, 422 invalid_config) with the line as a number field as well as in the
message, lines counted in the text as sent.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cliproxy.config import parse_config_text
from tests.management.conftest import KEY
from tests.proxy_server import ProxyServer


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_valid_config_is_checked_not_saved(
    api: httpx.Client, config_file: Path, proxy: ProxyServer
) -> None:
    before = config_file.read_bytes()
    text = config_file.read_text().replace("debug: false", "debug: true")
    reply = api.post("/config.yaml/validate", content=text)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"ok": True, "warnings": [], "unsupported": [], "management": True}
    assert config_file.read_bytes() == before
    assert proxy.state.runtime.config.debug is False
    assert api.get("/debug").json() == {"debug": False}


def test_warnings_and_unsupported_keys_come_with_their_lines(
    api: httpx.Client, config_file: Path
) -> None:
    text = config_file.read_text() + "no-such-setting: 1\ncommercial-mode: true\n"
    body = api.post("/config.yaml/validate", content=text).json()
    assert body["ok"] is True
    unknown = {"key": "no-such-setting", "message": "unknown key, ignored"}
    assert body["warnings"] == [{"line": line_of(text, "no-such-setting"), **unknown}]
    assert body["unsupported"] == [
        {"line": line_of(text, "commercial-mode"), "key": "commercial-mode"}
    ]


def test_a_config_that_turns_management_off_says_so(api: httpx.Client, config_file: Path) -> None:
    text = config_file.read_text()
    start = text.index("remote-management:")
    end = text.index("# client keys")
    body = api.post("/config.yaml/validate", content=text[:start] + text[end:]).json()
    assert body["ok"] is True and body["management"] is False
    # Nothing was saved: the key still opens the API.
    assert api.get("/debug").status_code == 200


BAD_INDENT = "debug: false\nrouting:\n  strategy: round-robin\n    fill: first\n"


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_bad_indentation_is_400_with_its_line(
    api: httpx.Client, config_file: Path, method: str
) -> None:
    before = config_file.read_bytes()
    path = "/config.yaml/validate" if method == "POST" else "/config.yaml"
    reply = api.request(method, path, content=BAD_INDENT)
    assert reply.status_code == 400
    body = reply.json()
    assert body["error"] == "invalid_yaml"
    assert body["line"] == 4 and isinstance(body["column"], int)
    assert body["message"].startswith("YAML syntax: ")
    assert "(line 4, column" in body["message"]
    assert "<unicode string>" not in body["message"]
    assert config_file.read_bytes() == before


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_an_invalid_value_is_422_with_its_line_and_every_problem(
    api: httpx.Client, config_file: Path, method: str
) -> None:
    before = config_file.read_bytes()
    text = config_file.read_text().replace("port: 8317", "port: -5")
    text = text.replace("strategy: round-robin", "strategy: random")
    path = "/config.yaml/validate" if method == "POST" else "/config.yaml"
    reply = api.request(method, path, content=text)
    assert reply.status_code == 422
    body = reply.json()
    port_line, strategy_line = line_of(text, "port: -5"), line_of(text, "strategy: random")
    assert body["error"] == "invalid_config"
    assert body["line"] == port_line
    assert [(p["line"], p["key"]) for p in body["problems"]] == [
        (port_line, "port"),
        (strategy_line, "routing.strategy"),
    ]
    assert f"port: {body['problems'][0]['message']} (line {port_line})" in body["message"]
    assert str(config_file) not in body["message"]
    assert config_file.read_bytes() == before


def test_lines_are_those_of_the_text_sent_when_a_plaintext_secret_is_hashed(
    api: httpx.Client, config_file: Path
) -> None:
    """PUT re-dumps a text whose plaintext secret-key it hashes; the refusal still counts the
    lines of the caller's text (here a 4-space, comment-heavy layout ruamel would redo)."""
    text = (
        "remote-management:\n"
        "    secret-key: 'a-new-plaintext-secret'\n"
        "\n\n\n# many\n# comment\n# lines\n\n"
        "api-keys:\n"
        "    -   client-key-1\n"
        "request-retry: -2\n"
    )
    before = config_file.read_bytes()
    for path, method in (("/config.yaml/validate", "POST"), ("/config.yaml", "PUT")):
        reply = api.request(method, path, content=text)
        assert reply.status_code == 422, reply.text
        assert reply.json()["line"] == 12
    assert config_file.read_bytes() == before


def test_validate_does_not_hash_or_write_a_plaintext_secret(
    api: httpx.Client, config_file: Path
) -> None:
    before = config_file.read_bytes()
    text = "remote-management:\n  secret-key: plain-one\n"
    assert api.post("/config.yaml/validate", content=text).status_code == 200
    assert config_file.read_bytes() == before
    assert api.get("/debug").status_code == 200  # the old key still opens the API


@pytest.mark.parametrize(
    ("content", "status", "code", "line"),
    [
        (b"\xff\xfe not utf-8", 400, "invalid_yaml", None),
        (b"- a\n- list\n", 400, "invalid_yaml", 1),
        (b'key: "\\ud800"\n', 400, "invalid_yaml", None),
        (b"", 200, None, None),
    ],
)
def test_other_bodies(
    api: httpx.Client, content: bytes, status: int, code: str | None, line: int | None
) -> None:
    reply = api.post("/config.yaml/validate", content=content)
    assert reply.status_code == status, reply.text
    if code is not None:
        assert reply.json()["error"] == code
        assert reply.json()["line"] == line


def test_without_a_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """GET says there is no file (`config-file: false`, not a deleted file); validating still
    works, since it saves nothing; PUT stays 409."""
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    text = f"remote-management: {{secret-key: {KEY}}}\nauth-dir: {tmp_path}\n"
    with (
        ProxyServer(parse_config_text(text, "x")) as proxy,
        httpx.Client(
            base_url=proxy.base_url + "/v0/management", headers={"x-management-key": KEY}
        ) as client,
    ):
        reply = client.get("/config.yaml")
        assert reply.status_code == 404
        body = reply.json()
        assert body["error"] == "not_found" and body["config-file"] is False
        assert "without a config file" in body["message"]
        assert "embedded default" in body["message"]
        assert client.post("/config.yaml/validate", content="debug: true\n").status_code == 200
        bad = client.post("/config.yaml/validate", content="port: 0\n")
        assert bad.status_code == 422 and bad.json()["line"] == 1
        assert client.put("/config.yaml", content="debug: true\n").status_code == 409


def test_a_deleted_config_file_is_not_mistaken_for_none(
    api: httpx.Client, config_file: Path
) -> None:
    config_file.unlink()
    reply = api.get("/config.yaml")
    assert reply.status_code == 404
    assert "config-file" not in reply.json()


def test_the_route_is_in_the_openapi_document(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    operation = document["paths"]["/config.yaml/validate"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "413", "422"}
    assert "config" in operation["tags"]
