"""GET /metrics over HTTP: requests made with the official OpenAI SDK show up in the counters,
tokens and histograms; odd model names collapse into one label; the credentials gauge follows
cooldowns and account files; open streams go back to zero; only local clients read freely."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cliproxy.app import build_app
from cliproxy.config import parse_config_text
from cliproxy.management.routes_metrics import metrics_refusal
from cliproxy.management.security import ManagementGuard
from cliproxy.usage.events import RefreshOutcome, RequestOutcome
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, OpenAIChatSim, Reply

CLIENT_KEY = "metrics-client-key-123456"
MANAGEMENT_KEY = "metrics-management-key-987"

CONFIG = """
demo: true
api-keys: [{client_key}]
auth-dir: {auth_dir}
request-retry: 1
max-retry-interval: 0
openai-compatibility:
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: up-chat-key}}]
    models: [{{name: up-chat, alias: chat-model}}]
claude-api-key:
  - api-key: up-claude-key
    base-url: {claude}
    models: [{{name: up-claude, alias: claude-model}}]
"""

CHAT_PROVIDER = "openai-compatibility:chat-sim"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(proxy: ProxyServer, **headers: str) -> Samples:
    reply = httpx.get(f"{proxy.base_url}/metrics", headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def _account(auth_dir: Path, name: str, **fields: object) -> None:
    raw = {"type": "claude", "email": f"{name}@example.com", **fields}
    (auth_dir / f"{name}.json").write_bytes(orjson.dumps(raw))


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[OpenAIChatSim, AnthropicSim]]:
    chat, claude = OpenAIChatSim().start(), AnthropicSim().start()
    try:
        yield chat, claude
    finally:
        chat.stop()
        claude.stop()


@pytest.fixture(scope="module")
def proxy(
    sims: tuple[OpenAIChatSim, AnthropicSim], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyServer]:
    auth_dir = tmp_path_factory.mktemp("metrics-auth")
    far = "2099-01-01T00:00:00Z"
    _account(auth_dir, "ready-one", access_token="at-1", refresh_token="rt-1", expired=far)
    _account(auth_dir, "off", access_token="at-2", refresh_token="rt-2", expired=far, disabled=True)
    _account(auth_dir, "no-tokens")  # needs a login: the file holds no tokens
    chat, claude = sims
    config = CONFIG.format(
        client_key=CLIENT_KEY, auth_dir=auth_dir, chat=chat.base_url, claude=claude.base_url
    )
    with ProxyServer(config) as server:
        yield server


@pytest.fixture
def client(proxy: ProxyServer, sims: tuple[OpenAIChatSim, AnthropicSim]) -> Iterator[openai.OpenAI]:
    for sim in sims:
        sim.reset()
    proxy.state.cooldowns.clear()
    with openai.OpenAI(
        base_url=f"{proxy.base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=10
    ) as sdk:
        yield sdk


def _ask(client: openai.OpenAI, model: str, stream: bool = False) -> str:
    messages: list = [{"role": "user", "content": "hello"}]
    if not stream:
        reply = client.chat.completions.create(model=model, messages=messages)
        return reply.choices[0].message.content or ""
    chunks = client.chat.completions.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_requests_tokens_and_durations_are_counted(
    proxy: ProxyServer, client: openai.OpenAI, sims: tuple[OpenAIChatSim, AnthropicSim]
) -> None:
    chat, claude = sims
    before = scrape(proxy)
    chat.queue(Reply.text("plain answer", input_tokens=11, output_tokens=7, cached_tokens=3))
    claude.queue(
        Reply.text("streamed answer", input_tokens=13, output_tokens=9, chunk_size=4),
    )
    chat.queue(Reply.text("reasoned", output_tokens=20, reasoning_tokens=12))
    assert _ask(client, "chat-model") == "plain answer"
    assert _ask(client, "claude-model", stream=True) == "streamed answer"  # translated
    assert _ask(client, "chat-model") == "reasoned"
    after = scrape(proxy)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "cliproxy_requests_total"
    chat_labels = {"protocol": "openai_chat", "model": "chat-model", "status": "200"}
    assert grew(requests, provider=CHAT_PROVIDER, **chat_labels) == 2
    claude_labels = {"protocol": "openai_chat", "model": "claude-model", "status": "200"}
    assert grew(requests, provider="claude-api-key", **claude_labels) == 1

    tokens = "cliproxy_tokens_total"
    assert grew(tokens, model="chat-model", kind="input") == 11 + 10  # the Reply default: 10
    assert grew(tokens, model="chat-model", kind="output") == 7 + 20
    assert grew(tokens, model="chat-model", kind="cached") == 3
    assert grew(tokens, model="chat-model", kind="reasoning") == 12
    assert grew(tokens, model="claude-model", kind="input") == 13
    assert grew(tokens, model="claude-model", kind="output") == 9

    duration = "cliproxy_request_duration_seconds_count"
    assert grew(duration, model="chat-model", provider=CHAT_PROVIDER) == 2
    assert grew(duration, model="claude-model", provider="claude-api-key") == 1
    # Time to first token: streams only.
    first_token = "cliproxy_time_to_first_token_seconds_count"
    assert grew(first_token, model="claude-model", provider="claude-api-key") == 1
    assert value(after, first_token, model="chat-model", provider=CHAT_PROVIDER) == 0
    assert value(after, "cliproxy_time_to_first_token_seconds_sum", model="claude-model") >= 0
    assert value(after, "cliproxy_active_streams") == 0


def test_odd_model_names_share_one_label(proxy: ProxyServer, client: openai.OpenAI) -> None:
    for index in range(5):
        with pytest.raises(openai.NotFoundError):
            _ask(client, f"no-such-model-{index}")
    samples = scrape(proxy)
    names = {
        dict(labels).get("model") for (name, labels) in samples if name.startswith("cliproxy_")
    }
    assert not any(name and name.startswith("no-such-model") for name in names)
    other = {"protocol": "openai_chat", "model": "other", "provider": "none", "status": "404"}
    assert value(samples, "cliproxy_requests_total", **other) >= 5


def test_a_refused_key_is_counted_without_a_model(proxy: ProxyServer) -> None:
    before = total(scrape(proxy), "cliproxy_requests_total", status="401")
    bad = openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key="wrong", max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError):
        _ask(bad, "chat-model")
    assert total(scrape(proxy), "cliproxy_requests_total", status="401") == before + 1


def test_upstream_errors_and_a_cooled_credential(
    proxy: ProxyServer, client: openai.OpenAI, sims: tuple[OpenAIChatSim, AnthropicSim]
) -> None:
    chat, _ = sims
    before = scrape(proxy)
    assert value(before, "cliproxy_credentials", provider=CHAT_PROVIDER, state="ready") == 1
    chat.queue(Reply.error(429, retry_after=600))
    with pytest.raises(openai.RateLimitError):
        _ask(client, "chat-model")
    after = scrape(proxy)
    errors = "cliproxy_upstream_errors_total"
    assert value(after, errors, provider=CHAT_PROVIDER, status="429") == (
        value(before, errors, provider=CHAT_PROVIDER, status="429") + 1
    )
    assert value(after, "cliproxy_credentials", provider=CHAT_PROVIDER, state="cooling") == 1
    assert value(after, "cliproxy_credentials", provider=CHAT_PROVIDER, state="ready") == 0
    # The other key is untouched.
    assert value(after, "cliproxy_credentials", provider="claude-api-key", state="ready") == 1


def test_accounts_are_counted_by_state(proxy: ProxyServer) -> None:
    samples = scrape(proxy)
    states = {
        state: value(samples, "cliproxy_credentials", provider="claude", state=state)
        for state in ("ready", "cooling", "disabled", "needs_login")
    }
    assert states == {"ready": 1, "cooling": 0, "disabled": 1, "needs_login": 1}
    proxy.state.cooldowns.cool("ready-one.json", "claude-x", time.time() + 600, "test")
    try:
        cooled = scrape(proxy)
        assert value(cooled, "cliproxy_credentials", provider="claude", state="cooling") == 1
        assert value(cooled, "cliproxy_credentials", provider="claude", state="ready") == 0
    finally:
        proxy.state.cooldowns.clear()


def test_refreshes_are_counted_under_the_provider_name(proxy: ProxyServer) -> None:
    before = scrape(proxy)
    # The hooks are plain and thread-safe; the refresher emits these on the server's loop.
    proxy.state.observers.emit(RefreshOutcome("g.json", "gemini", "ok", 0.1))
    proxy.state.observers.emit(RefreshOutcome("g.json", "gemini", "needs_login", 0.1))
    after = scrape(proxy)
    refreshes = "cliproxy_token_refreshes_total"
    for result in ("ok", "needs_login"):
        labels = {"provider": "gemini-cli", "result": result}
        assert value(after, refreshes, **labels) == value(before, refreshes, **labels) + 1


def test_an_open_stream_is_counted_until_it_ends(
    proxy: ProxyServer, client: openai.OpenAI, sims: tuple[OpenAIChatSim, AnthropicSim]
) -> None:
    chat, _ = sims
    chat.queue(Reply.text("a slow stream of words", chunk_size=2, delay=0.15))
    chunks = client.chat.completions.create(
        model="chat-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    iterator = iter(chunks)
    next(iterator)
    assert value(scrape(proxy), "cliproxy_active_streams") == 1
    rest = list(iterator)
    assert rest
    assert _wait_for(lambda: value(scrape(proxy), "cliproxy_active_streams") == 0)


def test_a_stream_the_client_leaves_is_no_longer_open(
    proxy: ProxyServer, client: openai.OpenAI, sims: tuple[OpenAIChatSim, AnthropicSim]
) -> None:
    chat, _ = sims
    chat.queue(Reply.text("words " * 40, chunk_size=2, delay=0.1))
    chunks = client.chat.completions.create(
        model="chat-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    next(iter(chunks))
    assert value(scrape(proxy), "cliproxy_active_streams") == 1
    chunks.close()
    assert _wait_for(lambda: value(scrape(proxy), "cliproxy_active_streams") == 0)


def test_metrics_need_no_client_key_from_this_machine(proxy: ProxyServer) -> None:
    reply = httpx.get(f"{proxy.base_url}/metrics", timeout=10)
    assert reply.status_code == 200
    assert "cliproxy_requests_total" in reply.text or "cliproxy_requests" in reply.text


# ----- who may read them from elsewhere --------------------------------------------------------


def _settings(**fields: object):  # type: ignore[no-untyped-def]
    yaml = "remote-management:\n" + "".join(f"  {k}: {v}\n" for k, v in fields.items())
    return parse_config_text(yaml or "{}", "t.yaml").remote_management


REMOTE = "203.0.113.9"


async def test_a_remote_client_needs_the_management_key() -> None:
    guard = ManagementGuard()
    # No management key at all: nobody from elsewhere.
    refusal = await metrics_refusal(guard, _settings(), REMOTE, {})
    assert refusal is not None and refusal.status == 403
    # A key, but remote management off.
    closed = _settings(**{"secret-key": MANAGEMENT_KEY})
    refusal = await metrics_refusal(
        guard, closed, REMOTE, {"authorization": f"Bearer {MANAGEMENT_KEY}"}
    )
    assert refusal is not None and refusal.status == 403
    opened = _settings(**{"secret-key": MANAGEMENT_KEY, "allow-remote": "true"})
    refusal = await metrics_refusal(guard, opened, REMOTE, {})
    assert refusal is not None and refusal.status == 401
    refusal = await metrics_refusal(guard, opened, REMOTE, {"authorization": "Bearer wrong"})
    assert refusal is not None and refusal.status == 401
    assert (
        await metrics_refusal(guard, opened, REMOTE, {"x-management-key": MANAGEMENT_KEY}) is None
    )
    # Local clients read freely, whatever the settings.
    for local in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert await metrics_refusal(guard, _settings(), local, {}) is None


async def test_a_local_reverse_proxy_does_not_make_remote_clients_local() -> None:
    settings = _settings(**{"trusted-proxies": '["127.0.0.1/32"]'})
    headers = {"x-forwarded-for": REMOTE}
    refusal = await metrics_refusal(ManagementGuard(), settings, "127.0.0.1", headers)
    assert refusal is not None and refusal.status == 403
    local = {"x-forwarded-for": "127.0.0.1"}
    assert await metrics_refusal(ManagementGuard(), settings, "127.0.0.1", local) is None


async def test_the_route_refuses_a_remote_client_without_a_key(tmp_path: Path) -> None:
    config = parse_config_text(
        f"auth-dir: {tmp_path}\napi-keys: [{CLIENT_KEY}]\nremote-management:\n"
        f"  secret-key: {MANAGEMENT_KEY}\n  allow-remote: true\n",
        "t.yaml",
    )
    app = build_app(config)
    try:
        transport = httpx.ASGITransport(app=app, client=(REMOTE, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as remote:
            refused = await remote.get("/metrics")
            assert refused.status_code == 401
            # A client key is not a management key.
            as_client = await remote.get(
                "/metrics", headers={"authorization": f"Bearer {CLIENT_KEY}"}
            )
            assert as_client.status_code == 401
            allowed = await remote.get("/metrics", headers={"x-management-key": MANAGEMENT_KEY})
            assert allowed.status_code == 200
            assert "cliproxy_active_streams 0.0" in allowed.text
    finally:
        await app.state.cliproxy.close()


def test_metrics_enabled_false_turns_the_route_and_the_counting_off(tmp_path: Path) -> None:
    config = f"demo: true\nauth-dir: {tmp_path}\nmetrics-enabled: false\n"
    with ProxyServer(config) as server:
        reply = httpx.get(f"{server.base_url}/metrics", timeout=10)
        assert reply.status_code == 404
        assert "metrics-enabled" in reply.json()["error"]
        state = server.state
        assert not any(s.observer is state.metrics for s in state.observers._hooks[RequestOutcome])
        # A reload that turns them on subscribes the observer once, and /metrics answers.
        state.apply(parse_config_text(f"demo: true\nauth-dir: {tmp_path}\n", "c"))
        state.apply(parse_config_text(f"demo: true\nauth-dir: {tmp_path}\n", "c"))
        subscribed = [
            s for s in state.observers._hooks[RequestOutcome] if s.observer is state.metrics
        ]
        assert len(subscribed) == 1
        body = {"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(f"{server.base_url}/v1/chat/completions", json=body).status_code == 200
        samples = scrape(server)
        assert total(samples, "cliproxy_requests_total", model="demo-echo") == 1
