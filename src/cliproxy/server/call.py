"""One client call as the forwarding core sees it, and reading its body safely."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson
from starlette.requests import Request as HTTPRequest

from cliproxy.model import ErrorKind, ProxyError, Request, invalid, loads_limited
from cliproxy.protocols.base import StreamEncoder, WireProtocol
from cliproxy.protocols.signatures import mentions_wrapped
from cliproxy.providers.base import Provider
from cliproxy.routing.payload import PayloadRules
from cliproxy.routing.pins import ProviderPin
from cliproxy.server.outcomes import DETACHED, RequestTrack


@dataclass(slots=True)
class ClientCall:
    protocol: WireProtocol  # the protocol the client speaks
    body: dict[str, Any]
    model: str
    stream: bool
    headers: Mapping[str, str]
    query: Mapping[str, str]
    started: float  # perf_counter() when the request arrived
    # Set when the client wants a stream framing other than the protocol's default (Gemini's
    # JSON-array stream without alt=sse); such calls always take the translating path.
    encoder_factory: Callable[[Request], StreamEncoder] | None = None
    stream_media_type: str = "text/event-stream"
    # The history holds reasoning signed by another vendor, wrapped for the ride through this
    # client (protocols/signatures.py); forwarding it untouched would get it refused upstream.
    carries_foreign_reasoning: bool = False
    # Where the layers note what the RequestOutcome reports (server/outcomes.py).
    track: RequestTrack = DETACHED
    # The canonical request, once a path needed it (pass-through never parses the body).
    parsed: Request | None = None
    # Pass-through events the proxy asked for and the client did not (protocols/base.py
    # ask_stream_usage): read for the usage, not relayed.
    hidden_events: Callable[[bytes], bool] | None = None
    # `/api/provider/{provider}/...` (server/pinned.py): only that provider's credentials serve.
    pin: ProviderPin | None = None

    def canonical(self) -> Request:
        if self.parsed is None:
            request = self.protocol.parse_request(self.body)
            request.model = self.model
            request.stream = self.stream
            self.parsed = request
        return self.parsed

    def upstream_body(
        self, provider: Provider, upstream_model: str, passthrough: bool, rules: PayloadRules
    ) -> dict[str, Any]:
        """The body for one upstream: the client's own on the pass-through path, else rendered
        from the canonical request; then the config's payload rules."""
        if passthrough:
            body: dict[str, Any] = dict(self.body)
            self.hidden_events = provider.protocol.ask_stream_usage(body)
        else:
            body = provider.protocol.render_request(replace(self.canonical(), model=upstream_model))
        if rules:
            body = rules.apply(
                body,
                models=(self.model, upstream_model),
                target=provider.protocol.name,
                source=self.protocol.name,
                headers=self.headers,
            )
        return body


async def read_json_body(request: HTTPRequest, limit: int) -> tuple[dict[str, Any], bool]:
    """The request body as a JSON object, and whether it carries wrapped foreign reasoning;
    413 past ``limit`` bytes, 400 if it is not JSON or nests past MAX_JSON_DEPTH (checked
    here once, so nothing downstream meets a value too deep to write or walk)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise invalid("request body is empty; expected a JSON object")
    return json_object(raw, "request body"), mentions_wrapped(raw)


def json_object(raw: bytes | str, where: str) -> dict[str, Any]:
    """``raw`` as a JSON object; 400 naming ``where`` when it is not one (or nests too deep)."""
    try:
        body = loads_limited(raw, where)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid(f"{where} must be a JSON object, not {type(body).__name__}")
    return body


def _too_large(limit: int) -> ProxyError:
    return ProxyError(
        ErrorKind.TOO_LARGE,
        f"request body exceeds the limit of {limit} bytes (request-body-limit-mb)",
    )


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: required, a non-empty string", "model")
    return model


def require_stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise invalid("stream: expected true or false", "stream")
    return stream
