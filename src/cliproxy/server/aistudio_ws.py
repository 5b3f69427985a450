"""`GET /v1/ws`: AI Studio Build relays connect here and become `aistudio` credentials.

The access layer has admitted the socket (server/access.py relay_refusal: a client key with
ws-auth on, this machine only with it off) and the browser layer has checked its Origin. The
relay names itself with ``?id=aistudio-<16 lowercase alphanumerics>`` or is given a new name;
a second connection under a name replaces the first. While the socket lives, the name is a
runtime-only credential routed like any other (state.py add_relay); when it closes, the
credential goes and whatever it was answering fails (providers/aistudio_relay.py).

Liveness: the ASGI server answers WebSocket control pings but does not show us their pongs, so
the reference's timing is kept with app-level frames: a ``ping`` every 30 s, which a relay
answers with ``pong``, and a session that sends nothing for 60 s is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from cliproxy.providers.aistudio_relay import RelaySession, new_name, valid_name
from cliproxy.state import AppState

log = logging.getLogger(__name__)

_ANSWERS = frozenset({"http_response", "stream_start", "stream_chunk", "stream_end", "error"})


async def relay_socket(websocket: WebSocket) -> None:
    state: AppState = websocket.app.state.cliproxy
    await websocket.accept()
    asked = websocket.query_params.get("id")
    if asked is not None and not valid_name(asked):
        problem = f"id: '{asked[:40]}' is not aistudio-<16 lowercase letters/digits>"
        await websocket.send_text(orjson.dumps(_error_frame(problem)).decode())
        await websocket.close(1008, "bad relay id")
        return
    name = asked or new_name()

    async def close(code: int, reason: str) -> None:
        await websocket.close(code, reason)

    hub = state.relays
    session = RelaySession(name, websocket.send_text, close)
    replaced = hub.attach(session)
    if replaced is not None:
        log.info("AI Studio relay %s reconnected; the previous connection is closed", name)
        await replaced.terminate(1000, "replaced by a new connection with the same id")
    state.add_relay(name)
    log.info("AI Studio relay %s connected", name)
    pinger = asyncio.create_task(_ping(session, hub.ping_interval), name=f"{name} pings")
    try:
        await _read(websocket, session, hub.read_deadline)
    finally:
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger
        session.end()
        if hub.detach(session):
            state.remove_relay(name)
            log.info("AI Studio relay %s disconnected; its credential is gone", name)


async def _ping(session: RelaySession, interval: float) -> None:
    count = 0
    with contextlib.suppress(ConnectionError):
        while not session.ended:
            await asyncio.sleep(interval)
            count += 1
            await session.send_frame({"id": f"ping-{count}", "type": "ping"})


async def _read(websocket: WebSocket, session: RelaySession, deadline: float) -> None:
    number = 0
    while not session.ended:
        try:
            message = await asyncio.wait_for(websocket.receive(), deadline)
        except TimeoutError:
            log.warning(
                "AI Studio relay %s sent nothing for %.0f s; closed", session.name, deadline
            )
            await session.terminate(1001, "no frame within the read deadline")
            return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        if message["type"] == "websocket.disconnect":
            return
        number += 1
        problem = await _frame(session, message.get("text"), message.get("bytes"))
        if problem is not None:
            log.warning("AI Studio relay %s, frame %d: %s", session.name, number, problem)
            with contextlib.suppress(ConnectionError):
                await session.send_frame(_error_frame(problem))


async def _frame(session: RelaySession, text: str | None, data: bytes | None) -> str | None:
    """Handle one frame; a description of what is wrong with it, or None."""
    raw = text if text is not None else (data or b"")
    try:
        frame: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"not JSON ({exc})"
    if not isinstance(frame, dict):
        return "a frame must be a JSON object {id, type, payload}"
    kind = frame.get("type")
    if kind == "ping":
        with contextlib.suppress(ConnectionError):
            await session.send_frame({"id": frame.get("id"), "type": "pong"})
        return None
    if kind == "pong":
        return None  # its arrival has refreshed the read deadline
    if kind not in _ANSWERS:
        return f"type: unknown frame type {kind!r}"
    if "payload" in frame and not isinstance(frame["payload"], dict | None):
        return f"payload: must be an object in a '{kind}' frame"
    return session.receive(frame)


def _error_frame(message: str) -> dict[str, Any]:
    """What we tell a relay about a frame of its own we could not take."""
    return {"id": None, "type": "error", "payload": {"error": message}}
