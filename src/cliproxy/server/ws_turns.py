"""Responses over WebSocket without I/O: what one client frame asks for, the history a socket
keeps between turns, and the frames the proxy writes itself (prewarm, errors).

A socket carries many turns. Each `response.create` frame is a Responses body plus `type`;
the body goes upstream as an HTTP streaming request (the upstream leg is HTTP for every
provider), so `previous_response_id` cannot be forwarded: no upstream would know an id that a
different credential, or the proxy itself (a prewarm), handed out. Instead the socket's own
history rebuilds the full conversation (last input + last output + the new input) and the id is
dropped, which also never repeats an item the upstream already holds ("Duplicate item found").
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from cliproxy.model import ErrorKind, ProxyError, invalid
from cliproxy.protocols.registry import OPENAI_RESPONSES
from cliproxy.server.call import json_object

JSON = dict[str, Any]
CREATE = "response.create"
APPEND = "response.append"  # the legacy form: input that continues the last turn
# Terminal events of a turn that finished well, and of one that did not.
COMPLETED = frozenset({"response.completed", "response.done", "response.incomplete"})
FAILED = frozenset({"response.failed", "error"})
_STARTS = frozenset({"response.created", "response.in_progress"})
# Input items that mean "this is a whole (compacted) transcript": used as sent.
_COMPACTION = frozenset({"compaction", "compaction_summary", "compaction_trigger"})
# Output item types whose ids are the upstream's own record: replayed without them, since an
# upstream that stores nothing (Codex's store:false) refuses ids it never kept.
_UNKEYED = frozenset({"message", "reasoning"})
_REMEMBERED = 8  # responses per socket that a later turn may continue from
_ZERO_USAGE: JSON = {
    "input_tokens": 0,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 0,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 0,
}


def read_frame(text: str | None, data: bytes | None) -> JSON:
    """A client frame as a JSON object of a known type; a ProxyError names what is wrong."""
    raw = text if text is not None else data
    if raw is None or not raw.strip():
        raise invalid("empty WebSocket frame; expected a JSON object with type response.create")
    frame = json_object(raw, "WebSocket frame")
    kind = frame.get("type")
    if kind not in (CREATE, APPEND):
        raise invalid(
            f"WebSocket frame type {kind!r} is not supported; send type response.create", "type"
        )
    return frame


def error_frame(error: ProxyError) -> JSON:
    body: JSON = OPENAI_RESPONSES.render_error(error)["error"]
    if body.get("code") is None:
        # A socket client branches on the code (the HTTP status is not on the wire here).
        unknown_model = error.kind is ErrorKind.NOT_FOUND and error.param == "model"
        body["code"] = "model_not_found" if unknown_model else error.kind.value
    return {"type": "error", "status": error.status, "error": body}


def reply_error_frame(status: int, raw: bytes) -> JSON:
    """An error reply of the forwarding core (an HTTP status and its JSON body) as a frame:
    the upstream's own error object when it sent one, else ours for its words."""
    try:
        parsed = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return {"type": "error", "status": status, "error": parsed["error"]}
    error = OPENAI_RESPONSES.parse_error(status, raw)
    return {**error_frame(error), "status": status}


def prewarm_frames(body: JSON) -> tuple[str, list[JSON]]:
    """`generate: false` on a fresh socket: answered here, without an upstream call."""
    response_id = f"resp_prewarm_{uuid.uuid4().hex}"
    response: JSON = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model"),
        "status": "in_progress",
        "output": [],
    }
    done = {**response, "status": "completed", "usage": _ZERO_USAGE}
    return response_id, [
        {"type": "response.created", "sequence_number": 0, "response": response},
        {"type": "response.completed", "sequence_number": 1, "response": done},
    ]


def _as_items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}
        ]
    if isinstance(value, list):
        return value
    raise invalid("input: expected a string or a list of items", "input")


def _replayed(item: Any) -> Any:
    if isinstance(item, dict) and item.get("type") in _UNKEYED and "id" in item:
        return {k: v for k, v in item.items() if k != "id"}
    return item


def _is_transcript(items: list[Any]) -> bool:
    return any(isinstance(i, dict) and i.get("type") in _COMPACTION for i in items)


@dataclass(slots=True)
class Turn:
    """What one frame asks for: the body to send upstream (the whole conversation), or a
    prewarm answered here. ``native`` is the client's own continuation (previous_response_id
    and only the new input), to try first on ``credential``, whose upstream keeps state."""

    body: JSON
    prewarm: bool = False
    native: JSON | None = None
    credential: str | None = None


@dataclass(slots=True)
class _Past:
    items: list[Any]  # the whole conversation up to and including the response's output
    credential: str | None  # the credential that answered it, when its upstream keeps state


@dataclass
class Conversation:
    """One socket's history: the last request sent and the transcripts its responses ended."""

    last_request: JSON | None = None
    transcripts: OrderedDict[str, _Past] = field(default_factory=OrderedDict)
    last_response_id: str | None = None

    def prepare(self, frame: JSON) -> Turn:
        body = {k: v for k, v in frame.items() if k != "type"}
        body["stream"] = True
        previous = body.pop("previous_response_id", None)
        generate = body.pop("generate", None)
        items = _as_items(body.get("input"))
        last = self.last_request
        if last is not None:
            for name in ("model", "instructions"):
                if name not in body and name in last:
                    body[name] = last[name]
        if previous is None and frame.get("type") == APPEND:
            previous = self.last_response_id
            if previous is None:
                raise invalid("response.append needs an earlier response on this socket", "type")
        native: JSON | None = None
        credential: str | None = None
        if previous is not None:
            if not isinstance(previous, str):
                raise invalid("previous_response_id: expected a string", "previous_response_id")
            past = self._history(previous)
            if not _is_transcript(items):
                if past.credential is not None and frame.get("type") == CREATE:
                    native = {**body, "input": items, "previous_response_id": previous}
                    credential = past.credential
                items = [*past.items, *items]
        body["input"] = items
        return Turn(body, generate is False and last is None, native, credential)

    def _history(self, previous: str) -> _Past:
        found = self.transcripts.get(previous)
        if found is None:
            raise ProxyError(
                ErrorKind.INVALID_REQUEST,
                f"previous_response_id '{previous}' is not a response of this connection; "
                "resend the full conversation input without previous_response_id",
                status=409,
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return found

    def record(
        self, body: JSON, response_id: str, output: list[Any], stateful: str | None = None
    ) -> None:
        """A turn that completed: a later one may continue from ``response_id`` (natively on
        ``stateful``, the credential that answered, when its upstream keeps state)."""
        self.last_request = body
        self.last_response_id = response_id
        items = [*body["input"], *(_replayed(i) for i in output)]
        self.transcripts[response_id] = _Past(items, stateful)
        while len(self.transcripts) > _REMEMBERED:
            self.transcripts.popitem(last=False)


class TurnWatch:
    """Reads the events of one turn as they go out: the response id, the output items, and
    whether it ended well, badly, or not at all."""

    __slots__ = ("completed", "ended", "items", "output", "response_id")

    def __init__(self) -> None:
        self.response_id = ""
        self.items: list[Any] = []  # from output_item.done, in order
        self.output: list[Any] | None = None  # from the terminal event's response
        self.ended = False
        self.completed = False

    def see(self, event: JSON) -> bool:
        """Note ``event``; False when it must not go out: a second start of the same turn.
        (relay.py ends a cut pass-through stream with a fresh encoder's error, which opens
        its own response first; on a socket, the turn's one response fails instead.)"""
        kind = event.get("type")
        response = event.get("response")
        if isinstance(response, dict) and isinstance(response.get("id"), str):
            if self.response_id and response["id"] != self.response_id:
                if kind in _STARTS:
                    return False
                response["id"] = self.response_id
            self.response_id = self.response_id or response["id"]
        if kind == "response.output_item.done":
            self.items.append(event.get("item"))
        elif kind in COMPLETED:
            self.ended = self.completed = True
            if isinstance(response, dict) and isinstance(response.get("output"), list):
                self.output = response["output"]
        elif kind in FAILED:
            self.ended = True
        return True

    def final_output(self) -> list[Any]:
        # Some upstreams (Codex's backend) leave the terminal response's output empty.
        return self.output if self.output else [i for i in self.items if i is not None]
