"""OpenTelemetry, optional: one span per client request, exported over OTLP/HTTP.

With `otel.endpoint` set and the `otel` extra installed (``pip install 'cliproxy[otel]'``), an
observer turns each RequestOutcome into one span carrying the GenAI semantic-convention
attributes (gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model, token usage,
error.type, server.address, ...). The span is built when the reply has ended: it starts at
"now minus the request's latency" and ends now. Spans go through the SDK's batch processor,
whose worker thread does the exporting, so the hook itself only builds and queues a span.

The SDK and exporter are imported only here and only when an endpoint is set; without them the
proxy logs one warning at start and runs without spans. The tracer provider is our own, not
the process's global one, so an embedding program's tracing is left alone.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

from cliproxy.config.schema import OtelConfig
from cliproxy.usage.events import RequestOutcome

log = logging.getLogger(__name__)

# gen_ai.operation.name by the client's protocol.
OPERATIONS = {
    "openai_chat": "chat",
    "openai_responses": "chat",
    "anthropic": "chat",
    "gemini": "generate_content",
    "openai_completions": "text_completion",
}
# gen_ai.provider.name by the upstream's protocol: the telemetry "flavor" (an OpenAI-compatible
# upstream is "openai" whoever hosts it; server.address tells them apart).
PROVIDERS = {
    "openai_chat": "openai",
    "openai_responses": "openai",
    "openai_completions": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
}
SCOPE = "cliproxy"
EXPORT_DELAY_MS = 1000  # how long finished spans may wait to be batched
EXPORT_TIMEOUT_S = 5  # per export; a collector that is down cannot hold a shutdown for long

# credential id -> (host, port) of the upstream it calls; None when unknown.
UpstreamAddress = Callable[[str], tuple[str, int | None] | None]

REQUIRED_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)
INSTALL_HINT = "pip install 'cliproxy[otel]'"


class Tracing:
    """The span-building observer. ``exporter`` replaces the OTLP exporter (tests)."""

    def __init__(
        self,
        settings: OtelConfig,
        upstream_address: UpstreamAddress | None = None,
        exporter: Any = None,
    ) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import SpanKind, Status, StatusCode

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(
                endpoint=settings.traces_url,
                headers=dict(settings.headers) or None,
                timeout=EXPORT_TIMEOUT_S,
            )
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name})
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MS)
        )
        self.tracer = self.provider.get_tracer(SCOPE)
        self.upstream_address = upstream_address
        self._client_kind = SpanKind.CLIENT
        self._error = Status(StatusCode.ERROR)
        self.endpoint = settings.traces_url

    def on_request(self, event: RequestOutcome) -> None:
        end = time.time_ns()
        start = end - int(event.latency * 1e9)
        operation = OPERATIONS.get(event.client_protocol, event.client_protocol or "chat")
        model = event.requested_model
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.stream": event.stream,
            "http.response.status_code": event.status,
            "cliproxy.client_protocol": event.client_protocol,
            "cliproxy.ending": event.ending,
            "cliproxy.attempts": event.attempts,
        }
        if model:
            attributes["gen_ai.request.model"] = model
        if event.upstream_model:
            attributes["gen_ai.response.model"] = event.upstream_model
        flavor = PROVIDERS.get(event.upstream_protocol)
        if flavor is not None:
            attributes["gen_ai.provider.name"] = flavor
            attributes["gen_ai.system"] = flavor  # the older name some backends still read
        if event.provider:
            attributes["cliproxy.provider"] = event.provider
        if event.upstream_protocol:
            attributes["cliproxy.upstream_protocol"] = event.upstream_protocol
        if event.path:
            attributes["cliproxy.path"] = event.path
        if event.provider or event.input_tokens or event.output_tokens:
            attributes["gen_ai.usage.input_tokens"] = event.input_tokens
            attributes["gen_ai.usage.output_tokens"] = event.output_tokens
        if event.cached_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = event.cached_tokens
        if event.reasoning_tokens:
            attributes["gen_ai.usage.reasoning.output_tokens"] = event.reasoning_tokens
        if event.first_token is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = event.first_token
        if event.credential_id and self.upstream_address is not None:
            address = self.upstream_address(event.credential_id)
            if address is not None:
                attributes["server.address"] = address[0]
                if address[1] is not None:
                    attributes["server.port"] = address[1]
        failed = event.ending == "error"
        if failed:
            attributes["error.type"] = (
                event.error_kind.value if event.error_kind is not None else str(event.status)
            )
        span = self.tracer.start_span(
            f"{operation} {model}" if model else operation,
            kind=self._client_kind,
            attributes=attributes,
            start_time=start,
        )
        if failed:
            span.set_status(self._error)
        span.end(end_time=end)

    def force_flush(self, timeout_millis: int = 5000) -> bool:
        """Export what is queued now (blocking; tests and shutdown)."""
        return bool(self.provider.force_flush(timeout_millis))

    def shutdown(self) -> None:
        """Export what is queued and stop the worker (blocking)."""
        self.provider.shutdown()


def start_tracing(
    settings: OtelConfig, upstream_address: UpstreamAddress | None = None
) -> Tracing | None:
    """The tracing observer when `otel.endpoint` is set and the SDK is installed; else None,
    with one warning when the endpoint is set but the packages are missing."""
    if not settings.endpoint:
        return None
    try:
        for module in REQUIRED_MODULES:
            importlib.import_module(module)
    except ImportError as exc:
        log.warning(
            "otel.endpoint is set but the OpenTelemetry packages are not installed (%s "
            "missing): no spans are exported. Install them with: %s",
            exc.name or "opentelemetry",
            INSTALL_HINT,
        )
        return None
    tracing = Tracing(settings, upstream_address)
    log.info("OpenTelemetry: one span per request, exported to %s", tracing.endpoint)
    return tracing
