"""The request log's capture: what one generation request received and answered, and what was
sent upstream for it, handed to a sink once the reply has ended (docs/logs.md).

``RequestLogMiddleware`` wraps the generation routes, outside the error layer (so it sees every
reply). Per request it picks an id (8 hex characters, also shown in that request's main-log
lines), keeps references to the body chunks that pass (at most ``SECTION_CAP`` bytes of each
side) and puts a list in ``providers.exchanges.EXCHANGES`` for the transport to note its
upstream exchanges in. Nothing is decoded, redacted or written here: the sink (the
management layer's writer) does that later, off the event loop. The config is read from the
application state at each request, so a reload applies to the next one.

A request is handed on when ``request-log`` is on, or when it failed (a status of 400 or more,
or a stream that ended in an error): CLIProxyAPI's error logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cliproxy.config.schema import Config
from cliproxy.model.ids import random_hex
from cliproxy.providers.exchanges import EXCHANGES, REQUEST_ID, Exchange
from cliproxy.server.access import MANAGEMENT_PREFIXES
from cliproxy.server.outcomes import TRACK, RequestTrack, Tried
from cliproxy.state import AppState

SECTION_CAP = 4 * 1024 * 1024  # bytes kept of each body; the rest is counted
NEVER_LOGGED = (*MANAGEMENT_PREFIXES, "/management")


class Tee:
    """The chunks of one body, up to SECTION_CAP bytes, and how many bytes were left out."""

    __slots__ = ("chunks", "dropped", "kept")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.kept = 0
        self.dropped = 0

    def add(self, data: bytes) -> None:
        if not data:
            return
        room = SECTION_CAP - self.kept
        if len(data) > room:
            self.dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
            if not data:
                return
        self.chunks.append(data)
        self.kept += len(data)

    def value(self) -> bytes:
        return b"".join(self.chunks)


class RequestRecord:
    """One client request as the request log writes it. ``attempts``: each upstream attempt
    (which model and credential, how it ended); ``accounts``: what the writer shows for each
    credential id among them (filled on the event loop when the record is handed over)."""

    __slots__ = (
        "accounts",
        "attempts",
        "body",
        "client",
        "client_key",
        "config",
        "exchanges",
        "failed",
        "headers",
        "method",
        "model",
        "path",
        "query",
        "reply",
        "reply_headers",
        "request_id",
        "started",
        "status",
        "stream_error",
    )

    def __init__(self, scope: Scope, config: Config) -> None:
        self.request_id = random_hex(8)
        self.started = time.time()
        self.config = config  # the snapshot this request ran under
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope.get("query_string", b"")
        client = scope.get("client")
        self.client = f"{client[0]}:{client[1]}" if client else ""
        self.headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        self.body = Tee()
        self.exchanges: list[Exchange] = []
        self.status = 0
        self.reply_headers: list[tuple[bytes, bytes]] = []
        self.reply = Tee()
        self.stream_error = ""
        self.failed = False
        self.model = ""  # the model the client asked for; "" when none was read
        self.attempts: list[Tried] = []
        self.accounts: dict[str, tuple[str, str]] = {}  # credential id -> (auth_index, label)
        self.client_key = ""  # its name (client-keys, api-key-names) or its masked form

    def ended(self, track: RequestTrack) -> None:
        self.model = track.model
        self.client_key = track.client_key_name or track.client_key
        self.attempts = list(track.tried)
        relayed = track.stream_outcome
        if relayed is not None and relayed.error is not None:
            self.stream_error = f"{relayed.error.kind.value}: {relayed.error.message}"
        self.failed = self.status >= 400 or bool(self.stream_error)


Sink = Callable[[RequestRecord], None]


class RequestLogMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        state_getter: Callable[[], AppState],
        applies: Callable[[Scope], bool],
        sink: Sink,
    ) -> None:
        self.app = app
        self.state_getter = state_getter
        self.applies = applies
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.applies(scope)
            or scope["path"].startswith(NEVER_LOGGED)
        ):
            await self.app(scope, receive, send)
            return
        config = self.state_getter().runtime.config
        record = RequestRecord(scope, config)
        track = scope.get(TRACK)
        if track is None:  # nobody else tracks this request: the routes write here
            track = scope[TRACK] = RequestTrack()
        body, reply = record.body, record.reply

        async def teed_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.add(message.get("body", b""))
            return message

        async def teed_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                reply.add(message.get("body", b""))
            elif kind == "http.response.start":
                record.status = message["status"]
                record.reply_headers = list(message.get("headers", ()))
            await send(message)

        id_token = REQUEST_ID.set(record.request_id)
        book_token = EXCHANGES.set(record.exchanges)
        try:
            await self.app(scope, teed_receive, teed_send)
        finally:
            EXCHANGES.reset(book_token)
            REQUEST_ID.reset(id_token)
            record.ended(track)
            if config.request_log or record.failed:
                self.sink(record)
