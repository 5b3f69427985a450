"""Management API, operations: logs, version headers, cooldown reset, per-key usage, model
definitions, the restricted /api-call and /management.html, against a real server."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cliproxy import __version__
from cliproxy.config import load_config
from cliproxy.management.api_call import check_url, resolve_target
from cliproxy.management.auth_files import auth_index
from cliproxy.management.common import ApiError
from cliproxy.providers.claude import ClaudeOAuthProvider
from cliproxy.providers.codex import CodexProvider
from cliproxy.usage.request_counts import BUCKETS
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.anthropic_sim import AnthropicSim
from tests.simulators.codex_backend_sim import CodexBackendSim
from tests.simulators.fixtures import (  # noqa: F401 (pytest fixtures)
    _anthropic_sim_server,
    anthropic_sim,
)

KEY = "ops-mgmt-key-7f3a9c"
CLIENT_KEY = "client-key-d41d8cd98f00"
UPSTREAM_KEY = "sk-ant-upstream-0123456789abcdef"
CODEX_TOKEN = "codex-token-ops-42"
LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(-{8}|[0-9a-f]{8})\] \[(debug|info|warning|error|fatal)\] \[[^\]:]+:\d+\] "
)

CONFIG = """\
remote-management:
  secret-key: "{key}"
api-keys:
  - {client}
claude-api-key:
  - api-key: {upstream}
    base-url: {claude_base}
auth-dir: "{auth_dir}"
"""


@pytest.fixture(scope="module")
def codex_sim() -> Iterator[CodexBackendSim]:
    with CodexBackendSim(api_keys={CODEX_TOKEN}) as sim:
        yield sim


@pytest.fixture
def server(
    tmp_path: Path,
    anthropic_sim: AnthropicSim,  # noqa: F811
    codex_sim: CodexBackendSim,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ProxyServer]:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    monkeypatch.delenv("MANAGEMENT_STATIC_PATH", raising=False)
    codex_sim.reset()
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir()
    account = {
        "type": "codex",
        "access_token": CODEX_TOKEN,
        "refresh_token": "rt",
        "email": "ops@example.com",
        "account_id": "acct-ops",
        "expired": "2099-01-01T00:00:00Z",
        "base_url": codex_sim.base_url,
    }
    (auth_dir / "codex-ops.json").write_bytes(orjson.dumps(account))
    (auth_dir / "codex-ops.json").chmod(0o600)
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.format(
            key=KEY,
            client=CLIENT_KEY,
            upstream=UPSTREAM_KEY,
            claude_base=anthropic_sim.base_url,
            auth_dir=auth_dir,
        )
    )
    with ProxyServer(load_config(path), config_path=path) as proxy:
        yield proxy


@pytest.fixture
def api(server: ProxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url + "/v0/management",
        headers={"authorization": f"Bearer {KEY}"},
        timeout=10,
    ) as client:
        yield client


def ask_claude(server: ProxyServer) -> httpx.Response:
    return httpx.post(
        server.base_url + "/v1/messages",
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": "claude-sonnet-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        },
        timeout=10,
    )


def codex_index(server: ProxyServer) -> str:
    return auth_index("codex", server.state.auth_store.auth_dir / "codex-ops.json")


# ----- logs -------------------------------------------------------------------------------------


def test_logs_hold_activity_in_the_reference_line_format_without_secrets(
    server: ProxyServer, api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cliproxy")
    assert ask_claude(server).status_code == 200
    refused = httpx.get(
        server.base_url + "/v0/management/config", headers={"authorization": "Bearer wrong-key-x"}
    )
    assert refused.status_code == 401
    call = api.post(
        "/api-call",
        json={
            "auth_index": "claude-api-key[0]",
            "method": "GET",
            "url": server.state.runtime.config.claude_api_key[0].base_url + "/v1/models",
            "header": {"x-api-key": "$TOKEN$", "anthropic-version": "2023-06-01"},
        },
    )
    assert call.status_code == 200

    reply = api.get("/logs", params={"limit": 10000})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) >= {"lines", "line-count", "latest-timestamp", "next-cursor"}
    lines: list[str] = body["lines"]
    text = "\n".join(lines)
    assert "claude-sonnet-4-5" in text  # the served request (debug)
    assert "refused" in text  # the failed management login (info)
    assert "api-call GET" in text
    for line in lines[-20:]:
        assert LINE.match(line) or not line.startswith("["), line
    # A generation request's lines carry its request id; the management API's have dashes.
    served = next(line for line in lines if "claude-sonnet-4-5" in line)
    assert re.search(r"\] \[[0-9a-f]{8}\] \[", served), served
    refused = next(line for line in lines if "refused: invalid management key" in line)
    assert "] [--------] [" in refused
    assert body["line-count"] >= len(lines)
    assert abs(body["latest-timestamp"] - time.time()) < 60
    for secret in (CLIENT_KEY, UPSTREAM_KEY, KEY, "wrong-key-x", CODEX_TOKEN):
        assert secret not in text


def test_cursor_returns_only_new_lines_and_pages_by_limit(api: httpx.Client) -> None:
    marker = logging.getLogger("cliproxy.test_ops")
    first = api.get("/logs", params={"limit": 50}).json()
    cursor = first["next-cursor"]
    again = api.get("/logs", params={"cursor": cursor}).json()
    assert again["lines"] == [] and again["next-cursor"] == cursor

    for n in range(5):
        marker.warning("page-marker-%d", n)
    page = api.get("/logs", params={"cursor": cursor, "limit": 2}).json()
    assert [line.rsplit(" ", 1)[1] for line in page["lines"]] == ["page-marker-0", "page-marker-1"]
    assert "cursor-reset" not in page
    assert LINE.match(page["lines"][0])
    assert "[warning] [test_ops.py:" in page["lines"][0]
    rest = api.get("/logs", params={"cursor": page["next-cursor"]}).json()
    assert [line.rsplit(" ", 1)[1] for line in rest["lines"]] == [
        "page-marker-2",
        "page-marker-3",
        "page-marker-4",
    ]
    assert rest["line-count"] == 3

    # `after` filters by timestamp (a full scan); a time in the future leaves nothing.
    future = api.get("/logs", params={"after": int(time.time()) + 3600}).json()
    assert future["lines"] == []


def test_clear_empties_the_log_and_old_cursors_reset(api: httpx.Client) -> None:
    marker = logging.getLogger("cliproxy.test_ops")
    marker.warning("before-clear")
    cursor = api.get("/logs", params={"limit": 1}).json()["next-cursor"]
    cleared = api.delete("/logs")
    assert cleared.status_code == 200
    assert cleared.json()["success"] is True and cleared.json()["removed"] >= 1
    marker.warning("after-clear")
    reply = api.get("/logs", params={"cursor": cursor}).json()
    assert reply["cursor-reset"] is True
    joined = "\n".join(reply["lines"])
    assert "after-clear" in joined and "before-clear" not in joined
    garbage = api.get("/logs", params={"cursor": "not-a-cursor"}).json()
    assert garbage["cursor-reset"] is True


@pytest.mark.parametrize("limit", ["0", "-3", "ten"])
def test_bad_limit_is_400(api: httpx.Client, limit: str) -> None:
    reply = api.get("/logs", params={"limit": limit})
    assert reply.status_code == 400
    assert reply.json()["error"].startswith("invalid limit")


def test_request_log_files_that_are_not_there(api: httpx.Client) -> None:
    # Written files are covered in tests/e2e/test_request_logs.py.
    assert isinstance(api.get("/request-error-logs").json()["files"], list)
    assert api.get("/request-error-logs/error-x.log").status_code == 404
    assert api.get("/request-error-logs/main.log").status_code == 400
    assert api.get("/request-log-by-id/abcd1234").status_code == 404
    assert api.get("/request-log-by-id", params={"id": "0000ffff"}).status_code == 404
    missing = api.get("/request-log-by-id/abcd1234").json()["error"]
    assert missing == "log file not found for the given request ID"
    for bad in ("..%2Fmain", "x" * 9, "ABCD12-4"):
        assert api.get(f"/request-log-by-id/{bad}").status_code in (400, 404)
    assert api.get("/request-log-by-id", params={"id": "../../etc"}).status_code == 400


# ----- version ----------------------------------------------------------------------------------


def test_version_headers_are_sent_and_exposed_to_browsers(
    server: ProxyServer, api: httpx.Client
) -> None:
    reply = api.get("/latest-version", headers={"origin": "https://panel.example"})
    assert reply.json() == {"latest-version": __version__}
    assert reply.headers["x-cpa-version"] == __version__
    assert reply.headers["x-cpa-commit"] and reply.headers["x-cpa-build-date"]
    exposed = reply.headers["access-control-expose-headers"].lower()
    for name in ("x-cpa-version", "x-cpa-commit", "x-cpa-build-date", "x-cpa-support-plugin"):
        assert name in exposed
    refused = httpx.get(server.base_url + "/v0/management/latest-version")
    assert refused.status_code == 401 and refused.headers["x-cpa-version"] == __version__


# ----- cooldowns --------------------------------------------------------------------------------


def test_reset_quota_all_clears_every_cooldown(server: ProxyServer, api: httpx.Client) -> None:
    cooldowns = server.state.cooldowns
    until = cooldowns.now() + 600
    cooldowns.cool("claude-api-key[0]", "claude-sonnet-4-5", until, "test")
    cooldowns.cool("codex-ops.json", "gpt-5", until, "test")
    reply = api.post("/reset-quota", json={"all": True})
    assert reply.status_code == 200
    assert reply.json() == {
        "status": "ok",
        "all": True,
        "credentials": ["claude-api-key[0]", "codex-ops.json"],
        "models": ["claude-sonnet-4-5", "gpt-5"],
    }
    assert cooldowns.snapshot() == []
    both = api.post("/reset-quota", json={"all": True, "auth_index": "claude-api-key[0]"})
    assert both.status_code == 400


def test_reset_quota_for_one_credential_still_works(server: ProxyServer, api: httpx.Client) -> None:
    cooldowns = server.state.cooldowns
    until = cooldowns.now() + 600
    cooldowns.cool("claude-api-key[0]", "claude-sonnet-4-5", until, "test")
    cooldowns.cool("codex-ops.json", "gpt-5", until, "test")
    reply = api.post("/reset-quota", json={"auth_index": "claude-api-key[0]"})
    assert reply.status_code == 200 and reply.json()["models"] == ["claude-sonnet-4-5"]
    assert [c.credential_id for c in cooldowns.snapshot()] == ["codex-ops.json"]
    assert api.post("/reset-quota", json={}).status_code == 400


# ----- usage per key ----------------------------------------------------------------------------


def test_api_key_usage_counts_requests_per_key(
    server: ProxyServer,
    api: httpx.Client,
    anthropic_sim: AnthropicSim,  # noqa: F811
) -> None:
    anthropic_sim.queue(Reply.text("ok"), Reply.error(400, "bad request"))
    assert ask_claude(server).status_code == 200
    assert ask_claude(server).status_code == 400
    usage = api.get("/api-key-usage").json()
    entry = usage["claude"][f"{anthropic_sim.base_url}|{UPSTREAM_KEY}"]
    assert (entry["success"], entry["failed"]) == (1, 1)
    assert len(entry["recent_requests"]) == BUCKETS
    last = entry["recent_requests"][-1]
    assert (last["success"], last["failed"]) == (1, 1)


# ----- model definitions ------------------------------------------------------------------------


def test_model_definitions_per_channel(api: httpx.Client) -> None:
    codex = api.get("/model-definitions/codex").json()
    assert codex["channel"] == "codex"
    assert [m["id"] for m in codex["models"]] == CodexProvider().models()
    assert codex["models"][0]["owned_by"] == "openai"
    claude = api.get("/model-definitions", params={"channel": "Claude"}).json()
    assert [m["id"] for m in claude["models"]] == ClaudeOAuthProvider().models()
    unknown = api.get("/model-definitions/nope")
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "unknown channel", "channel": "nope"}


# ----- api-call ---------------------------------------------------------------------------------


def call(api: httpx.Client, **body: Any) -> httpx.Response:
    return api.post("/api-call", json=body)


def test_api_call_with_an_api_key_substitutes_the_token(
    api: httpx.Client,
    anthropic_sim: AnthropicSim,  # noqa: F811
) -> None:
    reply = call(
        api,
        auth_index="claude-api-key[0]",
        method="GET",
        url=anthropic_sim.base_url + "/v1/models",
        header={"x-api-key": "$TOKEN$", "anthropic-version": "2023-06-01"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status_code"] == 200
    assert "application/json" in body["header"]["Content-Type"][0]
    assert [m["id"] for m in orjson.loads(body["body"])["data"]] == anthropic_sim.models
    assert anthropic_sim.last_request.headers["x-api-key"] == UPSTREAM_KEY


def test_api_call_with_an_account_reaches_its_quota_endpoint(
    server: ProxyServer, api: httpx.Client, codex_sim: CodexBackendSim
) -> None:
    reply = call(
        api,
        authIndex=codex_index(server),
        method="GET",
        url=codex_sim.base_url + "/backend-api/wham/usage",
        header={
            "Authorization": "Bearer $TOKEN$",
            "Chatgpt-Account-Id": "acct-ops",
            "X-Test-Call": "api-call",
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status_code"] == 200
    usage = orjson.loads(body["body"])
    assert usage["rate_limit"]["primary_window"]["limit_window_seconds"] == 300 * 60
    # The proxy reads the account's usage on its own too; this is the relayed call.
    seen = [r for r in codex_sim.reads if r.headers.get("x-test-call") == "api-call"][-1]
    assert seen.headers["authorization"] == f"Bearer {CODEX_TOKEN}"
    assert seen.headers["chatgpt-account-id"] == "acct-ops"


@pytest.mark.parametrize(
    ("index", "url", "method", "status"),
    [
        ("codex", "https://example.com/backend-api/wham/usage", "GET", 403),  # other host
        ("codex", "http://chatgpt.com/backend-api/wham/usage", "GET", 403),  # not https
        ("codex", "{codex}/backend-api/codex/responses", "POST", 403),  # path not allowed
        ("codex", "{codex}/backend-api/wham/../codex/responses", "GET", 403),  # dot segments
        ("codex", "{codex}/backend-api/wham/usage", "DELETE", 403),  # method
        ("codex", "https://user:pw@chatgpt.com/backend-api/wham/usage", "GET", 403),
        ("claude-api-key[0]", "{codex}/backend-api/wham/usage", "GET", 403),  # not its host
        ("claude-api-key[0]", "http://169.254.169.254/latest/meta-data", "GET", 403),
        ("claude-api-key[7]", "{claude}/v1/models", "GET", 403),  # unknown credential
        ("0123456789abcdef", "{claude}/v1/models", "GET", 403),  # unknown auth file index
        ("", "{claude}/v1/models", "GET", 403),  # no credential at all
        ("codex", "not a url", "GET", 400),
        ("codex", "", "GET", 400),
    ],
)
def test_api_call_refuses_what_is_not_the_credentials_own_endpoint(
    server: ProxyServer,
    api: httpx.Client,
    codex_sim: CodexBackendSim,
    anthropic_sim: AnthropicSim,  # noqa: F811
    index: str,
    url: str,
    method: str,
    status: int,
) -> None:
    resolved = codex_index(server) if index == "codex" else index
    target = url.format(codex=codex_sim.base_url, claude=anthropic_sim.base_url)
    reply = call(
        api,
        auth_index=resolved,
        method=method,
        url=target,
        header={"Authorization": "Bearer $TOKEN$"},
    )
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]
    assert codex_sim.requests == [] and anthropic_sim.requests == []


def test_api_call_bad_payloads(api: httpx.Client) -> None:
    assert api.post("/api-call", content=b"{nope").status_code == 400
    assert api.post("/api-call", json=["x"]).status_code == 400
    bad_header = call(
        api, auth_index="claude-api-key[0]", method="GET", url="https://a.b", header={"x": 1}
    )
    assert bad_header.status_code == 400 and "header" in bad_header.json()["error"]


# ----- management.html --------------------------------------------------------------------------


def test_management_html_is_served_from_the_config_dir_only(
    server: ProxyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = server.base_url + "/management.html"
    # Nothing there yet, and nothing downloaded: cliproxy's own console answers.
    own = httpx.get(page)
    assert own.status_code == 200 and "/console/js/main.js" in own.text
    assert "frame-ancestors 'none'" in own.headers["content-security-policy"]
    static = tmp_path / "static"
    static.mkdir()
    (static / "management.html").write_text("<html>panel</html>")
    reply = httpx.get(page)  # public: no key
    assert reply.status_code == 200
    assert reply.text == "<html>panel</html>"
    assert reply.headers["content-type"].startswith("text/html")
    # The reference page is served as it is (its own inline code: not under the console's CSP),
    # and cliproxy's console stays at /console/.
    assert "content-security-policy" not in reply.headers
    assert "/console/js/main.js" in httpx.get(server.base_url + "/console/").text

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "management.html").write_text("<html>other</html>")
    monkeypatch.setenv("MANAGEMENT_STATIC_PATH", str(elsewhere))
    assert httpx.get(page).text == "<html>other</html>"
    monkeypatch.setenv("MANAGEMENT_STATIC_PATH", str(elsewhere / "management.html"))
    assert httpx.get(page).text == "<html>other</html>"
    monkeypatch.setenv("MANAGEMENT_STATIC_PATH", str(tmp_path / "missing.html"))
    assert "/console/js/main.js" in httpx.get(page).text


def test_management_html_404_when_the_panel_is_disabled(
    server: ProxyServer, tmp_path: Path
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "management.html").write_text("<html>panel</html>")
    config = server.state.runtime.config
    settings = config.remote_management.model_copy(update={"disable_control_panel": True})
    server.state.apply(config.model_copy(update={"remote_management": settings}))
    assert httpx.get(server.base_url + "/management.html").status_code == 404
    for path in ("/console/", "/console/js/main.js", "/console/status"):
        assert httpx.get(server.base_url + path).status_code == 404


def test_vendor_urls_are_admitted_without_a_call(server: ProxyServer) -> None:
    """The real vendor endpoints pass the allowlist (checked offline: nothing is sent)."""
    codex = resolve_target(server.state, codex_index(server))
    assert codex is not None
    check_url(codex, "https://chatgpt.com/backend-api/wham/usage")
    check_url(codex, "https://CHATGPT.com:443/backend-api/wham/rate-limit-reset-credits")
    for refused in (
        "https://chatgpt.com:8443/backend-api/wham/usage",
        "https://chatgpt.com/backend-api/whammy",
        "https://chatgpt.com.evil.example/backend-api/wham/usage",
        "https://api.anthropic.com/api/oauth/usage",  # another vendor's endpoint
    ):
        with pytest.raises(ApiError) as error:
            check_url(codex, refused)
        assert error.value.status == 403, refused
    key = resolve_target(server.state, "claude-api-key[0]")
    assert key is not None and key.record is None
    with pytest.raises(ApiError):
        check_url(key, "https://api.anthropic.com/v1/models")  # its base URL is the simulator
