"""Legacy OpenAI completions (POST /v1/completions)."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest

from cliproxy.model import (
    BlockEnd,
    ErrorKind,
    FinishReason,
    MessageEnd,
    MessageStart,
    ProxyError,
    Request,
    Response,
    StreamError,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    ToolCallPart,
    Usage,
)
from cliproxy.protocols.openai_completions import PROTOCOL
from cliproxy.protocols.sse import SSEEvent, SSEParser

TEXT_EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_1", model="up"),
    TextStart(0),
    TextDelta(0, "Once "),
    TextDelta(0, "upon"),
    BlockEnd(0),
    MessageEnd(FinishReason.LENGTH, Usage(input_tokens=4, output_tokens=2)),
]


def encode(events: list[StreamEvent], include_usage: bool = False) -> bytes:
    encoder = PROTOCOL.stream_encoder(Request(model="client-model", include_usage=include_usage))
    return b"".join(encoder.feed(event) for event in events)


def sdk_client(body: bytes, content_type: str) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": content_type})

    return openai.OpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="x",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


@pytest.mark.parametrize("prompt", ["Say hi", ["Say hi"]])
def test_parse_prompt(prompt: Any) -> None:
    req = PROTOCOL.parse_request(
        {
            "model": "m",
            "prompt": prompt,
            "max_tokens": 16,
            "stop": "\n",
            "stream": True,
            "stream_options": {"include_usage": True},
            "echo": False,
        }
    )
    assert [(m.role, m.content) for m in req.messages] == [("user", [TextPart("Say hi")])]
    assert req.max_tokens == 16 and req.stop == ["\n"]
    assert req.stream and req.include_usage
    assert req.extras["openai_completions"] == {"echo": False}
    wire = PROTOCOL.render_request(req)
    assert wire["prompt"] == "Say hi" and wire["echo"] is False and wire["max_tokens"] == 16


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "m"}, "prompt: expected a string"),
        ({"model": "m", "prompt": ["a", "b"]}, "prompt: only a single prompt"),
        ({"prompt": "x"}, "model: expected a string"),
        ({"model": "m", "prompt": "x", "n": 3}, "n: only n=1"),
    ],
)
def test_bad_requests(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ProxyError) as info:
        PROTOCOL.parse_request(body)
    assert info.value.kind is ErrorKind.INVALID_REQUEST and fragment in info.value.message


def test_render_response_shape() -> None:
    resp = Response(
        id="abc",
        model="m",
        content=[TextPart("hello"), ToolCallPart("c", "f")],
        finish_reason=FinishReason.TOOL_CALLS,  # no such reason in legacy completions
        usage=Usage(input_tokens=3, output_tokens=1),
    )
    body = PROTOCOL.render_response(resp)
    assert body["object"] == "text_completion" and body["id"] == "cmpl-abc"
    assert body["choices"] == [
        {"text": "hello", "index": 0, "logprobs": None, "finish_reason": "stop"}
    ]
    assert body["usage"]["total_tokens"] == 4


def test_parse_response() -> None:
    resp = PROTOCOL.parse_response(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": "m",
            "choices": [{"text": "yo", "index": 0, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1},
        }
    )
    assert resp.text() == "yo" and resp.finish_reason is FinishReason.LENGTH
    assert resp.usage == Usage(input_tokens=2, output_tokens=1)


def test_stream_frames() -> None:
    events = SSEParser().feed(encode(TEXT_EVENTS, include_usage=True))
    assert events[-1].data == "[DONE]"
    data = [orjson.loads(e.data) for e in events[:-1]]
    assert {(c["object"], c["id"], c["model"]) for c in data} == {
        ("text_completion", "cmpl-msg_1", "client-model")
    }
    assert [c["choices"][0]["text"] for c in data if c["choices"]] == ["Once ", "upon", ""]
    assert data[-2]["choices"][0]["finish_reason"] == "length"
    assert data[-1]["choices"] == [] and data[-1]["usage"]["prompt_tokens"] == 4


def test_sdk_reads_stream() -> None:
    client = sdk_client(encode(TEXT_EVENTS, include_usage=True), "text/event-stream")
    got = list(
        client.completions.create(
            model="client-model",
            prompt="hi",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in got if c.choices) == "Once upon"
    assert [c.choices[0].finish_reason for c in got if c.choices][-1] == "length"
    assert got[-1].usage is not None and got[-1].usage.completion_tokens == 2


def test_sdk_reads_response() -> None:
    resp = Response(id="r", model="m", content=[TextPart("done")], usage=Usage(1, 1))
    client = sdk_client(orjson.dumps(PROTOCOL.render_response(resp)), "application/json")
    out = client.completions.create(model="m", prompt="hi")
    assert out.choices[0].text == "done" and out.choices[0].finish_reason == "stop"


def test_sdk_raises_on_error_frame() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="m", model="x"),
        TextDelta(0, "a"),
        StreamError(ProxyError(ErrorKind.TIMEOUT, "upstream timed out")),
    ]
    body = encode(events)
    assert b"[DONE]" not in body
    client = sdk_client(body, "text/event-stream")
    with pytest.raises(openai.APIError, match="timed out"):
        list(client.completions.create(model="m", prompt="hi", stream=True))


def test_decoder_via_chat() -> None:
    decoder = PROTOCOL.stream_decoder()
    out: list[StreamEvent] = []
    for line in [
        '{"id":"cmpl-1","model":"m","choices":[{"text":"a","index":0,"finish_reason":null}]}',
        '{"id":"cmpl-1","model":"m","choices":[{"text":"b","index":0,"finish_reason":"stop"}]}',
        "[DONE]",
    ]:
        out.extend(decoder.feed(SSEEvent(None, line)))
    assert out == [
        MessageStart(id="cmpl-1", model="m"),
        TextStart(0),
        TextDelta(0, "a"),
        TextDelta(0, "b"),
        BlockEnd(0),
        MessageEnd(FinishReason.STOP),
    ]
    assert decoder.finished and decoder.close() == []


def test_decoder_cut_stream() -> None:
    decoder = PROTOCOL.stream_decoder()
    decoder.feed(SSEEvent(None, '{"id":"c","choices":[{"text":"a","index":0}]}'))
    tail = decoder.close()
    assert isinstance(tail[-1], StreamError) and tail[-1].error.kind is ErrorKind.UPSTREAM


def test_errors_share_chat_shape() -> None:
    body = PROTOCOL.render_error(ProxyError(ErrorKind.NOT_FOUND, "no such model"))
    assert body["error"]["type"] == "not_found_error"
    error = PROTOCOL.parse_error(404, b'{"error":{"message":"no such model"}}')
    assert error.kind is ErrorKind.NOT_FOUND and error.message == "no such model"
