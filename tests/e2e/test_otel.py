"""OpenTelemetry spans through the real OTLP/HTTP exporter to a receiver on 127.0.0.1: one span
per request with the GenAI attributes; an error reply marks its span; a missing extra is one
warning at start, not a crash."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest

from cliproxy.app import build_app
from cliproxy.config import ConfigError, parse_config_text
from cliproxy.usage.otel import start_tracing
from tests.proxy_server import ProxyServer
from tests.simulators import OpenAIChatSim, Reply

pytest.importorskip("opentelemetry.sdk.trace")
trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")

CLIENT_KEY = "otel-client-key-123456"


class Receiver:
    """A minimal OTLP/HTTP traces endpoint: decodes each export's protobuf body."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.paths.append(self.path)
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                request = trace_service.ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    resource = _attributes(resource_spans.resource.attributes)
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            receiver.spans.append(
                                {
                                    "name": span.name,
                                    "kind": span.kind,
                                    "start": span.start_time_unix_nano,
                                    "end": span.end_time_unix_nano,
                                    "status": span.status.code,
                                    "attributes": _attributes(span.attributes),
                                    "resource": resource,
                                }
                            )
                reply = trace_service.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, seconds: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.spans


def _attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        which = pair.value.WhichOneof("value")
        out[pair.key] = getattr(pair.value, which) if which else None
    return out


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    started.thread.start()
    try:
        yield started
    finally:
        started.server.shutdown()
        started.server.server_close()


@pytest.fixture(scope="module")
def chat() -> Iterator[OpenAIChatSim]:
    with OpenAIChatSim() as sim:
        yield sim


@pytest.fixture(scope="module")
def proxy(receiver: Receiver, chat: OpenAIChatSim) -> Iterator[ProxyServer]:
    config = f"""
api-keys: [{CLIENT_KEY}]
request-retry: 1
max-retry-interval: 0
otel:
  endpoint: {receiver.url}
  service-name: cliproxy-under-test
  headers: {{x-collector-key: collector-secret}}
openai-compatibility:
  - name: chat-sim
    base-url: {chat.base_url}
    api-key-entries: [{{api-key: up-chat-key}}]
    models: [{{name: up-chat, alias: chat-model}}]
"""
    with ProxyServer(config) as server:
        yield server


@pytest.fixture
def client(proxy: ProxyServer, chat: OpenAIChatSim, receiver: Receiver) -> Iterator[openai.OpenAI]:
    chat.reset()
    proxy.state.cooldowns.clear()
    receiver.spans.clear()
    with openai.OpenAI(
        base_url=f"{proxy.base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=10
    ) as sdk:
        yield sdk


def _flush(proxy: ProxyServer) -> None:
    tracing = proxy.state.tracing
    assert tracing is not None
    assert tracing.force_flush()


def test_each_request_is_one_span_with_the_genai_attributes(
    proxy: ProxyServer, client: openai.OpenAI, chat: OpenAIChatSim, receiver: Receiver
) -> None:
    chat.queue(Reply.text("plain", input_tokens=21, output_tokens=8, cached_tokens=4))
    chat.queue(Reply.text("streamed words", output_tokens=6, reasoning_tokens=2, chunk_size=3))
    began = time.time_ns()
    client.chat.completions.create(model="chat-model", messages=[{"role": "user", "content": "a"}])
    chunks = client.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": "b"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    _flush(proxy)
    plain, streamed = receiver.wait_for(2)
    assert len(receiver.spans) == 2
    assert receiver.paths == ["/v1/traces"] * len(receiver.paths)
    # Headers from the config go with each export.
    assert all(h.get("x-collector-key") == "collector-secret" for h in receiver.headers)

    assert plain["name"] == "chat chat-model"
    assert plain["resource"]["service.name"] == "cliproxy-under-test"
    attributes = plain["attributes"]
    port = int(chat.base_url.rsplit(":", 1)[1].split("/")[0])
    assert (
        attributes
        | {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "chat-model",
            "gen_ai.response.model": "up-chat",
            "gen_ai.usage.input_tokens": 21,
            "gen_ai.usage.output_tokens": 8,
            "gen_ai.usage.cache_read.input_tokens": 4,
            "gen_ai.request.stream": False,
            "http.response.status_code": 200,
            "server.address": "127.0.0.1",
            "server.port": port,
        }
        == attributes
    )
    assert "error.type" not in attributes
    assert "gen_ai.response.time_to_first_chunk" not in attributes
    assert began <= plain["start"] < plain["end"] <= time.time_ns()

    streamed_attributes = streamed["attributes"]
    assert streamed_attributes["gen_ai.request.stream"] is True
    assert streamed_attributes["gen_ai.usage.output_tokens"] == 6
    assert streamed_attributes["gen_ai.usage.reasoning.output_tokens"] == 2
    assert streamed_attributes["gen_ai.response.time_to_first_chunk"] > 0
    # No secret reaches the collector.
    flat = repr(receiver.spans)
    assert CLIENT_KEY not in flat and "up-chat-key" not in flat


def test_an_error_reply_marks_its_span(
    proxy: ProxyServer, client: openai.OpenAI, chat: OpenAIChatSim, receiver: Receiver
) -> None:
    chat.queue(Reply.error(429, retry_after=600))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="chat-model", messages=[{"role": "user", "content": "x"}]
        )
    _flush(proxy)
    [span] = receiver.wait_for(1)
    assert span["attributes"]["error.type"] == "rate_limit"
    assert span["attributes"]["http.response.status_code"] == 429
    assert span["status"] == 2  # STATUS_CODE_ERROR


async def test_without_the_extra_one_warning_and_no_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    config = parse_config_text(
        f"auth-dir: {tmp_path}\notel: {{endpoint: 'http://127.0.0.1:4318'}}\n", "t.yaml"
    )
    with caplog.at_level(logging.WARNING, logger="cliproxy"):
        app = build_app(config)
    assert app.state.cliproxy.tracing is None
    await app.state.cliproxy.close()
    warnings = [r for r in caplog.records if "OpenTelemetry" in r.getMessage()]
    assert len(warnings) == 1
    assert "pip install 'cliproxy[otel]'" in warnings[0].getMessage()


def test_no_endpoint_no_tracing() -> None:
    assert start_tracing(parse_config_text("{}", "t.yaml").otel) is None


def test_the_otel_section_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"otel\.endpoint"):
        parse_config_text("otel: {endpoint: 'ftp://collector'}\n", "t.yaml")
    with pytest.raises(ConfigError, match=r"otel\.service-name"):
        parse_config_text("otel: {endpoint: 'http://c:4318', service-name: ' '}\n", "t.yaml")
    otel = parse_config_text("otel: {endpoint: 'http://c:4318/'}\n", "t.yaml").otel
    assert otel.traces_url == "http://c:4318/v1/traces"
    assert otel.service_name == "cliproxy"
    given = parse_config_text("otel: {endpoint: 'https://c/v1/traces'}\n", "t.yaml").otel
    assert given.traces_url == "https://c/v1/traces"
