"""What OpenAI's Chat Completions and Responses APIs share on the wire: Bearer auth, the
`{"error": {message, type, param, code}}` body, and the model list."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .core import RecordedRequest, Simulator
from .reply import Reply

# status -> (error type, error code, default message), as api.openai.com sends them.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Access denied."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    413: ("invalid_request_error", "request_too_large", "Request too large."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


class OpenAIBase(Simulator):
    base_path = "/v1"
    default_models = ("gpt-4o-mini", "gpt-4.1", "gpt-5")

    def presented_key(self, rec: RecordedRequest) -> str | None:
        auth = rec.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def error_payload(self, status: int, message: str | None, reply: Reply) -> Any:
        fallback_type = "server_error" if status >= 500 else "invalid_request_error"
        err_type, code, default_message = _ERRORS.get(status, (fallback_type, None, "Error."))
        if reply.retry_after is not None and status == 429 and message is None:
            default_message += f" Please try again in {reply.retry_after}s."
        return {
            "error": {
                "message": message or default_message,
                "type": reply.error_type or err_type,
                "param": None,
                "code": reply.error_code or code,
            }
        }

    async def list_models(self, request: Request) -> Response:
        rec = await self.record(request)
        if denied := self.check_auth(rec):
            return denied
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "system"}
            for m in self.models
        ]
        return self.json_response({"object": "list", "data": data})

    def body_problem(self, body: Any, required: tuple[str, ...]) -> str | None:
        """The message OpenAI gives for a missing required parameter, or None."""
        if not isinstance(body, dict):
            return "We could not parse the JSON body of your request."
        for name in required:
            if name not in body:
                return f"Missing required parameter: '{name}'."
        return None


def usage_counts(reply: Reply) -> tuple[int, int, int]:
    """(input, output, total) in OpenAI counting: both sides include cached/reasoning."""
    return reply.input_tokens, reply.output_tokens, reply.input_tokens + reply.output_tokens
