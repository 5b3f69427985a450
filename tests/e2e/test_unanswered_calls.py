"""A history in which the conversation went on past a tool call without its result (a user
who interrupted a tool, a client that dropped the output). Anthropic refuses such a history
with a 400; cliproxy supplies a result that says there was none, so the request is served."""

from __future__ import annotations

import anthropic
import openai

from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim
from tests.simulators.anthropic_sim import _unpaired_tool_use

HISTORY = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_paris",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "user", "content": "Never mind, just say hello."},
]


def test_an_unanswered_call_gets_an_error_result_upstream(
    matrix_proxy: ProxyServer, anthropic_sim: AnthropicSim
) -> None:
    client = openai.OpenAI(base_url=matrix_proxy.base_url + "/v1", api_key="k", max_retries=0)
    reply = client.chat.completions.create(model="claude-model", messages=HISTORY)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "echo: Never mind, just say hello."
    sent = anthropic_sim.requests[-1].json
    assert sent is not None and _unpaired_tool_use(sent["messages"]) is None
    [assistant, answer] = sent["messages"][1:]
    [use] = [b for b in assistant["content"] if b["type"] == "tool_use"]
    result, text = answer["content"]
    assert (result["type"], result["tool_use_id"], result["is_error"]) == (
        "tool_result",
        use["id"],
        True,
    )
    assert "no result" in str(result["content"])
    assert text == {"type": "text", "text": "Never mind, just say hello."}


def test_the_simulator_refuses_it_as_anthropic_does(anthropic_sim: AnthropicSim) -> None:
    """Without the fix the history above is a 400 upstream (checked against the simulator,
    which follows the real API's rule)."""
    client = anthropic.Anthropic(base_url=anthropic_sim.base_url, api_key="k", max_retries=0)
    try:
        client.messages.create(
            model="claude-model",
            max_tokens=10,
            messages=[
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}],
                },
                {"role": "user", "content": "never mind"},
            ],
        )
    except anthropic.BadRequestError as refused:
        assert "without `tool_result`" in str(refused)
    else:
        raise AssertionError("the simulator accepted an unpaired tool_use")
