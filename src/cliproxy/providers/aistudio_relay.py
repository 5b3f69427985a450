"""AI Studio Build relays: browser pages that run our Gemini requests for us.

A relay is a WebSocket (server/aistudio_ws.py) whose far end is an AI Studio "Build" app in
the user's browser. We send it ``http_request`` frames; it fetches them from the Gemini API with
the user's AI Studio session and answers with ``http_response`` (whole), or ``stream_start``,
``stream_chunk``... and ``stream_end``, or ``error`` (reference/wave2.md (c)). Every frame is
``{id, type, payload}``; the id ties an answer to its request.

This module knows nothing of WebSockets: a session is given a ``send`` and a ``close`` and is
fed the frames its socket reads. An exchange's answer is read as aiohttp's replies are
(providers/base.py UpstreamReply), so the forwarding core, the pass-through relay and the
translators treat a relay as any other upstream. A relay that goes away fails what it was
answering: before the answer started, the attempt fails (the pool moves on); mid-stream, the
body read raises ConnectionError, which server/relay.py turns into the client's error event.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.base import UpstreamRequest

log = logging.getLogger(__name__)

NAME_PREFIX = "aistudio-"
_ALPHABET = string.ascii_lowercase + string.digits
# The reference's timing (session.go): a ping every 30 s, 60 s without a frame ends the
# session, 10 s to write a frame.
PING_INTERVAL = 30.0
READ_DEADLINE = 60.0
WRITE_TIMEOUT = 10.0
# How long a request waits for the relay's first answer frame.
ANSWER_TIMEOUT = 300.0

Frame = dict[str, Any]
_GONE = "gone"  # the queue item of a session that ended


def new_name() -> str:
    return NAME_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(16))


def valid_name(name: str) -> bool:
    tail = name.removeprefix(NAME_PREFIX)
    return name.startswith(NAME_PREFIX) and len(tail) == 16 and all(c in _ALPHABET for c in tail)


def _flat_headers(raw: object) -> dict[str, str]:
    """``{name: [values]}`` (or plain strings) as lower-cased single values."""
    out: dict[str, str] = {}
    if not isinstance(raw, dict):
        return out
    for name, value in raw.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        out[str(name).lower()] = str(value)
    return out


def _status(payload: Mapping[str, Any], default: int) -> int:
    status = payload.get("status")
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return status
    return default


class _Body:
    def __init__(self, reply: RelayReply) -> None:
        self._reply = reply

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._reply.chunks()


class RelayReply:
    """One relayed answer with aiohttp's reading interface: whole, or a stream read from the
    exchange's frame queue as the relay sends it."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes | None,
        queue: asyncio.Queue[Frame | str] | None,
        done: Callable[[], None],
    ) -> None:
        self.status = status
        default = "application/json" if queue is None else "text/event-stream"
        self.headers: Mapping[str, str] = {"content-type": default, **headers}
        self.content_type = self.headers["content-type"].split(";", 1)[0].strip()
        self.content = _Body(self)
        self._body = body
        self._queue = queue
        self._done = done

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._queue is None:
            if self._body:
                yield self._body
            return
        try:
            while True:
                item = await self._queue.get()
                if item == _GONE:
                    raise ConnectionError("the AI Studio relay disconnected mid-stream")
                assert isinstance(item, dict)
                kind, payload = item.get("type"), item.get("payload") or {}
                if kind == "stream_chunk":
                    data = payload.get("data") if isinstance(payload, dict) else None
                    if isinstance(data, str) and data:
                        yield data.encode()
                elif kind == "stream_end":
                    return
                elif kind == "error":
                    message = payload.get("error") if isinstance(payload, dict) else None
                    raise ConnectionError(f"the AI Studio relay failed mid-stream: {message}")
        finally:
            self._done()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def release(self) -> None:
        self._done()


class RelaySession:
    """One connected relay: its outstanding exchanges by frame id."""

    def __init__(
        self,
        name: str,
        send: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.name = name
        self._send = send
        self._close = close
        self.write_timeout = write_timeout
        self.pending: dict[str, asyncio.Queue[Frame | str]] = {}
        self.ended = False
        self._counter = 0

    async def send_frame(self, frame: Frame) -> None:
        text = orjson.dumps(frame).decode()
        try:
            await asyncio.wait_for(self._send(text), self.write_timeout)
        except (TimeoutError, OSError, RuntimeError) as exc:
            self.end()
            raise ConnectionError(f"cannot write to the AI Studio relay {self.name}") from exc

    async def exchange(
        self, request: UpstreamRequest, timeout: float = ANSWER_TIMEOUT
    ) -> RelayReply:
        if self.ended:
            raise _gone(self.name)
        self._counter += 1
        frame_id = f"{self.name}-{self._counter}"
        queue: asyncio.Queue[Frame | str] = asyncio.Queue()
        self.pending[frame_id] = queue

        def done() -> None:
            self.pending.pop(frame_id, None)

        payload = {
            "method": request.method,
            "url": request.url,
            "headers": {name: [value] for name, value in request.headers.items()},
            "body": request.body.decode("utf-8", "replace"),
            "sent_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        try:
            await self.send_frame({"id": frame_id, "type": "http_request", "payload": payload})
            first = await asyncio.wait_for(queue.get(), timeout)
        except ConnectionError as exc:
            done()
            raise _gone(self.name) from exc
        except TimeoutError as exc:
            done()
            raise ProxyError(
                ErrorKind.TIMEOUT, f"the AI Studio relay {self.name} did not answer in time"
            ) from exc
        if first == _GONE:
            done()
            raise _gone(self.name)
        assert isinstance(first, dict)
        kind = first.get("type")
        raw = first.get("payload")
        body: dict[str, Any] = raw if isinstance(raw, dict) else {}
        headers = _flat_headers(body.get("headers"))
        if kind == "stream_start":
            return RelayReply(_status(body, 200), headers, None, queue, done)
        done()
        if kind == "http_response":
            text = body.get("body")
            data = text.encode() if isinstance(text, str) else b""
            return RelayReply(_status(body, 200), headers, data, None, lambda: None)
        # An error frame (or a stream frame before stream_start): an error reply in Gemini's
        # shape, so the status is classified as an upstream's would be (429 rests, 5xx retries).
        message = body.get("error") if kind == "error" else f"unexpected '{kind}' frame first"
        status = _status(body, 502)
        error = {"error": {"code": status, "message": f"AI Studio relay: {message}"}}
        return RelayReply(status, {}, orjson.dumps(error), None, lambda: None)

    def receive(self, frame: Frame) -> str | None:
        """A frame the relay sent; None when taken, else why it was not (for the log)."""
        frame_id = frame.get("id")
        queue = self.pending.get(frame_id) if isinstance(frame_id, str) else None
        if queue is None:
            return f"frame id {frame_id!r} answers no outstanding request"
        queue.put_nowait(frame)
        return None

    def end(self) -> None:
        """The socket is gone: everything outstanding fails."""
        self.ended = True
        for queue in self.pending.values():
            queue.put_nowait(_GONE)
        self.pending.clear()

    async def terminate(self, code: int, reason: str) -> None:
        self.end()
        try:
            await self._close(code, reason)
        except (OSError, RuntimeError):
            pass  # already closed


def _gone(name: str) -> ProxyError:
    return ProxyError(ErrorKind.UPSTREAM, f"the AI Studio relay {name} disconnected")


class RelayHub:
    """The connected relays by name; one per name (a new connection replaces the old)."""

    def __init__(self) -> None:
        self.sessions: dict[str, RelaySession] = {}
        self.ping_interval = PING_INTERVAL
        self.read_deadline = READ_DEADLINE
        self.answer_timeout = ANSWER_TIMEOUT
        self._closing: set[asyncio.Task[None]] = set()  # held until done (the loop keeps weak refs)

    def attach(self, session: RelaySession) -> RelaySession | None:
        """Register ``session``; the one it replaces (to be closed), if any."""
        old = self.sessions.get(session.name)
        self.sessions[session.name] = session
        return old

    def detach(self, session: RelaySession) -> bool:
        """Forget ``session`` if it is still the current one under its name."""
        if self.sessions.get(session.name) is session:
            del self.sessions[session.name]
            return True
        return False

    async def exchange(self, name: str, request: UpstreamRequest) -> RelayReply:
        session = self.sessions.get(name)
        if session is None:
            raise _gone(name)
        return await session.exchange(request, self.answer_timeout)

    def close_all(self, reason: str) -> None:
        """End every session (ws-auth was turned on: sessions admitted without a key go)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for session in list(self.sessions.values()):
            session.end()
            if loop is not None:
                task = loop.create_task(session.terminate(1008, reason))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        if self.sessions:
            log.info("closed %d AI Studio relay session(s): %s", len(self.sessions), reason)
