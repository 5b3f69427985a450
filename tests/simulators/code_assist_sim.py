"""Google's Code Assist API (cloudcode-pa), which Gemini CLI's Google login talks to:
POST /v1internal:generateContent, :streamGenerateContent (?alt=sse) and :countTokens.

Gemini inside an envelope: requests are {"model", "project", "request": <GenerateContentRequest>}
and every reply, and every stream chunk, is {"response": <GenerateContentResponse>, "traceId"}.
countTokens takes {"request": {"model": "models/<m>", "contents"}} and answers a bare
{"totalTokens"}. Quota exhaustion is 429 RESOURCE_EXHAUSTED with a RetryInfo delay.
"""

from __future__ import annotations

import time
from typing import Any, Self

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import Frame, RecordedRequest, Turn, new_id
from .gemini_sim import GeminiSim
from .reply import Reply

METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def quota_reply(retry_after: int = 30) -> Reply:
    """The 429 an account gets once its daily or per-minute quota is used up."""
    return Reply.error(
        429, "You have exhausted your capacity on this model.", retry_after=retry_after
    )


class CodeAssistSim(GeminiSim):
    """base_url is http://127.0.0.1:PORT (the provider appends /v1internal:<method>).
    `api_keys` holds the access tokens accepted; empty accepts any bearer token."""

    default_models = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # (project, model) pairs whose quota is used up; None stands for any.
        self._exhausted: dict[tuple[str | None, str | None], Reply] = {}

    def exhaust(
        self, project: str | None = None, model: str | None = None, retry_after: int = 30
    ) -> Self:
        """From now on, generation requests billing ``project`` for ``model`` (None: any)
        answer the quota 429, as a real exhausted project does until its quota resets. They
        leave the reply queue alone, so queued replies go to the requests that get through."""
        with self._lock:
            self._exhausted[(project, model)] = quota_reply(retry_after)
        return self

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._exhausted.clear()

    async def _retrieve_user_quota(self, request: Request) -> Response:
        rec = await self.record(request, read=True)
        if self.presented_key(rec) is None:
            return self.error_response(401, "Request is missing required authentication.")
        if denied := self.check_auth(rec):
            return denied
        body = rec.json if isinstance(rec.json, dict) else {}
        if not body.get("project"):
            return self.error_response(400, "project is required")
        return self.json_response({"buckets": self._buckets(body["project"])})

    def _buckets(self, project: object) -> list[dict[str, Any]]:
        """retrieveUserQuota: one bucket per model, empty where a quota is exhausted."""
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        buckets = []
        for model in self.models:
            spent = self._quota_for({"project": project, "model": model}) is not None
            buckets.append(
                {
                    "modelId": model,
                    "tokenType": "REQUESTS",
                    "remainingFraction": 0.0 if spent else 0.75,
                    "resetTime": reset,
                }
            )
        return buckets

    def _quota_for(self, body: dict[str, Any]) -> Reply | None:
        project, model = body.get("project"), body.get("model")
        with self._lock:
            for (want_project, want_model), reply in self._exhausted.items():
                if want_project in (None, project) and want_model in (None, model):
                    return reply
        return None

    def build_app(self) -> Starlette:
        return Starlette(routes=[Route("/v1internal:{method}", self._call, methods=["POST"])])

    async def _call(self, request: Request) -> Response:
        if request.path_params["method"] == "retrieveUserQuota":
            return await self._retrieve_user_quota(request)
        rec = await self.record(request)
        if self.presented_key(rec) is None:
            return self.error_response(401, "Request is missing required authentication.")
        if denied := self.check_auth(rec):
            return denied
        method = request.path_params["method"]
        if method not in METHODS:
            return self.error_response(404, f"Method not found: {method}")
        body = rec.json if isinstance(rec.json, dict) else None
        if self.validate and (problem := _envelope_problem(body, method)):
            return self.error_response(400, problem)
        body = body or {}
        inner = body.get("request") if isinstance(body.get("request"), dict) else {}
        if method == "countTokens":
            return self.json_response({"totalTokens": self.counted_tokens(inner)})

        reply = self._quota_for(body) or self.next_reply(rec)
        turn = Turn(model=str(body.get("model", "")), request=rec)
        return self.respond(reply, turn, stream=method == "streamGenerateContent")

    # ----- wire-format hooks ------------------------------------------------------------------

    def presented_key(self, rec: RecordedRequest) -> str | None:
        scheme, _, token = rec.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def last_user_text(self, body: Any) -> str:
        inner = body.get("request") if isinstance(body, dict) else None
        return super().last_user_text(inner)

    def render_json(self, reply: Reply, turn: Turn) -> Any:
        return {"response": super().render_json(reply, turn), "traceId": new_id("")}

    def render_stream(self, reply: Reply, turn: Turn) -> list[Frame]:
        trace = new_id("")
        return [
            (_wrap_frame(data, trace), content)
            for data, content in super().render_stream(reply, turn)
        ]

    def error_payload(self, status: int, message: str | None, reply: Reply) -> Any:
        payload = super().error_payload(status, message, reply)
        for detail in payload["error"]["details"]:
            for violation in detail.get("violations", []):
                violation["quotaMetric"] = "cloudcode-pa.googleapis.com/generate_content_requests"
        return payload


def _wrap_frame(data: bytes, trace: str) -> bytes:
    """Put the GenerateContentResponse JSON inside one frame into the envelope, keeping the
    framing (an SSE `data:` line, or an element of the JSON array) as it was."""
    start = data.find(b"{")
    end = data.rfind(b"}") + 1
    if start < 0:
        return data  # the closing "]" of a JSON-array stream
    chunk = orjson.loads(data[start:end])
    return data[:start] + orjson.dumps({"response": chunk, "traceId": trace}) + data[end:]


def _envelope_problem(body: dict[str, Any] | None, method: str) -> str | None:
    if body is None:
        return "Invalid JSON payload received."
    inner = body.get("request")
    if not isinstance(inner, dict):
        return "Invalid JSON payload received. Unknown name: request is required."
    if method == "countTokens":
        model = inner.get("model")
        if not isinstance(model, str) or not model.startswith("models/"):
            return "request.model: expected models/{model}"
        return None
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    if not body.get("project"):
        return "Invalid project: the request names no Cloud project (project is required)"
    if not inner.get("contents"):
        return "* GenerateContentRequest.contents: contents is not specified"
    return None
