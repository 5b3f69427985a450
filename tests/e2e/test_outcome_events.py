"""Outcome events over HTTP: every upstream attempt and every client request on a generation
route reaches the subscribed observers as one typed event, with the tokens the upstream
reported; an observer that fails or is slow never changes or delays a response."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cliproxy.model import ErrorKind
from cliproxy.usage.events import AttemptOutcome, RequestOutcome
from cliproxy.usage.observers import QueuedObserver
from tests.proxy_server import ProxyServer
from tests.simulators import Reply, Simulator
from tests.simulators.fixtures import own_matrix_sims

CLIENT_KEY = "client-key-abcdef-123456"
MASKED = "clie…3456"

CONFIG = """
demo: true
api-keys: [{client_key}]
request-retry: 1
max-retry-interval: 0
openai-compatibility:
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: up-chat-key}}]
    models: [{{name: up-chat, alias: chat-model}}]
codex-api-key:
  - api-key: up-resp-key
    base-url: {resp}
    models: [{{name: up-resp, alias: resp-model}}]
claude-api-key:
  - api-key: up-claude-first
    base-url: {claude}
    models: [{{name: up-claude, alias: claude-model}}, {{name: up-pool, alias: pooled}}]
  - api-key: up-claude-second
    base-url: {claude}
    models: [{{name: up-pool, alias: pooled}}]
gemini-api-key:
  - api-key: up-gemini-key
    base-url: {gemini}
    models: [{{name: up-gemini, alias: gemini-model}}]
"""

PROTOCOLS = {  # client protocol -> (its name in events, the model of the same vendor)
    "chat": ("openai_chat", "chat-model"),
    "responses": ("openai_responses", "resp-model"),
    "messages": ("anthropic", "claude-model"),
    "gemini": ("gemini", "gemini-model"),
}
# A translated pairing for each client protocol: an upstream of another vendor.
TRANSLATED = {
    "chat": "claude-model",
    "responses": "gemini-model",
    "messages": "chat-model",
    "gemini": "resp-model",
}
UPSTREAM_PROTOCOL = {
    "chat-model": "openai_chat",
    "resp-model": "openai_responses",
    "claude-model": "anthropic",
    "gemini-model": "gemini",
}


def _call(protocol: str, model: str, stream: bool, prompt: str = "hi") -> tuple[str, Any]:
    if protocol == "chat":
        body: dict[str, Any] = {
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": prompt}],
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return "/v1/chat/completions", body
    if protocol == "responses":
        return "/v1/responses", {"model": model, "stream": stream, "input": prompt}
    if protocol == "messages":
        body = {
            "model": model,
            "stream": stream,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": prompt}],
        }
        return "/v1/messages", body
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{method}", {"contents": [{"parts": [{"text": prompt}]}]}


class Recorder:
    """A plain observer: keeps every event (called on the proxy's event loop thread)."""

    def __init__(self) -> None:
        self.attempts: list[AttemptOutcome] = []
        self.requests: list[RequestOutcome] = []

    def on_attempt(self, event: AttemptOutcome) -> None:
        self.attempts.append(event)

    def on_request(self, event: RequestOutcome) -> None:
        self.requests.append(event)


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Simulator]]:
    with own_matrix_sims() as started:
        yield started


@pytest.fixture(scope="module")
def proxy(sims: dict[str, Simulator]) -> Iterator[ProxyServer]:
    config = CONFIG.format(
        client_key=CLIENT_KEY,
        chat=sims["chat-model"].base_url,
        resp=sims["resp-model"].base_url,
        claude=sims["claude-model"].base_url,
        gemini=sims["gemini-model"].base_url,
    )
    with ProxyServer(config) as server:
        yield server


@pytest.fixture
def http(proxy: ProxyServer, sims: dict[str, Simulator]) -> Iterator[httpx.Client]:
    for sim in sims.values():
        sim.reset()
    proxy.state.cooldowns.clear()
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    with httpx.Client(base_url=proxy.base_url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def recorder(proxy: ProxyServer) -> Iterator[Recorder]:
    recording = Recorder()
    proxy.state.observers.subscribe(recording)
    yield recording
    proxy.state.observers.unsubscribe(recording)


def _one_request(recorder: Recorder) -> RequestOutcome:
    assert _wait_for(lambda: len(recorder.requests) >= 1)
    time.sleep(0.05)  # a second one would have arrived by now
    assert len(recorder.requests) == 1, recorder.requests
    return recorder.requests[0]


# ----- every protocol, plain and streamed, pass-through and translated ------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("translated", [False, True], ids=["pass-through", "translated"])
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_request_is_one_attempt_and_one_request_outcome(
    protocol: str,
    translated: bool,
    stream: bool,
    http: httpx.Client,
    sims: dict[str, Simulator],
    recorder: Recorder,
) -> None:
    client_protocol, same_vendor = PROTOCOLS[protocol]
    model = TRANSLATED[protocol] if translated else same_vendor
    sims[model].queue(
        Reply.text(
            "one two three four",
            input_tokens=31,
            output_tokens=17,
            cached_tokens=5,
            chunk_size=4,
        )
    )
    path, body = _call(protocol, model, stream)
    reply = http.post(path, json=body)
    assert reply.status_code == 200, reply.text
    event = _one_request(recorder)

    assert (event.client_protocol, event.requested_model, event.stream) == (
        client_protocol,
        model,
        stream,
    )
    assert event.upstream_protocol == UPSTREAM_PROTOCOL[model]
    assert event.path == ("translated" if translated else "pass-through")
    assert (event.status, event.error_kind, event.ending) == (200, None, "completed")
    assert (event.input_tokens, event.output_tokens, event.cached_tokens) == (31, 17, 5)
    assert event.attempts == 1
    assert event.client_key == MASKED
    assert event.bytes_out == len(reply.content)
    assert event.latency > 0
    if stream:
        assert event.first_token is not None and 0 < event.first_token <= event.latency
    else:
        assert event.first_token is None

    [attempt] = recorder.attempts
    assert attempt.credential_id == event.credential_id != ""
    assert attempt.provider == event.provider != ""
    assert attempt.upstream_model == event.upstream_model
    assert (attempt.status, attempt.error_kind, attempt.number, attempt.ok) == (200, None, 1, True)
    assert (attempt.refused, attempt.rested, attempt.retried) == (False, False, False)
    assert attempt.requested_model == model
    assert 0 < attempt.latency <= event.latency


@pytest.mark.parametrize("model", ["chat-model", "resp-model", "gemini-model"])
def test_reasoning_tokens_are_reported(
    model: str, http: httpx.Client, sims: dict[str, Simulator], recorder: Recorder
) -> None:
    sims[model].queue(Reply.text("answer", output_tokens=40, reasoning_tokens=25))
    protocol = {"chat-model": "chat", "resp-model": "responses", "gemini-model": "gemini"}[model]
    path, body = _call(protocol, model, stream=True)
    assert http.post(path, json=body).status_code == 200
    event = _one_request(recorder)
    assert (event.output_tokens, event.reasoning_tokens) == (40, 25)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_the_demo_answers_through_the_provider_interface(
    stream: bool, http: httpx.Client, recorder: Recorder
) -> None:
    # The demo is an in-process Messages upstream: an Anthropic client passes through.
    path, body = _call("messages", "demo-echo", stream, prompt="echo these words back")
    assert http.post(path, json=body).status_code == 200
    event = _one_request(recorder)
    assert (event.path, event.provider, event.attempts, event.ending) == (
        "pass-through",
        "demo",
        1,
        "completed",
    )
    assert (event.upstream_protocol, event.credential_id) == ("anthropic", "demo")
    assert event.input_tokens > 0 and event.output_tokens > 0
    assert (event.first_token is not None) is stream
    assert [(a.provider, a.status, a.sent) for a in recorder.attempts] == [("demo", 200, True)]


# ----- retries, errors --------------------------------------------------------------------------


def test_a_failed_attempt_then_another_credential(
    http: httpx.Client, sims: dict[str, Simulator], recorder: Recorder
) -> None:
    claude = sims["claude-model"]
    claude.queue(Reply.error(500, "momentary"), Reply.text("from the other one"))
    path, body = _call("messages", "pooled", stream=True)
    reply = http.post(path, json=body)
    assert reply.status_code == 200 and "message_stop" in reply.text
    assert len(claude.requests) == 2
    event = _one_request(recorder)
    first, second = recorder.attempts
    assert (first.status, first.error_kind, first.ok) == (500, ErrorKind.SERVER, False)
    assert first.rested and not first.refused and first.number == 1
    assert (second.status, second.ok, second.number, second.retried) == (200, True, 2, True)
    assert first.credential_id != second.credential_id
    assert (event.attempts, event.status, event.ending) == (2, 200, "completed")
    assert event.credential_id == second.credential_id


def test_an_error_reply_is_an_error_outcome(
    http: httpx.Client, sims: dict[str, Simulator], recorder: Recorder
) -> None:
    sims["gemini-model"].queue(Reply.error(400, "that is not allowed"))
    path, body = _call("chat", "gemini-model", stream=False)
    reply = http.post(path, json=body)
    assert reply.status_code == 400
    event = _one_request(recorder)
    assert (event.status, event.error_kind, event.ending) == (
        400,
        ErrorKind.INVALID_REQUEST,
        "error",
    )
    assert (event.attempts, event.bytes_out) == (1, len(reply.content))
    [attempt] = recorder.attempts
    assert (attempt.status, attempt.error_kind) == (400, ErrorKind.INVALID_REQUEST)


def test_a_stream_cut_by_the_upstream_is_an_error_outcome(
    http: httpx.Client, sims: dict[str, Simulator], recorder: Recorder
) -> None:
    sims["claude-model"].queue(
        Reply.text("one two three four five six", chunk_size=4, cut_after=2, input_tokens=23)
    )
    path, body = _call("messages", "claude-model", stream=True)
    reply = http.post(path, json=body)
    assert reply.status_code == 200 and "error" in reply.text
    event = _one_request(recorder)
    assert (event.status, event.error_kind, event.ending) == (200, ErrorKind.UPSTREAM, "error")
    assert event.first_token is not None
    # What the stream had told before the cut still counts (the prompt, in message_start).
    assert event.input_tokens == 23


@pytest.mark.parametrize(
    ("send", "status", "kind"),
    [
        (lambda c: c.post("/v1/chat/completions", content=b"{not json"), 400, "invalid_request"),
        (
            lambda c: c.post("/v1/chat/completions", json={"model": "nope", "messages": []}),
            404,
            "not_found",
        ),
        (
            lambda c: c.post(
                "/v1/messages", json={"model": "x"}, headers={"authorization": "Bearer wrong-key"}
            ),
            401,
            "authentication",
        ),
    ],
    ids=["bad body", "unknown model", "wrong client key"],
)
def test_a_refusal_before_any_upstream_is_one_request_outcome(
    send: Callable[[httpx.Client], httpx.Response],
    status: int,
    kind: str,
    http: httpx.Client,
    recorder: Recorder,
) -> None:
    reply = send(http)
    assert reply.status_code == status
    event = _one_request(recorder)
    assert (event.status, event.error_kind, event.ending) == (status, ErrorKind(kind), "error")
    assert (event.attempts, event.path, event.credential_id) == (0, "", "")
    assert recorder.attempts == []
    if status == 401:
        assert event.client_key == "wron…-key"


def test_the_client_key_never_appears_whole(
    http: httpx.Client, sims: dict[str, Simulator], recorder: Recorder
) -> None:
    sims["chat-model"].queue(Reply.text("hello"))
    path, body = _call("chat", "chat-model", stream=False)
    assert http.post(path, json=body).status_code == 200
    event = _one_request(recorder)
    assert CLIENT_KEY not in repr(event) and event.client_key == MASKED


def test_non_generation_routes_have_no_outcome(http: httpx.Client, recorder: Recorder) -> None:
    assert http.get("/v1/models").status_code == 200
    assert http.get("/healthz").status_code == 200
    time.sleep(0.1)
    assert recorder.requests == [] and recorder.attempts == []


# ----- the client hangs up ----------------------------------------------------------------------


def test_a_client_hang_up_mid_stream_is_one_hung_up_outcome(
    proxy: ProxyServer, sims: dict[str, Simulator], recorder: Recorder
) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    sims["chat-model"].queue(Reply.text(words, chunk_size=3, delay=0.1))
    path, body = _call("chat", "chat-model", stream=True)
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    with (
        httpx.Client(base_url=proxy.base_url, headers=headers, timeout=10) as client,
        client.stream("POST", path, json=body) as reply,
    ):
        assert reply.status_code == 200
        first = next(reply.iter_raw())
        assert first
    # The connection is closed here, long before the upstream would finish (~1.3 s).
    event = _one_request(recorder)
    assert (event.status, event.ending, event.error_kind) == (200, "hung_up", None)
    assert event.first_token is not None and event.bytes_out >= len(first)
    assert event.latency < 1.2
    assert len(recorder.attempts) == 1


def test_a_client_hang_up_before_the_answer_is_one_hung_up_outcome(
    proxy: ProxyServer, sims: dict[str, Simulator], recorder: Recorder
) -> None:
    sims["claude-model"].queue(Reply.text("never sent", hang=True))
    path, body = _call("messages", "claude-model", stream=False)
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    with (
        httpx.Client(
            base_url=proxy.base_url, headers=headers, timeout=httpx.Timeout(5.0, read=0.3)
        ) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post(path, json=body)
    event = _one_request(recorder)
    assert (event.status, event.ending, event.bytes_out) == (0, "hung_up", 0)
    assert event.first_token is None and event.requested_model == "claude-model"


# ----- observers that fail or are slow ----------------------------------------------------------


class Failing:
    def on_attempt(self, event: AttemptOutcome) -> None:
        raise RuntimeError("attempt observer is broken")

    def on_request(self, event: RequestOutcome) -> None:
        raise RuntimeError("request observer is broken")


def _text(reply: httpx.Response) -> str:
    content = reply.json()["choices"][0]["message"]["content"]
    assert isinstance(content, str)
    return content


def test_an_observer_that_raises_changes_nothing_and_is_logged_once(
    proxy: ProxyServer,
    http: httpx.Client,
    sims: dict[str, Simulator],
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = sims["chat-model"]
    path, body = _call("chat", "chat-model", stream=False)
    sim.queue(Reply.text("same answer", input_tokens=9))
    before = http.post(path, json=body)
    assert _wait_for(lambda: len(recorder.requests) == 1)

    failing = Failing()
    observers = proxy.state.observers
    caplog.set_level(logging.WARNING, logger="cliproxy.usage.observers")
    observers.subscribe(failing)
    try:
        replies = []
        for _ in range(3):
            sim.queue(Reply.text("same answer", input_tokens=9))
            replies.append(http.post(path, json=body))
        # 3 attempts and 3 requests, each failing in the broken observer.
        assert _wait_for(lambda: observers.failures(failing) == 6)
    finally:
        observers.unsubscribe(failing)
    for reply in replies:
        assert reply.status_code == before.status_code == 200
        assert _text(reply) == _text(before) == "same answer"
        assert reply.json()["usage"] == before.json()["usage"]
    # The observer subscribed after the failing one still got everything.
    assert len(recorder.requests) == 4 and len(recorder.attempts) == 4
    logged = [r for r in caplog.records if r.name == "cliproxy.usage.observers"]
    assert len(logged) == 1 and "Failing" in logged[0].getMessage()
    assert logged[0].exc_info is not None


class Slow:
    """An async observer held at its first event until ``gate`` opens (from the test thread)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.busy = threading.Event()
        self.seen: list[RequestOutcome] = []

    async def on_request(self, event: RequestOutcome) -> None:
        self.busy.set()
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        self.seen.append(event)


def test_a_slow_queued_observer_delays_no_response_and_drops_what_overflows(
    proxy: ProxyServer,
    http: httpx.Client,
    sims: dict[str, Simulator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = Slow()
    queued = QueuedObserver(slow, maxsize=2)
    observers = proxy.state.observers
    caplog.set_level(logging.WARNING, logger="cliproxy.usage.observers")
    observers.subscribe(queued)
    sim = sims["chat-model"]
    try:
        models = []
        for index in range(5):
            sim.queue(Reply.text(f"answer {index}", output_tokens=index + 1))
            path, body = _call("chat", "chat-model", stream=index % 2 == 1)
            started = time.monotonic()
            reply = http.post(path, json=body)
            assert reply.status_code == 200
            assert time.monotonic() - started < 2.0
            models.append(index + 1)
            if index == 0:
                # The worker now holds the first event; the queue takes two more.
                assert slow.busy.wait(5.0)
        assert _wait_for(lambda: queued.dropped == 2)
        assert slow.seen == [] and queued.pending == 2
        slow.gate.set()
        assert _wait_for(lambda: len(slow.seen) == 3)
    finally:
        slow.gate.set()
        observers.unsubscribe(queued)
    assert [e.output_tokens for e in slow.seen] == models[:3]
    assert queued.dropped == 2 and queued.handled == 3
    full = [r for r in caplog.records if "queue" in r.getMessage()]
    assert len(full) == 1 and full[0].levelno == logging.WARNING


def test_an_async_observer_must_be_queued(proxy: ProxyServer) -> None:
    with pytest.raises(TypeError, match="QueuedObserver"):
        proxy.state.observers.subscribe(Slow())


# ----- usage of a Chat stream the client did not ask usage for -------------------------------


@pytest.mark.parametrize("client_asks", [False, True], ids=["not-asked", "asked"])
def test_a_chat_stream_is_counted_even_when_the_client_did_not_ask_for_usage(
    client_asks: bool, proxy: ProxyServer, sims: dict[str, Simulator], recorder: Recorder
) -> None:
    import openai

    sims["chat-model"].reset()
    sims["chat-model"].queue(Reply.text("counted answer", input_tokens=21, output_tokens=8))
    client = openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    options: dict[str, Any] = {"stream_options": {"include_usage": True}} if client_asks else {}
    chunks = list(
        client.chat.completions.create(
            model="chat-model",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            **options,
        )
    )
    # The upstream was asked for usage either way; the client sees the usage chunk only when
    # it asked, and never a chunk without choices otherwise.
    upstream = sims["chat-model"].last_request.json
    assert upstream["stream_options"]["include_usage"] is True
    usage_chunks = [c for c in chunks if not c.choices]
    if client_asks:
        assert [c.usage.prompt_tokens for c in usage_chunks if c.usage] == [21]
    else:
        assert usage_chunks == []
        assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "counted answer"
    )
    event = _one_request(recorder)
    assert (event.path, event.input_tokens, event.output_tokens) == ("pass-through", 21, 8)
