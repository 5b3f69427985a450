"""The scripting core shared by every simulator: the reply queue, the request log, API-key
checks, and the response object that delivers a rendered reply (chunked, slowed, cut or hung).

A vendor simulator subclasses `Simulator` and supplies only wire-format knowledge: how to read
the key and the last user text from a request, and how to render a `Reply` as JSON, as a stream
of frames, or as an error body.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .reply import Reply
from .server import SimServer, deliberate_abort

# One piece of a streamed body, and whether it carries model output. `cut_after` and `delay`
# count only content frames; structural events (start, stop, usage, [DONE]) are free.
Frame = tuple[bytes, bool]
ReplySource = Reply | Callable[["RecordedRequest"], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived. `headers` keys are lower-case; `json` is None when the body
    is empty or not JSON."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any


@dataclass(frozen=True)
class Turn:
    """What a renderer needs to know about the request it answers."""

    model: str
    request: RecordedRequest


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def estimate_tokens(body: Any) -> int:
    """A stand-in token count: about four bytes of request JSON per token."""
    return max(1, len(orjson.dumps(body)) // 4)


def joined_text(parts: Any, text_types: tuple[str, ...] = ("text",)) -> str:
    """The text of a content field that is a string or a list of typed parts."""
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    texts = [
        p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") in text_types
    ]
    return "".join(t for t in texts if isinstance(t, str))


def sse(data: Any, event: str | None = None, end: bytes = b"\n\n") -> bytes:
    """One SSE frame: optional `event:` line, one `data:` line (JSON unless already bytes)."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + end


class ScriptedResponse(Response):
    """Delivers frames honouring the reply's delivery options.

    Streams go out frame by frame (chunked encoding). A cut stops before the next content
    frame, or before the terminal events once the content is exhausted, then drops the
    connection without the closing zero-length chunk, so clients see a truncated body. A
    non-stream body declares its full Content-Length, so a cut there is a short body."""

    def __init__(
        self,
        *,
        reply: Reply,
        status: int,
        headers: dict[str, str],
        media_type: str,
        frames: Sequence[Frame],
        streaming: bool,
        closing: asyncio.Event,
    ) -> None:
        self.reply = reply
        self.status_code = status
        self.background = None
        self.frames = list(frames)
        self.streaming = streaming
        self.closing = closing
        all_headers = {"content-type": media_type, **{k.lower(): v for k, v in headers.items()}}
        if not streaming:
            all_headers["content-length"] = str(sum(len(data) for data, _ in self.frames))
        self.raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in all_headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reply = self.reply
        if reply.hang and reply.cut_after is None:
            await self._wait_until_gone(receive)
            deliberate_abort.set(True)
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        completed = await (self._send_stream(send) if self.streaming else self._send_body(send))
        if completed:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if reply.hang:
            await self._wait_until_gone(receive)
        deliberate_abort.set(True)

    async def _send_stream(self, send: Send) -> bool:
        reply = self.reply
        last_content = max((i for i, (_, c) in enumerate(self.frames) if c), default=-1)
        sent = 0
        for index, (data, is_content) in enumerate(self.frames):
            if reply.cut_after is not None and (
                (is_content and sent >= reply.cut_after) or index > last_content
            ):
                return False
            if is_content:
                if reply.delay and await self._sleep(reply.delay):
                    return False
                sent += 1
            await send({"type": "http.response.body", "body": data, "more_body": True})
        return True

    async def _send_body(self, send: Send) -> bool:
        body = b"".join(data for data, _ in self.frames)
        if self.reply.delay and await self._sleep(self.reply.delay):
            return False
        if self.reply.cut_after is not None:
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            return False
        await send({"type": "http.response.body", "body": body, "more_body": True})
        return True

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, waking early when the server stops. True means: stopping, give up."""
        try:
            await asyncio.wait_for(self.closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _wait_until_gone(self, receive: Receive) -> None:
        """Block until the client disconnects or the server stops."""

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        waiters = [
            asyncio.ensure_future(disconnected()),
            asyncio.ensure_future(self.closing.wait()),
        ]
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()


class Simulator(SimServer):
    """Shared scripting state and request pipeline; vendors override the wire-format hooks."""

    default_models: tuple[str, ...] = ()
    stream_media_type = "text/event-stream"

    def __init__(
        self, *, api_keys: set[str] | None = None, models: list[str] | None = None
    ) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._replies: deque[ReplySource] = deque()
        self._requests: list[RecordedRequest] = []
        self._reads: list[RecordedRequest] = []
        self._initial_keys = set(api_keys or ())
        self._initial_models = list(models or self.default_models)
        self.api_keys: set[str] = set(self._initial_keys)
        self.models: list[str] = list(self._initial_models)
        # Reject requests that the real API would reject (missing required fields).
        self.validate = True
        # What the token-counting endpoints answer; None estimates from the request size.
        self.token_count: int | None = None

    # ----- scripting API -------------------------------------------------------------------

    def queue(self, *replies: ReplySource) -> Self:
        """Answer the next generation requests with these replies, in order. A callable gets
        the RecordedRequest and returns a Reply. When the queue is empty the sim echoes."""
        with self._lock:
            self._replies.extend(replies)
        return self

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def reads(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._reads)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise AssertionError(f"{type(self).__name__} received no request")
            return self._requests[-1]

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        with self._lock:
            return len(self._replies)

    def reset(self) -> None:
        """Forget queued replies and recorded requests; restore api_keys and models."""
        with self._lock:
            self._replies.clear()
            self._requests.clear()
            self._reads.clear()
            self.api_keys = set(self._initial_keys)
            self.models = list(self._initial_models)
            self.validate = True
            self.token_count = None

    # ----- wire-format hooks (vendors override) --------------------------------------------

    def presented_key(self, rec: RecordedRequest) -> str | None:
        raise NotImplementedError

    def last_user_text(self, body: Any) -> str:
        raise NotImplementedError

    def error_payload(self, status: int, message: str | None, reply: Reply) -> Any:
        raise NotImplementedError

    def render_json(self, reply: Reply, turn: Turn) -> Any:
        raise NotImplementedError

    def render_stream(self, reply: Reply, turn: Turn) -> list[Frame]:
        raise NotImplementedError

    def stream_content_type(self, turn: Turn) -> str:
        return self.stream_media_type

    def garbage_stream(self) -> bytes:
        return b"data: {this is not json\n\n"

    # ----- pipeline used by the vendors' route handlers ------------------------------------

    async def record(self, request: Request, *, read: bool = False) -> RecordedRequest:
        """Keep the request in ``requests``; ``read``: in ``reads`` instead (account reads such
        as model lists and usage windows, which a proxy makes on its own schedule and which
        must not stand in for the last generation request a test looks at)."""
        body = await request.body()
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = None
        rec = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            json=parsed,
        )
        with self._lock:
            (self._reads if read else self._requests).append(rec)
        return rec

    def check_auth(self, rec: RecordedRequest) -> Response | None:
        """None when the key is accepted (or no keys are configured), else the 401 reply."""
        if not self.api_keys:
            return None
        key = self.presented_key(rec)
        if key in self.api_keys:
            return None
        message = "missing API key" if key is None else "invalid API key"
        return self.error_response(401, message)

    def error_response(self, status: int, message: str | None = None, **options: Any) -> Response:
        return self.respond(Reply.error(status, message, **options), turn=None, stream=False)

    def next_reply(self, rec: RecordedRequest) -> Reply:
        with self._lock:
            source = self._replies.popleft() if self._replies else None
        if source is None:
            return Reply.text(f"echo: {self.last_user_text(rec.json)}")
        return source(rec) if callable(source) else source

    def respond(self, reply: Reply, turn: Turn | None, *, stream: bool) -> Response:
        headers = dict(reply.headers)
        if reply.retry_after is not None:
            headers.setdefault("retry-after", str(reply.retry_after))
        if reply.kind == "error":
            payload = (
                reply.body
                if reply.body is not None
                else self.error_payload(reply.status, reply.message, reply)
            )
            return self._response(
                reply,
                reply.status,
                headers,
                "application/json",
                [(orjson.dumps(payload), True)],
                False,
            )
        if reply.kind == "garbage":
            if stream:
                return self._response(
                    reply,
                    200,
                    headers,
                    self.stream_media_type,
                    [(self.garbage_stream(), True)],
                    True,
                )
            return self._response(
                reply, 200, headers, "application/json", [(b"<html>not json {", True)], False
            )
        assert turn is not None
        if stream:
            media_type = self.stream_content_type(turn)
            return self._response(
                reply, 200, headers, media_type, self.render_stream(reply, turn), True
            )
        body = orjson.dumps(self.render_json(reply, turn))
        return self._response(reply, 200, headers, "application/json", [(body, True)], False)

    def _response(
        self,
        reply: Reply,
        status: int,
        headers: dict[str, str],
        media_type: str,
        frames: list[Frame],
        streaming: bool,
    ) -> ScriptedResponse:
        return ScriptedResponse(
            reply=reply,
            status=status,
            headers=headers,
            media_type=media_type,
            frames=frames,
            streaming=streaming,
            closing=self.closing,
        )

    def counted_tokens(self, body: Any) -> int:
        return self.token_count if self.token_count is not None else estimate_tokens(body)

    def json_response(self, payload: Any) -> Response:
        return Response(orjson.dumps(payload), media_type="application/json")
