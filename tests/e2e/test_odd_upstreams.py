"""Upstreams that bend their protocol: a JSON reply to a streaming request, an SSE stream that
ends without its terminal event but closes the connection cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.e2e.clients import CLIENTS, ask
from tests.proxy_server import ProxyServer
from tests.simulators import SimServer

CHAT_REPLY = {
    "id": "chatcmpl-odd",
    "object": "chat.completion",
    "created": 1,
    "model": "odd",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "json instead of a stream"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
}


class OddUpstream(SimServer):
    """Chat Completions upstream whose `/v1/json/...` always answers JSON and whose
    `/v1/unfinished/...` streams two chunks and then closes normally without finishing."""

    base_path = "/v1"

    def build_app(self) -> ASGIApp:
        async def json_always(request: Request) -> Response:
            return JSONResponse(CHAT_REPLY)

        async def unfinished(request: Request) -> Response:
            async def body() -> Iterator[bytes]:  # type: ignore[misc]
                for piece in ("half ", "an answer"):
                    chunk = {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "odd",
                        "choices": [{"index": 0, "delta": {"content": piece}}],
                    }
                    yield b"data: " + JSONResponse(chunk).body + b"\n\n"

            return StreamingResponse(body(), media_type="text/event-stream")

        return Starlette(
            routes=[
                Route("/v1/json/chat/completions", json_always, methods=["POST"]),
                Route("/v1/unfinished/chat/completions", unfinished, methods=["POST"]),
            ]
        )


@pytest.fixture(scope="module")
def odd_proxy() -> Iterator[ProxyServer]:
    with OddUpstream() as upstream:
        config = f"""
openai-compatibility:
  - name: json-only
    base-url: {upstream.base_url}/json
    models: [{{name: odd, alias: json-only}}]
  - name: unfinished
    base-url: {upstream.base_url}/unfinished
    models: [{{name: odd, alias: unfinished}}]
"""
        with ProxyServer(config) as proxy:
            yield proxy


@pytest.mark.parametrize("client", CLIENTS)
def test_json_reply_to_a_stream_request_is_streamed_to_the_client(
    client: str, odd_proxy: ProxyServer
) -> None:
    answer = ask(client, odd_proxy.base_url, "json-only", "stream please", stream=True)
    assert answer.text == "json instead of a stream"
    assert (answer.input_tokens, answer.output_tokens, answer.finish) == (9, 4, "stop")


@pytest.mark.parametrize("client", CLIENTS)
def test_stream_closed_without_its_ending_is_an_error(client: str, odd_proxy: ProxyServer) -> None:
    if client == "openai_responses":
        oa = openai.OpenAI(base_url=odd_proxy.base_url + "/v1", api_key="k", max_retries=0)
        events = list(oa.responses.create(model="unfinished", input="x", stream=True))
        assert events[-1].type in ("response.failed", "error")
        return
    with pytest.raises(Exception) as caught:
        ask(client, odd_proxy.base_url, "unfinished", "x", stream=True)
    assert "Error" in type(caught.value).__name__
