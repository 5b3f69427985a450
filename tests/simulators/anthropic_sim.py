"""Anthropic Messages upstream: POST /v1/messages (also ?beta=true), POST
/v1/messages/count_tokens, GET /v1/models."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import Frame, RecordedRequest, Simulator, Turn, joined_text, new_id, sse
from .reply import Reply

STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_DEFAULT_MESSAGES = {
    401: "invalid x-api-key",
    429: "Number of request tokens has exceeded your per-minute rate limit",
    529: "Overloaded",
}


class AnthropicSim(Simulator):
    """base_url is http://127.0.0.1:PORT (the client appends /v1/messages)."""

    default_models = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The real API answers 400 when the anthropic-version header is missing.
        self.require_version = True

    def reset(self) -> None:
        super().reset()
        self.require_version = True

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # ----- routes -----------------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        rec = await self.record(request)
        if rejected := self._reject(rec, ("model", "max_tokens", "messages")):
            return rejected
        body = rec.json if isinstance(rec.json, dict) else {}
        reply = self.next_reply(rec)
        turn = Turn(model=str(body.get("model", "")), request=rec)
        return self.respond(reply, turn, stream=bool(body.get("stream")))

    async def _count_tokens(self, request: Request) -> Response:
        rec = await self.record(request)
        if rejected := self._reject(rec, ("model", "messages")):
            return rejected
        return self.json_response({"input_tokens": self.counted_tokens(rec.json)})

    async def _models(self, request: Request) -> Response:
        rec = await self.record(request)
        if rejected := self._reject(rec, ()):
            return rejected
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in self.models
        ]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return self.json_response(
            {"data": data, "has_more": False, "first_id": first, "last_id": last}
        )

    def _reject(self, rec: RecordedRequest, required: tuple[str, ...]) -> Response | None:
        if denied := self.check_auth(rec):
            return denied
        if not self.validate:
            return None
        if self.require_version and "anthropic-version" not in rec.headers:
            return self.error_response(400, "anthropic-version: header is required")
        if rec.method == "POST" and not isinstance(rec.json, dict):
            return self.error_response(400, "There was an error parsing the body of your request")
        for name in required:
            if name not in rec.json:
                return self.error_response(400, f"{name}: Field required")
        body = rec.json if isinstance(rec.json, dict) else {}
        if unpaired := _unpaired_tool_use(body.get("messages")):
            return self.error_response(400, unpaired)
        return None

    # ----- wire-format hooks ------------------------------------------------------------------

    def presented_key(self, rec: RecordedRequest) -> str | None:
        if key := rec.headers.get("x-api-key"):
            return key
        scheme, _, token = rec.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def last_user_text(self, body: Any) -> str:
        messages = body.get("messages") if isinstance(body, dict) else None
        for message in reversed(messages if isinstance(messages, list) else []):
            if isinstance(message, dict) and message.get("role") == "user":
                return joined_text(message.get("content"))
        return ""

    def error_payload(self, status: int, message: str | None, reply: Reply) -> Any:
        err_type = reply.error_type or _ERROR_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        text = message or _DEFAULT_MESSAGES.get(status, err_type.replace("_", " "))
        return {
            "type": "error",
            "error": {"type": err_type, "message": text},
            "request_id": new_id("req_"),
        }

    def render_json(self, reply: Reply, turn: Turn) -> Any:
        content: list[dict[str, Any]] = []
        if reply.reasoning:
            content.append(
                {"type": "thinking", "thinking": reply.reasoning, "signature": _SIGNATURE}
            )
        if reply.content or not reply.tool_calls:
            content.append({"type": "text", "text": reply.content})
        content += [_tool_use(call.call_id, call.name, call.arguments) for call in reply.tool_calls]
        message = _message_shell(turn.model, reply)
        message.update(content=content, stop_reason=STOP_REASON[reply.finish])
        message["usage"]["output_tokens"] = reply.output_tokens
        return message

    def render_stream(self, reply: Reply, turn: Turn) -> list[Frame]:
        frames: list[Frame] = []

        def emit(event: str, content: bool = False, **fields: Any) -> None:
            frames.append((sse({"type": event, **fields}, event=event), content))

        emit("message_start", message=_message_shell(turn.model, reply))
        blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        if reply.reasoning:
            deltas = [{"type": "thinking_delta", "thinking": p} for p in reply.reasoning_pieces()]
            deltas.append({"type": "signature_delta", "signature": _SIGNATURE})
            blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
        if reply.content or not reply.tool_calls:
            deltas = [{"type": "text_delta", "text": p} for p in reply.text_pieces()]
            blocks.append(({"type": "text", "text": ""}, deltas))
        for call in reply.tool_calls:
            start = _tool_use(call.call_id, call.name, {})
            arguments = _compact_json(call.arguments)
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in reply.argument_pieces(arguments)
            ]
            blocks.append((start, deltas))
        for index, (start, deltas) in enumerate(blocks):
            emit("content_block_start", index=index, content_block=start)
            if index == 0:
                emit("ping")
            for delta in deltas:
                emit("content_block_delta", True, index=index, delta=delta)
            emit("content_block_stop", index=index)
        emit(
            "message_delta",
            delta={"stop_reason": STOP_REASON[reply.finish], "stop_sequence": None},
            usage={"output_tokens": reply.output_tokens},
        )
        emit("message_stop")
        return frames

    def garbage_stream(self) -> bytes:
        return b"event: message_start\ndata: {this is not json\n\n"


_SIGNATURE = "c2ltdWxhdGVkLXNpZ25hdHVyZQ=="


def _message_shell(model: str, reply: Reply) -> dict[str, Any]:
    """A message as message_start carries it: no content yet, input usage already known.
    Anthropic's input_tokens excludes cache reads, which are reported separately."""
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": max(0, reply.input_tokens - reply.cached_tokens),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": reply.cached_tokens,
            "output_tokens": 1,
            "service_tier": "standard",
        },
    }


def _tool_use(call_id: str | None, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id or new_id("toolu_"), "name": name, "input": arguments}


def _compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _unpaired_tool_use(messages: Any) -> str | None:
    """The real API's refusal of a tool_use whose tool_result is not in the next message."""
    if not isinstance(messages, list):
        return None
    for index, message in enumerate(messages[:-1]):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        ids = [b.get("id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
        if not ids:
            continue
        following = messages[index + 1]
        answer = following.get("content") if isinstance(following, dict) else None
        answered = {
            b.get("tool_use_id")
            for b in (answer if isinstance(answer, list) else [])
            if isinstance(b, dict) and b.get("type") == "tool_result"
        }
        missing = [i for i in ids if i not in answered]
        if missing:
            return (
                f"messages.{index + 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(str(m) for m in missing)}. Each `tool_use` block "
                "must have a corresponding `tool_result` block in the next message."
            )
    return None
