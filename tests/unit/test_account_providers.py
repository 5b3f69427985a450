"""Request building of the subscription-account providers: URLs, headers, body rules, the Claude
Code system arrangement, the Code Assist envelope, and the reply hooks the server applies."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from cliproxy.protocols.sse import SSEEvent, SSEParser
from cliproxy.providers.base import Credential, RequestContext
from cliproxy.providers.claude import (
    CLAUDE_CODE_IDENTITY,
    ClaudeOAuthProvider,
    is_claude_code,
    with_identity_first,
)
from cliproxy.providers.codex import CodexProvider
from cliproxy.providers.gemini_cli import GeminiCLIProvider
from cliproxy.server.relay import _reframe, _vet

IDENTITY_BLOCK = {"type": "text", "text": CLAUDE_CODE_IDENTITY}


def ctx(protocol: str, stream: bool = False, **headers: str) -> RequestContext:
    return RequestContext(
        stream, {k.replace("_", "-"): v for k, v in headers.items()}, {}, protocol
    )


def body_of(request: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(request.body)
    return parsed


# ----- codex -----------------------------------------------------------------------------------

CODEX = Credential("codex:a", "tok-codex", "", account={"account_id": "acct-9"})


def test_codex_url_headers_and_body() -> None:
    request = CodexProvider().build_request(
        CODEX,
        "gpt-5.5",
        {
            "model": "alias",
            "input": "hello",
            "instructions": "Be brief.",
            "max_output_tokens": 10,
            "temperature": 0.3,
            "top_p": 0.5,
            "truncation": "auto",
            "user": "u1",
            "service_tier": "flex",
            "include": ["message.output_text.logprobs"],
        },
        ctx("openai_chat"),
    )
    assert request.url == "https://chatgpt.com/backend-api/codex/responses"
    headers = request.headers
    assert headers["authorization"] == "Bearer tok-codex"
    assert headers["chatgpt-account-id"] == "acct-9"
    # Presented as a current `codex exec`, never as an old version or as cliproxy.
    assert headers["originator"] == "codex_exec"
    assert headers["version"] == "0.169.0"
    assert headers["user-agent"].startswith("codex_exec/0.169.0 (")
    assert headers["user-agent"].endswith(" (codex_exec; 0.169.0)")
    assert "cliproxy" not in headers["user-agent"]
    assert headers["accept"] == "text/event-stream"
    session = headers["session-id"]
    uuid.UUID(session)
    assert headers["thread-id"] == session
    assert "session_id" not in headers
    body = body_of(request)
    assert body["model"] == "gpt-5.5"
    assert (body["stream"], body["store"]) == (True, False)
    assert "instructions" not in body  # the client's prompt is the first developer message
    assert body["prompt_cache_key"] == session
    assert body["include"] == ["message.output_text.logprobs", "reasoning.encrypted_content"]
    assert body["input"] == [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "Be brief."}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
    ]
    for rejected in ("max_output_tokens", "temperature", "top_p", "truncation", "user"):
        assert rejected not in body
    assert "service_tier" not in body


def test_codex_invents_no_instructions() -> None:
    request = CodexProvider().build_request(CODEX, "gpt-5.5", {"input": "x"}, ctx("openai_chat"))
    body = body_of(request)
    assert "instructions" not in body
    assert [item["role"] for item in body["input"]] == ["user"]


def test_codex_one_session_per_conversation() -> None:
    provider = CodexProvider()
    first = [{"role": "user", "content": [{"type": "input_text", "text": "plan a trip"}]}]
    later = [
        *first,
        {"role": "assistant", "content": [{"type": "output_text", "text": "where?"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "Rome"}]},
    ]
    turns = [
        provider.build_request(CODEX, "gpt-5.5", {"input": items}, ctx("openai_chat"))
        for items in (first, later, [*later])
    ]
    sessions = {request.headers["session-id"] for request in turns}
    assert len(sessions) == 1
    assert {body_of(request)["prompt_cache_key"] for request in turns} == sessions
    other = provider.build_request(CODEX, "gpt-5.5", {"input": "something else"}, ctx("x"))
    assert other.headers["session-id"] not in sessions
    # Another account, another id for the same conversation.
    elsewhere = provider.build_request(
        Credential("codex:z", "t", ""), "gpt-5.5", {"input": first}, ctx("openai_chat")
    )
    assert elsewhere.headers["session-id"] not in sessions


def test_a_real_codex_cli_is_relayed_untouched() -> None:
    headers = {
        "user-agent": "codex_exec/0.170.2 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.170.2)",
        "originator": "codex_exec",
        "version": "0.170.2",
        "session-id": "0199aaaa-0000-7000-8000-000000000001",
        "thread-id": "0199aaaa-0000-7000-8000-000000000001",
        "x-client-request-id": "0199aaaa-0000-7000-8000-000000000002",
        "x-codex-window-id": "0199aaaa-0000-7000-8000-000000000001:0",
        "x-codex-turn-metadata": '{"turn_id":"t1"}',
        "authorization": "Bearer client-key-for-cliproxy",
        "accept": "text/event-stream",
        "content-type": "application/json",
        "host": "127.0.0.1:8317",
        "content-length": "99",
    }
    body = {
        "model": "gpt-5.5",
        "input": [{"type": "message", "role": "developer", "content": []}],
        "tools": [],
        "stream": True,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199aaaa-0000-7000-8000-000000000001",
    }
    provider = CodexProvider()
    request = provider.build_request(
        Credential("codex:b", "tok", "http://127.0.0.1:9/", account={"account_id": "acct"}),
        "gpt-5.5",
        dict(body),
        RequestContext(True, headers, {}, "openai_responses"),
    )
    assert request.url == "http://127.0.0.1:9/backend-api/codex/responses"
    assert orjson.loads(request.body) == body
    assert request.body == orjson.dumps(body)
    sent = dict(request.headers)
    assert sent.pop("authorization") == "Bearer tok"
    assert sent.pop("chatgpt-account-id") == "acct"
    kept = {
        k: v for k, v in headers.items() if k not in ("authorization", "host", "content-length")
    }
    assert sent == kept
    # Its newer version is adopted for everyone else.
    assert provider.identities.profile("codex").version == "0.170.2"
    other = provider.build_request(CODEX, "gpt-5.5", {"input": "x"}, ctx("openai_chat"))
    assert other.headers["version"] == "0.170.2"


def test_codex_usage_snapshot_from_headers() -> None:
    provider = CodexProvider()
    assert provider.usage("codex:a") is None
    provider.observe_reply(CODEX, 200, {"content-type": "text/event-stream"})
    assert provider.usage("codex:a") is None  # nothing to record
    provider.observe_reply(
        CODEX,
        200,
        {
            "x-codex-primary-used-percent": "55.5",
            "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-after-seconds": "120",
            "x-codex-secondary-used-percent": "not-a-number",
            "x-codex-secondary-window-minutes": "inf",
            "x-codex-secondary-reset-at": "2000000000",
        },
    )
    usage = provider.usage("codex:a")
    assert usage is not None and usage.primary is not None and usage.secondary is not None
    assert (usage.primary.used_percent, usage.primary.window_minutes) == (55.5, 300)
    assert usage.primary.resets_at == pytest.approx(usage.observed_at + 120)
    assert (usage.secondary.used_percent, usage.secondary.window_minutes) == (None, None)
    assert usage.secondary.resets_at == 2000000000
    assert usage.to_json()["primary"]["used_percent"] == 55.5
    assert list(provider.usage_snapshots()) == ["codex:a"]


def test_codex_models() -> None:
    models = set(CodexProvider().models())
    assert "gpt-5.5" in models
    assert not {"gpt-5", "gpt-5-codex", "gpt-5.1-codex-max"} & models


# ----- claude ----------------------------------------------------------------------------------

CLAUDE = Credential("claude:a", "tok-claude", "")


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (None, [IDENTITY_BLOCK]),
        ("", [IDENTITY_BLOCK]),
        ("Be a pirate.", [IDENTITY_BLOCK, {"type": "text", "text": "Be a pirate."}]),
        ([{"type": "text", "text": "A"}], [IDENTITY_BLOCK, {"type": "text", "text": "A"}]),
        (
            [IDENTITY_BLOCK, {"type": "text", "text": "B"}],
            [IDENTITY_BLOCK, {"type": "text", "text": "B"}],
        ),
        (CLAUDE_CODE_IDENTITY, [IDENTITY_BLOCK]),
    ],
)
def test_identity_goes_first(system: object, expected: list[Any]) -> None:
    assert with_identity_first(system) == expected


def test_claude_code_detection() -> None:
    plain: dict[str, object] = {"system": "x"}
    assert is_claude_code(ctx("anthropic", user_agent="claude-cli/2.0.1 (external, cli)"), plain)
    assert is_claude_code(ctx("anthropic", x_app="cli"), plain)
    assert is_claude_code(ctx("anthropic"), {"system": [IDENTITY_BLOCK]})
    assert not is_claude_code(ctx("anthropic", user_agent="Anthropic/Python 0.70"), plain)
    # A translated body never counts as Claude Code, whatever the headers say.
    assert not is_claude_code(ctx("openai_chat", x_app="cli"), {"system": [IDENTITY_BLOCK]})


def test_claude_request_for_an_sdk_client() -> None:
    request = ClaudeOAuthProvider().build_request(
        CLAUDE,
        "claude-sonnet-4-5",
        {"model": "alias", "system": "Be brief.", "max_tokens": 5, "messages": []},
        ctx(
            "anthropic",
            stream=True,
            anthropic_beta="oauth-2025-04-20, files-api-2025-04-14",
            anthropic_version="2023-06-01",
        ),
    )
    assert request.url == "https://api.anthropic.com/v1/messages?beta=true"
    headers = request.headers
    assert headers["authorization"] == "Bearer tok-claude"
    assert "x-api-key" not in headers
    assert headers["anthropic-version"] == "2023-06-01"
    betas = headers["anthropic-beta"].split(",")
    assert betas[:3] == ["oauth-2025-04-20", "files-api-2025-04-14", "claude-code-20250219"]
    assert len(betas) == 16  # the client's, then Claude Code 2.1.331's fifteen
    assert headers["x-app"] == "cli"
    assert headers["user-agent"] == "claude-cli/2.1.331 (external, cli)"
    assert headers["x-stainless-package-version"] == "0.128.0"
    assert headers["x-stainless-runtime"] == "node"
    assert headers["accept"] == "application/json"
    body = body_of(request)
    assert body["model"] == "claude-sonnet-4-5"
    assert body["system"] == [IDENTITY_BLOCK, {"type": "text", "text": "Be brief."}]


def test_claude_code_body_is_left_alone() -> None:
    original = {"system": [{"type": "text", "text": "custom first"}], "messages": [], "x": 1}
    request = ClaudeOAuthProvider().build_request(
        Credential("claude:b", "t", "http://127.0.0.1:5"),
        "claude-opus-4-5",
        dict(original),
        ctx("anthropic", user_agent="claude-cli/2.0.50 (external, cli)"),
    )
    assert request.url == "http://127.0.0.1:5/v1/messages?beta=true"
    assert body_of(request) == {**original, "model": "claude-opus-4-5"}
    assert request.headers["user-agent"] == "claude-cli/2.0.50 (external, cli)"


def test_a_real_claude_code_is_relayed_untouched() -> None:
    headers = {
        "user-agent": "claude-cli/2.1.400 (external, sdk-cli)",
        "x-app": "cli",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "x-stainless-lang": "js",
        "x-stainless-package-version": "0.130.0",
        "x-stainless-retry-count": "0",
        "x-claude-code-session-id": "5e1d0000-0000-4000-8000-000000000001",
        "x-api-key": "client-key-for-cliproxy",
        "accept": "application/json",
        "content-type": "application/json",
    }
    billing = "x-anthropic-billing-header: cc_version=2.1.400.1; cc_entrypoint=sdk-cli; cch=ab12c;"
    body = {
        "model": "claude-opus-4-5",
        "system": [{"type": "text", "text": billing}, IDENTITY_BLOCK],
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": '{"session_id":"5e1d"}'},
    }
    provider = ClaudeOAuthProvider()
    request = provider.build_request(
        CLAUDE, "claude-opus-4-5", dict(body), RequestContext(True, headers, {}, "anthropic")
    )
    assert request.body == orjson.dumps(body)  # the billing block relayed, nothing invented
    sent = dict(request.headers)
    assert sent.pop("authorization") == "Bearer tok-claude"
    assert sent.pop("anthropic-beta") == headers["anthropic-beta"] + ",oauth-2025-04-20"
    kept = {k: v for k, v in headers.items() if k not in ("x-api-key", "anthropic-beta")}
    assert sent == kept
    assert provider.identities.profile("claude").version == "2.1.400"


def test_claude_other_clients_get_no_billing_block() -> None:
    request = ClaudeOAuthProvider().build_request(
        CLAUDE, "claude-opus-4-5", {"messages": []}, ctx("openai_chat")
    )
    assert "billing" not in request.body.decode()


def test_claude_translated_client_gets_no_foreign_betas() -> None:
    request = ClaudeOAuthProvider().build_request(
        CLAUDE, "claude-haiku-4-5", {"messages": []}, ctx("openai_chat", anthropic_beta="junk")
    )
    assert "junk" not in request.headers["anthropic-beta"]
    assert body_of(request)["system"] == [IDENTITY_BLOCK]


def test_claude_count_request() -> None:
    request = ClaudeOAuthProvider().build_count_request(
        CLAUDE, "claude-sonnet-4-5", {"messages": []}, ctx("anthropic")
    )
    assert request.url == "https://api.anthropic.com/v1/messages/count_tokens?beta=true"
    assert "oauth-2025-04-20" in request.headers["anthropic-beta"]


def test_claude_unified_limits() -> None:
    provider = ClaudeOAuthProvider()
    provider.observe_reply(
        CLAUDE,
        429,
        {
            "Anthropic-Ratelimit-Unified-Status": "rejected",
            "anthropic-ratelimit-unified-reset": "9",
        },
    )
    limits = provider.usage("claude:a")
    assert limits is not None and (limits["status"], limits["reset"]) == ("rejected", "9")


# ----- gemini cli ------------------------------------------------------------------------------

GEMINI = Credential("gemini:a", "tok-g", "", account={"project_id": "proj-1"})


@pytest.mark.parametrize(
    ("stream", "suffix"),
    [(False, ":generateContent"), (True, ":streamGenerateContent?alt=sse")],
)
def test_gemini_envelope(stream: bool, suffix: str) -> None:
    inner = {"model": "x", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    request = GeminiCLIProvider().build_request(
        GEMINI, "gemini-2.5-pro", dict(inner), ctx("gemini", stream=stream)
    )
    assert request.url == "https://cloudcode-pa.googleapis.com/v1internal" + suffix
    sent = body_of(request)
    session = sent["request"].pop("session_id")
    uuid.UUID(session)
    uuid.UUID(sent.pop("user_prompt_id"))
    assert sent == {
        "model": "gemini-2.5-pro",
        "project": "proj-1",
        "request": {"contents": inner["contents"]},
    }
    assert request.headers["authorization"] == "Bearer tok-g"
    assert request.headers["user-agent"].startswith("GeminiCLI-tui/0.61.0/gemini-2.5-pro (")
    assert request.headers["user-agent"].endswith(" google-api-nodejs-client/10.9.0")
    assert request.headers["x-goog-api-client"] == "gl-node/20.20.2"


def test_gemini_session_is_stable_and_prompt_ids_follow_user_turns() -> None:
    provider = GeminiCLIProvider()
    first = [{"role": "user", "parts": [{"text": "hi"}]}]
    tool_loop = [
        *first,
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
    ]
    second = [*tool_loop, {"role": "model", "parts": [{"text": "ok"}]}, *first]
    sent = [
        body_of(provider.build_request(GEMINI, "gemini-2.5-pro", {"contents": c}, ctx("gemini")))
        for c in (first, tool_loop, second)
    ]
    assert len({body["request"]["session_id"] for body in sent}) == 1
    prompt_ids = [body["user_prompt_id"] for body in sent]
    assert prompt_ids[0] == prompt_ids[1] != prompt_ids[2]


def test_a_real_gemini_cli_keeps_its_identity() -> None:
    headers = {
        "user-agent": "GeminiCLI/0.62.0/gemini-2.5-pro (linux; x64) google-api-nodejs-client/10.9.0",
        "x-goog-api-client": "gl-node/20.20.2",
        "x-goog-api-key": "client-key-for-cliproxy",
        "accept": "*/*",
    }
    provider = GeminiCLIProvider()
    request = provider.build_request(
        GEMINI, "gemini-2.5-pro", {"contents": []}, RequestContext(False, headers, {}, "gemini")
    )
    assert request.headers["user-agent"] == headers["user-agent"]
    assert request.headers["x-goog-api-client"] == "gl-node/20.20.2"
    assert "x-goog-api-key" not in request.headers
    assert provider.identities.profile("gemini-cli").version == "0.62.0"


def test_gemini_without_project_leaves_it_to_the_upstream() -> None:
    request = GeminiCLIProvider().build_request(
        Credential("gemini:b", "t", "http://127.0.0.1:3"), "gemini-2.5-flash", {}, ctx("gemini")
    )
    assert request.url == "http://127.0.0.1:3/v1internal:generateContent"
    assert "project" not in body_of(request)


@pytest.mark.parametrize(
    "body",
    [
        {"contents": [{"parts": [{"text": "a"}]}]},
        {"generateContentRequest": {"model": "models/x", "contents": [{"parts": [{"text": "a"}]}]}},
    ],
)
def test_gemini_count_request(body: dict[str, Any]) -> None:
    request = GeminiCLIProvider().build_count_request(GEMINI, "gemini-2.5-pro", body, ctx("gemini"))
    assert request.url.endswith("/v1internal:countTokens")
    assert body_of(request) == {
        "request": {"model": "models/gemini-2.5-pro", "contents": [{"parts": [{"text": "a"}]}]}
    }


def test_gemini_unwrap_hooks() -> None:
    provider = GeminiCLIProvider()
    assert provider.wraps_replies
    assert provider.unwrap_json({"response": {"candidates": []}, "traceId": "t"}) == {
        "candidates": []
    }
    assert provider.unwrap_json({"totalTokens": 3}) == {"totalTokens": 3}
    wrapped = SSEEvent(None, '{"response": {"candidates": [1]}, "traceId": "t"}')
    assert orjson.loads(provider.unwrap_stream_event(wrapped).data) == {"candidates": [1]}
    for untouched in ('{"error": {"code": 429}}', "not json", '{"response": 3}'):
        event = SSEEvent(None, untouched)
        assert provider.unwrap_stream_event(event) is event


def test_gemini_models() -> None:
    assert {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview"} <= set(
        GeminiCLIProvider().models()
    )


# ----- the relay's re-framing of unwrapped events ---------------------------------------------


def test_reframed_events_parse_back() -> None:
    events = [SSEEvent(None, '{"a": 1}'), SSEEvent("message", "line one\nline two")]
    parsed = SSEParser().feed(b"".join(_reframe(e) for e in events))
    assert parsed == events


def test_vet_forwards_unwrapped_frames() -> None:
    from cliproxy.protocols.gemini import PROTOCOL as GEMINI_PROTOCOL
    from cliproxy.server.relay import StreamOutcome

    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}]}
    raw = b"data: " + orjson.dumps({"response": chunk}) + b"\r\n\r\n"
    out = _vet(
        [raw],
        SSEParser(),
        GEMINI_PROTOCOL.stream_decoder(),
        StreamOutcome(),
        GeminiCLIProvider().unwrap_stream_event,
    )
    assert out == b"data: " + orjson.dumps(chunk) + b"\n\n"
