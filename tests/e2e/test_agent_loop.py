"""The multi-turn agent loop through every official SDK against every upstream simulator.

Each case runs three single tool-call round trips, one round with two parallel calls of the same
tool, and a final text answer (five upstream requests). The client sends each tool's result back
the way that SDK's documentation shows (appending the reply to its history), alternating JSON and
streamed turns. From the simulator's recorded requests we check, in the upstream's own wire
format, that every tool result answers a call the upstream issued earlier and carries that call's
result (so a result always meets its call), and that the final text reaches the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import orjson
import pytest
from google import genai
from google.genai import types as gtypes

from tests.e2e.clients import CLIENTS, WEATHER_SCHEMA
from tests.protocols.wire_readers import entries, read_turns
from tests.proxy_server import ProxyServer
from tests.simulators import Reply, Simulator
from tests.simulators.reply import ToolCall

# model alias → (simulator fixture, upstream protocol, call-id prefix or None for "no ids")
UPSTREAMS: dict[str, tuple[str, str, str | None]] = {
    "chat-model": ("openai_chat_sim", "openai_chat", "call_"),
    "resp-model": ("responses_sim", "openai_responses", "call_"),
    "claude-model": ("anthropic_sim", "anthropic", "toolu_"),
    # Gemini usually returns calls without ids: results must meet them by name and order.
    "gemini-model": ("gemini_sim", "gemini", None),
}
ROUNDS = [["Paris"], ["Rome"], ["Berlin"], ["Oslo", "Lima"]]
FINAL = "All done: four cities checked."


@dataclass
class Call:
    id: str | None
    name: str
    arguments: dict[str, Any]


@dataclass
class Turn:
    text: str
    calls: list[Call] = field(default_factory=list)


def result_for(call: Call) -> str:
    return f"sunny in {call.arguments['city']}"


# ---------------------------------------------------------------------------------------------
# One agent per SDK: send the conversation, read the reply, add tool results


class ChatAgent:
    def __init__(self, base_url: str, model: str) -> None:
        self.client = openai.OpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0)
        self.model = model
        self.messages: list[Any] = [{"role": "user", "content": "Check the weather."}]
        self.tools: Any = [
            {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
        ]

    def send(self, stream: bool) -> Turn:
        create = self.client.chat.completions.create
        if not stream:
            message = create(model=self.model, messages=self.messages, tools=self.tools)
            reply = message.choices[0].message
            text = reply.content or ""
            raw = [(c.id, c.function.name, c.function.arguments) for c in reply.tool_calls or []]  # type: ignore[union-attr]
        else:
            pieces: dict[int, list[str]] = {}
            text = ""
            for chunk in create(
                model=self.model, messages=self.messages, tools=self.tools, stream=True
            ):
                if not chunk.choices:
                    continue
                text += chunk.choices[0].delta.content or ""
                for delta in chunk.choices[0].delta.tool_calls or []:
                    slot = pieces.setdefault(delta.index, ["", "", ""])
                    slot[0] += delta.id or ""
                    slot[1] += (delta.function.name or "") if delta.function else ""
                    slot[2] += (delta.function.arguments or "") if delta.function else ""
            raw = [tuple(pieces[i]) for i in sorted(pieces)]  # type: ignore[misc]
        calls = [Call(i, n, orjson.loads(a)) for i, n, a in raw]
        wire_calls = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()},
            }
            for c in calls
        ]
        assistant: dict[str, Any] = {"role": "assistant", "content": text or None}
        if wire_calls:
            assistant["tool_calls"] = wire_calls
        self.messages.append(assistant)
        return Turn(text, calls)

    def answer(self, calls: list[Call]) -> None:
        for call in calls:
            self.messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": result_for(call)}
            )


class ResponsesAgent:
    def __init__(self, base_url: str, model: str) -> None:
        self.client = openai.OpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0)
        self.model = model
        self.input: list[Any] = [{"role": "user", "content": "Check the weather."}]
        self.tools: Any = [
            {"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA}
        ]

    def send(self, stream: bool) -> Turn:
        if stream:
            with self.client.responses.stream(
                model=self.model, input=self.input, tools=self.tools
            ) as events:
                reply = events.get_final_response()
        else:
            reply = self.client.responses.create(
                model=self.model, input=self.input, tools=self.tools
            )
        # The documented loop: the reply's output items go back into the input as they are.
        self.input += reply.output
        calls = [
            Call(item.call_id, item.name, orjson.loads(item.arguments))
            for item in reply.output
            if item.type == "function_call"
        ]
        return Turn(reply.output_text, calls)

    def answer(self, calls: list[Call]) -> None:
        for call in calls:
            self.input.append(
                {"type": "function_call_output", "call_id": call.id, "output": result_for(call)}
            )


class AnthropicAgent:
    def __init__(self, base_url: str, model: str) -> None:
        self.client = anthropic.Anthropic(base_url=base_url, api_key="k", max_retries=0)
        self.model = model
        self.messages: list[Any] = [{"role": "user", "content": "Check the weather."}]
        self.tools: Any = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]

    def send(self, stream: bool) -> Turn:
        options: Any = dict(
            model=self.model, max_tokens=256, messages=self.messages, tools=self.tools
        )
        if stream:
            with self.client.messages.stream(**options) as events:
                message = events.get_final_message()
        else:
            message = self.client.messages.create(**options)
        self.messages.append({"role": "assistant", "content": message.content})
        text = "".join(b.text for b in message.content if b.type == "text")
        calls = [
            Call(b.id, b.name, dict(b.input))  # type: ignore[arg-type]
            for b in message.content
            if b.type == "tool_use"
        ]
        return Turn(text, calls)

    def answer(self, calls: list[Call]) -> None:
        results = [
            {"type": "tool_result", "tool_use_id": c.id, "content": result_for(c)} for c in calls
        ]
        self.messages.append({"role": "user", "content": results})


class GeminiAgent:
    def __init__(self, base_url: str, model: str) -> None:
        options = gtypes.HttpOptions(
            base_url=base_url, retry_options=gtypes.HttpRetryOptions(attempts=1)
        )
        self.client = genai.Client(api_key="k", http_options=options)
        self.model = model
        self.contents: list[gtypes.Content] = [
            gtypes.Content(role="user", parts=[gtypes.Part(text="Check the weather.")])
        ]
        declaration = gtypes.FunctionDeclaration(
            name="get_weather", parameters_json_schema=WEATHER_SCHEMA
        )
        self.config = gtypes.GenerateContentConfig(
            tools=[gtypes.Tool(function_declarations=[declaration])],
            automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
        )

    def send(self, stream: bool) -> Turn:
        if stream:
            chunks = list(
                self.client.models.generate_content_stream(
                    model=self.model, contents=self.contents, config=self.config
                )
            )
        else:
            chunks = [
                self.client.models.generate_content(
                    model=self.model, contents=self.contents, config=self.config
                )
            ]
        parts = [
            p
            for c in chunks
            if c.candidates and c.candidates[0].content
            for p in c.candidates[0].content.parts or []
        ]
        self.contents.append(gtypes.Content(role="model", parts=parts))
        text = "".join(p.text or "" for p in parts if not p.thought)
        calls = [
            Call(p.function_call.id, p.function_call.name or "", dict(p.function_call.args or {}))
            for p in parts
            if p.function_call
        ]
        return Turn(text, calls)

    def answer(self, calls: list[Call]) -> None:
        # Like gemini-cli: the id goes back when the call had one.
        parts = [
            gtypes.Part(
                function_response=gtypes.FunctionResponse(
                    id=c.id, name=c.name, response={"output": result_for(c)}
                )
            )
            for c in calls
        ]
        self.contents.append(gtypes.Content(role="user", parts=parts))


AGENTS = {
    "openai_chat": ChatAgent,
    "openai_responses": ResponsesAgent,
    "anthropic": AnthropicAgent,
    "gemini": GeminiAgent,
}


# ---------------------------------------------------------------------------------------------
# The loop and what the upstream must have seen


def scripted_rounds(prefix: str | None) -> tuple[list[Reply], list[list[ToolCall]]]:
    rounds: list[list[ToolCall]] = []
    for n, cities in enumerate(ROUNDS):
        rounds.append(
            [
                ToolCall("get_weather", {"city": city}, f"{prefix}r{n}c{i}" if prefix else None)
                for i, city in enumerate(cities)
            ]
        )
    replies = [Reply.parallel_tool_calls(calls, chunk_size=5) for calls in rounds]
    return [*replies, Reply.text(FINAL)], rounds


def check_upstream_request(
    upstream: str, body: Any, rounds: list[list[ToolCall]], answered: int
) -> None:
    """Request number ``answered`` carries the results of rounds 0..answered-1: each result
    references a call the upstream issued (id, or name for id-less Gemini calls), carries
    that call's result, and the newest turn answers exactly the previous round."""
    turns = read_turns(upstream, body)
    issued = {c.call_id: c for calls in rounds[:answered] for c in calls}
    history_calls = entries(turns, "call")
    results = entries(turns, "result")
    assert len(results) == sum(len(calls) for calls in rounds[:answered]), results
    if upstream == "gemini":
        # Ids (if any) are the proxy's own; pairing is by order within each turn, by name.
        expected = [c for calls in rounds[:answered] for c in calls]
        assert [(c["name"], c["args"]) for c in history_calls] == [
            (c.name, c.arguments) for c in expected
        ]
        by_id = {c["call"]: c for c in history_calls}
        for result, call in zip(results, expected, strict=True):
            assert result["name"] == call.name
            if result["result"] is not None:
                assert by_id[result["result"]]["args"] == call.arguments
            assert result["value"] == result_for(Call(None, call.name, call.arguments))
        return
    # The upstream sees its own call ids, unchanged, on both the calls and the results.
    assert [c["call"] for c in history_calls] == list(issued)
    for result in results:
        call = issued[result["result"]]
        assert result["value"] == result_for(Call(None, call.name, call.arguments))
    newest = [r["result"] for r in results[-len(rounds[answered - 1]) :]]
    assert newest == [c.call_id for c in rounds[answered - 1]]


@pytest.mark.parametrize("model", list(UPSTREAMS))
@pytest.mark.parametrize("client", CLIENTS)
def test_three_round_trips_and_a_parallel_round(
    client: str, model: str, matrix_proxy: ProxyServer, request: pytest.FixtureRequest
) -> None:
    fixture, upstream, prefix = UPSTREAMS[model]
    sim: Simulator = request.getfixturevalue(fixture)
    replies, rounds = scripted_rounds(prefix)
    sim.queue(*replies)
    agent = AGENTS[client](matrix_proxy.base_url, model)

    for n, expected in enumerate(rounds):
        turn = agent.send(stream=n % 2 == 1)
        assert [(c.name, c.arguments) for c in turn.calls] == [
            (c.name, c.arguments) for c in expected
        ]
        assert all(c.id for c in turn.calls) or client == "gemini"
        agent.answer(turn.calls)
    final = agent.send(stream=True)
    assert final.text == FINAL and final.calls == []

    generation = [r for r in sim.requests if r.method == "POST"]
    assert len(generation) == len(rounds) + 1
    for answered, recorded in enumerate(generation):
        if answered:
            check_upstream_request(upstream, recorded.json, rounds, answered)
