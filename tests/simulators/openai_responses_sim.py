"""OpenAI Responses upstream: POST /v1/responses (JSON or the full SSE event sequence)."""

from __future__ import annotations

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

# Responses has no finish_reason: a cut-short answer is status "incomplete" with a reason.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ResponsesSim(OpenAIBase):
    """base_url is http://127.0.0.1:PORT/v1, like a `codex-api-key` base-url."""

    def build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/models", self.list_models, methods=["GET"]),
            ]
        )

    async def _responses(self, request: Request) -> Response:
        rec = await self.record(request)
        if denied := self.check_auth(rec):
            return denied
        if self.validate and (problem := self.body_problem(rec.json, ("model",))):
            return self.error_response(400, problem)
        body = rec.json if isinstance(rec.json, dict) else {}
        reply = self.next_reply(rec)
        turn = Turn(model=str(body.get("model", "")), request=rec)
        return self.respond(reply, turn, stream=bool(body.get("stream")))

    def last_user_text(self, body: Any) -> str:
        items = body.get("input") if isinstance(body, dict) else None
        if isinstance(items, str):
            return items
        for item in reversed(items if isinstance(items, list) else []):
            if isinstance(item, dict) and item.get("role") == "user":
                return joined_text(item.get("content"), ("input_text", "text"))
        return ""

    def render_json(self, reply: Reply, turn: Turn) -> Any:
        return _Builder(reply, turn).final_response()

    def render_stream(self, reply: Reply, turn: Turn) -> list[Frame]:
        return _Builder(reply, turn).events()


class _Builder:
    """Builds one response's output items and, for streams, its numbered event sequence."""

    def __init__(self, reply: Reply, turn: Turn) -> None:
        self.reply = reply
        self.turn = turn
        self.response_id = new_id("resp_")
        self.created_at = int(time.time())
        self.items = self._items()
        self.frames: list[Frame] = []

    def _items(self) -> list[dict[str, Any]]:
        reply = self.reply
        items: list[dict[str, Any]] = []
        if reply.reasoning:
            summary = [{"type": "summary_text", "text": reply.reasoning}]
            items.append({"type": "reasoning", "id": new_id("rs_"), "summary": summary})
        if reply.content or not reply.tool_calls:
            items.append(
                {
                    "type": "message",
                    "id": new_id("msg_"),
                    "status": "completed",
                    "role": "assistant",
                    "content": [_text_part(reply.content)],
                }
            )
        for call in reply.tool_calls:
            items.append(
                {
                    "type": "function_call",
                    "id": new_id("fc_"),
                    "call_id": call.call_id or new_id("call_"),
                    "name": call.name,
                    "arguments": orjson.dumps(call.arguments).decode(),
                    "status": "completed",
                }
            )
        return items

    def response(
        self, status: str, output: list[dict[str, Any]], with_usage: bool
    ) -> dict[str, Any]:
        body = self.turn.request.json if isinstance(self.turn.request.json, dict) else {}
        reason = _INCOMPLETE.get(self.reply.finish) if status == "incomplete" else None
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": reason} if reason else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self.turn.model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "store": body.get("store", True),
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": self.usage() if with_usage else None,
            "metadata": {},
        }

    def final_response(self) -> dict[str, Any]:
        status = "incomplete" if self.reply.finish in _INCOMPLETE else "completed"
        return self.response(status, self.items, with_usage=True)

    def usage(self) -> dict[str, Any]:
        prompt, completion, total = usage_counts(self.reply)
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": self.reply.cached_tokens},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": self.reply.reasoning_tokens},
            "total_tokens": total,
        }

    # ----- streaming ------------------------------------------------------------------------

    def emit(self, event_type: str, content: bool = False, **fields: Any) -> None:
        data = {"type": event_type, "sequence_number": len(self.frames), **fields}
        self.frames.append((sse(data, event=event_type), content))

    def events(self) -> list[Frame]:
        self.emit("response.created", response=self.response("in_progress", [], False))
        self.emit("response.in_progress", response=self.response("in_progress", [], False))
        for index, item in enumerate(self.items):
            if item["type"] == "reasoning":
                self._reasoning_events(index, item)
            elif item["type"] == "message":
                self._message_events(index, item)
            else:
                self._function_call_events(index, item)
        final = self.final_response()
        self.emit(f"response.{final['status']}", response=final)
        return self.frames

    def _reasoning_events(self, index: int, item: dict[str, Any]) -> None:
        where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
        text = item["summary"][0]["text"]
        self.emit("response.output_item.added", output_index=index, item={**item, "summary": []})
        self.emit(
            "response.reasoning_summary_part.added",
            **where,
            part={"type": "summary_text", "text": ""},
        )
        for piece in self.reply.reasoning_pieces():
            self.emit("response.reasoning_summary_text.delta", True, **where, delta=piece)
        self.emit("response.reasoning_summary_text.done", **where, text=text)
        self.emit(
            "response.reasoning_summary_part.done",
            **where,
            part={"type": "summary_text", "text": text},
        )
        self.emit("response.output_item.done", output_index=index, item=item)

    def _message_events(self, index: int, item: dict[str, Any]) -> None:
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        self.emit(
            "response.output_item.added",
            output_index=index,
            item={**item, "status": "in_progress", "content": []},
        )
        self.emit("response.content_part.added", **where, part=_text_part(""))
        for piece in self.reply.text_pieces():
            self.emit("response.output_text.delta", True, **where, delta=piece, logprobs=[])
        self.emit("response.output_text.done", **where, text=self.reply.content, logprobs=[])
        self.emit("response.content_part.done", **where, part=_text_part(self.reply.content))
        self.emit("response.output_item.done", output_index=index, item=item)

    def _function_call_events(self, index: int, item: dict[str, Any]) -> None:
        where = {"item_id": item["id"], "output_index": index}
        added = {**item, "arguments": "", "status": "in_progress"}
        self.emit("response.output_item.added", output_index=index, item=added)
        for piece in self.reply.argument_pieces(item["arguments"]):
            self.emit("response.function_call_arguments.delta", True, **where, delta=piece)
        self.emit(
            "response.function_call_arguments.done",
            **where,
            name=item["name"],
            arguments=item["arguments"],
        )
        self.emit("response.output_item.done", output_index=index, item=item)


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
