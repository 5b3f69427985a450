"""The offline demo provider: deterministic answers without any network.

``demo-echo`` repeats the last user message; ``demo-tools`` calls the first offered tool with
arguments made from its schema, and answers in text once the tool result comes back. It lets a new
user try every client protocol, streaming and tools included, before configuring an upstream.

It is an ordinary Provider whose upstream speaks Anthropic Messages inside the proxy (an
in-process transport, providers/in_process.py): Messages clients take the pass-through path,
every other protocol is translated, exactly as for a Claude API key. (Messages keeps a turn's
text blocks apart, so the echo can answer the last one a coding CLI sent.)
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from cliproxy.model import (
    FinishReason,
    Message,
    ProxyError,
    Request,
    Response,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Usage,
    invalid,
    loads_limited,
)
from cliproxy.model.accumulate import response_events
from cliproxy.model.json_limits import MAX_UPSTREAM_JSON_DEPTH
from cliproxy.protocols.anthropic_messages import PROTOCOL as MESSAGES
from cliproxy.providers.base import Credential, Provider, RequestContext, UpstreamRequest
from cliproxy.providers.in_process import InProcessReply

ECHO_MODEL = "demo-echo"
TOOLS_MODEL = "demo-tools"
DEMO_URL = "in-process://demo/v1"
# The demo's one credential: it has no secret, and needs none.
DEMO_CREDENTIAL = Credential(id="demo", secret="", base_url=DEMO_URL)


def estimate_tokens(text: str) -> int:
    """Roughly four characters a token, at least one for any non-empty text."""
    return (len(text) + 3) // 4


class DemoProvider(Provider):
    name = "demo"
    protocol = MESSAGES

    def models(self) -> list[str]:
        return [ECHO_MODEL, TOOLS_MODEL]

    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        body["model"] = model
        url = credential.base_url.rstrip("/") + "/messages"
        return UpstreamRequest(url, {}, orjson.dumps(body), in_process=self._serve)

    async def _serve(self, upstream: UpstreamRequest) -> InProcessReply:
        """Answer a Messages request as the Messages API would: a JSON reply, or its SSE
        stream."""
        try:
            # The proxy's own rendering of a client body at the depth limit nests a little
            # deeper (tools[].input_schema): the limit an upstream's JSON gets applies.
            body = loads_limited(upstream.body, "demo request", limit=MAX_UPSTREAM_JSON_DEPTH)
            if not isinstance(body, dict):
                raise invalid("request body must be a JSON object")
            request = MESSAGES.parse_request(body)
        except ProxyError as error:
            return InProcessReply.json(error.status, orjson.dumps(MESSAGES.render_error(error)))
        except orjson.JSONDecodeError as error:
            bad = invalid(f"request body is not valid JSON: {error}")
            return InProcessReply.json(400, orjson.dumps(MESSAGES.render_error(bad)))
        reply = self.respond(request)
        if not request.stream:
            return InProcessReply.json(200, orjson.dumps(MESSAGES.render_response(reply)))
        encoder = MESSAGES.stream_encoder(request)
        frames = [encoder.feed(event) for event in response_events(reply, chunk_size=16)]
        return InProcessReply.event_stream(frame for frame in frames if frame)

    def respond(self, request: Request) -> Response:
        last = _last_user(request.messages)
        if request.model.endswith(TOOLS_MODEL):
            content, finish = _tools_answer(request, last)
        else:
            content, finish = [TextPart(_echo(last))], FinishReason.STOP
        if request.max_tokens is not None and content and isinstance(content[0], TextPart):
            limit = max(request.max_tokens, 1) * 4
            if len(content[0].text) > limit:
                content = [TextPart(content[0].text[:limit])]
                finish = FinishReason.LENGTH
        prompt = request.system_text() + "".join(_message_text(m) for m in request.messages)
        answer = "".join(
            p.text
            if isinstance(p, TextPart)
            else p.arguments
            if isinstance(p, ToolCallPart)
            else ""
            for p in content
        )
        usage = Usage(input_tokens=estimate_tokens(prompt), output_tokens=estimate_tokens(answer))
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:24]
        return Response(
            id=f"demo-{digest}",
            model=request.model,
            content=list(content),
            finish_reason=finish,
            usage=usage,
        )


def _last_user(messages: list[Message]) -> Message | None:
    for message in reversed(messages):
        if message.role == "user":
            return message
    return None


def _message_text(message: Message) -> str:
    pieces = []
    for part in message.content:
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, ToolResultPart):
            pieces.append(part.text())
    return "".join(pieces)


def _echo(last: Message | None) -> str:
    """The last text block of the last user message: coding CLIs put their context (system
    reminders, environment) in earlier blocks and what the person typed last."""
    texts = [p.text.strip() for p in last.content if isinstance(p, TextPart)] if last else []
    texts = [t for t in texts if t]
    return f"Echo: {texts[-1]}" if texts else "Echo: (no user text)"


def _tools_answer(request: Request, last: Message | None) -> tuple[list[Any], FinishReason]:
    results = [p for p in last.content if isinstance(p, ToolResultPart)] if last else []
    if results:
        summary = "; ".join(f"{r.name or r.call_id} returned {r.text()!r}" for r in results)
        return [TextPart(f"Tool result received: {summary}")], FinishReason.STOP
    callable_tools = [t for t in request.tools if t.builtin is None]
    if not callable_tools or (request.tool_choice and request.tool_choice.mode == "none"):
        return [TextPart("demo-tools: no tools were offered, so there is nothing to call.")], (
            FinishReason.STOP
        )
    tool = callable_tools[0]
    if request.tool_choice and request.tool_choice.mode == "tool":
        tool = next((t for t in callable_tools if t.name == request.tool_choice.name), tool)
    arguments = orjson.dumps(_sample_arguments(tool, last.text() if last else "")).decode()
    call_id = "call_" + hashlib.sha256((tool.name + arguments).encode()).hexdigest()[:24]
    return [ToolCallPart(id=call_id, name=tool.name, arguments=arguments)], FinishReason.TOOL_CALLS


def _sample_arguments(tool: Tool, user_text: str) -> dict[str, Any]:
    """Arguments that satisfy the required properties of the tool's schema."""
    schema = tool.parameters or {}
    properties: dict[str, Any] = schema.get("properties") or {}
    required = schema.get("required") or list(properties)[:1]
    return {name: _sample_value(properties.get(name) or {}, user_text) for name in required}


def _sample_value(schema: dict[str, Any], user_text: str) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return user_text or "demo"
