"""client-keys through the real server and the official SDKs: allowed-models (403 before any
limit, listings in every shape), requests-per-minute (the sixth in a minute against 5 is a 429
with Retry-After in the OpenAI, Anthropic and Gemini shapes), exact counting under
concurrency, max-concurrent-requests with streams, tokens-per-day and the monthly budget from
the ledger's costs (across a restart too), and the key's name in the usage ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, OpenAIChatSim, Reply

PLAIN = "sk-plain-key-000000"
TEAM = "sk-team-a-key-123456"
MGMT = "client-keys-management"

CONFIG = """
auth-dir: {auth_dir}
api-keys: [{plain}]
request-retry: 0
max-retry-interval: 0
remote-management:
  secret-key: {mgmt}
model-prices:
  priced-model: {{input: 1.0, output: 2.0}}
openai-compatibility:
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: up-chat-key}}]
    models: [{{name: up-chat, alias: priced-model}}, {{name: up-other, alias: other-model}}]
claude-api-key:
  - api-key: up-claude-key
    base-url: {claude}
    models: [{{name: claude-sonnet-4-5, alias: Claude-Sonnet}}]
client-keys:
  - key: {team}
    name: team-a
{policy}
"""

Sims = tuple[OpenAIChatSim, AnthropicSim]
Start = Callable[..., ProxyServer]


@pytest.fixture(scope="module")
def sims() -> Iterator[Sims]:
    with OpenAIChatSim() as chat, AnthropicSim() as claude:
        yield chat, claude


@pytest.fixture
def start(sims: Sims, tmp_path: Path) -> Iterator[Start]:
    """Starts a proxy whose team-a key has the policy given (YAML lines of the entry)."""
    chat, claude = sims
    for sim in sims:
        sim.reset()
    started: list[ProxyServer] = []

    def run(*policy: str) -> ProxyServer:
        text = CONFIG.format(
            auth_dir=tmp_path,
            plain=PLAIN,
            team=TEAM,
            mgmt=MGMT,
            chat=chat.base_url,
            claude=claude.base_url,
            policy="\n".join(f"    {line}" for line in policy),
        )
        server = ProxyServer(text).start()
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


def _openai(proxy: ProxyServer, key: str = TEAM) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=key, max_retries=0)


def _anthropic(proxy: ProxyServer, key: str = TEAM) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base_url, api_key=key, max_retries=0)


def _chat(proxy: ProxyServer, model: str = "priced-model", key: str = TEAM) -> Any:
    return _openai(proxy, key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )


def _mgmt(proxy: ProxyServer, path: str) -> Any:
    reply = httpx.get(
        f"{proxy.base_url}/v0/management{path}",
        headers={"authorization": f"Bearer {MGMT}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


# ----- allowed-models ---------------------------------------------------------------------------


def test_a_key_limited_to_one_model(start: Start) -> None:
    proxy = start('allowed-models: ["PRICED-*"]', "requests-per-minute: 1")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _chat(proxy, "other-model")
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_allowed" and error["param"] == "model"
    assert "other-model" in error["message"] and "team-a" in error["message"]
    # Checked before any limit: the refusals do not use the one request of the minute.
    with pytest.raises(openai.PermissionDeniedError):
        _chat(proxy, "other-model")
    assert _chat(proxy).choices[0].message.content  # wildcards ignore case
    assert [m.id for m in _openai(proxy).models.list()] == ["priced-model"]
    # The plain api-keys key has no policy.
    assert {m.id for m in _openai(proxy, PLAIN).models.list()} >= {"priced-model", "other-model"}
    assert _chat(proxy, "other-model", PLAIN).choices
    # The refusals are in the ledger under the key's name, with the model asked for.
    deadline = time.monotonic() + 5
    while True:
        apis = _mgmt(proxy, "/usage")["usage"]["apis"]
        if "team-a" in apis and "other-model" in apis["team-a"]["models"]:
            break
        assert time.monotonic() < deadline, apis
        time.sleep(0.05)
    refused = apis["team-a"]["models"]["other-model"]["details"]
    assert len(refused) == 2 and all(detail["failed"] for detail in refused)


def test_listings_and_refusals_in_every_shape(start: Start) -> None:
    proxy = start('allowed-models: ["claude-*"]')
    claude = _anthropic(proxy)
    assert [m.id for m in claude.models.list()] == ["Claude-Sonnet"]
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        claude.messages.create(
            model="priced-model", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    with pytest.raises(anthropic.PermissionDeniedError):
        claude.messages.count_tokens(
            model="priced-model", messages=[{"role": "user", "content": "hi"}]
        )
    headers = {"x-goog-api-key": TEAM}
    listed = httpx.get(f"{proxy.base_url}/v1beta/models", headers=headers).json()
    assert [m["name"] for m in listed["models"]] == ["models/Claude-Sonnet"]
    gemini = httpx.post(
        f"{proxy.base_url}/v1beta/models/priced-model:generateContent",
        headers=headers,
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert gemini.status_code == 403
    assert gemini.json()["error"]["status"] == "PERMISSION_DENIED"
    assert "priced-model" in gemini.json()["error"]["message"]
    one = httpx.get(
        f"{proxy.base_url}/v1/models/priced-model", headers={"authorization": f"Bearer {TEAM}"}
    )
    assert one.status_code == 403


# ----- requests-per-minute ----------------------------------------------------------------------


def test_the_sixth_request_in_a_minute(start: Start) -> None:
    proxy = start("requests-per-minute: 5")
    for _ in range(5):
        _chat(proxy)
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(proxy)
    error = limited.value.body
    assert isinstance(error, dict) and error["code"] == "rate_limit_exceeded"
    assert "requests-per-minute" in error["message"] and "team-a" in error["message"]
    retry_after = int(limited.value.response.headers["retry-after"])
    assert 50 <= retry_after <= 60
    # Listings and the plain key are not limited.
    assert _openai(proxy).models.list().data
    assert _chat(proxy, key=PLAIN).choices


def test_the_sixth_message_in_anthropic_shape(start: Start) -> None:
    proxy = start("requests-per-minute: 5")
    claude = _anthropic(proxy)
    for _ in range(5):
        claude.messages.create(
            model="Claude-Sonnet", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    # Token counting does not count.
    claude.messages.count_tokens(model="Claude-Sonnet", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude.messages.create(
            model="Claude-Sonnet", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    body = limited.value.body
    assert body["type"] == "error"  # type: ignore[index]
    assert body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "requests-per-minute" in body["error"]["message"]  # type: ignore[index]
    assert int(limited.value.response.headers["retry-after"]) >= 1


def test_gemini_shape(start: Start) -> None:
    proxy = start("requests-per-minute: 1")
    url = f"{proxy.base_url}/v1beta/models/Claude-Sonnet:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    headers = {"x-goog-api-key": TEAM}
    assert httpx.post(url, headers=headers, json=body).status_code == 200
    limited = httpx.post(url, headers=headers, json=body)
    assert limited.status_code == 429
    assert limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert int(limited.headers["retry-after"]) >= 1


async def _parallel(proxy: ProxyServer, count: int, stream: bool = False) -> list[int]:
    async with httpx.AsyncClient(
        base_url=proxy.base_url,
        headers={"authorization": f"Bearer {TEAM}"},
        timeout=30,
        limits=httpx.Limits(max_connections=count),
    ) as client:
        body = {"model": "priced-model", "messages": [{"role": "user", "content": "hi"}]}

        async def one() -> int:
            reply = await client.post("/v1/chat/completions", json={**body, "stream": stream})
            return reply.status_code

        return await asyncio.gather(*(one() for _ in range(count)))


def test_requests_per_minute_is_exact_under_concurrency(start: Start) -> None:
    proxy = start("requests-per-minute: 10")
    statuses = asyncio.run(_parallel(proxy, 100))
    assert statuses.count(200) == 10
    assert statuses.count(429) == 90


# ----- max-concurrent-requests ------------------------------------------------------------------


def test_max_concurrent_is_exact_and_freed_by_a_hang_up(start: Start, sims: Sims) -> None:
    chat, _ = sims
    proxy = start("max-concurrent-requests: 10")
    chat.queue(*(Reply.text("slow", hang=True) for _ in range(10)))

    async def run() -> tuple[list[int], int]:
        async with httpx.AsyncClient(
            base_url=proxy.base_url,
            headers={"authorization": f"Bearer {TEAM}"},
            timeout=30,
            limits=httpx.Limits(max_connections=100),
        ) as client:
            body = {"model": "priced-model", "messages": [{"role": "user", "content": "hi"}]}
            tasks = [
                asyncio.ensure_future(client.post("/v1/chat/completions", json=body))
                for _ in range(100)
            ]
            deadline = time.monotonic() + 20
            while sum(task.done() for task in tasks) < 90 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            done = [task.result().status_code for task in tasks if task.done()]
            for task in tasks:
                task.cancel()  # the ten held ones hang up
            await asyncio.gather(*tasks, return_exceptions=True)
            # Their slots come back once the proxy has seen them go.
            status = 0
            while time.monotonic() < deadline:
                status = (await client.post("/v1/chat/completions", json=body)).status_code
                if status == 200:
                    break
                await asyncio.sleep(0.1)
            return done, status

    done, after = asyncio.run(run())
    assert len(done) == 90 and set(done) == {429}
    assert after == 200


def test_max_concurrent_holds_until_a_stream_ends(start: Start, sims: Sims) -> None:
    chat, _ = sims
    proxy = start("max-concurrent-requests: 2")
    for _ in range(2):
        chat.queue(Reply.text("one two three four", chunk_size=4, delay=0.3))
    client = _openai(proxy)
    messages: Any = [{"role": "user", "content": "hi"}]
    streams = [
        client.chat.completions.create(model="priced-model", messages=messages, stream=True)
        for _ in range(2)
    ]
    firsts = [next(iter(stream)) for stream in streams]
    assert all(first is not None for first in firsts)
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(proxy)
    assert "max-concurrent-requests" in limited.value.message
    assert limited.value.response.headers["retry-after"] == "1"
    for stream in streams:
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    deadline = time.monotonic() + 5
    while True:
        try:
            assert _chat(proxy).choices
            break
        except openai.RateLimitError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ----- tokens-per-day and max-budget-usd-per-month, from the ledger -----------------------------


def test_tokens_per_day_across_a_restart(start: Start, sims: Sims) -> None:
    chat, _ = sims
    proxy = start("tokens-per-day: 100")
    chat.queue(Reply.text("big", input_tokens=60, output_tokens=50))
    _chat(proxy)
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(proxy)
    assert "tokens-per-day" in limited.value.message and "110 used" in limited.value.message
    retry_after = int(limited.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 86400
    usage = _mgmt(proxy, "/usage")["usage"]
    assert "team-a" in usage["apis"]  # the ledger keys the request by the key's name
    assert TEAM not in str(usage)
    proxy.stop()
    again = start("tokens-per-day: 100")
    with pytest.raises(openai.RateLimitError):
        _chat(again)
    assert _chat(again, key=PLAIN).choices
    # A higher limit lets it through again.
    again.stop()
    raised = start("tokens-per-day: 1000")
    assert _chat(raised).choices


def test_budget_from_ledger_costs_across_a_restart(start: Start, sims: Sims) -> None:
    chat, _ = sims
    proxy = start("max-budget-usd-per-month: 0.5")
    # model-prices: $1 per million input, $2 per million output: $0.40 + $0.20.
    chat.queue(Reply.text("costly", input_tokens=400_000, output_tokens=100_000))
    _chat(proxy)
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(proxy)
    message = limited.value.message
    assert "max-budget-usd-per-month" in message and "$0.6000 spent" in message
    summary = httpx.get(
        f"{proxy.base_url}/v0/management/usage/summary",
        params={"group-by": "api-key"},
        headers={"authorization": f"Bearer {MGMT}"},
    )
    assert summary.status_code == 200, summary.text
    groups = {b["group"]: b for b in summary.json()["buckets"]}
    assert groups["team-a"]["cost_usd"] == pytest.approx(0.6)
    proxy.stop()
    again = start("max-budget-usd-per-month: 0.5")
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(again)
    assert "$0.6000 spent" in limited.value.message
