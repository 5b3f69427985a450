"""Payload rules through the real proxy: the body a simulated upstream receives carries the
configured edits exactly at the configured paths, and only for matching models and protocols."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, OpenAIChatSim

KEY = "sim-upstream-key"

CONFIG = """
openai-compatibility:
  - name: chat-sim
    base-url: {chat}
    api-key-entries: [{{api-key: {key}}}]
    models: [{{name: up-chat, alias: chat-model}}, {{name: up-plain, alias: plain-model}}]
claude-api-key:
  - api-key: {key}
    base-url: {claude}
    models: [{{name: up-claude, alias: claude-model}}]
payload:
  default:
    # Matched by the client-visible alias.
    - models: [{{name: chat-model}}]
      params: {{"max_tokens": 77, "temperature": 0.9}}
  override:
    # Matched by the upstream name, restricted to the OpenAI-chat upstream protocol.
    - models: [{{name: "UP-*", protocol: openai}}]
      params: {{"metadata.tier": gold}}
    # Only when the client spoke the Responses API.
    - models: [{{name: "*", from-protocol: responses}}]
      params: {{"user": from-responses}}
    # Only when the client sends the header.
    - models: [{{name: "*", headers: {{X-Tenant: "team-*"}}}}]
      params: {{"metadata.tenant": matched}}
  override-raw:
    - models: [{{name: up-claude, protocol: claude}}]
      params: {{"metadata": '{{"user_id": "fixed-user"}}'}}
  filter:
    - models: [{{name: "*", protocol: claude}}]
      params: [temperature]
"""


@pytest.fixture(scope="module")
def payload_proxy(
    _openai_chat_sim_server: OpenAIChatSim, _anthropic_sim_server: AnthropicSim
) -> Iterator[ProxyServer]:
    config = CONFIG.format(
        chat=_openai_chat_sim_server.base_url, claude=_anthropic_sim_server.base_url, key=KEY
    )
    with ProxyServer(config) as proxy:
        yield proxy


def _chat(proxy: ProxyServer, model: str, **extra: Any) -> None:
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k", max_retries=0)
    client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        **extra,
    )


def _received(sim: OpenAIChatSim | AnthropicSim) -> dict[str, Any]:
    body = sim.last_request.json
    assert isinstance(body, dict)
    return body


def test_chat_passthrough_gets_default_and_override_edits(
    payload_proxy: ProxyServer, openai_chat_sim: OpenAIChatSim
) -> None:
    _chat(payload_proxy, "chat-model", temperature=0.2)
    body = _received(openai_chat_sim)
    assert body["max_tokens"] == 77  # default filled the missing key
    assert body["temperature"] == 0.2  # default left the client's value alone
    assert body["metadata"] == {"tier": "gold"}
    assert "user" not in body  # the client did not speak the Responses API


def test_unmatched_model_is_forwarded_without_rule_edits(
    payload_proxy: ProxyServer, openai_chat_sim: OpenAIChatSim
) -> None:
    _chat(payload_proxy, "plain-model")
    body = _received(openai_chat_sim)
    # Only the protocol-wide override (UP-* on openai) applies; the alias default does not.
    assert "max_tokens" not in body and "temperature" not in body
    assert body["metadata"] == {"tier": "gold"}
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_header_condition(payload_proxy: ProxyServer, openai_chat_sim: OpenAIChatSim) -> None:
    _chat(payload_proxy, "plain-model", extra_headers={"X-Tenant": "team-red"})
    assert _received(openai_chat_sim)["metadata"] == {"tier": "gold", "tenant": "matched"}
    _chat(payload_proxy, "plain-model", extra_headers={"X-Tenant": "guest"})
    assert _received(openai_chat_sim)["metadata"] == {"tier": "gold"}


def test_from_protocol_applies_to_translated_requests(
    payload_proxy: ProxyServer, openai_chat_sim: OpenAIChatSim
) -> None:
    client = openai.OpenAI(base_url=payload_proxy.base_url + "/v1", api_key="k", max_retries=0)
    client.responses.create(model="plain-model", input="hi")
    body = _received(openai_chat_sim)
    assert body["user"] == "from-responses"
    assert body["metadata"] == {"tier": "gold"}


def test_anthropic_upstream_gets_raw_override_and_filter(
    payload_proxy: ProxyServer, anthropic_sim: AnthropicSim
) -> None:
    client = anthropic.Anthropic(base_url=payload_proxy.base_url, api_key="k", max_retries=0)
    client.messages.create(
        model="claude-model",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        # This SDK no longer lists temperature; clients still send it.
        extra_body={"temperature": 0.7},
    )
    body = _received(anthropic_sim)
    assert "temperature" not in body  # filtered for claude upstreams
    assert body["metadata"] == {"user_id": "fixed-user"}
    assert body["max_tokens"] == 50
    # The OpenAI-only override did not leak to the claude upstream.
    assert "tier" not in body["metadata"]
