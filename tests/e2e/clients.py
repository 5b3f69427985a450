"""One way to ask each official SDK a question through the proxy, with the answer normalised
(text, input tokens, output tokens, finish reason in neutral words) so tests can compare."""

from __future__ import annotations

from dataclasses import dataclass

import anthropic
import openai
from google import genai
from google.genai import types as gtypes

CLIENTS = ("openai_chat", "openai_responses", "anthropic", "gemini")


@dataclass
class Answer:
    text: str
    input_tokens: int
    output_tokens: int
    finish: str  # stop | length | tool_calls


_ANTHROPIC_FINISH = {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


def ask(
    client: str, base_url: str, model: str, prompt: str, stream: bool, key: str = "k"
) -> Answer:
    return {
        "openai_chat": _chat,
        "openai_responses": _responses,
        "anthropic": _anthropic,
        "gemini": _gemini,
    }[client](base_url, model, prompt, stream, key)


def _chat(base_url: str, model: str, prompt: str, stream: bool, key: str) -> Answer:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)
    messages = [{"role": "user", "content": prompt}]
    if not stream:
        reply = client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        assert reply.usage is not None
        return Answer(
            reply.choices[0].message.content or "",
            reply.usage.prompt_tokens,
            reply.usage.completion_tokens,
            reply.choices[0].finish_reason,
        )
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    usage = chunks[-1].usage
    assert usage is not None
    return Answer(text, usage.prompt_tokens, usage.completion_tokens, finish[-1])


def _responses(base_url: str, model: str, prompt: str, stream: bool, key: str) -> Answer:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)
    if stream:
        # The SDK's stream helper only accepts response.completed, so a length-limited answer
        # (response.incomplete) is read from the raw events instead.
        events = list(client.responses.create(model=model, input=prompt, stream=True))
        terminal = events[-1]
        assert terminal.type in ("response.completed", "response.incomplete"), terminal.type
        reply = terminal.response
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert deltas == reply.output_text
    else:
        reply = client.responses.create(model=model, input=prompt)
    assert reply.usage is not None
    finish = "stop" if reply.status == "completed" else "length"
    return Answer(reply.output_text, reply.usage.input_tokens, reply.usage.output_tokens, finish)


def _anthropic(base_url: str, model: str, prompt: str, stream: bool, key: str) -> Answer:
    client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0)
    messages = [{"role": "user", "content": prompt}]
    if stream:
        with client.messages.stream(model=model, max_tokens=256, messages=messages) as events:  # type: ignore[arg-type]
            reply = events.get_final_message()
    else:
        reply = client.messages.create(model=model, max_tokens=256, messages=messages)  # type: ignore[arg-type]
    text = "".join(b.text for b in reply.content if b.type == "text")
    usage = reply.usage
    prompt_tokens = (
        usage.input_tokens
        + (usage.cache_read_input_tokens or 0)
        + (usage.cache_creation_input_tokens or 0)
    )
    return Answer(
        text, prompt_tokens, usage.output_tokens, _ANTHROPIC_FINISH[reply.stop_reason or ""]
    )


def _gemini(base_url: str, model: str, prompt: str, stream: bool, key: str) -> Answer:
    client = genai.Client(
        api_key=key,
        http_options=gtypes.HttpOptions(
            base_url=base_url, retry_options=gtypes.HttpRetryOptions(attempts=1)
        ),
    )
    if stream:
        pieces = list(client.models.generate_content_stream(model=model, contents=prompt))
        text = "".join(p.text or "" for p in pieces)
        last = pieces[-1]
    else:
        last = client.models.generate_content(model=model, contents=prompt)
        text = last.text or ""
    meta = last.usage_metadata
    assert meta is not None and last.candidates
    finish = last.candidates[0].finish_reason
    return Answer(
        text,
        meta.prompt_token_count or 0,
        (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
        _GEMINI_FINISH[finish.value if finish else ""],
    )


WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@dataclass
class ToolAnswer:
    name: str
    arguments: dict
    finish: str


def ask_tool(client: str, base_url: str, model: str, stream: bool) -> ToolAnswer:
    """Offer a get_weather tool through ``client`` and return the call the SDK reports."""
    import json

    prompt = "Weather in Paris?"
    if client == "openai_chat":
        oa = openai.OpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0)
        tools = [
            {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
        ]
        messages = [{"role": "user", "content": prompt}]
        if stream:
            chunks = list(
                oa.chat.completions.create(model=model, messages=messages, tools=tools, stream=True)  # type: ignore[arg-type]
            )
            name, args, finish = "", "", ""
            for chunk in chunks:
                if not chunk.choices:
                    continue
                for call in chunk.choices[0].delta.tool_calls or []:
                    name += call.function.name or "" if call.function else ""
                    args += call.function.arguments or "" if call.function else ""
                finish = chunk.choices[0].finish_reason or finish
            return ToolAnswer(name, json.loads(args), finish)
        reply = oa.chat.completions.create(model=model, messages=messages, tools=tools)  # type: ignore[arg-type]
        call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
        return ToolAnswer(
            call.function.name, json.loads(call.function.arguments), reply.choices[0].finish_reason
        )  # type: ignore[union-attr]
    if client == "openai_responses":
        oa = openai.OpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0)
        tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA}]
        if stream:
            with oa.responses.stream(model=model, input=prompt, tools=tools) as events:  # type: ignore[arg-type]
                reply = events.get_final_response()
        else:
            reply = oa.responses.create(model=model, input=prompt, tools=tools)  # type: ignore[arg-type]
        calls = [item for item in reply.output if item.type == "function_call"]
        return ToolAnswer(calls[0].name, json.loads(calls[0].arguments), "tool_calls")
    if client == "anthropic":
        an = anthropic.Anthropic(base_url=base_url, api_key="k", max_retries=0)
        tools = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]
        messages = [{"role": "user", "content": prompt}]
        if stream:
            with an.messages.stream(
                model=model, max_tokens=256, tools=tools, messages=messages
            ) as events:  # type: ignore[arg-type]
                message = events.get_final_message()
        else:
            message = an.messages.create(
                model=model, max_tokens=256, tools=tools, messages=messages
            )  # type: ignore[arg-type]
        block = next(b for b in message.content if b.type == "tool_use")
        return ToolAnswer(
            block.name, dict(block.input), _ANTHROPIC_FINISH[message.stop_reason or ""]
        )  # type: ignore[arg-type]
    gc = genai.Client(
        api_key="k",
        http_options=gtypes.HttpOptions(
            base_url=base_url, retry_options=gtypes.HttpRetryOptions(attempts=1)
        ),
    )
    config = gtypes.GenerateContentConfig(
        tools=[
            gtypes.Tool(
                function_declarations=[
                    gtypes.FunctionDeclaration(
                        name="get_weather", parameters_json_schema=WEATHER_SCHEMA
                    )
                ]
            )
        ],
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
    )
    if stream:
        pieces = list(
            gc.models.generate_content_stream(model=model, contents=prompt, config=config)
        )
        calls = [c for p in pieces for c in (p.function_calls or [])]
        last = pieces[-1]
    else:
        last = gc.models.generate_content(model=model, contents=prompt, config=config)
        calls = list(last.function_calls or [])
    finish = last.candidates[0].finish_reason if last.candidates else None
    return ToolAnswer(
        calls[0].name or "",
        dict(calls[0].args or {}),
        "tool_calls" if finish and finish.value == "STOP" else str(finish),
    )
