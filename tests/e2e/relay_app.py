"""A simulated AI Studio Build app: the browser page that relays Gemini requests for the proxy.

A `websockets` client on its own event loop (in a thread, so the tests can call the official
SDKs synchronously meanwhile). It answers each ``http_request`` frame with a canned Gemini
reply, whole or as an SSE stream, as the page would after fetching the URL it was given.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Coroutine
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ANSWER = "hello from the relay"


def gemini_reply(text: str, model: str) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7},
        "modelVersion": model,
    }


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


class RelayApp:
    """One relay page. ``mode``: "answer" (normal), "cut" (a stream is cut after its first
    chunk by closing the socket), "error" (every request answered by an error frame),
    "silent" (requests taken and never answered)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.mode = "answer"
        self.requests: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []  # every frame, pings included
        self.closed = threading.Event()
        self.ws: ClientConnection | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._reader: Any = None

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def connect(self) -> RelayApp:
        async def opening() -> None:
            self.ws = await connect(self.url, additional_headers=self.headers)
            self._reader = asyncio.ensure_future(self._serve())

        self.run(opening())
        return self

    def send(self, frame: dict[str, Any] | str) -> None:
        assert self.ws is not None
        text = frame if isinstance(frame, str) else json.dumps(frame)
        self.run(self.ws.send(text))

    def leave_after_a_request(self) -> concurrent.futures.Future[None]:
        """Close the socket once a request has come (it is left unanswered in "silent")."""

        async def leave() -> None:
            while not self.requests:
                await asyncio.sleep(0.01)
            assert self.ws is not None
            await self.ws.close()

        return asyncio.run_coroutine_threadsafe(leave(), self._loop)

    def close(self) -> None:
        if self.ws is not None:
            self.run(self.ws.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _serve(self) -> None:
        assert self.ws is not None
        try:
            async for text in self.ws:
                frame = json.loads(text)
                self.received.append(frame)
                if frame.get("type") == "ping":
                    await self.ws.send(json.dumps({"id": frame["id"], "type": "pong"}))
                elif frame.get("type") == "http_request":
                    self.requests.append(frame)
                    await self._answer(frame)
        except Exception:  # the socket went; the test looks at `closed`
            pass
        finally:
            self.closed.set()

    async def _answer(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        frame_id, payload = frame["id"], frame["payload"]
        url: str = payload["url"]
        model = url.rsplit("/", 1)[1].split(":", 1)[0]

        async def reply(kind: str, body: dict[str, Any] | None = None) -> None:
            assert self.ws is not None
            await self.ws.send(json.dumps({"id": frame_id, "type": kind, "payload": body or {}}))

        if self.mode == "silent":
            return  # the page took the request and will never answer it
        if self.mode == "error":
            await reply("error", {"error": "quota exhausted", "status": 429})
        elif ":countTokens" in url:
            await reply("http_response", {"status": 200, "body": json.dumps({"totalTokens": 5})})
        elif ":streamGenerateContent" in url:
            await reply(
                "stream_start", {"status": 200, "headers": {"Content-Type": ["text/event-stream"]}}
            )
            words = ANSWER.split(" ")
            for index, word in enumerate(words):
                piece = word if index == 0 else " " + word
                data = gemini_reply(piece, model)
                if index < len(words) - 1:
                    del data["candidates"][0]["finishReason"]
                await reply("stream_chunk", {"data": sse(data)})
                if self.mode == "cut":
                    await self.ws.close()
                    return
            await reply("stream_end")
        else:
            body = json.dumps(gemini_reply(ANSWER, model))
            await reply("http_response", {"status": 200, "headers": {}, "body": body})
