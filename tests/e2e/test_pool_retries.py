"""Retries through the real proxy: rounds and their limits (request-retry per credential,
max-retry-credentials), waiting for a reset (max-retry-interval), request-scoped error rules,
resting after a connection failure, and alias pools that move on to the next upstream model.

Time is a fake clock in the proxy's cooldown book, and the proxy's "wait for a reset" moves
that clock instead of sleeping, so every wait is exact and instant."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.e2e.clients import ask
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, Reply

T0 = 1_700_000_000.0


class FakeTime:
    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def start(anthropic_sim: AnthropicSim) -> Iterator:  # type: ignore[type-arg]
    proxies: list[ProxyServer] = []

    def start_proxy(config: str) -> tuple[ProxyServer, FakeTime]:
        proxy = ProxyServer(config.format(claude=anthropic_sim.base_url)).start()
        proxies.append(proxy)
        fake = FakeTime()
        proxy.state.cooldowns.clock = fake
        proxy.state.sleep = fake.sleep
        return proxy, fake

    yield start_proxy
    for proxy in proxies:
        proxy.stop()


def _keys(sim: AnthropicSim) -> list[str | None]:
    return [sim.presented_key(r) for r in sim.requests]


def _models(sim: AnthropicSim) -> list[str]:
    return [r.json["model"] for r in sim.requests if r.json]


ONE_KEY = """
request-retry: 1
claude-api-key:
  - {{api-key: only, base-url: "{claude}", models: [{{name: up, alias: m}}]}}
"""


def test_a_short_reset_is_waited_out_and_the_client_sees_one_clean_answer(
    start, anthropic_sim: AnthropicSim
) -> None:
    proxy, fake = start(ONE_KEY)  # max-retry-interval defaults to 30 s
    for stream in (False, True):
        anthropic_sim.queue(Reply.error(429, retry_after=7))
        fake.slept.clear()
        assert ask("openai_chat", proxy.base_url, "m", "hi", stream=stream).text == "echo: hi"
        assert fake.slept == [7]
    assert len(anthropic_sim.requests) == 4


def test_a_reset_past_max_retry_interval_is_a_429_at_once(
    start, anthropic_sim: AnthropicSim
) -> None:
    proxy, fake = start("max-retry-interval: 5\n" + ONE_KEY)
    anthropic_sim.queue(Reply.error(429, retry_after=7))
    oa = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.response.headers["retry-after"] == "7"
    assert fake.slept == [] and len(anthropic_sim.requests) == 1


THREE_KEYS = """
request-retry: {retry}
max-retry-credentials: {limit}
max-retry-interval: 0
claude-api-key:
  - {{{{api-key: k1, base-url: "{{claude}}", models: [{{{{name: up, alias: m}}}}]}}}}
  - {{{{api-key: k2, base-url: "{{claude}}", models: [{{{{name: up, alias: m}}}}]}}}}
  - {{{{api-key: k3, base-url: "{{claude}}", request-retry: 0, models: [{{{{name: up, alias: m}}}}]}}}}
"""


def test_rounds_follow_request_retry_per_credential(start, anthropic_sim: AnthropicSim) -> None:
    proxy, _ = start(THREE_KEYS.format(retry=2, limit=0))
    anthropic_sim.queue(*[Reply.error(503)] * 8)
    with pytest.raises(anthropic.InternalServerError):
        anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    # Round 0 asks all three; rounds 1 and 2 only k1 and k2 (k3 says request-retry: 0).
    keys = _keys(anthropic_sim)
    assert len(keys) == 7
    assert keys.count("k3") == 1 and keys.count("k1") == 3 and keys.count("k2") == 3


def test_max_retry_credentials_caps_each_round(start, anthropic_sim: AnthropicSim) -> None:
    proxy, _ = start(THREE_KEYS.format(retry=0, limit=2))
    anthropic_sim.queue(*[Reply.error(500)] * 3)
    oa = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.InternalServerError):
        oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert len(anthropic_sim.requests) == 2


RULES = """
request-retry: 0
max-retry-interval: 0
claude-api-key:
  - api-key: ruled
    base-url: "{claude}"
    models: [{{name: up, alias: m}}]
    request-scoped-errors:
      - {{status: 400, match: ["prompt is too long"], action: "{action}"}}
      - {{status: 400, match-regexr: ["^quota .* region$"], action: continue}}
  - {{api-key: plain, base-url: "{claude}", models: [{{name: up, alias: m}}]}}
"""


@pytest.mark.parametrize(
    ("action", "tries", "cooled"),
    [
        ("stop", 1, False),
        ("stop-and-cooldown", 1, True),
        ("continue", 2, False),
        ("continue-and-cooldown", 2, True),
    ],
)
def test_request_scoped_error_rules(
    start, anthropic_sim: AnthropicSim, action: str, tries: int, cooled: bool
) -> None:
    proxy, _ = start(RULES.replace("{action}", action))
    claude = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
    # Fill-first order is not configured; find which key the first request goes to.
    for _ in range(2):
        anthropic_sim.reset()
        anthropic_sim.queue(Reply.error(400, "prompt is too long: 300000 tokens"))
        first = None
        try:
            claude.messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
        except anthropic.BadRequestError as refused:
            first = refused
        if _keys(anthropic_sim)[0] == "ruled":
            break
    assert _keys(anthropic_sim)[0] == "ruled"
    assert len(anthropic_sim.requests) == tries
    if action.startswith("stop"):
        assert first is not None and "prompt is too long" in str(first)
    else:
        assert first is None and _keys(anthropic_sim)[1] == "plain"
    resting = {c.credential_id for c in proxy.state.cooldowns.snapshot()}
    assert ("claude-api-key[0]" in resting) is cooled


def test_a_rule_with_a_regex_and_an_unruled_400_stops(start, anthropic_sim: AnthropicSim) -> None:
    proxy, _ = start(RULES.replace("{action}", "stop"))
    claude = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
    served = []
    for _ in range(2):  # both orders of the two keys
        anthropic_sim.reset()
        anthropic_sim.queue(Reply.error(400, "quota exceeded for this region"))
        try:
            claude.messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
            served.append(_keys(anthropic_sim))
        except anthropic.BadRequestError:
            served.append(_keys(anthropic_sim))
    # "ruled" first: the regex rule says continue, so "plain" answers. "plain" first: a 400
    # with no rule is the request's own fault, and the request stops there.
    assert sorted(served) == [["plain"], ["ruled", "plain"]]


def test_an_unreachable_credential_rests_and_the_pool_moves_on(
    start, anthropic_sim: AnthropicSim
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    config = """
request-retry: 0
routing: {{strategy: fill-first}}
claude-api-key:
  - {{api-key: gone, base-url: "DEAD", models: [{{name: up, alias: m}}]}}
  - {{api-key: live, base-url: "{claude}", models: [{{name: up, alias: m}}]}}
"""
    proxy, _ = start(config.replace("DEAD", dead))
    assert ask("anthropic", proxy.base_url, "m", "one", stream=False).text == "echo: one"
    [rest] = proxy.state.cooldowns.snapshot()
    assert rest.credential_id == "claude-api-key[0]" and rest.until == T0 + 5
    # Fill-first would start with the dead key; while it rests the live one goes first.
    assert ask("anthropic", proxy.base_url, "m", "two", stream=True).text == "echo: two"
    assert len(anthropic_sim.requests) == 2


ALIAS_POOL = """
request-retry: 0
max-retry-interval: 0
routing: {{strategy: fill-first}}
claude-api-key:
  - api-key: pooled
    base-url: "{claude}"
    models: [{{name: up-first, alias: big}}, {{name: up-second, alias: big}}]
"""


def test_an_alias_pool_moves_to_the_next_upstream_model(start, anthropic_sim: AnthropicSim) -> None:
    proxy, _ = start(ALIAS_POOL)
    anthropic_sim.queue(Reply.error(429, retry_after=60))
    assert ask("openai_chat", proxy.base_url, "big", "hi", stream=True).text == "echo: hi"
    assert _models(anthropic_sim) == ["up-first", "up-second"]
    # up-first rests; the same key keeps serving through up-second.
    assert ask("gemini", proxy.base_url, "big", "again", stream=False).text == "echo: again"
    assert _models(anthropic_sim)[-1] == "up-second"
    [rest] = proxy.state.cooldowns.snapshot()
    assert (rest.credential_id, rest.model) == ("claude-api-key[0]", "up-first")


SAVED = """
auth-dir: "{auth_dir}"
save-cooldown-status: true
max-retry-interval: 0
request-retry: 0
claude-api-key:
  - {{{{api-key: only, base-url: "{{claude}}", models: [{{{{name: up, alias: m}}}}]}}}}
"""


def test_saved_cooldowns_survive_a_restart(anthropic_sim: AnthropicSim, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = SAVED.format(auth_dir=tmp_path).format(claude=anthropic_sim.base_url)
    anthropic_sim.queue(Reply.error(429, retry_after=120))
    with ProxyServer(config) as proxy, pytest.raises(anthropic.RateLimitError):
        _ask_claude(proxy)
    saved = tmp_path / "cliproxy-cooldowns.cds"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert b"claude-api-key[0]" in saved.read_bytes()
    # A new process reads the rest back: the upstream that asked us to wait is not asked.
    with ProxyServer(config) as restarted:
        with pytest.raises(anthropic.RateLimitError) as caught:
            _ask_claude(restarted)
        assert 115 <= int(caught.value.response.headers["retry-after"]) <= 120
    assert len(anthropic_sim.requests) == 1
    # A damaged file is reported and ignored, never a reason not to start.
    saved.write_text("{not json")
    with ProxyServer(config) as fresh:
        assert _ask_claude(fresh).content


def _ask_claude(proxy: ProxyServer):  # type: ignore[no-untyped-def]
    claude = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
    return claude.messages.create(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )


AFFINITY = """
routing: {{session-affinity: true, session-affinity-subagents: SUBAGENTS}}
claude-api-key:
  - {{api-key: k1, base-url: "{claude}", models: [{{name: up, alias: m}}]}}
  - {{api-key: k2, base-url: "{claude}", models: [{{name: up, alias: m}}]}}
"""


@pytest.mark.parametrize("follow", [True, False])
def test_subagents_follow_the_parent_only_when_configured(
    start, anthropic_sim: AnthropicSim, follow: bool
) -> None:
    import httpx

    proxy, _ = start(AFFINITY.replace("SUBAGENTS", str(follow).lower()))
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    parent = {"session-id": "root-1", "thread-id": "root-1"}
    child = {
        "session-id": "root-1",
        "thread-id": "child-1",
        "x-codex-parent-thread-id": "root-1",
        "x-openai-subagent": "collab_spawn",
    }
    url = proxy.base_url + "/v1/messages"
    assert httpx.post(url, json=body, headers=parent).status_code == 200
    bound = _keys(anthropic_sim)[0]
    for _ in range(4):
        assert httpx.post(url, json=body, headers=child).status_code == 200
    children = _keys(anthropic_sim)[1:]
    if follow:
        assert children == [bound] * 4
    else:
        assert sorted(set(children)) == ["k1", "k2"]


def test_anthropic_limit_reset_headers_set_the_rest_when_retry_after_is_missing(
    start, anthropic_sim: AnthropicSim
) -> None:
    from datetime import UTC, datetime

    proxy, _ = start("max-retry-interval: 0\n" + ONE_KEY)
    reset_at = datetime.fromtimestamp(T0 + 45, UTC).isoformat().replace("+00:00", "Z")
    anthropic_sim.queue(
        Reply.error(
            429,
            headers={
                "anthropic-ratelimit-requests-remaining": "12",
                "anthropic-ratelimit-requests-reset": reset_at.replace(":45Z", ":05Z"),
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-tokens-reset": reset_at,
            },
        )
    )
    claude = anthropic.Anthropic(base_url=proxy.base_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    [rest] = proxy.state.cooldowns.snapshot()
    assert rest.until == T0 + 45
    assert caught.value.response.headers["retry-after"] == "45"
