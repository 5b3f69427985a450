"""Google Gemini upstream: /v1beta/models/{model}:generateContent, :streamGenerateContent
(?alt=sse for SSE, otherwise a streamed JSON array), :countTokens, GET /v1beta/models.
Everything is also served under /v1, where google-genai goes by default."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import Frame, RecordedRequest, Simulator, Turn, new_id, sse
from .reply import Reply

FINISH_REASON = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}
_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DEFAULT_MESSAGES = {
    401: "API key not valid. Please pass a valid API key.",
    429: "You exceeded your current quota, please check your plan and billing details.",
    503: "The model is overloaded. Please try again later.",
}
# Gemini's SSE frames end with CRLF CRLF; parsers must cope with that.
_SSE_END = b"\r\n\r\n"


class GeminiSim(Simulator):
    """base_url is http://127.0.0.1:PORT (the client appends /v1beta/models/...)."""

    default_models = ("gemini-2.5-flash", "gemini-2.5-pro")

    def build_app(self) -> Starlette:
        routes = []
        for version in ("v1beta", "v1"):
            routes += [
                Route(f"/{version}/models/{{target:path}}", self._model_call, methods=["POST"]),
                Route(f"/{version}/models", self._models, methods=["GET"]),
            ]
        return Starlette(routes=routes)

    # ----- routes -----------------------------------------------------------------------------

    async def _model_call(self, request: Request) -> Response:
        rec = await self.record(request)
        if denied := self.check_auth(rec):
            return denied
        model, _, method = request.path_params["target"].rpartition(":")
        if method not in ("generateContent", "streamGenerateContent", "countTokens") or not model:
            return self.error_response(404, f"Method not found: {method}")
        body = rec.json
        if self.validate and (problem := _body_problem(body, method)):
            return self.error_response(400, problem)
        if method == "countTokens":
            count = self.counted_tokens(body)
            details = [{"modality": "TEXT", "tokenCount": count}]
            return self.json_response({"totalTokens": count, "promptTokensDetails": details})
        reply = self.next_reply(rec)
        return self.respond(
            reply, Turn(model=model, request=rec), stream=method == "streamGenerateContent"
        )

    async def _models(self, request: Request) -> Response:
        rec = await self.record(request)
        if denied := self.check_auth(rec):
            return denied
        methods = ["generateContent", "streamGenerateContent", "countTokens"]
        models = [
            {
                "name": f"models/{m}",
                "version": "001",
                "displayName": m,
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": methods,
            }
            for m in self.models
        ]
        return self.json_response({"models": models})

    # ----- wire-format hooks ------------------------------------------------------------------

    def presented_key(self, rec: RecordedRequest) -> str | None:
        return rec.headers.get("x-goog-api-key") or rec.query.get("key") or None

    def last_user_text(self, body: Any) -> str:
        contents = body.get("contents") if isinstance(body, dict) else None
        for content in reversed(contents if isinstance(contents, list) else []):
            if isinstance(content, dict) and content.get("role", "user") == "user":
                parts = content.get("parts") or []
                texts = [
                    p.get("text") for p in parts if isinstance(p, dict) and not p.get("thought")
                ]
                return "".join(t for t in texts if isinstance(t, str))
        return ""

    def error_payload(self, status: int, message: str | None, reply: Reply) -> Any:
        status_name = reply.error_type or _STATUSES.get(
            status, "INTERNAL" if status >= 500 else "UNKNOWN"
        )
        details: list[dict[str, Any]] = []
        if status == 429:
            violation = {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
            }
            details.append(
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}
            )
            if reply.retry_after is not None:
                details.append(
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{reply.retry_after}s",
                    }
                )
        text = message or _DEFAULT_MESSAGES.get(status, status_name.replace("_", " ").capitalize())
        return {
            "error": {"code": status, "message": text, "status": status_name, "details": details}
        }

    def render_json(self, reply: Reply, turn: Turn) -> Any:
        parts: list[dict[str, Any]] = []
        if reply.reasoning:
            parts.append({"text": reply.reasoning, "thought": True})
        if reply.content or not reply.tool_calls:
            parts.append({"text": reply.content})
        parts += [
            _function_call(call.name, call.arguments, call.call_id) for call in reply.tool_calls
        ]
        return _chunk(turn.model, new_id(""), parts, reply, final=True)

    def render_stream(self, reply: Reply, turn: Turn) -> list[Frame]:
        pieces: list[dict[str, Any]] = [
            {"text": p, "thought": True} for p in reply.reasoning_pieces()
        ]
        pieces += [{"text": p} for p in reply.text_pieces()]
        pieces += [_function_call(c.name, c.arguments, c.call_id) for c in reply.tool_calls]
        pieces = pieces or [{"text": ""}]
        response_id = new_id("")
        # The last piece rides in the chunk that carries finishReason and the full usage, as
        # the real API does; that chunk is the terminal event a cut never delivers.
        chunks = [
            (
                _chunk(turn.model, response_id, [piece], reply, final=i == len(pieces) - 1),
                i < len(pieces) - 1,
            )
            for i, piece in enumerate(pieces)
        ]
        if turn.request.query.get("alt") == "sse":
            return [(sse(chunk, end=_SSE_END), content) for chunk, content in chunks]
        # Without alt=sse the body is one JSON array, written element by element.
        frames: list[Frame] = []
        for i, (chunk, content) in enumerate(chunks):
            frames.append(((b"[" if i == 0 else b",\r\n") + orjson.dumps(chunk), content))
        frames.append((b"]", False))
        return frames

    def stream_content_type(self, turn: Turn) -> str:
        sse_stream = turn.request.query.get("alt") == "sse"
        return "text/event-stream" if sse_stream else "application/json"


def _body_problem(body: Any, method: str) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    if method == "countTokens" and body.get("generateContentRequest"):
        return None
    if not body.get("contents"):
        return "* GenerateContentRequest.contents: contents is not specified"
    return None


def _function_call(name: str, arguments: dict[str, Any], call_id: str | None) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": arguments}
    if call_id:
        call["id"] = call_id
    return {"functionCall": call}


def _chunk(
    model: str, response_id: str, parts: list[dict[str, Any]], reply: Reply, *, final: bool
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if final:
        candidate["finishReason"] = FINISH_REASON[reply.finish]
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(reply, final),
        "modelVersion": model,
        "responseId": response_id,
    }


def _usage(reply: Reply, final: bool) -> dict[str, Any]:
    """Gemini counting: promptTokenCount includes cached tokens (cachedContentTokenCount is
    the cached part); candidatesTokenCount excludes thoughtsTokenCount. Intermediate stream
    chunks only know the prompt."""
    prompt = reply.input_tokens
    usage: dict[str, Any] = {"promptTokenCount": prompt, "totalTokenCount": prompt}
    if final:
        usage["candidatesTokenCount"] = reply.output_tokens - reply.reasoning_tokens
        usage["totalTokenCount"] = prompt + reply.output_tokens
        if reply.reasoning_tokens:
            usage["thoughtsTokenCount"] = reply.reasoning_tokens
    if reply.cached_tokens:
        usage["cachedContentTokenCount"] = reply.cached_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage
