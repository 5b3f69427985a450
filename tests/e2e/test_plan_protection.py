"""Protecting a Claude plan: Anthropic's "third-party apps draw from your extra usage" refusal
reaches every client protocol as its own clear error and rests the account for such clients
(not in a retry loop), and claude-plan-limits-only refuses before sending what would draw from
extra usage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.proxy_server import ProxyServer
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim, unified_headers
from tests.simulators.reply import Reply

FAR = "2099-01-01T00:00:00Z"
TOKEN = "claude-at"
MODEL = "claude-opus-4-5"
ATTESTED = {
    "model": MODEL,
    "max_tokens": 100,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.340.1; cch=1a2b3;"},
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    ],
    "messages": [{"role": "user", "content": "hi"}],
}
CLAUDE_CODE = {
    "user-agent": "claude-cli/2.1.340 (external, cli)",
    "x-app": "cli",
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}

# One request per client protocol, and where its error message sits in that protocol's shape.
CALLS = {
    "openai_chat": (
        "/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    ),
    "openai_responses": ("/v1/responses", {"model": MODEL, "input": "hi"}),
    "anthropic": (
        "/v1/messages",
        {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
    ),
    "gemini": (
        f"/v1beta/models/{MODEL}:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    ),
}


def _error_text(protocol: str, reply: httpx.Response) -> str:
    body = reply.json()
    if protocol == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "permission_error"
    if protocol == "gemini":
        assert body["error"]["status"] == "PERMISSION_DENIED"
    return str(body["error"]["message"])


@pytest.fixture
def sim() -> Iterator[ClaudeOAuthSim]:
    with ClaudeOAuthSim(api_keys={TOKEN}) as started:
        yield started


def _proxy(sim: ClaudeOAuthSim, auth_dir: Path, extra: str = "", **account: object) -> ProxyServer:
    raw = {
        "type": "claude",
        "access_token": TOKEN,
        "refresh_token": "rt",
        "email": "c@example.com",
        "expired": FAR,
        "base_url": sim.base_url,
        **account,
    }
    (auth_dir / "claude-a.json").write_text(json.dumps(raw))
    return ProxyServer(f"auth-dir: {auth_dir}\n{extra}")


@pytest.mark.parametrize("protocol", list(CALLS))
def test_extra_usage_refusal_is_a_clear_error_and_the_account_rests_for_such_clients(
    protocol: str, sim: ClaudeOAuthSim, tmp_path: Path
) -> None:
    sim.extra_usage_enabled = False
    path, body = CALLS[protocol]
    with _proxy(sim, tmp_path) as proxy:
        first = httpx.post(proxy.base_url + path, json=body, timeout=10)
        assert first.status_code == 403, first.text
        message = _error_text(protocol, first)
        assert "extra usage" in message and "Claude Code" in message
        sent = len(sim.requests)
        assert sent == 1  # asked once, not in a retry loop
        again = httpx.post(proxy.base_url + path, json=body, timeout=10)
        assert again.status_code == 403
        assert len(sim.requests) == sent  # resting: not sent again
        # Claude Code's own billed requests still go through on the same account.
        attested = httpx.post(
            proxy.base_url + "/v1/messages", headers=CLAUDE_CODE, content=orjson.dumps(ATTESTED)
        )
        assert attested.status_code == 200, attested.text


@pytest.mark.parametrize("switch", ["config", "account-file"])
def test_plan_limits_only_refuses_before_sending(
    switch: str, sim: ClaudeOAuthSim, tmp_path: Path
) -> None:
    extra = "claude-plan-limits-only: true\n" if switch == "config" else ""
    account = {} if switch == "config" else {"claude-plan-limits-only": True}
    with _proxy(sim, tmp_path, extra, **account) as proxy:
        for protocol, (path, body) in CALLS.items():
            reply = httpx.post(proxy.base_url + path, json=body, timeout=10)
            assert reply.status_code == 403, (protocol, reply.text)
            assert "claude-plan-limits-only" in _error_text(protocol, reply)
        assert sim.requests == []  # nothing was sent
        sent = httpx.post(
            proxy.base_url + "/v1/messages", headers=CLAUDE_CODE, content=orjson.dumps(ATTESTED)
        )
        assert sent.status_code == 200, sent.text
        # The plan's window is used up: from here even Claude Code would draw extra usage.
        exhausted = unified_headers("rejected", reset_in=600)
        sim.queue(Reply.text("last one from the plan", headers=exhausted))
        httpx.post(
            proxy.base_url + "/v1/messages", headers=CLAUDE_CODE, content=orjson.dumps(ATTESTED)
        )
        before = len(sim.requests)
        held = httpx.post(
            proxy.base_url + "/v1/messages", headers=CLAUDE_CODE, content=orjson.dumps(ATTESTED)
        )
        assert held.status_code == 429, held.text
        assert "plan window" in held.json()["error"]["message"]
        assert 0 < int(held.headers["retry-after"]) <= 600
        assert len(sim.requests) == before


def test_without_the_switch_other_clients_are_served_as_before(
    sim: ClaudeOAuthSim, tmp_path: Path
) -> None:
    with _proxy(sim, tmp_path) as proxy:
        path, body = CALLS["openai_chat"]
        for _ in range(2):
            reply = httpx.post(proxy.base_url + path, json=body, timeout=10)
            assert reply.status_code == 200, reply.text
    assert len(sim.requests) == 2
