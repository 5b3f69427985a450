"""A tool call made by any upstream reaches every SDK as that SDK's own tool call."""

from __future__ import annotations

import pytest

from tests.e2e.clients import CLIENTS, ask_tool
from tests.proxy_server import ProxyServer
from tests.simulators import Reply, Simulator

UPSTREAMS = {
    "chat-model": "openai_chat_sim",
    "resp-model": "responses_sim",
    "claude-model": "anthropic_sim",
    "gemini-model": "gemini_sim",
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", list(UPSTREAMS))
@pytest.mark.parametrize("client", CLIENTS)
def test_tool_call_crosses_protocols(
    client: str, model: str, stream: bool, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    sim: Simulator = request.getfixturevalue(UPSTREAMS[model])
    sim.queue(Reply.tool_call("get_weather", {"city": "Paris"}))
    answer = ask_tool(client, matrix_proxy.base_url, model, stream)
    assert (answer.name, answer.arguments, answer.finish) == (
        "get_weather",
        {"city": "Paris"},
        "tool_calls",
    )
    upstream = sim.last_request.json
    assert "get_weather" in str(upstream)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_demo_tools_through_every_sdk(client: str, stream: bool, matrix_proxy: ProxyServer) -> None:
    answer = ask_tool(client, matrix_proxy.base_url, "demo-tools", stream)
    assert (answer.name, answer.arguments["city"], answer.finish) == (
        "get_weather",
        "Weather in Paris?",
        "tool_calls",
    )
