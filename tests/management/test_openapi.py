"""The OpenAPI documents are valid, describe every route, and schemathesis finds no 5xx with them.

The fuzz runs every operation of each tree's served document (/v0/management and
/v8/management), in positive and negative modes, against a real server with the key set. A case fails on a 5xx, on a status the document does not list for
that operation, and on any traceback logged while it ran (a 500 JSON reply hides one).
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from starlette.routing import Route

from cliproxy.auth.flows import oauth_flow
from cliproxy.config import load_config
from cliproxy.management.app import ManagementApp
from cliproxy.management.openapi import UNDOCUMENTED, template
from cliproxy.management.routes_oauth import login_sessions
from tests.management.conftest import management_mount, write_config
from tests.proxy_server import ProxyServer
from tests.simulators.kimi_sim import KimiSim
from tests.simulators.oauth_sim import OAuthSim, oauth_sim_server_fixture  # noqa: F401
from tests.simulators.xai_sim import XaiSim

PASSWORD = "fuzz-password"
# Cases per operation and mode: 4 keeps the module under a minute; raise it for a deeper hunt
# (CLIPROXY_FUZZ_EXAMPLES=50 pytest tests/management/test_openapi.py).
MAX_EXAMPLES = int(os.environ.get("CLIPROXY_FUZZ_EXAMPLES", "4"))
METHODS = ("get", "put", "post", "patch", "delete")
# Query parameters the fuzz leaves out, each with why. Their operations are still fuzzed.
NOT_FUZZED_PARAMS = {
    # is_webui=true makes the login listen on the vendor's fixed loopback port (1455 for Codex,
    # 54545 for Claude, 8085 for Gemini): a fuzz run must not hold ports other tests and the
    # developer's own CLI logins use. test_oauth_logins.py covers it (the is_webui tests) and
    # test_ui_contract.py its UI contract.
    "is_webui",
}
# Operations the fuzz leaves out entirely, each with why: none today.
NOT_FUZZED_OPERATIONS: dict[tuple[str, str], str] = {}
# Auth files written before every case, so the auth-file routes get past "not found" and run
# their edits, refreshes and resets on real accounts. In the fuzzed document (not the served
# one) the auth-file `name` parameters and properties are narrowed to these plus one missing
# name; negative mode still sends arbitrary names.
SEEDED = {"fuzz-codex.json": "codex", "fuzz-claude.json": "claude"}
SEEDED_NAMES = [*SEEDED, "fuzz-missing.json"]
NAMED_PATHS = ("/auth-files", "/reset-quota", "/credentials", "/routing/cooldown/reset")
TREES = ("/v0/management", "/v8/management")


@pytest.fixture(scope="module")
def fuzz_proxy(
    tmp_path_factory: pytest.TempPathFactory, _oauth_sim_server: OAuthSim
) -> Iterator[ProxyServer]:
    # The env password keeps the API reachable whatever the fuzzer writes into config.yaml
    # (an empty file drops the secret-key). HOME points into tmp: a fuzzed config.yaml without
    # auth-dir falls back to ~/.cli-proxy-api, and DELETE /auth-files?all=true must never
    # reach the developer's real accounts.
    home = tmp_path_factory.mktemp("home")
    saved = {name: os.environ.get(name) for name in ("MANAGEMENT_PASSWORD", "HOME")}
    os.environ["MANAGEMENT_PASSWORD"] = PASSWORD
    os.environ["HOME"] = str(home)
    path: Path = write_config(tmp_path_factory.mktemp("fuzz"))
    try:
        with (
            KimiSim() as kimi,
            XaiSim() as xai,
            ProxyServer(load_config(path), config_path=path) as server,
        ):
            # Forced and background refreshes of the seeded accounts go to the simulator.
            server.state.refresher.flows = _oauth_sim_server.flows()
            # Device logins (kimi, xai) ask their vendor at once: the simulators answer.
            env = {**_oauth_sim_server.env(), **kimi.env(), **xai.env()}
            login_sessions(server.app).flows = partial(oauth_flow, env=env)
            yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def served_document(proxy: ProxyServer, tree: str = "/v0/management") -> dict[str, Any]:
    reply = httpx.get(
        proxy.base_url + tree + "/openapi.json",
        headers={"authorization": f"Bearer {PASSWORD}"},
    )
    assert reply.status_code == 200
    document: dict[str, Any] = reply.json()
    assert document["servers"] == [{"url": tree}]
    return document


def route_operations(proxy: ProxyServer, tree: str = "/v0/management") -> set[tuple[str, str]]:
    """(method, path) of every route under the management mount."""
    found = set()
    # The mount's app is a ManagementApp, whose Router holds the routes (Mount.routes is empty).
    inner = management_mount(proxy.app, tree).app
    assert isinstance(inner, ManagementApp)
    for route in inner.router.routes:
        assert isinstance(route, Route) and route.methods, route
        for method in route.methods - {"HEAD"}:
            found.add((method.lower(), template(route.path)))
    return found


def _has_schema(content: dict[str, Any]) -> bool:
    return bool(content) and all("schema" in media for media in content.values())


@pytest.mark.parametrize("tree", TREES)
def test_document_lists_every_route(fuzz_proxy: ProxyServer, tree: str) -> None:
    document = served_document(fuzz_proxy, tree)
    assert document["openapi"].startswith("3.")
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.0 meta-schema
    routes = route_operations(fuzz_proxy, tree)
    assert len(routes) > (100 if tree == TREES[0] else 30)  # the mount really was found
    for method, path in sorted(routes):
        operation = document["paths"].get(path, {}).get(method)
        where = f"{method.upper()} {path}"
        assert operation is not None, f"{where} is not in the document"
        assert UNDOCUMENTED not in operation["tags"], f"{where} has no schema in openapi*.py"
        responses = operation["responses"]
        assert {"401", "403"} <= set(responses), where
        for status, response in responses.items():
            assert _has_schema(response.get("content", {})), (where, status)
        assert any(status in responses for status in ("200", "404", "422")), where
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), where
        if method in ("put", "post", "patch"):
            assert _has_schema(operation["requestBody"]["content"]), where
    # Every documented operation is a real route (no stale entries).
    documented = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented == routes | {("get", "/openapi.json")}
    files = "/auth-files" if tree == TREES[0] else "/credentials"
    upload = document["paths"][files]["post"]
    multipart = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert multipart["properties"]["file"]["items"]["format"] == "binary"
    assert {"200", "207", "400", "422"} <= set(upload["responses"])
    if tree == TREES[0]:
        assert "claude-api-key" in str(document["paths"]["/claude-api-key"]["get"]["responses"])
    else:  # an alias is described by its /v0 route's operation
        assert upload["x-cliproxy-v0"] == "/auth-files"


def fuzz_document(document: dict[str, Any]) -> dict[str, Any]:
    """The served document without the parameters the fuzz must not send, and with auth-file
    names narrowed to the seeded files."""
    trimmed = copy.deepcopy(document)
    for path, item in trimmed["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if not operation:
                continue
            operation["parameters"] = [
                p for p in operation.get("parameters", []) if p["name"] not in NOT_FUZZED_PARAMS
            ]
            if path.startswith(NAMED_PATHS):
                _narrow_names(operation)
    return trimmed


def _narrow_names(operation: dict[str, Any]) -> None:
    seeded = {"type": "string", "enum": SEEDED_NAMES}
    for param in operation["parameters"]:
        if param["name"] == "name":
            is_list = param["schema"].get("type") == "array"
            param["schema"] = {"type": "array", "items": seeded} if is_list else seeded
    for media in operation.get("requestBody", {}).get("content", {}).values():
        for schema in (media["schema"], *media["schema"].get("oneOf", [])):
            properties = schema.get("properties", {})
            if "name" in properties:
                properties["name"] = seeded
            if "names" in properties:
                properties["names"] = {"type": "array", "items": seeded}
            if schema.get("type") == "array" and schema.get("items") == {"type": "string"}:
                schema["items"] = seeded


def seed_auth_files(proxy: ProxyServer, sim: OAuthSim) -> None:
    """(Re)write the seeded accounts into the live auth directory (a fuzzed config.yaml may
    have moved it)."""
    auth_dir = Path(proxy.state.auth_store.auth_dir)
    auth_dir.mkdir(parents=True, exist_ok=True)
    for name, style in SEEDED.items():
        path = auth_dir / name
        path.write_bytes(orjson.dumps(sim.auth_file(style, expires_in=3600)))
        path.chmod(0o600)


def send(case: schemathesis.Case, base_url: str, headers: dict[str, str]) -> Any:
    """Send the case. Multipart file parts get a `.json` file name (schemathesis names them
    `file`, which every upload refuses before reading), so the fuzzed bytes reach the parser."""
    if case.media_type != "multipart/form-data":
        return case.call(base_url=base_url, headers=headers, timeout=10)
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    kwargs["files"] = [
        (field, ("fuzz-upload.json", *part[1:]) if isinstance(part, tuple) and part[0] else part)
        for field, part in kwargs.get("files") or []
    ]
    return requests.request(**kwargs, timeout=10)


class TracebackCatcher(logging.Handler):
    """Collects log records that carry a traceback or say ERROR, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.caught: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.caught.append(self.format(record))


@pytest.fixture
def tracebacks() -> Iterator[TracebackCatcher]:
    catcher = TracebackCatcher()
    catcher.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    # uvicorn's own loggers do not propagate to the root logger.
    loggers = [
        logging.getLogger(),
        logging.getLogger("uvicorn"),
        logging.getLogger("uvicorn.error"),
    ]
    for logger in loggers:
        logger.addHandler(catcher)
    try:
        yield catcher
    finally:
        for logger in loggers:
            logger.removeHandler(catcher)


def test_login_starts_say_what_they_start(fuzz_proxy: ProxyServer) -> None:
    """x-cliproxy-login on each /<name>-auth-url the server serves: what the console's "Add an
    account" page offers (one per provider, aliases marked), and nothing on the refused ones."""
    paths = served_document(fuzz_proxy)["paths"]
    logins = {
        path: item["get"]["x-cliproxy-login"]
        for path, item in paths.items()
        if "x-cliproxy-login" in item.get("get", {})
    }
    offered = [
        (path, login["provider"], login["title"], login["project"])
        for path, login in logins.items()
        if not login["alias"]
    ]
    assert offered == [
        ("/codex-auth-url", "codex", "Codex (ChatGPT)", False),
        ("/anthropic-auth-url", "anthropic", "Claude", False),
        ("/gemini-cli-auth-url", "gemini-cli", "Gemini (Google account)", True),
        ("/antigravity-auth-url", "antigravity", "Antigravity (Google account)", False),
        ("/kimi-auth-url", "kimi", "Kimi Code", False),
        ("/xai-auth-url", "xai", "xAI (Grok)", False),
    ]
    devices = {path for path, login in logins.items() if login.get("device")}
    assert devices == {"/kimi-auth-url", "/xai-auth-url"}
    aliases = {path: login["provider"] for path, login in logins.items() if login["alias"]}
    assert aliases == {"/claude-auth-url": "anthropic", "/gemini-auth-url": "gemini-cli"}
    assert "x-cliproxy-login" not in paths.get("/qwen-auth-url", {}).get("get", {})


@pytest.mark.parametrize("tree", TREES)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_on_generated_input(
    fuzz_proxy: ProxyServer,
    _oauth_sim_server: OAuthSim,
    tracebacks: TracebackCatcher,
    mode: GenerationMode,
    tree: str,
) -> None:
    schema = schemathesis.openapi.from_dict(fuzz_document(served_document(fuzz_proxy, tree)))
    base_url = fuzz_proxy.base_url + tree
    headers = {"Authorization": f"Bearer {PASSWORD}"}
    failures: list[str] = []
    fuzzed: set[tuple[str, str]] = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        key = (operation.method.lower(), operation.path)
        if key in NOT_FUZZED_OPERATIONS:
            continue
        fuzzed.add(key)

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            seed_auth_files(fuzz_proxy, _oauth_sim_server)
            logged = len(tracebacks.caught)
            response = send(case, base_url, headers)
            label = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.text[:200]}")
            elif str(response.status_code) not in case.operation.definition.raw["responses"]:
                failures.append(f"{label} is not documented: {response.text[:200]}")
            for record in tracebacks.caught[logged:]:
                failures.append(f"{label} logged: {record[:400]}")

        run()
    assert fuzzed == route_operations(fuzz_proxy, tree) - set(NOT_FUZZED_OPERATIONS) | {
        ("get", "/openapi.json")
    }
    assert not failures, "\n".join(dict.fromkeys(failures))


# Inputs that once answered 500 (found while fuzzing this API by hand); each must be refused.
CLAUDE_FILE = {"type": "claude", "access_token": "at", "refresh_token": "rt", "email": "c@e.com"}
ONCE_500: list[tuple[str, str, dict[str, Any], int]] = [
    # a name the atomic write's temp file cannot carry (ENAMETOOLONG)
    ("POST", "/auth-files", {"params": {"name": "c" * 245 + ".json"}, "json": CLAUDE_FILE}, 400),
    # expiry times without a UTC form, big whole numbers JSON cannot carry back
    ("PATCH", "/auth-files/fields", {"json": {"expired": "9999-12-31T23:59:59-14:00"}}, 422),
    ("PATCH", "/auth-files/fields", {"json": {"priority": 1e300}}, 422),
    ("PATCH", "/auth-files/fields", {"json": {"request_retry": 1e300}}, 422),
    (
        "POST",
        "/auth-files",
        {
            "params": {"name": "early.json"},
            "json": {**CLAUDE_FILE, "expired": "0001-01-01T00:00+14:00"},
        },
        422,
    ),
    (
        "POST",
        "/auth-files",
        {"params": {"name": "big.json"}, "json": {**CLAUDE_FILE, "priority": 1e300}},
        422,
    ),
    # a pasted URL urlsplit refuses
    ("POST", "/oauth-callback", {"json": {"redirect_url": "http://[::1/?code=a&state=b"}}, 400),
    # YAML that parses into what no encoder takes, fails to build, or nests past the stack
    ("PUT", "/config.yaml", {"content": b'api-keys: ["\\ud800"]\n'}, 400),
    ("PUT", "/config.yaml", {"content": b"a: !!timestamp 2001-99-99\n"}, 400),
    ("PUT", "/config.yaml", {"content": b"a: " + b"{b: " * 2000 + b"1" + b"}" * 2000}, 400),
]


@pytest.mark.parametrize(("method", "path", "request_args", "status"), ONCE_500)
def test_inputs_that_once_failed_are_refused(
    fuzz_proxy: ProxyServer,
    _oauth_sim_server: OAuthSim,
    tracebacks: TracebackCatcher,
    method: str,
    path: str,
    request_args: dict[str, Any],
    status: int,
) -> None:
    seed_auth_files(fuzz_proxy, _oauth_sim_server)
    if path == "/auth-files/fields":
        request_args = {"json": {"name": "fuzz-claude.json", **request_args["json"]}}
    config_before = Path(fuzz_proxy.config_path or "").read_bytes()
    reply = httpx.request(
        method,
        fuzz_proxy.base_url + "/v0/management" + path,
        headers={"authorization": f"Bearer {PASSWORD}"},
        timeout=30,
        **request_args,
    )
    assert reply.status_code == status, reply.text
    assert "error" in reply.json()
    assert not tracebacks.caught
    assert Path(fuzz_proxy.config_path or "").read_bytes() == config_before
