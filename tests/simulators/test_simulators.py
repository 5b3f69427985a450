"""The scripting core, checked with raw httpx: recording, queueing, keys, and the delivery
options (cut, delay, hang, garbage) that the e2e tests rely on."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.simulators import (
    AnthropicSim,
    GeminiSim,
    OpenAIChatSim,
    Reply,
    ResponsesSim,
    Simulator,
)
from tests.simulators.reply import split_text

CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}]}
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def _generate(sim: Simulator, *, stream: bool = False, key: str | None = None) -> httpx.Response:
    """One generation request in the sim's own protocol, asking 'ping'."""
    url, body, headers = _request_spec(sim, stream, key)
    return httpx.post(url, json=body, headers=headers, timeout=5)


def _request_spec(
    sim: Simulator, stream: bool, key: str | None = None
) -> tuple[str, dict[str, Any], dict[str, str]]:
    headers: dict[str, str] = {}
    if isinstance(sim, OpenAIChatSim):
        url, body = sim.base_url + "/chat/completions", {**CHAT_BODY, "stream": stream}
    elif isinstance(sim, ResponsesSim):
        url, body = (
            sim.base_url + "/responses",
            {"model": "gpt-5", "input": "ping", "stream": stream},
        )
    elif isinstance(sim, AnthropicSim):
        url = sim.base_url + "/v1/messages"
        body = {
            "model": "claude",
            "max_tokens": 9,
            "messages": [{"role": "user", "content": "ping"}],
        }
        body["stream"] = stream
        headers.update(ANTHROPIC_HEADERS)
    else:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{sim.base_url}/v1beta/models/gemini-2.5-flash:{method}"
        body = {"contents": [{"role": "user", "parts": [{"text": "ping"}]}]}
    if key is not None:
        headers.update(_key_header(sim, key))
    return url, body, headers


def _key_header(sim: Simulator, key: str) -> dict[str, str]:
    if isinstance(sim, AnthropicSim):
        return {"x-api-key": key}
    if isinstance(sim, GeminiSim):
        return {"x-goog-api-key": key}
    return {"authorization": f"Bearer {key}"}


@pytest.fixture(params=["chat", "responses", "anthropic", "gemini"])
def any_sim(request: pytest.FixtureRequest) -> Simulator:
    name = {"chat": "openai_chat_sim", "responses": "responses_sim"}.get(
        request.param, request.param + "_sim"
    )
    sim: Simulator = request.getfixturevalue(name)
    return sim


def test_default_reply_echoes_last_user_text_and_request_is_recorded(any_sim: Simulator) -> None:
    response = _generate(any_sim)
    assert response.status_code == 200
    assert b"echo: ping" in response.content
    rec = any_sim.last_request
    assert rec.method == "POST"
    assert rec.json == orjson.loads(rec.body)
    assert rec.headers["content-type"] == "application/json"
    assert all(name == name.lower() for name in rec.headers)
    assert len(any_sim.requests) == 1


def test_queue_is_fifo_then_falls_back_to_echo(openai_chat_sim: OpenAIChatSim) -> None:
    openai_chat_sim.queue(Reply.text("first"), lambda rec: Reply.text(f"saw {rec.json['model']}"))
    answers = [
        _generate(openai_chat_sim).json()["choices"][0]["message"]["content"] for _ in range(3)
    ]
    assert answers == ["first", "saw gpt-4o-mini", "echo: ping"]
    assert openai_chat_sim.pending == 0


def test_reset_forgets_queue_requests_and_keys(gemini_sim: GeminiSim) -> None:
    gemini_sim.queue(Reply.text("queued"))
    gemini_sim.api_keys.add("k")
    _generate(gemini_sim, key="k")
    gemini_sim.queue(Reply.text("left over"))
    gemini_sim.reset()
    assert gemini_sim.requests == [] and gemini_sim.pending == 0 and gemini_sim.api_keys == set()
    assert b"echo: ping" in _generate(gemini_sim).content


def test_api_keys_are_enforced_in_the_vendor_error_shape(any_sim: Simulator) -> None:
    any_sim.api_keys = {"good-key"}
    missing, wrong, right = (
        _generate(any_sim),
        _generate(any_sim, key="bad"),
        _generate(any_sim, key="good-key"),
    )
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    body = wrong.json()
    if isinstance(any_sim, AnthropicSim):
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    elif isinstance(any_sim, GeminiSim):
        assert body["error"]["code"] == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    else:
        assert body["error"]["code"] == "invalid_api_key"
    assert body["error"]["message"]
    assert len(any_sim.requests) == 3, "rejected requests are recorded too"


def test_alternative_key_placements(anthropic_sim: AnthropicSim, gemini_sim: GeminiSim) -> None:
    anthropic_sim.api_keys = {"tok"}
    body = {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    bearer = {**ANTHROPIC_HEADERS, "authorization": "Bearer tok"}
    assert (
        httpx.post(
            anthropic_sim.base_url + "/v1/messages?beta=true", json=body, headers=bearer
        ).status_code
        == 200
    )
    assert anthropic_sim.last_request.query == {"beta": "true"}
    gemini_sim.api_keys = {"gk"}
    url = f"{gemini_sim.base_url}/v1beta/models/gemini-2.5-flash:generateContent"
    contents = {"contents": [{"parts": [{"text": "hi"}]}]}
    assert httpx.post(url + "?key=gk", json=contents).status_code == 200
    assert httpx.post(url + "?key=nope", json=contents).status_code == 401


@pytest.mark.parametrize("stream", [False, True])
def test_cut_after_ends_the_http_body_abruptly(any_sim: Simulator, stream: bool) -> None:
    any_sim.queue(Reply.text("one two three four", cut_after=1))
    received = b""
    url, body, headers = _request_spec(any_sim, stream)
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", url, json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        declared_length = response.headers.get("content-length")
        for piece in response.iter_bytes():
            received += piece
    if not stream:
        assert declared_length is not None and 0 < len(received) < int(declared_length)
    else:
        assert b"one" in received and b"three" not in received
        for terminal in (b"[DONE]", b"message_stop", b"response.completed", b"finishReason"):
            assert terminal not in received


def test_cut_after_larger_than_the_answer_still_withholds_the_terminal_events(
    anthropic_sim: AnthropicSim,
) -> None:
    anthropic_sim.queue(Reply.text("short", cut_after=50))
    with pytest.raises(httpx.RemoteProtocolError):
        _generate(anthropic_sim, stream=True)


def test_delay_slows_each_content_chunk(openai_chat_sim: OpenAIChatSim) -> None:
    openai_chat_sim.queue(Reply.text("a b c", delay=0.1))
    started = time.monotonic()
    response = _generate(openai_chat_sim, stream=True)
    assert time.monotonic() - started >= 0.3
    assert response.text.endswith("data: [DONE]\n\n")


def test_chunk_size_splits_text_into_fixed_pieces() -> None:
    assert split_text("abcdefg", 3) == ["abc", "def", "g"]
    assert split_text("Hello big world", None) == ["Hello", " big", " world"]
    assert "".join(split_text("  lead and trail  ", None)) == "  lead and trail  "


def test_hang_never_answers_and_does_not_block_shutdown() -> None:
    sim = GeminiSim().start()
    sim.queue(Reply.text("never", hang=True))
    with pytest.raises(httpx.ReadTimeout):
        _timeout_request(sim)
    sim.queue(Reply.text("never", hang=True))
    # A request still hanging while the server stops must not hold the shutdown.
    with httpx.Client(timeout=10) as client:
        url = f"{sim.base_url}/v1beta/models/m:generateContent"
        thread = threading.Thread(target=_swallow, args=(client, url), daemon=True)
        thread.start()
        time.sleep(0.1)
        started = time.monotonic()
        sim.stop()
        assert time.monotonic() - started < 1.5
        thread.join(2)


def _timeout_request(sim: GeminiSim) -> None:
    url = f"{sim.base_url}/v1beta/models/m:generateContent"
    httpx.post(url, json={"contents": [{"parts": [{"text": "x"}]}]}, timeout=0.3)


def _swallow(client: httpx.Client, url: str) -> None:
    try:
        client.post(url, json={"contents": [{"parts": [{"text": "x"}]}]})
    except httpx.HTTPError:
        pass


def test_hang_after_some_chunks_stalls_mid_stream(responses_sim: ResponsesSim) -> None:
    responses_sim.queue(Reply.text("one two", cut_after=1, hang=True))
    received = b""
    with pytest.raises(httpx.ReadTimeout):
        url = responses_sim.base_url + "/responses"
        body = {"model": "gpt-5", "input": "x", "stream": True}
        with httpx.stream("POST", url, json=body, timeout=0.5) as response:
            for piece in response.iter_bytes():
                received += piece
    assert b'"delta":"one"' in received


@pytest.mark.parametrize("stream", [False, True])
def test_garbage_is_a_200_that_does_not_parse(any_sim: Simulator, stream: bool) -> None:
    any_sim.queue(Reply.garbage())
    response = _generate(any_sim, stream=stream)
    assert response.status_code == 200
    payloads = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(payloads[0] if stream else response.content)


def test_error_reply_with_retry_after_sets_the_header(any_sim: Simulator) -> None:
    any_sim.queue(Reply.error(429, retry_after=7))
    response = _generate(any_sim)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


def test_custom_error_body_and_extra_headers(responses_sim: ResponsesSim) -> None:
    body = {"error": {"type": "usage_limit_reached", "resets_in_seconds": 30}}
    responses_sim.queue(
        Reply.error(429, body=body, headers={"x-codex-primary-used-percent": "100"})
    )
    response = _generate(responses_sim)
    assert response.json() == body
    assert response.headers["x-codex-primary-used-percent"] == "100"


def test_missing_required_fields_are_rejected_like_the_real_api(
    openai_chat_sim: OpenAIChatSim, anthropic_sim: AnthropicSim, gemini_sim: GeminiSim
) -> None:
    chat = httpx.post(openai_chat_sim.base_url + "/chat/completions", json={"model": "m"})
    assert chat.status_code == 400 and "messages" in chat.json()["error"]["message"]
    no_version = httpx.post(anthropic_sim.base_url + "/v1/messages", json={"model": "m"})
    assert (
        no_version.status_code == 400
        and "anthropic-version" in no_version.json()["error"]["message"]
    )
    no_max = httpx.post(
        anthropic_sim.base_url + "/v1/messages",
        json={"model": "m", "messages": []},
        headers=ANTHROPIC_HEADERS,
    )
    assert no_max.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    gemini = httpx.post(f"{gemini_sim.base_url}/v1beta/models/m:generateContent", json={})
    assert gemini.json()["error"]["status"] == "INVALID_ARGUMENT"
