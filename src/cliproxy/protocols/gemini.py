"""The Google Gemini protocol: /v1beta/models/{model}:generateContent, :streamGenerateContent
and :countTokens, plus GET /v1beta/models.

The pieces live in gemini_request (request bodies), gemini_parts (content parts, usage, finish
reasons), gemini_schema (JSON Schema ↔ Gemini's OpenAPI subset), gemini_stream (SSE) and
gemini_errors. Finish reasons: STOP → stop (tool_calls when the reply has function calls),
MAX_TOKENS → length, SAFETY/RECITATION/BLOCKLIST/PROHIBITED_CONTENT/SPII/... → content_filter,
MALFORMED_FUNCTION_CALL/UNEXPECTED_TOOL_CALL/TOO_MANY_TOOL_CALLS → error (nothing usable came
back), OTHER and unknown values → stop (the content so far stands).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from cliproxy.model import (
    ErrorKind,
    FinishReason,
    Part,
    ProxyError,
    ReasoningPart,
    Request,
    Response,
    ToolCallPart,
    Usage,
)
from cliproxy.protocols.base import StreamDecoder, StreamEncoder, WireProtocol
from cliproxy.protocols.gemini_errors import error_from_object, parse_error, render_error
from cliproxy.protocols.gemini_parts import (
    ISSUER,
    JSON,
    NAME,
    CallIds,
    get,
    parse_finish_reason,
    parse_parts,
    parse_usage,
    render_finish_reason,
    render_parts,
    render_usage,
)
from cliproxy.protocols.gemini_request import (
    parse_count_tokens_request,
    parse_request,
    render_request,
)
from cliproxy.protocols.gemini_stream import (
    GeminiStreamDecoder,
    GeminiStreamEncoder,
    new_response_id,
)
from cliproxy.protocols.signatures import foreign, wrap_part

GENERATION_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


class Gemini(WireProtocol):
    name = NAME
    reply_model_key = "modelVersion"

    def parse_request(self, body: JSON) -> Request:
        return parse_request(body)

    def parse_count_tokens_request(self, body: JSON) -> Request:
        return parse_count_tokens_request(body)

    def render_request(self, request: Request) -> JSON:
        return render_request(request)

    def reply_usage(self, body: JSON) -> Usage:
        return parse_usage(get(body, "usageMetadata"))

    def parse_response(self, body: JSON) -> Response:
        if not isinstance(body, dict):
            raise ProxyError(ErrorKind.UPSTREAM, "Gemini reply is not a JSON object")
        if "error" in body:
            raise error_from_object(body["error"], 502)
        response_id = get(body, "responseId")
        response = Response(
            id=response_id if isinstance(response_id, str) and response_id else new_response_id(),
            model=str(get(body, "modelVersion") or ""),
            usage=parse_usage(get(body, "usageMetadata")),
        )
        candidates = body.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(candidate, dict):
            feedback = get(body, "promptFeedback")
            if isinstance(feedback, dict) and get(feedback, "blockReason"):
                # The prompt itself was blocked: an empty, filtered reply rather than a failure.
                response.finish_reason = FinishReason.CONTENT_FILTER
                return response
            raise ProxyError(ErrorKind.UPSTREAM, "Gemini reply has no candidates")
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        try:
            response.content = parse_parts(
                parts, "candidates[0].content.parts", CallIds(deterministic=False), strict=False
            )
        except ProxyError as error:
            raise ProxyError(
                ErrorKind.UPSTREAM, f"unusable Gemini reply: {error.message}"
            ) from None
        has_calls = any(isinstance(p, ToolCallPart) for p in response.content)
        response.finish_reason = parse_finish_reason(get(candidate, "finishReason"), has_calls)
        return response

    def render_response(self, response: Response) -> JSON:
        try:
            parts = render_parts(_shown_reasoning(response.content), {}, "content")
        except ProxyError as error:
            raise ProxyError(ErrorKind.UPSTREAM, error.message) from None
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": parts},
                    "finishReason": render_finish_reason(response.finish_reason),
                    "index": 0,
                }
            ],
            "usageMetadata": render_usage(response.usage),
            "modelVersion": response.model,
            "responseId": response.id or new_response_id(),
        }

    def stream_decoder(self) -> StreamDecoder:
        return GeminiStreamDecoder()

    def stream_encoder(self, request: Request, sse: bool = True) -> StreamEncoder:
        """``sse=False`` gives the JSON array streamGenerateContent returns without alt=sse."""
        return GeminiStreamEncoder(request, sse=sse)

    def render_error(self, error: ProxyError) -> JSON:
        return render_error(error)

    def parse_error(self, status: int, body: bytes) -> ProxyError:
        return parse_error(status, body)


def _shown_reasoning(content: list[Part]) -> list[Part]:
    """Reasoning as a Gemini client gets it, the way the stream encoder sends it. Gemini's own
    (or untagged) reasoning goes as it is. Another vendor's text is shown as thought parts and
    its signature/blob follows wrapped (signatures.py, with the text: Gemini CLI keeps
    signatures but not thoughts in its history) as a signature-only part, which render_parts
    puts on the next part."""
    out: list[Part] = []
    for part in content:
        if not isinstance(part, ReasoningPart):
            out.append(part)
        elif not foreign(part.issuer, ISSUER):
            out.append(part if part.issuer else replace(part, issuer=ISSUER))
        else:
            if part.text and not part.redacted:
                out.append(ReasoningPart(text=part.text, issuer=ISSUER))
            wrapped = wrap_part(part, with_text=True)
            if wrapped:
                out.append(ReasoningPart(signature=wrapped, issuer=ISSUER))
    return out


def count_tokens_response(total: int) -> JSON:
    """The :countTokens reply."""
    return {"totalTokens": total}


def models_list(
    ids: Iterable[str],
    input_token_limit: int = 1_048_576,
    output_token_limit: int = 65_536,
) -> JSON:
    """The GET /v1beta/models reply (google-genai reads ``models[]``; ``name`` is "models/<id>")."""
    models: list[dict[str, Any]] = []
    for model_id in ids:
        models.append(
            {
                "name": f"models/{model_id}",
                "version": "001",
                "displayName": model_id,
                "supportedGenerationMethods": list(GENERATION_METHODS),
                "inputTokenLimit": input_token_limit,
                "outputTokenLimit": output_token_limit,
            }
        )
    return {"models": models}


PROTOCOL = Gemini()
