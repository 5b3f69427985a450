"""Hypothesis strategies that build canonical values for the protocol property tests.

Everything built here is something a real client or upstream could produce: conversations start
with a user turn, every tool call is answered by a tool result in the next user turn, tool
arguments are JSON objects, usage counts are consistent (cached + cache-write <= input,
reasoning <= output), and stream event sequences obey the ordering contract of model/events.py
(MessageStart, then blocks one after another: start, deltas, BlockEnd; then MessageEnd).
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import orjson
from hypothesis import strategies as st

from cliproxy.model import (
    BlockEnd,
    FinishReason,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    Part,
    ReasoningDelta,
    ReasoningPart,
    ReasoningStart,
    Request,
    Response,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    Tool,
    ToolArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    Usage,
    UsageUpdate,
)

# Text a model or user could write: any printable characters (incl. non-ASCII and newlines),
# never blank, since several protocols drop whitespace-only text blocks by design.
_ALPHABET = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00")
text = st.text(_ALPHABET | st.sampled_from("\r\n\t "), min_size=1, max_size=40).filter(str.strip)
# Tool names and ids as every vendor accepts them (Anthropic: [A-Za-z0-9_-]).
identifier = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.text(_ALPHABET, max_size=12)
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(identifier, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(identifier, json_values, max_size=4)


@st.composite
def arguments_text(draw: st.DrawFn) -> str:
    """A JSON object as arguments text, compact (orjson) or spaced (what Python's json gives)."""
    value = draw(json_objects)
    return orjson.dumps(value).decode() if draw(st.booleans()) else json.dumps(value)


@st.composite
def tool_result_text(draw: st.DrawFn) -> str:
    """Tool output: plain text, or a JSON object (many tools answer with JSON), including
    objects shaped like the wrappers protocols put around text ({"output": ...})."""
    kind = draw(st.sampled_from(["text", "object", "wrapper"]))
    if kind == "text":
        return draw(text)
    if kind == "object":
        return orjson.dumps(draw(json_objects)).decode()
    key = draw(st.sampled_from(["output", "error", "content", "result"]))
    return orjson.dumps({key: draw(text)}).decode()


# Opaque reasoning tokens as vendors issue them: base64 (Anthropic, Gemini), Fernet (OpenAI).
_signature = st.binary(min_size=6, max_size=30).map(lambda b: base64.b64encode(b).decode())
_ISSUERS = ["openai_chat", "openai_responses", "anthropic", "gemini"]


@st.composite
def reasoning_parts(draw: st.DrawFn) -> ReasoningPart:
    """Reasoning replayed in the history, as issued by one of the protocols."""
    issuer = draw(st.sampled_from(_ISSUERS))
    part = ReasoningPart(text=draw(text), issuer=issuer)
    if issuer in ("anthropic", "gemini"):
        part.signature = draw(_signature)
    elif issuer == "openai_responses":
        part.id = "rs_" + draw(identifier)
        part.encrypted = "gAAAAB" + draw(_signature)
    return part


@st.composite
def user_media(draw: st.DrawFn) -> ImagePart:
    if draw(st.booleans()):
        media_type = draw(st.sampled_from(["image/png", "image/jpeg", "image/webp"]))
        return ImagePart(media_type=media_type, data=draw(_signature))
    return ImagePart(url="https://example.com/" + draw(identifier) + ".png")


# --- requests ------------------------------------------------------------------------------------


@st.composite
def tools(draw: st.DrawFn) -> list[Tool]:
    names = draw(st.lists(identifier, min_size=1, max_size=3, unique=True))
    built = []
    for name in names:
        props = draw(st.lists(identifier, min_size=1, max_size=3, unique=True))
        kinds = draw(
            st.lists(
                st.sampled_from(["string", "integer", "number", "boolean"]),
                min_size=len(props),
                max_size=len(props),
            )
        )
        parameters: dict[str, Any] = {
            "type": "object",
            "properties": {p: {"type": k} for p, k in zip(props, kinds, strict=True)},
        }
        required = props[: draw(st.integers(0, len(props)))]
        if required:  # an empty list means the same as none; Gemini's schema drops it
            parameters["required"] = required
        built.append(Tool(name=name, description=draw(text), parameters=parameters))
    return built


@st.composite
def conversations(draw: st.DrawFn, tool_names: list[str]) -> list[Message]:
    """user → assistant → user ...; an assistant turn may call tools, and the next user turn
    then starts with one result per call (in call order), optionally followed by text."""
    messages: list[Message] = []
    turns = draw(st.integers(min_value=1, max_value=4))
    pending: list[ToolCallPart] = []
    call_number = 0
    for turn in range(turns):
        user: list[Part] = [
            ToolResultPart(
                call_id=call.id,
                content=[TextPart(draw(tool_result_text()))],
                is_error=draw(st.booleans()),
            )
            for call in pending
        ]
        if not pending or draw(st.booleans()):
            user.extend(TextPart(t) for t in draw(st.lists(text, min_size=1, max_size=2)))
            user.extend(draw(st.lists(user_media(), max_size=1)))
        messages.append(Message("user", user))
        pending = []
        if turn == turns - 1:
            break
        assistant: list[Part] = list(draw(st.lists(reasoning_parts(), max_size=1)))
        if draw(st.booleans()):
            assistant.append(TextPart(draw(text)))
        if tool_names:
            for name in draw(st.lists(st.sampled_from(tool_names), max_size=2)):
                call = ToolCallPart(id=f"call_{call_number}", name=name)
                call.arguments = draw(arguments_text())
                call_number += 1
                pending.append(call)
                assistant.append(call)
        if not any(isinstance(p, TextPart | ToolCallPart) for p in assistant):
            assistant.append(TextPart(draw(text)))
        messages.append(Message("assistant", assistant))
    return messages


_temperature = st.none() | st.floats(min_value=0, max_value=2, allow_nan=False)
_top_p = st.none() | st.floats(min_value=0, max_value=1, allow_nan=False)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    tool_list = draw(st.just([]) | tools())
    names = [t.name for t in tool_list]
    choice = None
    if tool_list:
        choice = draw(
            st.none()
            | st.sampled_from([ToolChoice("auto"), ToolChoice("none"), ToolChoice("required")])
            | st.sampled_from(names).map(lambda n: ToolChoice("tool", n))
        )
    return Request(
        model=draw(st.sampled_from(["gpt-5", "claude-sonnet-4-5", "gemini-3-pro-preview"])),
        system=[TextPart(t) for t in draw(st.lists(text, max_size=2))],
        messages=draw(conversations(names)),
        tools=tool_list,
        tool_choice=choice,
        max_tokens=draw(st.none() | st.integers(min_value=1, max_value=200_000)),
        temperature=draw(_temperature),
        top_p=draw(_top_p),
        stop=draw(st.lists(text, max_size=3)),
        stream=draw(st.booleans()),
    )


# --- responses -----------------------------------------------------------------------------------


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    cached = draw(st.integers(0, 50_000))
    created = draw(st.integers(0, 50_000))
    reasoning = draw(st.integers(0, 20_000))
    return Usage(
        input_tokens=cached + created + draw(st.integers(0, 100_000)),
        output_tokens=reasoning + draw(st.integers(0, 20_000)),
        cached_tokens=cached,
        cache_creation_tokens=created,
        reasoning_tokens=reasoning,
    )


# ERROR is not a reply a client can be given as a normal response (Responses renders it as a
# failure, streams as an error event); it is tested on its own.
finish_reasons = st.sampled_from([r for r in FinishReason if r is not FinishReason.ERROR])


@st.composite
def responses(draw: st.DrawFn) -> Response:
    """Reasoning first (when any), then text and tool calls in any order."""
    content: list[Part] = []
    if draw(st.booleans()):
        content.append(ReasoningPart(text=draw(text), signature=draw(st.none() | _signature)))
    names = draw(st.lists(identifier, min_size=1, max_size=2))
    body = draw(
        st.lists(
            st.one_of(
                text.map(TextPart),
                st.tuples(st.sampled_from(names), arguments_text()).map(
                    lambda pair: ToolCallPart(id="", name=pair[0], arguments=pair[1])
                ),
            ),
            max_size=4,
        )
    )
    for n, part in enumerate(body):
        if isinstance(part, ToolCallPart):
            part.id = f"toolu_{n}"
    content.extend(body)
    reason = draw(finish_reasons)
    return Response(
        id=draw(st.sampled_from(["", "abc123", "msg_01XYZ", "resp_0f1e", "chatcmpl-9z"])),
        model=draw(st.sampled_from(["gpt-5", "claude-sonnet-4-5", "gemini-2.5-pro"])),
        content=content,
        finish_reason=reason,
        stop_sequence=draw(text) if reason is FinishReason.STOP_SEQUENCE else None,
        usage=draw(usages()),
        created=1_700_000_000,
    )


# --- streams -------------------------------------------------------------------------------------


def _pieces(draw: st.DrawFn, whole: str) -> list[str]:
    """``whole`` cut at random places (every piece non-empty)."""
    if not whole:
        return []
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(whole) - 1)), max_size=4)))
    bounds = [0, *[c for c in cuts if c < len(whole)], len(whole)]
    return [whole[a:b] for a, b in itertools.pairwise(bounds) if whole[a:b]]


@st.composite
def stream_events(draw: st.DrawFn) -> list[StreamEvent]:
    """A well-formed canonical stream for a reply drawn from ``responses()``: text and
    arguments split into random deltas, usage reported at the start, optionally in an update,
    and at the end."""
    reply = draw(responses())
    usage = reply.usage
    events: list[StreamEvent] = [
        MessageStart(
            id=reply.id,
            model=reply.model,
            usage=Usage(
                input_tokens=usage.input_tokens,
                cached_tokens=usage.cached_tokens,
                cache_creation_tokens=usage.cache_creation_tokens,
            ),
        )
    ]
    for index, part in enumerate(reply.content):
        if isinstance(part, TextPart):
            events.append(TextStart(index))
            events.extend(TextDelta(index, piece) for piece in _pieces(draw, part.text))
        elif isinstance(part, ReasoningPart):
            events.append(ReasoningStart(index))
            events.extend(ReasoningDelta(index, text=p) for p in _pieces(draw, part.text))
            if part.signature:
                events.append(ReasoningDelta(index, signature=part.signature))
        elif isinstance(part, ToolCallPart):
            events.append(ToolCallStart(index, id=part.id, name=part.name))
            events.extend(ToolArgsDelta(index, p) for p in _pieces(draw, part.arguments))
        events.append(BlockEnd(index))
    if draw(st.booleans()):
        events.append(UsageUpdate(usage))
    events.append(MessageEnd(reply.finish_reason, usage, reply.stop_sequence))
    return events


# How to cut a byte stream: chunk sizes used in turn (1 = byte by byte). Drawn independently of
# the bytes, which hold fresh ids and timestamps on every run of an encoder.
chunk_sizes = st.just([1]) | st.lists(st.integers(1, 300), min_size=1, max_size=8)


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces: list[bytes] = []
    at = 0
    for n in itertools.count():
        if at >= len(data):
            break
        size = sizes[n % len(sizes)]
        pieces.append(data[at : at + size])
        at += size
    return pieces


# --- realistic wire samples (for the differential tests) -------------------------------------
# Shapes follow the vendors' documented examples and what their SDKs and CLIs send; the client
# shapes of tests/e2e/shapes are added by the tests themselves.


def sse(*frames: tuple[str | None, Any]) -> bytes:
    """SSE bytes from (event name, payload) pairs; a str payload is sent as is ([DONE])."""
    out = b""
    for name, payload in frames:
        data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        out += (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()
    return out


WEATHER_TOOL_SCHEMA = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}

CHAT_REQUESTS: list[dict[str, Any]] = [
    {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"},
        ],
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 256,
        "stop": ["\n\n", "END"],
    },
    {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "Use tools when useful."},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                    },
                    {
                        "id": "call_def",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_abc", "content": "18C, cloudy"},
            {"role": "tool", "tool_call_id": "call_def", "content": '{"temp": 24}'},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": WEATHER_TOOL_SCHEMA,
                    "strict": False,
                },
            }
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 1000,
        "seed": 7,
        "user": "user-123",
        "prompt_cache_key": "k-1",
    },
    {
        "model": "o4-mini",
        "messages": [
            {"role": "user", "content": "Describe the picture as JSON."},
        ],
        "reasoning_effort": "low",
        "max_completion_tokens": 4000,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "picture",
                "schema": {"type": "object", "properties": {"what": {"type": "string"}}},
                "strict": True,
            },
        },
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "store": True,
        "metadata": {"run": "42"},
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
    },
]

RESPONSES_REQUESTS: list[dict[str, Any]] = [
    {
        "model": "gpt-5",
        "instructions": "Be brief.",
        "input": "Hello",
        "max_output_tokens": 500,
        "temperature": 1.0,
        "stream": True,
    },
    {
        "model": "gpt-5-codex",
        "instructions": "You are a coding agent.",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ls"}]},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "List files."}],
                "encrypted_content": "gAAAAB-opaque",
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "shell",
                "arguments": '{"command":["ls"]}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt\nb.txt"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Two files.", "annotations": []}],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ok"}]},
        ],
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": "Run a command",
                "parameters": {"type": "object", "properties": {"command": {"type": "array"}}},
                "strict": False,
            }
        ],
        "tool_choice": {"type": "function", "name": "shell"},
        "parallel_tool_calls": False,
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_object"}, "verbosity": "low"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "metadata": {"session": "s"},
        "user": "u-1",
        "top_p": 0.5,
    },
]

ANTHROPIC_REQUESTS: list[dict[str, Any]] = [
    {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Hello, Claude"}],
        "temperature": 0.2,
        "top_k": 40,
        "stop_sequences": ["\n\nHuman:"],
    },
    {
        "model": "claude-opus-4-1",
        "max_tokens": 16000,
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "tools": [
            {"name": "get_weather", "description": "Weather", "input_schema": WEATHER_TOOL_SCHEMA}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Call the tool.", "signature": "EqQBCgIYAh=="},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01A",
                        "content": "18C",
                        "is_error": True,
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "metadata": {"user_id": "user-1"},
        "stream": True,
    },
]

GEMINI_REQUESTS: list[dict[str, Any]] = [
    {
        "contents": [{"role": "user", "parts": [{"text": "Write a haiku."}]}],
        "systemInstruction": {"parts": [{"text": "You are a poet."}]},
        "generationConfig": {
            "temperature": 0.9,
            "topP": 0.95,
            "topK": 40,
            "maxOutputTokens": 200,
            "stopSequences": ["END"],
            "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    },
    {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                        "thoughtSignature": "CiQBVKhc7g==",
                    }
                ],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 18}}}],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather",
                        "parametersJsonSchema": WEATHER_TOOL_SCHEMA,
                    }
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    },
]

_CHAT_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 128, "audio_tokens": 0},
}
_RESPONSES_USAGE = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 1024},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 128},
    "total_tokens": 1500,
}
_ANTHROPIC_USAGE = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 100,
    "cache_read_input_tokens": 1050,
    "output_tokens": 300,
}
_GEMINI_USAGE = {
    "promptTokenCount": 1200,
    "candidatesTokenCount": 172,
    "totalTokenCount": 1500,
    "cachedContentTokenCount": 1024,
    "thoughtsTokenCount": 128,
}


def _chat_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> Any:
    return {
        "id": "chatcmpl-B9MHD",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_f9f4fb6dbf",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


CHAT_RESPONSES: list[dict[str, Any]] = [
    {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": _CHAT_USAGE,
        "service_tier": "default",
    },
    {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "deepseek-reasoner",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "The user wants weather.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location":"Paris"}',
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": _CHAT_USAGE,
    },
]

CHAT_STREAMS: list[bytes] = [
    sse(
        (None, _chat_chunk({"role": "assistant", "content": "", "refusal": None}, usage=None)),
        (None, _chat_chunk({"content": "Hello"}, usage=None)),
        (None, _chat_chunk({"content": " world"}, usage=None)),
        (None, _chat_chunk({}, "stop", usage=None)),
        (None, {**_chat_chunk({}), "choices": [], "usage": _CHAT_USAGE}),
        (None, "[DONE]"),
    ),
    sse(
        (None, _chat_chunk({"role": "assistant", "reasoning_content": "Think."})),
        (
            None,
            _chat_chunk(
                {
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_abc",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ],
                }
            ),
        ),
        (None, _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"loc'}}]})),
        (
            None,
            _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ation": 1}'}}]}),
        ),
        (
            None,
            _chat_chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_def",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        }
                    ]
                }
            ),
        ),
        (None, _chat_chunk({}, "tool_calls")),
        (None, {**_chat_chunk({}), "choices": [], "usage": _CHAT_USAGE}),
        (None, "[DONE]"),
    ),
]


def _responses_object(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    return {
        "id": "resp_67ccd2bed1ec8190",
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "model": "gpt-5-2025-08-07",
        "output": output,
        "usage": usage,
    }


_RS_ITEM = {
    "type": "reasoning",
    "id": "rs_1",
    "summary": [{"type": "summary_text", "text": "Check the weather."}],
    "encrypted_content": "gAAAAB-opaque",
}
_FC_ITEM = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"location":"Paris"}',
    "status": "completed",
}
_MSG_ITEM = {
    "type": "message",
    "id": "msg_1",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Hi there", "annotations": []}],
}

RESPONSES_RESPONSES: list[dict[str, Any]] = [
    _responses_object("completed", [_RS_ITEM, _MSG_ITEM, _FC_ITEM], _RESPONSES_USAGE),
    _responses_object("incomplete", [_MSG_ITEM], _RESPONSES_USAGE),
]


def _rev(kind: str, n: int, **fields: Any) -> tuple[str, Any]:
    return kind, {"type": kind, "sequence_number": n, **fields}


RESPONSES_STREAMS: list[bytes] = [
    sse(
        _rev("response.created", 0, response=_responses_object("in_progress", [], None)),
        _rev("response.in_progress", 1, response=_responses_object("in_progress", [], None)),
        _rev("response.output_item.added", 2, output_index=0, item={**_RS_ITEM, "summary": []}),
        _rev(
            "response.reasoning_summary_part.added",
            3,
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        ),
        _rev(
            "response.reasoning_summary_text.delta",
            4,
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            delta="Check the weather.",
        ),
        _rev("response.output_item.done", 5, output_index=0, item=_RS_ITEM),
        _rev(
            "response.output_item.added",
            6,
            output_index=1,
            item={**_MSG_ITEM, "status": "in_progress", "content": []},
        ),
        _rev(
            "response.output_text.delta",
            7,
            item_id="msg_1",
            output_index=1,
            delta="Hi",
            content_index=0,
        ),
        _rev(
            "response.output_text.delta",
            8,
            item_id="msg_1",
            output_index=1,
            delta=" there",
            content_index=0,
        ),
        _rev("response.output_item.done", 9, output_index=1, item=_MSG_ITEM),
        _rev(
            "response.output_item.added",
            10,
            output_index=2,
            item={**_FC_ITEM, "arguments": "", "status": "in_progress"},
        ),
        _rev(
            "response.function_call_arguments.delta",
            11,
            item_id="fc_1",
            output_index=2,
            delta='{"location":',
        ),
        _rev(
            "response.function_call_arguments.delta",
            12,
            item_id="fc_1",
            output_index=2,
            delta='"Paris"}',
        ),
        _rev("response.output_item.done", 13, output_index=2, item=_FC_ITEM),
        _rev(
            "response.completed",
            14,
            response=_responses_object(
                "completed", [_RS_ITEM, _MSG_ITEM, _FC_ITEM], _RESPONSES_USAGE
            ),
        ),
    ),
]

ANTHROPIC_RESPONSES: list[dict[str, Any]] = [
    {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Weather needed.", "signature": "EqQBCgIYAhIM=="},
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "get_weather",
                "input": {"location": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": _ANTHROPIC_USAGE,
    },
    {
        "id": "msg_02",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "One, two"}],
        "stop_reason": "stop_sequence",
        "stop_sequence": "three",
        "usage": _ANTHROPIC_USAGE,
    },
]


def _aev(kind: str, **fields: Any) -> tuple[str, Any]:
    return kind, {"type": kind, **fields}


ANTHROPIC_STREAMS: list[bytes] = [
    sse(
        _aev(
            "message_start",
            message={
                **ANTHROPIC_RESPONSES[0],
                "content": [],
                "stop_reason": None,
                "usage": {**_ANTHROPIC_USAGE, "output_tokens": 1},
            },
        ),
        _aev("ping"),
        _aev(
            "content_block_start",
            index=0,
            content_block={"type": "thinking", "thinking": "", "signature": ""},
        ),
        _aev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Hm."}),
        _aev(
            "content_block_delta", index=0, delta={"type": "signature_delta", "signature": "EqQ="}
        ),
        _aev("content_block_stop", index=0),
        _aev("content_block_start", index=1, content_block={"type": "text", "text": ""}),
        _aev("content_block_delta", index=1, delta={"type": "text_delta", "text": "Let me"}),
        _aev("content_block_delta", index=1, delta={"type": "text_delta", "text": " check."}),
        _aev("content_block_stop", index=1),
        _aev(
            "content_block_start",
            index=2,
            content_block={
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "get_weather",
                "input": {},
            },
        ),
        _aev(
            "content_block_delta",
            index=2,
            delta={"type": "input_json_delta", "partial_json": '{"location": "Pa'},
        ),
        _aev(
            "content_block_delta",
            index=2,
            delta={"type": "input_json_delta", "partial_json": 'ris"}'},
        ),
        _aev("content_block_stop", index=2),
        _aev(
            "message_delta",
            delta={"stop_reason": "tool_use", "stop_sequence": None},
            usage={"output_tokens": 300},
        ),
        _aev("message_stop"),
    ),
]

GEMINI_RESPONSES: list[dict[str, Any]] = [
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Thinking about it.", "thought": True},
                        {"text": "Let me check.", "thoughtSignature": "CiQBVKhc7g=="},
                        {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": _GEMINI_USAGE,
        "modelVersion": "gemini-2.5-pro",
        "responseId": "mT8waJ2zLpqz",
    },
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Once upon"}]},
                "finishReason": "MAX_TOKENS",
                "index": 0,
            }
        ],
        "usageMetadata": _GEMINI_USAGE,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc",
    },
]


def _gchunk(parts: list[Any], finish: str | None = None, usage: Any = None) -> Any:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": "gemini-2.5-pro",
        "responseId": "mT8waJ2zLpqz",
    }
    if usage:
        chunk["usageMetadata"] = usage
    return chunk


GEMINI_STREAMS: list[bytes] = [
    sse(
        (None, _gchunk([{"text": "Thinking.", "thought": True}], usage={"promptTokenCount": 1200})),
        (None, _gchunk([{"text": "Let me", "thoughtSignature": "CiQBVKhc7g=="}])),
        (None, _gchunk([{"text": " check."}])),
        (None, _gchunk([{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}])),
        (None, _gchunk([{"text": ""}], "STOP", _GEMINI_USAGE)),
    ),
]
