"""The OpenAI Responses protocol (POST /v1/responses), spoken by Codex CLI and the openai SDK.

Requests live in openai_responses_request.py, streams in openai_responses_stream.py, and the
response-object, item and error helpers both this module and the stream use in
openai_responses_wire.py; this module holds complete responses and the protocol itself.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from cliproxy.model import (
    ErrorKind,
    Part,
    ProxyError,
    ReasoningPart,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    Usage,
    kind_for_status,
    loads_upstream,
)
from cliproxy.protocols.base import StreamDecoder, StreamEncoder, WireProtocol
from cliproxy.protocols.openai_responses_request import (
    NAME,
    parse_request,
    render_request,
)
from cliproxy.protocols.openai_responses_stream import (
    ResponsesStreamDecoder,
    ResponsesStreamEncoder,
)
from cliproxy.protocols.openai_responses_wire import (
    error_body,
    error_from_wire,
    finish_reason_of,
    function_call_item,
    message_item,
    new_id,
    parse_reasoning_item,
    parse_usage,
    reasoning_item,
    reasoning_item_id,
    response_id,
    response_object,
    terminal_state,
)
from cliproxy.protocols.signatures import foreign, wrap_part

JSON = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# output items of a complete response


def client_reasoning_item(part: ReasoningPart) -> JSON:
    """A reasoning output item for a client. Our own encrypted_content goes out unchanged;
    another vendor's signature/blob rides in encrypted_content wrapped (signatures.py), so the
    client's next request hands it back and it can be returned to its issuer."""
    if foreign(part.issuer, NAME):
        return reasoning_item(new_id("rs"), part.text, wrap_part(part))
    return reasoning_item(reasoning_item_id(part.id), part.text, part.encrypted)


def _render_output(content: list[Part]) -> list[JSON]:
    output: list[JSON] = []
    for part in content:
        if isinstance(part, TextPart):
            output.append(message_item(new_id("msg"), part.text))
        elif isinstance(part, ToolCallPart):
            output.append(
                function_call_item(new_id("fc"), part.id, part.name, part.arguments or "{}")
            )
        elif isinstance(part, ReasoningPart):
            output.append(client_reasoning_item(part))
    return output


def _parse_output_item(item: Any) -> Part | None:
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind == "message":
        texts = [
            c.get("text") if c.get("type") == "output_text" else c.get("refusal")
            for c in item.get("content") or []
            if isinstance(c, dict)
        ]
        return TextPart("".join(t for t in texts if isinstance(t, str)))
    if kind == "function_call":
        arguments = item.get("arguments")
        return ToolCallPart(
            id=str(item.get("call_id") or item.get("id") or new_id("call")),
            name=str(item.get("name") or ""),
            arguments=arguments if isinstance(arguments, str) and arguments else "{}",
        )
    if kind == "reasoning":
        return parse_reasoning_item(item)
    return None  # hosted tool calls (web_search_call ...) have no canonical form


# ---------------------------------------------------------------------------------------------
# the protocol


class OpenAIResponses(WireProtocol):
    name = NAME

    def parse_request(self, body: JSON) -> Request:
        return parse_request(body)

    def render_request(self, request: Request) -> JSON:
        return render_request(request)

    def reply_usage(self, body: JSON) -> Usage:
        return parse_usage(body.get("usage"))

    def parse_response(self, body: JSON) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("output"), list):
            raise ProxyError(ErrorKind.UPSTREAM, "upstream reply has no output list")
        if body.get("status") == "failed" or body.get("error"):
            raise error_from_wire(body.get("error"), ErrorKind.UPSTREAM)
        content = [p for p in (_parse_output_item(i) for i in body["output"]) if p is not None]
        created = body.get("created_at")
        return Response(
            id=str(body.get("id") or ""),
            model=str(body.get("model") or ""),
            content=content,
            finish_reason=finish_reason_of(body, any(isinstance(p, ToolCallPart) for p in content)),
            usage=parse_usage(body.get("usage")),
            created=int(created) if isinstance(created, int | float) else 0,
        )

    def render_response(self, response: Response) -> JSON:
        status, incomplete = terminal_state(response.finish_reason)
        error = None
        if status == "failed":
            error = {"code": "server_error", "message": "upstream reported an error"}
        return response_object(
            response_id(response.id),
            response.model,
            response.created or int(time.time()),
            status,
            _render_output(response.content),
            response.usage,
            incomplete_details=incomplete,
            error=error,
        )

    def stream_decoder(self) -> StreamDecoder:
        return ResponsesStreamDecoder()

    def stream_encoder(self, request: Request) -> StreamEncoder:
        return ResponsesStreamEncoder(request)

    def render_error(self, error: ProxyError) -> JSON:
        return error_body(error)

    def parse_error(self, status: int, body: bytes) -> ProxyError:
        kind = kind_for_status(status)
        try:
            parsed = loads_upstream(body, "upstream error") if body else None
        except (orjson.JSONDecodeError, ProxyError):  # too deep to read: reported as text
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            return error_from_wire(parsed["error"], kind, status)
        if isinstance(parsed, dict) and isinstance(parsed.get("detail"), str):
            return ProxyError(kind, parsed["detail"], status=status)
        text = body.decode("utf-8", errors="replace").strip()[:500]
        return ProxyError(kind, text or f"upstream returned HTTP {status}", status=status)


PROTOCOL = OpenAIResponses()
