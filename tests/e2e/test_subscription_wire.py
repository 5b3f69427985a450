"""What reaches the subscription backends (reference/subscription-wire.md), through the real
proxy with account files in its auth dir: genuine CLIs relayed untouched but for the account's
fields, other clients presented as a current CLI (and admitted by the simulators' version
gates), one session and prompt-cache id per conversation, versions adopted from genuine CLIs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.proxy_server import ProxyServer
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim, version_too_old
from tests.simulators.code_assist_sim import CodeAssistSim
from tests.simulators.codex_backend_sim import CodexBackendSim

FAR = "2099-01-01T00:00:00Z"
CODEX_TOKEN, CLAUDE_TOKEN, GEMINI_TOKEN = "codex-at", "claude-at", "gemini-at"
CLIENT_KEY = "client-key-for-cliproxy"


def _accounts(auth_dir: Path, codex: str, claude: str, gemini: str) -> None:
    files = {
        "codex-a.json": {
            "type": "codex",
            "access_token": CODEX_TOKEN,
            "refresh_token": "rt",
            "account_id": "acct-7",
            "email": "c@example.com",
            "expired": FAR,
            "base_url": codex,
        },
        "claude-a.json": {
            "type": "claude",
            "access_token": CLAUDE_TOKEN,
            "refresh_token": "rt",
            "email": "c@example.com",
            "expired": FAR,
            "base_url": claude,
        },
        "gemini-a.json": {
            "type": "gemini",
            "token": {"access_token": GEMINI_TOKEN, "refresh_token": "rt", "expiry": FAR},
            "project_id": "proj-1",
            "email": "g@example.com",
            "base_url": gemini,
        },
    }
    for name, raw in files.items():
        (auth_dir / name).write_text(json.dumps(raw))


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[CodexBackendSim, ClaudeOAuthSim, CodeAssistSim]]:
    with (
        CodexBackendSim(api_keys={CODEX_TOKEN}) as codex,
        ClaudeOAuthSim(api_keys={CLAUDE_TOKEN}) as claude,
        CodeAssistSim(api_keys={GEMINI_TOKEN}) as gemini,
    ):
        yield codex, claude, gemini


@pytest.fixture
def proxy(
    sims: tuple[CodexBackendSim, ClaudeOAuthSim, CodeAssistSim], tmp_path: Path
) -> Iterator[ProxyServer]:
    codex, claude, gemini = sims
    _accounts(tmp_path, codex.base_url, claude.base_url, gemini.base_url)
    with ProxyServer(f"auth-dir: {tmp_path}\napi-keys: [{CLIENT_KEY}]\n") as server:
        yield server


# ----- genuine clients, captured as they send (subscription-wire.md §1-§4) ----------------------

CODEX_CLI_HEADERS = {
    "authorization": f"Bearer {CLIENT_KEY}",
    "user-agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)",
    "originator": "codex_exec",
    "version": "0.171.0",
    "session-id": "019ad1f0-5b7e-7d13-9c1e-2a2b3c4d5e6f",
    "thread-id": "019ad1f0-5b7e-7d13-9c1e-2a2b3c4d5e6f",
    "x-client-request-id": "019ad1f0-5b7e-7d13-9c1e-aaaaaaaaaaaa",
    "x-codex-window-id": "019ad1f0-5b7e-7d13-9c1e-2a2b3c4d5e6f:0",
    "x-codex-beta-features": "remote_compaction_v2",
    "x-codex-routing-hint": "model=gpt-5.5",
    "x-codex-turn-metadata": '{"turn_id":"t-1","request_kind":"turn","sandbox":"none"}',
    "accept": "text/event-stream",
    "content-type": "application/json",
}
CODEX_CLI_BODY = {
    "model": "gpt-5.5",
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "You are Codex, a coding agent."}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    ],
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "medium"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "019ad1f0-5b7e-7d13-9c1e-2a2b3c4d5e6f",
    "text": {"verbosity": "low"},
}
CLAUDE_CODE_HEADERS = {
    "x-api-key": CLIENT_KEY,
    "user-agent": "claude-cli/2.1.340 (external, sdk-cli)",
    "x-app": "cli",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,effort-2025-11-24",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-stainless-arch": "x64",
    "x-stainless-lang": "js",
    "x-stainless-os": "Linux",
    "x-stainless-package-version": "0.128.0",
    "x-stainless-retry-count": "0",
    "x-stainless-runtime": "node",
    "x-stainless-runtime-version": "v26.12.1",
    "x-stainless-timeout": "600",
    "x-claude-code-session-id": "6f1c2d3e-0000-4000-8000-00000000abcd",
    "accept": "application/json",
    "content-type": "application/json",
}
CLAUDE_CODE_BODY = {
    "model": "claude-opus-4-5",
    "max_tokens": 32000,
    "system": [
        {
            "type": "text",
            "text": "x-anthropic-billing-header: cc_version=2.1.340.1; cc_entrypoint=sdk-cli;",
        },
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    ],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    "metadata": {"user_id": '{"device_id":"ab","account_uuid":"","session_id":"6f1c"}'},
    "stream": True,
}
GEMINI_CLI_HEADERS = {
    "x-goog-api-key": CLIENT_KEY,
    "user-agent": "GeminiCLI/0.62.0/gemini-2.5-pro (linux; x64) google-api-nodejs-client/10.9.0",
    "x-goog-api-client": "gl-node/20.20.2",
    "accept": "*/*",
    "content-type": "application/json",
}
GEMINI_CLI_BODY = {
    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    "systemInstruction": {"role": "user", "parts": [{"text": "You are Gemini CLI."}]},
    "generationConfig": {"temperature": 1, "topP": 0.95, "topK": 64},
}
# What may differ between the client's request and the upstream's: the credential and framing.
TRANSPORT = {"host", "content-length", "accept-encoding", "connection", "user-agent"}


def _send(proxy: ProxyServer, path: str, headers: dict[str, str], body: Any) -> httpx.Response:
    return httpx.post(
        proxy.base_url + path, headers=headers, content=orjson.dumps(body), timeout=30
    )


def _kept(sent: dict[str, str], received: dict[str, str], replaced: set[str]) -> None:
    """Every header the client sent arrives unchanged, but for ``replaced``."""
    for name, value in sent.items():
        if name in replaced:
            continue
        assert received.get(name) == value, name


def test_a_genuine_codex_cli_reaches_the_backend_unchanged_but_for_the_account(
    proxy: ProxyServer, sims: tuple[CodexBackendSim, ClaudeOAuthSim, CodeAssistSim]
) -> None:
    codex = sims[0]
    reply = _send(proxy, "/v1/responses", CODEX_CLI_HEADERS, CODEX_CLI_BODY)
    assert reply.status_code == 200, reply.text
    upstream = codex.last_request
    assert upstream.body == orjson.dumps(CODEX_CLI_BODY)  # byte for byte
    assert upstream.headers["authorization"] == f"Bearer {CODEX_TOKEN}"
    assert upstream.headers["chatgpt-account-id"] == "acct-7"
    assert upstream.headers["user-agent"] == CODEX_CLI_HEADERS["user-agent"]
    _kept(CODEX_CLI_HEADERS, upstream.headers, {"authorization"})
    assert "session_id" not in upstream.headers
    # The newer version it showed is cliproxy's own from now on, and survives a restart.
    versions = orjson.loads((proxy.config.auth_dir / "cliproxy-client-versions.state").read_bytes())
    assert versions["codex"] == "0.171.0"


def test_a_genuine_claude_code_reaches_anthropic_unchanged_but_for_the_account(
    proxy: ProxyServer, sims: tuple[CodexBackendSim, ClaudeOAuthSim, CodeAssistSim]
) -> None:
    claude = sims[1]
    reply = _send(proxy, "/v1/messages?beta=true", CLAUDE_CODE_HEADERS, CLAUDE_CODE_BODY)
    assert reply.status_code == 200, reply.text
    upstream = claude.last_request
    assert upstream.body == orjson.dumps(CLAUDE_CODE_BODY)  # the billing block as sent
    assert upstream.headers["authorization"] == f"Bearer {CLAUDE_TOKEN}"
    assert "x-api-key" not in upstream.headers
    assert upstream.headers["anthropic-beta"] == (
        CLAUDE_CODE_HEADERS["anthropic-beta"] + ",oauth-2025-04-20"
    )
    _kept(CLAUDE_CODE_HEADERS, upstream.headers, {"x-api-key", "anthropic-beta"})


def test_a_genuine_gemini_cli_keeps_its_identity(
    proxy: ProxyServer, sims: tuple[CodexBackendSim, ClaudeOAuthSim, CodeAssistSim]
) -> None:
    gemini = sims[2]
    path = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    reply = _send(proxy, path, GEMINI_CLI_HEADERS, GEMINI_CLI_BODY)
    assert reply.status_code == 200, reply.text
    upstream = gemini.last_request
    assert upstream.headers["authorization"] == f"Bearer {GEMINI_TOKEN}"
    assert "x-goog-api-key" not in upstream.headers
    _kept(GEMINI_CLI_HEADERS, upstream.headers, {"x-goog-api-key"})
    envelope = upstream.json
    inner = dict(envelope["request"])
    assert inner.pop("session_id")
    assert inner == GEMINI_CLI_BODY
    assert envelope["project"] == "proj-1" and envelope["user_prompt_id"]


# ----- other clients, presented as a current CLI -----------------------------------------------


def test_an_openai_sdk_conversation_on_codex_keeps_one_session_and_cache_key(
    proxy: ProxyServer, sims: tuple[CodexBackendSim, ClaudeOAuthSim, CodeAssistSim]
) -> None:
    codex = sims[0]
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    history: list[Any] = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Name a colour."},
    ]
    seen = []
    for follow_up in ("Another one.", "And one more."):
        answer = client.chat.completions.create(model="gpt-5.5", messages=history)
        upstream = codex.last_request
        seen.append(upstream)
        history += [
            {"role": "assistant", "content": answer.choices[0].message.content},
            {"role": "user", "content": follow_up},
        ]
    client.chat.completions.create(model="gpt-5.5", messages=history)
    seen.append(codex.last_request)
    sessions = {request.headers["session-id"] for request in seen}
    assert len(sessions) == 1
    assert {request.headers["thread-id"] for request in seen} == sessions
    assert {request.json["prompt_cache_key"] for request in seen} == sessions
    for request in seen:
        assert request.headers["originator"] == "codex_exec"
        assert "cliproxy" not in request.headers["user-agent"]
        assert "instructions" not in request.json
        first = request.json["input"][0]
        assert first["role"] == "developer"
        assert first["content"][0]["text"] == "Answer in one word."


def test_other_clients_pass_every_version_gate(
    proxy: ProxyServer, sims: tuple[CodexBackendSim, ClaudeOAuthSim, CodeAssistSim]
) -> None:
    _, claude, _ = sims
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    for model in ("gpt-5.5", "claude-opus-4-5", "gemini-2.5-pro"):
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content, model
    assert version_too_old(claude.last_request.headers["user-agent"]) is None
    assert claude.last_request.headers["user-agent"].startswith("claude-cli/2.1.")
    assert "x-stainless-runtime" in claude.last_request.headers
    assert "billing" not in claude.last_request.body.decode()


@pytest.mark.parametrize(
    ("path", "headers", "body", "refusal"),
    [
        (
            "/v1/responses",
            {
                **CODEX_CLI_HEADERS,
                "user-agent": "codex_exec/0.63.0 (Linux; x86_64)",
                "version": "0.63.0",
            },
            CODEX_CLI_BODY,
            "requires a newer version of Codex",
        ),
        (
            "/v1/messages?beta=true",
            {**CLAUDE_CODE_HEADERS, "user-agent": "claude-cli/2.0.76 (external, cli)"},
            CLAUDE_CODE_BODY,
            "does not support this model",
        ),
    ],
    ids=["codex", "claude"],
)
def test_an_outdated_genuine_cli_meets_the_vendors_gate(
    proxy: ProxyServer, path: str, headers: dict[str, str], body: Any, refusal: str
) -> None:
    """A real CLI keeps its own identity, so an old one is refused as the vendor would refuse
    it directly; cliproxy never lowers the version it adopted."""
    reply = _send(proxy, path, headers, body)
    assert reply.status_code == 400
    assert refusal in reply.text


def test_config_header_defaults_never_lower_the_version(
    sims: tuple[CodexBackendSim, ClaudeOAuthSim, CodeAssistSim], tmp_path: Path
) -> None:
    codex, claude, gemini = sims
    _accounts(tmp_path, codex.base_url, claude.base_url, gemini.base_url)
    config = f"""
auth-dir: {tmp_path}
claude-header-defaults:
  user-agent: "claude-cli/2.1.44 (external, cli)"
  package-version: "0.74.0"
codex-header-defaults:
  user-agent: "codex_cli_rs/0.114.0 (Mac OS 14.2.0; x86_64) vscode/1.111.0"
  beta-features: multi_agent
"""
    with ProxyServer(config) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "a"}])
        sent = codex.last_request.headers
        assert sent["user-agent"] == "codex_cli_rs/0.169.0 (Mac OS 14.2.0; x86_64) vscode/1.111.0"
        assert sent["version"] == "0.169.0"
        assert sent["x-codex-beta-features"] == "multi_agent"
        client.chat.completions.create(
            model="claude-opus-4-5", messages=[{"role": "user", "content": "a"}]
        )
        sent = claude.last_request.headers
        assert sent["user-agent"] == "claude-cli/2.1.331 (external, cli)"
        assert sent["x-stainless-package-version"] == "0.74.0"
