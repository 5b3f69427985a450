"""The Anthropic Messages protocol (POST /v1/messages, /v1/messages/count_tokens).

Requests are parsed in anthropic_request, rendered in anthropic_render, streams live in
anthropic_stream; this module holds the protocol object, complete responses and errors.
"""

from __future__ import annotations

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
from cliproxy.protocols.anthropic_render import render_count_tokens_request, render_request
from cliproxy.protocols.anthropic_request import parse_request
from cliproxy.protocols.anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder
from cliproxy.protocols.anthropic_wire import (
    JSON,
    NAME,
    error_body,
    finish_reason,
    message_id,
    parse_reasoning_block,
    parse_usage,
    reasoning_block,
    render_usage,
    stop_reason,
    tool_use_block,
)
from cliproxy.protocols.base import StreamDecoder, StreamEncoder, WireProtocol

# Response fields with a canonical home; any other top-level key (container, stop_details ...)
# is kept in Response.extras["anthropic"] and put back by render_response.
_RESPONSE_FIELDS = frozenset(
    {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
)
SKIPPED_BLOCKS = "_skipped_blocks"  # response blocks with no canonical form (server tool blocks)


class AnthropicMessages(WireProtocol):
    name = NAME

    # -- requests ---------------------------------------------------------------------------

    def parse_request(self, body: JSON) -> Request:
        """A /v1/messages body; ``max_tokens`` is required as the API requires it."""
        return parse_request(body, require_max_tokens=True)

    def parse_count_tokens_request(self, body: JSON) -> Request:
        """A /v1/messages/count_tokens body: the same shape without ``max_tokens``."""
        return parse_request(body, require_max_tokens=False)

    def render_request(self, request: Request) -> JSON:
        return render_request(request)

    def render_count_tokens_request(self, request: Request) -> JSON:
        return render_count_tokens_request(request)

    @staticmethod
    def count_tokens_response(input_tokens: int) -> JSON:
        return {"input_tokens": input_tokens}

    @staticmethod
    def parse_count_tokens_response(body: Any) -> int:
        count = body.get("input_tokens") if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool):
            raise ProxyError(ErrorKind.UPSTREAM, "upstream count_tokens reply has no input_tokens")
        return count

    # -- complete responses ---------------------------------------------------------------

    def reply_usage(self, body: JSON) -> Usage:
        return parse_usage(body.get("usage"))

    def parse_response(self, body: JSON) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("content"), list):
            raise ProxyError(ErrorKind.UPSTREAM, "upstream reply is not an Anthropic message")
        content: list[Part] = []
        skipped: list[Any] = []
        for block in body["content"]:
            part = _parse_content_block(block)
            if part is None:
                skipped.append(block)
            else:
                content.append(part)
        reason = finish_reason(body.get("stop_reason"))
        sequence = body.get("stop_sequence")
        extras = {key: value for key, value in body.items() if key not in _RESPONSE_FIELDS}
        if skipped:
            extras[SKIPPED_BLOCKS] = skipped
        return Response(
            id=str(body.get("id") or ""),
            model=str(body.get("model") or ""),
            content=content,
            finish_reason=reason,
            stop_sequence=sequence if isinstance(sequence, str) else None,
            usage=parse_usage(body.get("usage")),
            extras={NAME: extras} if extras else {},
        )

    def render_response(self, response: Response) -> JSON:
        blocks: list[JSON] = []
        for part in response.content:
            if isinstance(part, TextPart):
                blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, ToolCallPart):
                blocks.append(tool_use_block(part, ErrorKind.UPSTREAM))
            elif isinstance(part, ReasoningPart):
                block = reasoning_block(part, require_signature=False)
                if block is not None:
                    blocks.append(block)
        has_calls = any(isinstance(part, ToolCallPart) for part in response.content)
        reason = stop_reason(response.finish_reason, has_calls)
        body: JSON = {
            "id": message_id(response.id),
            "type": "message",
            "role": "assistant",
            "model": response.model,
            "content": blocks,
            "stop_reason": reason,
            "stop_sequence": response.stop_sequence if reason == "stop_sequence" else None,
            "usage": render_usage(response.usage),
        }
        for key, value in response.extras.get(NAME, {}).items():
            if not key.startswith("_"):
                body.setdefault(key, value)
        return body

    # -- streams ------------------------------------------------------------------------------

    def stream_decoder(self) -> StreamDecoder:
        return AnthropicStreamDecoder()

    def stream_encoder(self, request: Request) -> StreamEncoder:
        return AnthropicStreamEncoder(request.model)

    # -- errors ---------------------------------------------------------------------------------

    def render_error(self, error: ProxyError) -> JSON:
        return error_body(error.kind, error.message)

    def parse_error(self, status: int, body: bytes) -> ProxyError:
        message, retry_after = _error_details(body)
        return ProxyError(
            kind_for_status(status),
            message or f"upstream returned HTTP {status}",
            status=status,
            retry_after=retry_after,
        )


def _parse_content_block(block: Any) -> Part | None:
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "text":
        return TextPart(str(block.get("text") or ""))
    if kind == "tool_use":
        args = block.get("input")
        arguments = orjson.dumps(args).decode() if isinstance(args, dict) else "{}"
        return ToolCallPart(
            id=str(block.get("id") or ""), name=str(block.get("name") or ""), arguments=arguments
        )
    if kind == "thinking":
        signature = block.get("signature")
        text = str(block.get("thinking") or "")
        return parse_reasoning_block(kind, text, signature if isinstance(signature, str) else None)
    if kind == "redacted_thinking":
        return parse_reasoning_block(kind, "", str(block.get("data") or ""))
    return None


def _error_details(body: bytes) -> tuple[str | None, float | None]:
    """The message (and any retry hint) of an upstream error body, whatever its shape."""
    try:
        data = loads_upstream(body, "upstream error")
    except (orjson.JSONDecodeError, ProxyError):  # too deep to read: reported as text
        text = body.decode("utf-8", errors="replace").strip()
        return (text[:500] or None), None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        retry = error.get("retry_after")
        retry_after = float(retry) if isinstance(retry, int | float) and retry >= 0 else None
        return (str(message) if message else None), retry_after
    if isinstance(error, str):
        return error, None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"], None
    return None, None


PROTOCOL = AnthropicMessages()

__all__ = ["PROTOCOL", "AnthropicMessages"]
