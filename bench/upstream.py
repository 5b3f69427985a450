"""A fast upstream for benchmarking: OpenAI Chat Completions and Anthropic Messages, JSON and SSE.

The test simulators (tests/simulators) are Starlette apps built for fidelity and fault scripts;
under load they would be the bottleneck. This one is a bare asyncio protocol on uvloop with
httptools parsing and every reply pre-rendered, so it answers in microseconds.

    POST /v1/chat/completions   OpenAI Chat (JSON, or SSE with "stream": true)
    POST /v1/messages           Anthropic Messages (JSON, or SSE with "stream": true)

A stream has 50 content chunks, each written separately. When the model name contains "slow"
the chunks are spaced SLOW_GAP seconds apart (the "idle-ish" streams of the 1,000-streams case);
when it contains "paced", PACED_GAP apart (an LLM's pace: the paced-streams cases).

Usage: python bench/upstream.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import orjson
import uvloop

CHUNKS = 50
SLOW_GAP = 0.2  # seconds between chunks of a slow stream: 50 chunks take 10 s
PACED_GAP = 0.01  # seconds between chunks of a paced stream: 50 chunks take 0.5 s
TOKEN = "tok "
CREATED = 1_700_000_000


def _sse(data: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def _chunk_frame(payload: bytes) -> bytes:
    """One HTTP/1.1 chunked-encoding frame."""
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def _openai_json(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": TOKEN * CHUNKS},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": CHUNKS, "total_tokens": 60},
        }
    )


def _openai_stream(model: str, usage: bool) -> list[bytes]:
    def chunk(delta: dict[str, object], finish: str | None) -> bytes:
        return _sse(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    events = [chunk({"role": "assistant", "content": TOKEN}, None)]
    events += [chunk({"content": TOKEN}, None) for _ in range(CHUNKS - 1)]
    tail = chunk({}, "stop")
    if usage:
        tail += _sse(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [],
                "usage": {"prompt_tokens": 10, "completion_tokens": CHUNKS, "total_tokens": 60},
            }
        )
    events.append(tail + b"data: [DONE]\n\n")
    return events


def _anthropic_json(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": TOKEN * CHUNKS}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": CHUNKS},
        }
    )


def _anthropic_stream(model: str) -> list[bytes]:
    start = _sse(
        {
            "type": "message_start",
            "message": {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1},
            },
        },
        "message_start",
    ) + _sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        "content_block_start",
    )
    delta = _sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": TOKEN}},
        "content_block_delta",
    )
    end = (
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        + _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": CHUNKS},
            },
            "message_delta",
        )
        + _sse({"type": "message_stop"}, "message_stop")
    )
    events = [start + delta] + [delta] * (CHUNKS - 2) + [delta + end]
    return events


_cache: dict[tuple[str, str, bool, bool], list[bytes] | bytes] = {}


def _reply(path: str, model: str, stream: bool, usage: bool) -> list[bytes] | bytes:
    key = (path, model, stream, usage)
    cached = _cache.get(key)
    if cached is None:
        anthropic = path.startswith("/v1/messages")
        if stream:
            events = _anthropic_stream(model) if anthropic else _openai_stream(model, usage)
            cached = [_chunk_frame(event) for event in events]
        else:
            cached = _anthropic_json(model) if anthropic else _openai_json(model)
        _cache[key] = cached
    return cached


JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
)


class UpstreamProtocol(asyncio.Protocol):
    """One client connection; requests on it are answered in order (keep-alive)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.streaming: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.streaming is not None:
            self.streaming.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        path = self.url.decode().split("?", 1)[0]
        raw = b"".join(self.body)
        self.url, self.body = b"", []
        assert self.transport is not None
        if path not in ("/v1/chat/completions", "/v1/messages"):
            self.transport.write(NOT_FOUND)
            return
        request = orjson.loads(raw) if raw else {}
        model = str(request.get("model", "bench"))
        stream = bool(request.get("stream"))
        options = request.get("stream_options") or {}
        usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
        reply = _reply(path, model, stream, usage)
        if isinstance(reply, bytes):
            self.transport.write(JSON_HEAD % len(reply) + reply)
            return
        self.streaming = asyncio.get_running_loop().create_task(self._stream(reply, _gap(model)))

    async def _stream(self, frames: list[bytes], gap: float) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(SSE_HEAD)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for number, frame in enumerate(frames, 1):
            # Separate writes with a yield between, so chunks leave as separate segments; a
            # paced stream keeps its schedule (chunk n at n gaps) instead of drifting late.
            await asyncio.sleep(max(0.0, started + number * gap - loop.time()) if gap else 0)
            if transport.is_closing():
                return
            transport.write(frame)
        transport.write(b"0\r\n\r\n")
        self.streaming = None


def _gap(model: str) -> float:
    if "slow" in model:
        return SLOW_GAP
    return PACED_GAP if "paced" in model else 0.0


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, "127.0.0.1", port, backlog=4096)
    print(f"upstream listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
