"""Subscription-account providers (Codex, Claude OAuth, Gemini CLI / Code Assist) end to end:
the real proxy, each official SDK, each account's upstream simulator, streaming and not."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from cliproxy.providers.base import Credential, Provider
from cliproxy.providers.claude import CLAUDE_CODE_IDENTITY, ClaudeOAuthProvider
from cliproxy.providers.codex import CodexProvider
from cliproxy.providers.gemini_cli import GeminiCLIProvider
from cliproxy.routing.registry import Candidate
from tests.e2e.clients import CLIENTS, ask, ask_tool
from tests.proxy_server import ProxyServer
from tests.simulators import Reply, Simulator
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim, rate_limit_reply
from tests.simulators.code_assist_sim import CodeAssistSim, quota_reply
from tests.simulators.codex_backend_sim import CodexBackendSim, usage_limit_reply

CODEX_TOKEN, CLAUDE_TOKEN, GEMINI_TOKEN = "codex-access-1", "claude-access-1", "gemini-access-1"
TEXT = "Hello from a subscription account, sent in small pieces."


@dataclass
class Account:
    """One account wired into the proxy: the client-facing model and where it goes."""

    model: str
    provider: Provider
    credential: Credential
    sim: Simulator


def wire_accounts(proxy: ProxyServer, accounts: list[Account]) -> None:
    """Test-only wiring until accounts come from the auth dir: put each account's provider and
    credential straight into the running proxy's model registry."""
    registry = proxy.state.runtime.registry
    for account in accounts:
        registry.add(account.model, Candidate(account.provider, account.credential, account.model))


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Simulator]]:
    with (
        CodexBackendSim(api_keys={CODEX_TOKEN, "codex-access-2"}) as codex,
        ClaudeOAuthSim(api_keys={CLAUDE_TOKEN}) as claude,
        CodeAssistSim(api_keys={GEMINI_TOKEN}) as gemini,
    ):
        yield {"codex": codex, "claude": claude, "gemini": gemini}


@pytest.fixture(scope="module")
def accounts(sims: dict[str, Simulator]) -> dict[str, Account]:
    def credential(kind: str, token: str, **account: str) -> Credential:
        return Credential(f"{kind}:{token}", token, sims[kind].base_url, account=account)

    return {
        "codex": Account(
            "gpt-6-codex",
            CodexProvider(),
            credential("codex", CODEX_TOKEN, account_id="acct-1", email="a@example.com"),
            sims["codex"],
        ),
        "claude": Account(
            "claude-sonnet-4-6",
            ClaudeOAuthProvider(),
            credential("claude", CLAUDE_TOKEN, email="a@example.com"),
            sims["claude"],
        ),
        "gemini": Account(
            "gemini-2.5-pro",
            GeminiCLIProvider(),
            credential("gemini", GEMINI_TOKEN, project_id="proj-123", email="a@example.com"),
            sims["gemini"],
        ),
    }


@pytest.fixture(scope="module")
def proxy(accounts: dict[str, Account]) -> Iterator[ProxyServer]:
    with ProxyServer(
        "demo: true\nrequest-retry: 1\nmax-retry-interval: 0\n"
        "quota-exceeded: {switch-preview-model: false}\n"
    ) as server:
        wire_accounts(server, list(accounts.values()))
        yield server


@pytest.fixture(autouse=True)
def _fresh(sims: dict[str, Simulator]) -> None:
    for sim in sims.values():
        sim.reset()


# ----- every SDK x every account ------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", ["codex", "claude", "gemini"])
@pytest.mark.parametrize("client", CLIENTS)
def test_sdk_through_account(
    client: str, kind: str, stream: bool, proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    account = accounts[kind]
    account.sim.queue(Reply.text(TEXT, input_tokens=31, output_tokens=17, chunk_size=7))

    answer = ask(client, proxy.base_url, account.model, "What do you say?", stream)

    assert answer.text == TEXT
    assert (answer.input_tokens, answer.output_tokens) == (31, 17)
    assert answer.finish == "stop"
    upstream = account.sim.last_request
    assert account.sim.presented_key(upstream) == account.credential.secret


@pytest.mark.parametrize("client", CLIENTS)
def test_length_finish_through_accounts(
    client: str, proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    for account in accounts.values():
        account.sim.queue(Reply.text("cut short", finish="length", output_tokens=2))
        for stream in (False, True):
            answer = ask(client, proxy.base_url, account.model, "long story", stream)
            assert (answer.text, answer.finish) == ("cut short", "length"), account.model
            account.sim.queue(Reply.text("cut short", finish="length", output_tokens=2))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", ["codex", "claude", "gemini"])
@pytest.mark.parametrize("client", CLIENTS)
def test_tool_call_through_account(
    client: str, kind: str, stream: bool, proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    account = accounts[kind]
    account.sim.queue(Reply.tool_call("get_weather", {"city": "Paris"}))
    answer = ask_tool(client, proxy.base_url, account.model, stream)
    assert (answer.name, answer.arguments, answer.finish) == (
        "get_weather",
        {"city": "Paris"},
        "tool_calls",
    )
    assert "get_weather" in str(account.sim.last_request.json)


# ----- codex -----------------------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_codex_non_streaming_clients_are_served_from_the_stream(
    client: str, proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    account = accounts["codex"]
    ask(client, proxy.base_url, account.model, "hi", stream=False)
    upstream = account.sim.last_request
    body = upstream.json
    assert (body["stream"], body["store"]) == (True, False)
    assert body["include"] == ["reasoning.encrypted_content"]
    assert "instructions" not in body
    assert body["model"] == "gpt-6-codex"
    assert upstream.headers["accept"] == "text/event-stream"
    assert upstream.headers["chatgpt-account-id"] == "acct-1"
    assert upstream.headers["originator"] == "codex_exec"
    assert upstream.headers["user-agent"].startswith("codex_exec/0.169.0 ")
    assert upstream.headers["version"] == "0.169.0"
    assert body["prompt_cache_key"] == upstream.headers["session-id"]


def test_codex_strips_what_the_backend_rejects(
    proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    import openai

    oa = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k", max_retries=0)
    reply = oa.responses.create(
        model="gpt-6-codex",
        input="hi",
        instructions="Be brief.",
        max_output_tokens=99,
        temperature=0.2,
        top_p=0.9,
        extra_headers={"session_id": "sess-42"},
    )
    assert reply.output_text.startswith("echo: hi")
    upstream = accounts["codex"].sim.last_request
    assert not {"max_output_tokens", "temperature", "top_p"} & set(upstream.json)
    assert "instructions" not in upstream.json
    assert upstream.json["input"][0]["role"] == "developer"
    assert upstream.json["input"][0]["content"][0]["text"] == "Be brief."
    # The client's session header names the conversation; the id sent is derived from it.
    assert upstream.headers["session-id"] == upstream.json["prompt_cache_key"]


def test_codex_usage_headers_are_captured(proxy: ProxyServer, accounts: dict[str, Account]) -> None:
    account = accounts["codex"]
    assert isinstance(account.provider, CodexProvider)
    ask("openai_chat", proxy.base_url, account.model, "hi", stream=True)
    usage = account.provider.usage(account.credential.id)
    assert usage is not None and usage.primary is not None and usage.secondary is not None
    assert usage.primary.used_percent == 12.5
    assert usage.primary.window_minutes == 300
    assert usage.primary.resets_at is not None and usage.primary.resets_at > usage.observed_at
    assert (usage.secondary.used_percent, usage.secondary.window_minutes) == (40.0, 10080)
    assert account.credential.id in account.provider.usage_snapshots()


def test_codex_cut_stream_is_an_error_for_a_non_streaming_client(
    proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    accounts["codex"].sim.queue(Reply.text("one two three four", chunk_size=3, cut_after=1))
    reply = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": "gpt-6-codex", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert reply.status_code == 502
    assert "error" in reply.json()


# ----- 429 reset hints -----------------------------------------------------------------------

LIMITS = {
    "codex": (lambda: usage_limit_reply(resets_in_seconds=1800), 1800),
    "claude": (lambda: rate_limit_reply(reset_in=1200), 1200),
    "gemini": (lambda: quota_reply(retry_after=30), 30),
}
PATHS = {
    "openai_chat": ("/v1/chat/completions", "messages"),
    "openai_responses": ("/v1/responses", "input"),
    "anthropic": ("/v1/messages", "messages"),
}


def _post(client: str, base: str, model: str) -> httpx.Response:
    if client == "gemini":
        url = f"{base}/v1beta/models/{model}:generateContent"
        return httpx.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]}, timeout=10)
    path, field = PATHS[client]
    body: dict[str, object] = {"model": model, "max_tokens": 50}
    body[field] = [{"role": "user", "content": "hi"}]
    return httpx.post(base + path, json=body, timeout=10)


@pytest.mark.parametrize("kind", list(LIMITS))
@pytest.mark.parametrize("client", CLIENTS)
def test_limit_reset_hint_reaches_the_client(
    client: str, kind: str, proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    make_reply, seconds = LIMITS[kind]
    account = accounts[kind]
    account.sim.queue(make_reply())
    reply = _post(client, proxy.base_url, account.model)
    assert reply.status_code == 429
    assert abs(int(reply.headers["retry-after"]) - seconds) <= 2
    # The account now rests until the reset; later tests need it serving again.
    proxy.state.cooldowns.clear()


def test_codex_limit_moves_on_to_the_next_account(
    proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    first = accounts["codex"]
    second = Credential(
        "codex:second", "codex-access-2", first.sim.base_url, account={"account_id": "acct-2"}
    )
    proxy.state.runtime.registry.add(
        "codex-pool", Candidate(first.provider, first.credential, "gpt-6-codex")
    )
    proxy.state.runtime.registry.add("codex-pool", Candidate(first.provider, second, "gpt-6-codex"))
    first.sim.queue(usage_limit_reply(), Reply.text("from the second account"))
    answer = ask("openai_responses", proxy.base_url, "codex-pool", "hi", stream=False)
    assert answer.text == "from the second account"
    assert first.sim.last_request.headers["chatgpt-account-id"] in ("acct-1", "acct-2")
    assert {r.headers["chatgpt-account-id"] for r in first.sim.requests} == {"acct-1", "acct-2"}


# ----- claude ----------------------------------------------------------------------------------


def test_claude_puts_the_identity_first_for_other_clients(
    proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
    client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=50,
        system="You are a pirate.",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31,oauth-2025-04-20"},
    )
    upstream = accounts["claude"].sim.last_request
    assert upstream.query == {"beta": "true"}
    assert [b["text"] for b in upstream.json["system"]] == [
        CLAUDE_CODE_IDENTITY,
        "You are a pirate.",
    ]
    betas = upstream.headers["anthropic-beta"].split(",")
    assert betas.count("oauth-2025-04-20") == 1
    assert {"prompt-caching-2024-07-31", "claude-code-20250219"} <= set(betas)
    assert upstream.headers["x-app"] == "cli"
    assert upstream.headers["user-agent"].startswith("claude-cli/")
    assert upstream.headers["authorization"] == f"Bearer {CLAUDE_TOKEN}"


def test_claude_code_requests_pass_unchanged(
    proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 50,
        "system": [
            {"type": "text", "text": CLAUDE_CODE_IDENTITY},
            {"type": "text", "text": "Project notes", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "user_abc_session_1"},
    }
    reply = httpx.post(
        proxy.base_url + "/v1/messages?beta=true",
        json=body,
        headers={
            "user-agent": "claude-cli/2.1.300 (external, cli)",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,oauth-2025-04-20,fine-grained-tool-streaming",
        },
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    upstream = accounts["claude"].sim.last_request
    assert upstream.json == body
    assert upstream.headers["user-agent"] == "claude-cli/2.1.300 (external, cli)"
    assert upstream.headers["anthropic-beta"].split(",").count("claude-code-20250219") == 1


def test_claude_count_tokens(proxy: ProxyServer, accounts: dict[str, Account]) -> None:
    import anthropic

    sim = accounts["claude"].sim
    sim.token_count = 42
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
    count = client.messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}]
    )
    assert count.input_tokens == 42
    assert sim.last_request.path == "/v1/messages/count_tokens"
    assert "oauth-2025-04-20" in sim.last_request.headers["anthropic-beta"]


def test_claude_unified_limits_are_kept(proxy: ProxyServer, accounts: dict[str, Account]) -> None:
    account = accounts["claude"]
    assert isinstance(account.provider, ClaudeOAuthProvider)
    ask("anthropic", proxy.base_url, account.model, "hi", stream=False)
    limits = account.provider.usage(account.credential.id)
    assert limits is not None and limits["status"] == "allowed"
    assert limits["5h-utilization"] == "0.2"


# ----- gemini cli ------------------------------------------------------------------------------


def test_gemini_envelope_and_headers(proxy: ProxyServer, accounts: dict[str, Account]) -> None:
    sim = accounts["gemini"].sim
    ask("gemini", proxy.base_url, "gemini-2.5-pro", "hi", stream=True)
    upstream = sim.last_request
    assert upstream.path == "/v1internal:streamGenerateContent"
    assert upstream.query == {"alt": "sse"}
    assert upstream.json["model"] == "gemini-2.5-pro"
    assert upstream.json["project"] == "proj-123"
    assert upstream.json["request"]["contents"][0]["parts"][0]["text"] == "hi"
    assert "model" not in upstream.json["request"]
    assert upstream.headers["user-agent"].startswith("GeminiCLI-tui/0.61.0/gemini-2.5-pro ")
    assert upstream.headers["x-goog-api-client"]


def test_gemini_pass_through_chunks_are_unwrapped(
    proxy: ProxyServer, accounts: dict[str, Account]
) -> None:
    accounts["gemini"].sim.queue(Reply.text("alpha beta gamma", chunk_size=6))
    url = f"{proxy.base_url}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    reply = httpx.post(url, json=body, timeout=10)
    assert reply.status_code == 200
    import orjson

    chunks = [
        orjson.loads(line[len("data: ") :])
        for line in reply.text.splitlines()
        if line.startswith("data: ")
    ]
    assert chunks and all("response" not in c and "candidates" in c for c in chunks)
    text = "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "alpha beta gamma"
    plain = httpx.post(
        f"{proxy.base_url}/v1beta/models/gemini-2.5-pro:generateContent", json=body, timeout=10
    ).json()
    assert "response" not in plain and plain["candidates"][0]["content"]["parts"][0]["text"]


def test_gemini_count_tokens(proxy: ProxyServer, accounts: dict[str, Account]) -> None:
    from google import genai
    from google.genai import types as gtypes

    sim = accounts["gemini"].sim
    sim.token_count = 17
    client = genai.Client(
        api_key="k",
        http_options=gtypes.HttpOptions(
            base_url=proxy.base_url, retry_options=gtypes.HttpRetryOptions(attempts=1)
        ),
    )
    count = client.models.count_tokens(model="gemini-2.5-pro", contents="hello there")
    assert count.total_tokens == 17
    upstream = sim.last_request
    assert upstream.path == "/v1internal:countTokens"
    assert upstream.json["request"]["model"] == "models/gemini-2.5-pro"
