"""The Gemini sim parsed by the official `google-genai` SDK pointed straight at it."""

from __future__ import annotations

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types

from tests.simulators import GeminiSim, Reply


def _client(sim: GeminiSim, api_version: str | None = None) -> genai.Client:
    options = types.HttpOptions(base_url=sim.base_url, api_version=api_version, timeout=5000)
    return genai.Client(api_key="g-key", http_options=options)


def test_generate_content_text_usage_and_finish(gemini_sim: GeminiSim) -> None:
    gemini_sim.queue(
        Reply.text(
            "Hello world", input_tokens=11, output_tokens=7, reasoning_tokens=3, cached_tokens=2
        )
    )
    client = _client(gemini_sim)  # keep a reference: a collected Client closes its transport
    response = client.models.generate_content(model="gemini-2.5-flash", contents="hello sim")
    assert response.text == "Hello world"
    candidate = (response.candidates or [])[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    # Gemini counts thoughts apart from candidates; the total covers both.
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (
        11,
        4,
        3,
    )
    assert (usage.total_token_count, usage.cached_content_token_count) == (18, 2)
    rec = gemini_sim.last_request
    assert rec.headers["x-goog-api-key"] == "g-key"
    assert rec.path == "/v1/models/gemini-2.5-flash:generateContent"


def test_stream_over_v1beta(gemini_sim: GeminiSim) -> None:
    gemini_sim.queue(Reply.text("Hello streaming world", finish="length"))
    client = _client(gemini_sim, api_version="v1beta")
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-pro", contents="x"))
    assert "".join(c.text or "" for c in chunks) == "Hello streaming world"
    assert (chunks[-1].candidates or [])[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert gemini_sim.last_request.query == {"alt": "sse"}
    assert gemini_sim.last_request.path.startswith(
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    )


def test_function_call(gemini_sim: GeminiSim) -> None:
    gemini_sim.queue(Reply.tool_call("read_file", {"path": "hello.txt"}))
    client = _client(gemini_sim)
    response = client.models.generate_content(model="m", contents="x")
    calls = response.function_calls or []
    assert [(c.name, c.args) for c in calls] == [("read_file", {"path": "hello.txt"})]
    assert (response.candidates or [])[0].finish_reason == types.FinishReason.STOP


def test_rate_limit_carries_retry_info(gemini_sim: GeminiSim) -> None:
    gemini_sim.queue(Reply.error(429, retry_after=12))
    client = _client(gemini_sim)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="m", contents="x")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    details = caught.value.details["error"]["details"]
    retry = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]


def test_cut_stream_raises_before_the_finish_reason(gemini_sim: GeminiSim) -> None:
    gemini_sim.queue(Reply.text("one two three", cut_after=1))
    texts: list[str] = []
    client = _client(gemini_sim)
    with pytest.raises(Exception):  # noqa: B017 (the transport's own error type)
        for chunk in client.models.generate_content_stream(model="m", contents="x"):
            texts.append(chunk.text or "")
    assert texts == ["one"]


def test_count_tokens_and_models(gemini_sim: GeminiSim) -> None:
    gemini_sim.token_count = 9
    client = _client(gemini_sim)
    assert client.models.count_tokens(model="m", contents="hello").total_tokens == 9
    gemini_sim.models = ["gemini-a"]
    assert [m.name for m in client.models.list()] == ["models/gemini-a"]


def test_stream_without_alt_is_a_json_array(gemini_sim: GeminiSim) -> None:
    url = f"{gemini_sim.base_url}/v1beta/models/m:streamGenerateContent"
    response = httpx.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert response.headers["content-type"].startswith("application/json")
    chunks = orjson.loads(response.content)
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "echo: hi"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "finishReason" not in chunks[0]["candidates"][0]


def test_sse_frames_end_with_crlf(gemini_sim: GeminiSim) -> None:
    url = f"{gemini_sim.base_url}/v1beta/models/m:streamGenerateContent?alt=sse"
    response = httpx.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert response.text.startswith("data: {") and response.text.endswith("}\r\n\r\n")
