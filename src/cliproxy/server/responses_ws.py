"""`GET /v1/responses` upgraded to a WebSocket: the Responses API as the Codex CLI speaks it
first (docs/websocket.md; the frames and the history are in server/ws_turns.py).

Each `response.create` frame is one turn, sent through the same forwarding core as
`POST /v1/responses` with `stream: true` (pass-through to Codex accounts and codex-api-key,
translated for any other provider); the reply's SSE events go back one JSON text frame each.
Errors are `{"type": "error", ...}` frames and the socket stays open for the next turn. The
access layer has checked the client key at the upgrade. A client that goes away mid-turn
cancels the turn, which closes the upstream connection (as server/hangup.py does for HTTP).
Each turn is one RequestOutcome, as an HTTP request is (usage ledger, counts, metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.protocols.registry import OPENAI_RESPONSES
from cliproxy.protocols.sse import SSEParser
from cliproxy.providers.base import mask_secret
from cliproxy.routing.pins import ProviderPin
from cliproxy.routing.registry import Candidate
from cliproxy.server.access import presented_key
from cliproxy.server.call import ClientCall, require_model
from cliproxy.server.forward import forward
from cliproxy.server.key_policy import admit, policy_of, release
from cliproxy.server.outcomes import RequestTrack
from cliproxy.server.pinned import pin_of
from cliproxy.server.ws_turns import (
    JSON,
    Conversation,
    Turn,
    TurnWatch,
    error_frame,
    prewarm_frames,
    read_frame,
    reply_error_frame,
)
from cliproxy.state import AppState
from cliproxy.usage.events import RequestOutcome

log = logging.getLogger(__name__)

TURN_STATE = "x-codex-turn-state"
# Headers of the upgrade itself, not of any one turn: never relayed upstream.
_SOCKET_HEADERS = ("sec-websocket-", "openai-beta")
# Providers whose upstream keeps responses (store) for a later previous_response_id.
STATEFUL = frozenset({"codex-api-key"})


class _ClientGone(Exception):
    """The client closed the socket (or it broke) while a frame was going out."""


async def responses_socket(websocket: WebSocket) -> None:
    state: AppState = websocket.app.state.cliproxy
    turn_state = websocket.headers.get(TURN_STATE)
    # Echoed, so a client that reconnects keeps its sticky turn state (reference/wave2.md).
    echo = [(TURN_STATE.encode(), turn_state.encode("latin-1"))] if turn_state else None
    await websocket.accept(headers=echo)
    await _Socket(state, websocket).run()


class _Socket:
    def __init__(self, state: AppState, websocket: WebSocket) -> None:
        self.state = state
        self.websocket = websocket
        self.scope = websocket.scope
        self.conversation = Conversation()
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.gone = asyncio.Event()
        headers = {k: v for k, v in websocket.headers.items() if not k.startswith(_SOCKET_HEADERS)}
        headers["accept"] = "text/event-stream"
        self.headers: Mapping[str, str] = headers
        self.query: Mapping[str, str] = dict(websocket.query_params)
        key = presented_key(headers, self.scope.get("query_string", b""))
        self.client_key = mask_secret(key) if key else ""
        policy = policy_of(self.scope)
        self.client_key_name = state.client_key_name(key, policy) if key else ""

    async def run(self) -> None:
        reader = asyncio.create_task(self._read(), name="responses socket reader")
        try:
            while True:
                message = await self.inbox.get()
                if message["type"] == "websocket.disconnect" or self.gone.is_set():
                    return  # frames of a client that has left ask nobody
                turn = asyncio.create_task(self._frame(message))
                gone = asyncio.create_task(self.gone.wait())
                await asyncio.wait({turn, gone}, return_when=asyncio.FIRST_COMPLETED)
                gone.cancel()
                if not turn.done():
                    log.info("client left the Responses socket mid-turn; upstream call cancelled")
                    turn.cancel()
                with contextlib.suppress(asyncio.CancelledError, _ClientGone):
                    await turn
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self) -> None:
        """Client frames into the inbox, so a hang-up is heard while a turn streams."""
        try:
            while True:
                message = await self.websocket.receive()
                await self.inbox.put(message)
                if message["type"] == "websocket.disconnect":
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            await self.inbox.put({"type": "websocket.disconnect", "code": 1006})
        finally:
            self.gone.set()

    async def _send(self, frame: JSON | str) -> int:
        text = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
        try:
            await self.websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise _ClientGone from exc
        return len(text)

    async def _frame(self, message: Message) -> None:
        try:
            frame = read_frame(message.get("text"), message.get("bytes"))
            turn = self.conversation.prepare(frame)
        except ProxyError as error:
            await self._send(error_frame(error))
            return
        if turn.prewarm:
            response_id, frames = prewarm_frames(turn.body)
            for out in frames:
                await self._send(out)
            self.conversation.record(turn.body, response_id, [])
            return
        observers = self.state.observers
        # Always a track of its own: the turn's answering credential is read from it.
        track = RequestTrack(perf_counter())
        track.client_key, track.client_key_name = self.client_key, self.client_key_name
        try:
            await self._turn(turn, track)
        except (_ClientGone, asyncio.CancelledError):
            track.hung_up = True
            raise
        except Exception:
            # A bug: said to the client as an error frame, as the error layer does for HTTP
            # (it does not wrap sockets); the traceback goes only to the log.
            log.exception("unhandled error in a Responses socket turn")
            bug = ProxyError(ErrorKind.SERVER, "internal error in cliproxy; see its log")
            track.error_kind, track.status = bug.kind, bug.status
            await self._send(error_frame(bug))
            track.finished = True
        finally:
            release(self.scope, self.state.key_limits)
            if observers.wants(RequestOutcome):
                observers.emit(track.outcome(self.scope, perf_counter()))

    def _call(
        self, body: JSON, model: str, track: RequestTrack, pin: ProviderPin | None
    ) -> ClientCall:
        return ClientCall(
            protocol=OPENAI_RESPONSES,
            body=body,
            model=model,
            stream=True,
            headers=self.headers,
            query=self.query,
            started=track.started,
            track=track,
            pin=pin,
        )

    async def _turn(self, turn: Turn, track: RequestTrack) -> None:
        state = self.state
        track.client_protocol, track.stream = OPENAI_RESPONSES.name, True
        try:
            model = track.model = require_model(turn.body)
            admit(self.scope, state.key_limits, model, OPENAI_RESPONSES.name, True)
            response: Response | None = None
            if turn.native is not None and turn.credential is not None:
                response = await self._native(turn.native, turn.credential, model, track)
            if response is None:
                pin = pin_of(self.scope, state)
                response = await forward(state, self._call(turn.body, model, track, pin))
        except ProxyError as error:
            track.error_kind, track.status = error.kind, error.status
            track.bytes_out += await self._send(error_frame(error))
            track.finished = True
            return
        track.status = response.status_code
        if not isinstance(response, StreamingResponse) or response.status_code >= 400:
            track.bytes_out += await self._send(_error_of(response))
            track.finished = True
            return
        state.metrics.active_streams += 1
        try:
            watch = await self._relay(response, track)
        finally:
            state.metrics.active_streams -= 1
        track.finished = True
        if watch.completed and watch.response_id:
            output = watch.final_output()
            self.conversation.record(turn.body, watch.response_id, output, _stateful(track, turn))

    async def _native(
        self, body: JSON, credential: str, model: str, track: RequestTrack
    ) -> StreamingResponse | None:
        """The client's own continuation on the credential that holds the previous response;
        None when it cannot serve it (resting, gone, or the id expired upstream): the turn
        then goes to the pool as the whole conversation."""
        pin = _SameCredential(word=credential, providers=frozenset(), credential_id=credential)
        try:
            response = await forward(self.state, self._call(body, model, track, pin))
        except ProxyError as error:
            log.info("%s: no native continuation (%s); resending the whole turn", credential, error)
            return None
        if isinstance(response, StreamingResponse) and response.status_code < 400:
            return response
        log.info(
            "%s refused the continuation (%d); resending the whole turn",
            credential,
            response.status_code,
        )
        return None

    async def _relay(self, response: StreamingResponse, track: RequestTrack) -> TurnWatch:
        """The reply's SSE events, one text frame each (relay.py has already ended a cut or
        failed stream with the protocol's own error event)."""
        parser = SSEParser()
        watch = TurnWatch()
        body = response.body_iterator
        try:
            async for chunk in body:
                data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
                for event in parser.feed(data):
                    await self._relay_event(event.event, event.data, watch, track)
            for event in parser.close():
                await self._relay_event(event.event, event.data, watch, track)
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        if not watch.ended:
            # Never a silent end: relay.py promises a terminal event; keep that here too.
            error = ProxyError(ErrorKind.UPSTREAM, "upstream stream ended early")
            track.error_kind = error.kind
            track.bytes_out += await self._send(error_frame(error))
        return watch

    async def _relay_event(
        self, name: str | None, data: str, watch: TurnWatch, track: RequestTrack
    ) -> None:
        if not data or data == "[DONE]":
            return
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return  # relay.py vets every event; nothing unreadable gets this far
        if not isinstance(event, dict):
            return
        if "type" not in event and name:
            event["type"] = name
            data = orjson.dumps(event).decode()
        response = event.get("response")
        before = response.get("id") if isinstance(response, dict) else None
        if not watch.see(event):
            return
        if isinstance(response, dict) and response.get("id") != before:
            data = orjson.dumps(event).decode()  # the turn's own response id put back
        if track.first_byte is None:
            track.first_byte = perf_counter()
        track.bytes_out += await self._send(data)


@dataclass(frozen=True, slots=True)
class _SameCredential(ProviderPin):
    """Only the one credential that holds a socket's previous response."""

    credential_id: str = ""

    def admits(self, candidate: Candidate) -> bool:
        return candidate.credential.id == self.credential_id


def _stateful(track: RequestTrack, turn: Turn) -> str | None:
    """The credential that answered, when its upstream keeps the response for a later
    previous_response_id: the OpenAI platform's Responses API (codex-api-key) unless the
    request said store:false. Codex accounts store nothing (their provider forces store:false)."""
    candidate = track.candidate
    if candidate is None or candidate.provider.name not in STATEFUL:
        return None
    return None if turn.body.get("store") is False else candidate.credential.id


def _error_of(response: Response) -> JSON:
    return reply_error_frame(response.status_code, bytes(response.body))
