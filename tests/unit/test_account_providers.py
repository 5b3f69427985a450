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
from cliproxy.providers.codex import DEFAULT_INSTRUCTIONS, CodexProvider
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
        "gpt-5-codex",
        {
            "model": "alias",
            "input": "hello",
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
    assert headers["originator"] == "codex_cli_rs"
    assert headers["accept"] == "text/event-stream"
    assert headers["user-agent"].startswith("codex_cli_rs/")
    uuid.UUID(headers["session_id"])  # generated when the client has none
    body = body_of(request)
    assert body["model"] == "gpt-5-codex"
    assert (body["stream"], body["store"]) == (True, False)
    assert body["instructions"] == DEFAULT_INSTRUCTIONS
    assert body["include"] == ["message.output_text.logprobs", "reasoning.encrypted_content"]
    assert body["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
    ]
    for rejected in ("max_output_tokens", "temperature", "top_p", "truncation", "user"):
        assert rejected not in body
    assert "service_tier" not in body


def test_codex_keeps_the_clients_own_identity_and_session() -> None:
    request = CodexProvider().build_request(
        Credential("codex:b", "t", "http://127.0.0.1:9/", headers={"x-trace": "$x-request-id"}),
        "gpt-5",
        {
            "instructions": "Codex prompt",
            "service_tier": "priority",
            "input": [
                {"role": "system", "content": "rules"},
                {"role": "user", "content": "hi"},
            ],
        },
        ctx(
            "openai_responses",
            user_agent="codex_cli_rs/0.60.1 (Mac OS 15.1; arm64) iTerm.app",
            originator="codex_exec",
            session_id="s-1",
            x_request_id="r-7",
        ),
    )
    assert request.url == "http://127.0.0.1:9/backend-api/codex/responses"
    assert request.headers["user-agent"].startswith("codex_cli_rs/0.60.1")
    assert request.headers["originator"] == "codex_exec"
    assert request.headers["session_id"] == "s-1"
    assert request.headers["x-trace"] == "r-7"
    assert "chatgpt-account-id" not in request.headers
    body = body_of(request)
    assert body["instructions"] == "Codex prompt"
    assert body["service_tier"] == "priority"
    assert [item["role"] for item in body["input"]] == ["developer", "user"]


def test_codex_session_falls_back_to_prompt_cache_key() -> None:
    request = CodexProvider().build_request(
        CODEX, "gpt-5", {"input": "x", "prompt_cache_key": "pck-1"}, ctx("openai_responses")
    )
    assert request.headers["session_id"] == "pck-1"


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
    assert {"gpt-5", "gpt-5-codex", "gpt-5.1-codex-max"} <= set(CodexProvider().models())


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
    assert headers["anthropic-beta"].split(",") == [
        "oauth-2025-04-20",
        "files-api-2025-04-14",
        "claude-code-20250219",
        "interleaved-thinking-2025-05-14",
    ]
    assert headers["x-app"] == "cli"
    assert (
        headers["user-agent"].startswith("claude-cli/")
        and "(external, cli)" in headers["user-agent"]
    )
    assert headers["accept"] == "text/event-stream"
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
    assert body_of(request) == {
        "model": "gemini-2.5-pro",
        "project": "proj-1",
        "request": {"contents": inner["contents"]},
    }
    assert request.headers["authorization"] == "Bearer tok-g"
    assert request.headers["user-agent"].startswith("GeminiCLI/")
    assert "/gemini-2.5-pro" in request.headers["user-agent"]
    assert request.headers["x-goog-api-client"].startswith("gl-node/")


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
