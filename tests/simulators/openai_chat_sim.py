"""OpenAI Chat Completions upstream: POST /v1/chat/completions, GET /v1/models."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import Frame, Turn, joined_text, new_id, sse
from .openai_common import OpenAIBase, usage_counts
from .reply import Reply
from .server import SimServer

FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIChatSim(OpenAIBase):
    """base_url is http://127.0.0.1:PORT/v1, like an `openai-compatibility` base-url."""

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self.list_models, methods=["GET"]),
            ]
        )

    async def _chat(self, request: Request) -> Response:
        rec = await self.record(request)
        if denied := self.check_auth(rec):
            return denied
        body = rec.json
        if self.validate and (problem := self.body_problem(body, ("model", "messages"))):
            return self.error_response(400, problem)
        body = body if isinstance(body, dict) else {}
        reply = self.next_reply(rec)
        turn = Turn(model=str(body.get("model", "")), request=rec)
        return self.respond(reply, turn, stream=bool(body.get("stream")))

    def last_user_text(self, body: Any) -> str:
        messages = body.get("messages") if isinstance(body, dict) else None
        for message in reversed(messages if isinstance(messages, list) else []):
            if isinstance(message, dict) and message.get("role") == "user":
                return joined_text(message.get("content"))
        return ""

    def render_json(self, reply: Reply, turn: Turn) -> Any:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.content or (None if reply.tool_calls else ""),
            "refusal": None,
            "annotations": [],
        }
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.call_id or new_id("call_"),
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": orjson.dumps(call.arguments).decode(),
                    },
                }
                for call in reply.tool_calls
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": FINISH[reply.finish],
        }
        return {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": turn.model,
            "choices": [choice],
            "usage": _usage(reply),
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
        }

    def render_stream(self, reply: Reply, turn: Turn) -> list[Frame]:
        body = turn.request.json
        options = body.get("stream_options") if isinstance(body, dict) else None
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        base = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": turn.model,
            "system_fingerprint": "fp_sim",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            extra = {"usage": None} if include_usage else {}
            return sse({**base, "choices": [choice], **extra})

        frames: list[Frame] = [
            (chunk({"role": "assistant", "content": "", "refusal": None}), False)
        ]
        frames += [(chunk({"reasoning_content": p}), True) for p in reply.reasoning_pieces()]
        frames += [(chunk({"content": p}), True) for p in reply.text_pieces()]
        for index, call in enumerate(reply.tool_calls):
            head = {
                "index": index,
                "id": call.call_id or new_id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            frames.append((chunk({"tool_calls": [head]}), True))
            for piece in reply.argument_pieces(orjson.dumps(call.arguments).decode()):
                frames.append(
                    (
                        chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                        True,
                    )
                )
        frames.append((chunk({}, FINISH[reply.finish]), False))
        if include_usage:
            frames.append((sse({**base, "choices": [], "usage": _usage(reply)}), False))
        frames.append((b"data: [DONE]\n\n", False))
        return frames


def _usage(reply: Reply) -> dict[str, Any]:
    prompt, completion, total = usage_counts(reply)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class InnerChatSim(OpenAIChatSim):
    """Chat Completions served on another simulator's server (a vendor whose one host has
    several endpoints): its own queue and request log, the outer server's lifecycle."""

    def __init__(self, outer: SimServer) -> None:
        super().__init__()
        self.outer = outer

    @property
    def closing(self) -> asyncio.Event:
        return self.outer.closing
