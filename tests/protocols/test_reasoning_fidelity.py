"""Reasoning fidelity across the four protocols (effort mapping: test_reasoning_effort.py).

For every upstream U and client C: U's reply with reasoning and a signature (or encrypted blob)
goes through U's decoder (or parse_response) and C's encoder (or render_response); the official
SDK of C reads it; the client's next request carries C's view of that turn in its history; the
canonical request rendered for U holds U's signature byte-identical (when C has a field for it),
and no other upstream ever receives it. Plus the signature wrapper itself.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import orjson
import pytest
from google import genai
from google.genai import types as genai_types

from cliproxy.model import Reasoning, ReasoningPart, Request, TextPart
from cliproxy.model.accumulate import collect
from cliproxy.protocols.base import WireProtocol
from cliproxy.protocols.gemini_parts import CallIds, parse_parts, wire_signature
from cliproxy.protocols.gemini_request import DUMMY_SIGNATURE
from cliproxy.protocols.registry import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES
from cliproxy.protocols.signatures import (
    WRAPPED_PREFIX,
    carried_part,
    is_wrapped,
    mentions_wrapped,
    unwrap,
    wrap,
    wrap_part,
)
from cliproxy.protocols.sse import SSEParser, frame

PROTOCOLS: dict[str, WireProtocol] = {
    p.name: p for p in (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI)
}
NAMES = list(PROTOCOLS)
PAIRS = [(u, c) for u in NAMES for c in NAMES]
CAN_CARRY = {"anthropic", "openai_responses", "gemini"}  # clients with a field for a blob

THINKING = ["The user wants a greeting.", " Keep it short."]
THOUGHT = "".join(THINKING)
ANSWER = "Hello there!"
# What each upstream issues: opaque to us, so the values only need to look like the real ones.
ISSUED = {
    "anthropic": "EqQBYW50aHJvcGljLXRoaW5raW5nLXNpZ25hdHVyZS1ieXRlcy8wMTIzNDU2Nzg5",
    "openai_responses": "gAAAAABoZ3xY-encrypted_reasoning_blob-0123456789abcdef==",
    "gemini": "CiQB0e2Kb3RoZXIgdGhvdWdodCBzaWduYXR1cmUgYnl0ZXM=",
}
REASONING_ID = "rs_0a1b2c3d"

# --- what each upstream sends ----------------------------------------------------------------


def _sse(*events: tuple[str | None, dict[str, Any]]) -> bytes:
    return b"".join(frame(orjson.dumps(data), name) for name, data in events)


def _anthropic_stream() -> bytes:
    start = {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-x"}
    start |= {"content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {"input_tokens": 5, "output_tokens": 1}
    thinking = {"type": "thinking", "thinking": "", "signature": ""}
    return _sse(
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": thinking}),
        *[
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": piece}})
            for piece in THINKING
        ],
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": ISSUED["anthropic"]}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": ANSWER}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}),
    )  # fmt: skip


def _responses_items() -> list[dict[str, Any]]:
    summary = [{"type": "summary_text", "text": THOUGHT}]
    reasoning = {"type": "reasoning", "id": REASONING_ID, "summary": summary}
    reasoning["encrypted_content"] = ISSUED["openai_responses"]
    text = {"type": "output_text", "text": ANSWER, "annotations": []}
    message = {"type": "message", "id": "msg_up", "role": "assistant", "status": "completed"}
    return [reasoning, message | {"content": [text]}]


def _responses_body() -> dict[str, Any]:
    usage = {"input_tokens": 5, "output_tokens": 20, "total_tokens": 25}
    return {"id": "resp_up", "object": "response", "created_at": 1, "model": "gpt-5"} | {
        "status": "completed",
        "output": _responses_items(),
        "usage": usage,
    }


def _responses_stream() -> bytes:
    reasoning, message = _responses_items()
    ids = {"item_id": REASONING_ID, "output_index": 0, "summary_index": 0}
    created = {"id": "resp_up", "object": "response", "model": "gpt-5", "status": "in_progress"}
    return _sse(
        (None, {"type": "response.created", "response": created | {"output": []}}),
        (None, {"type": "response.output_item.added", "output_index": 0, "item": reasoning | {"summary": [], "encrypted_content": None}}),
        *[(None, {"type": "response.reasoning_summary_text.delta", **ids, "delta": p}) for p in THINKING],
        (None, {"type": "response.output_item.done", "output_index": 0, "item": reasoning}),
        (None, {"type": "response.output_item.added", "output_index": 1, "item": message | {"content": []}}),
        (None, {"type": "response.output_text.delta", "item_id": "msg_up", "output_index": 1, "content_index": 0, "delta": ANSWER}),
        (None, {"type": "response.output_item.done", "output_index": 1, "item": message}),
        (None, {"type": "response.completed", "response": _responses_body()}),
    )  # fmt: skip


def _gemini_parts() -> list[dict[str, Any]]:
    # Gemini signs the first part after its thoughts (here the answer text).
    thoughts: list[dict[str, Any]] = [{"text": piece, "thought": True} for piece in THINKING]
    return [*thoughts, {"text": ANSWER, "thoughtSignature": ISSUED["gemini"]}]


def _gemini_chunk(parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "responseId": "g_up", "modelVersion": "gemini-2.5-pro"}


def _gemini_stream() -> bytes:
    *thoughts, answer = _gemini_parts()
    chunks = [_gemini_chunk([part]) for part in thoughts] + [_gemini_chunk([answer], "STOP")]
    return _sse(*[(None, chunk) for chunk in chunks])


def _chat_stream() -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return None, {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [choice],
        }

    pieces = [chunk({"reasoning_content": piece}) for piece in THINKING]
    body = _sse(*pieces, chunk({"content": ANSWER}), chunk({}, "stop"))
    return body + frame("[DONE]")


UPSTREAM_STREAMS: dict[str, Callable[[], bytes]] = {
    "anthropic": _anthropic_stream,
    "openai_responses": _responses_stream,
    "gemini": _gemini_stream,
    "openai_chat": _chat_stream,
}
UPSTREAM_BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "anthropic": lambda: {
        "id": "msg_up", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": THOUGHT, "signature": ISSUED["anthropic"]},
            {"type": "text", "text": ANSWER},
        ],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 20},
    },
    "openai_responses": _responses_body,
    "gemini": lambda: _gemini_chunk(_gemini_parts(), "STOP"),
    "openai_chat": lambda: {
        "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": ANSWER, "reasoning_content": THOUGHT}}],
    },
}  # fmt: skip


def _decode(protocol: WireProtocol, data: bytes) -> list[Any]:
    parser, decoder = SSEParser(), protocol.stream_decoder()
    events = [e for sse in parser.feed(data) + parser.close() for e in decoder.feed(sse)]
    return events + decoder.close()


# --- what each client's SDK sees, and the history it sends next ------------------------------


def _openai(data: bytes) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    transport = httpx2.MockTransport(handler)
    return openai.OpenAI(
        base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )  # fmt: skip


def _sdk_anthropic(data: bytes) -> tuple[str, list[str], dict[str, Any]]:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    client = anthropic.Anthropic(
        base_url="http://127.0.0.1:9", api_key="x", max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )  # fmt: skip
    hi = [{"role": "user", "content": "hi"}]
    with client.messages.stream(model="client-model", max_tokens=1024, messages=hi) as stream:
        events = list(stream)
        final = stream.get_final_message()
    thinking = "".join(e.thinking for e in events if e.type == "thinking")
    signatures = [b.signature for b in final.content if b.type == "thinking" and b.signature]
    return thinking, signatures, final.model_dump(mode="json", exclude_none=True)


def _sdk_responses(data: bytes) -> tuple[str, list[str], dict[str, Any]]:
    events = list(_openai(data).responses.create(model="client-model", input="hi", stream=True))
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    final = next(e.response for e in events if e.type == "response.completed")
    blobs = [i.encrypted_content for i in final.output if i.type == "reasoning"]
    return summary, [b for b in blobs if b], final.model_dump(mode="json", exclude_none=True)


def _sdk_chat(data: bytes) -> tuple[str, list[str], dict[str, Any]]:
    hi = [{"role": "user", "content": "hi"}]
    chunks = list(
        _openai(data).chat.completions.create(model="client-model", messages=hi, stream=True)
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thinking = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    text = "".join(d.content or "" for d in deltas)
    return thinking, [], {"choices": [{"message": {"role": "assistant", "content": text}}]}


def _sdk_gemini(data: bytes) -> tuple[str, list[str], dict[str, Any]]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=data, headers={"content-type": "text/event-stream"})

    transport = httpx.MockTransport(handler)
    options = genai_types.HttpOptions(
        base_url="http://sim",
        httpx_client=httpx.Client(transport=transport),
        retry_options=genai_types.HttpRetryOptions(attempts=1),
    )
    client = genai.Client(api_key="x", http_options=options)
    chunks = list(client.models.generate_content_stream(model="client-model", contents="hi"))
    parts = [p for c in chunks for p in (c.candidates[0].content.parts or [])]
    thinking = "".join(p.text or "" for p in parts if p.thought)
    signatures = [
        base64.b64encode(p.thought_signature).decode() for p in parts if p.thought_signature
    ]
    # The history is rebuilt from the wire JSON (a JS client keeps the base64 text as it came).
    raw = [orjson.loads(e.data) for e in SSEParser().feed(data)]
    wire_parts = [p for chunk in raw for p in chunk["candidates"][0]["content"]["parts"]]
    return thinking, signatures, _gemini_chunk(wire_parts)


SDK_READERS = {
    "anthropic": _sdk_anthropic,
    "openai_responses": _sdk_responses,
    "openai_chat": _sdk_chat,
    "gemini": _sdk_gemini,
}


def _next_request(client: str, reply: dict[str, Any]) -> dict[str, Any]:
    """The client's next request: its first question, the reply as it keeps it, a new question
    (what Claude Code, Codex, Gemini CLI and Chat clients put in their history)."""
    if client == "anthropic":
        turns = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": reply["content"]},
        ]
        return {
            "model": "claude-x",
            "max_tokens": 2048,
            "messages": [*turns, {"role": "user", "content": "again"}],
        }
    if client == "openai_responses":

        def ask(text: str) -> dict[str, Any]:
            return {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            }

        return {"model": "gpt-5", "input": [ask("hi"), *reply["output"], ask("again")]}
    if client == "gemini":
        # Gemini CLI keeps the parts of a reply but not its thought parts.
        parts = [p for p in reply["candidates"][0]["content"]["parts"] if not p.get("thought")]
        return {
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": parts},
                {"role": "user", "parts": [{"text": "again"}]},
            ]
        }
    text = reply["choices"][0]["message"]["content"]
    return {"model": "gpt-5", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": text},
        {"role": "user", "content": "again"},
    ]}  # fmt: skip


# --- what reaches an upstream ----------------------------------------------------------------


def _replayed(upstream: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(signature or blob, the text it signs or the place it sits) as ``upstream`` receives them."""
    if upstream == "anthropic":
        return [
            (block["signature"], block["thinking"])
            for message in body["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if block["type"] == "thinking"
        ] + [
            (block["data"], "")
            for message in body["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if block["type"] == "redacted_thinking"
        ]
    if upstream == "openai_responses":
        return [
            (item["encrypted_content"], item["summary"][0]["text"] + "|" + item.get("id", ""))
            for item in body["input"]
            if item.get("type") == "reasoning"
        ]
    if upstream == "gemini":
        return [
            (part["thoughtSignature"], part.get("text", "functionCall"))
            for content in body["contents"]
            for part in content["parts"]
            if "thoughtSignature" in part
        ]
    return []  # fmt: skip


EXPECTED_REPLAY = {
    "anthropic": [(ISSUED["anthropic"], THOUGHT)],
    "openai_responses": [(ISSUED["openai_responses"], f"{THOUGHT}|{REASONING_ID}")],
    # Back on the part that carried it: the answer text.
    "gemini": [(ISSUED["gemini"], ANSWER)],
    "openai_chat": [],
}


def _assert_history_fidelity(upstream: str, client: str, request: Request) -> None:
    sent = PROTOCOLS[upstream].render_request(request)
    expected = EXPECTED_REPLAY[upstream] if client in CAN_CARRY else []
    assert _replayed(upstream, sent) == expected
    for other in NAMES:
        wire = orjson.dumps(PROTOCOLS[other].render_request(request))
        assert WRAPPED_PREFIX.encode() not in wire  # a wrapper never reaches an upstream
        if other != upstream and upstream in ISSUED:
            assert ISSUED[upstream].encode() not in wire, f"{upstream} signature sent to {other}"


# --- the pair tests ----------------------------------------------------------------------------


@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=[f"{u}-to-{c}" for u, c in PAIRS])
def test_stream_reasoning_reaches_client_and_signature_returns_to_issuer(
    upstream: str, client: str
) -> None:
    events = _decode(PROTOCOLS[upstream], UPSTREAM_STREAMS[upstream]())
    encoder = PROTOCOLS[client].stream_encoder(Request(model="client-model", stream=True))
    data = b"".join(encoder.feed(event) for event in events)

    thinking, signatures, reply = SDK_READERS[client](data)
    assert thinking == THOUGHT  # as the client's own reasoning deltas
    if upstream == client and upstream in ISSUED:
        assert signatures == [ISSUED[upstream]]  # pass-through: byte-identical
    elif upstream in ISSUED and client in CAN_CARRY:
        assert [unwrap(s) for s in signatures] == [(upstream, ISSUED[upstream])]
    else:
        assert signatures == []

    request = PROTOCOLS[client].parse_request(_next_request(client, reply))
    _assert_history_fidelity(upstream, client, request)


@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=[f"{u}-to-{c}" for u, c in PAIRS])
def test_complete_reply_signature_returns_to_issuer(upstream: str, client: str) -> None:
    response = PROTOCOLS[upstream].parse_response(UPSTREAM_BODIES[upstream]())
    reply = orjson.loads(orjson.dumps(PROTOCOLS[client].render_response(response)))
    if client == "gemini":
        genai_types.GenerateContentResponse.model_validate(reply)  # base64 fields decode
    request = PROTOCOLS[client].parse_request(_next_request(client, reply))
    _assert_history_fidelity(upstream, client, request)


def test_same_protocol_stream_round_trip_keeps_the_issuers_bytes() -> None:
    """Decoding then encoding for the same protocol leaves the signature untouched."""
    for name in ISSUED:
        events = _decode(PROTOCOLS[name], UPSTREAM_STREAMS[name]())
        reply = collect(events)
        blobs = [p.signature or p.encrypted for p in reply.content if isinstance(p, ReasoningPart)]
        assert ISSUED[name] in blobs
        assert all(p.issuer == name for p in reply.content if isinstance(p, ReasoningPart))


# --- tools: the signed thinking must lead the assistant turn that calls a tool ------------------


def _anthropic_tool_stream() -> bytes:
    data = _anthropic_stream()
    tool = {"type": "tool_use", "id": "toolu_01", "name": "read_file", "input": {}}
    # Replace the text block by a tool call (same shape of stream otherwise).
    data = data.replace(
        orjson.dumps({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        orjson.dumps({"type": "content_block_start", "index": 1, "content_block": tool}),
    ).replace(
        orjson.dumps({"type": "text_delta", "text": ANSWER}),
        orjson.dumps({"type": "input_json_delta", "partial_json": '{"path": "a.txt"}'}),
    )  # fmt: skip
    return data.replace(b'"end_turn"', b'"tool_use"')


def _tool_result_turn(client: str, reply: dict[str, Any]) -> dict[str, Any]:
    """The next request after the model called read_file: history plus the tool's output."""
    body = _next_request(client, reply)
    if client == "anthropic":
        result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": "TOOL-OK"}
        body["messages"][-1] = {"role": "user", "content": [result]}
    elif client == "openai_responses":
        call_id = next(i["call_id"] for i in reply["output"] if i["type"] == "function_call")
        body["input"][-1] = {
            "type": "function_call_output",
            "call_id": call_id,
            "output": "TOOL-OK",
        }
    elif client == "gemini":
        response = {"name": "read_file", "response": {"output": "TOOL-OK"}}
        body["contents"][-1] = {"role": "user", "parts": [{"functionResponse": response}]}
    return body  # fmt: skip


@pytest.mark.parametrize("client", ["anthropic", "openai_responses", "gemini"])
def test_signed_thinking_before_a_tool_call_survives_another_client(client: str) -> None:
    """Claude with thinking on refuses a tool-calling assistant turn that does not start with its
    signed thinking block: through Codex or Gemini CLI the block must come back in front."""
    events = _decode(ANTHROPIC, _anthropic_tool_stream())
    response = collect(events)
    reply = orjson.loads(orjson.dumps(PROTOCOLS[client].render_response(response)))
    request = PROTOCOLS[client].parse_request(_tool_result_turn(client, reply))
    request.reasoning, request.max_tokens = Reasoning(budget=4096), 16000
    sent = ANTHROPIC.render_request(request)
    assistant = sent["messages"][1]["content"]
    assert [b["type"] for b in assistant] == ["thinking", "tool_use"]
    assert (assistant[0]["thinking"], assistant[0]["signature"]) == (THOUGHT, ISSUED["anthropic"])
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}


def test_gemini_call_signature_is_not_forged_elsewhere() -> None:
    """Gemini's functionCall signature has no home in Anthropic's tool_use: when the call comes
    back through such a client, Gemini gets the documented skip value, never a made-up one."""
    parts = [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": ISSUED["gemini"]}]
    response = GEMINI.parse_response(_gemini_chunk(parts, "STOP"))
    reply = ANTHROPIC.render_response(response)
    body = _next_request("anthropic", reply)
    result = {"type": "tool_result", "tool_use_id": reply["content"][-1]["id"], "content": "ok"}
    body["messages"][-1] = {"role": "user", "content": [result]}
    sent = GEMINI.render_request(ANTHROPIC.parse_request(body))
    call_part = sent["contents"][1]["parts"][0]
    assert call_part["thoughtSignature"] == DUMMY_SIGNATURE
    # Through a Gemini client it is Gemini's own and goes back unchanged.
    again = GEMINI.render_request(
        GEMINI.parse_request(_next_request("gemini", _gemini_chunk(parts)))
    )
    assert again["contents"][1]["parts"][0]["thoughtSignature"] == ISSUED["gemini"]


# --- the wrapper --------------------------------------------------------------------------------


@pytest.mark.parametrize("issuer", ["anthropic", "openai_responses", "gemini"])
@pytest.mark.parametrize("value", ["sig", "EqQBCgIYAh==", "gAAAAAB-_x/+==", 'ünïcödé " \\ \n'])
def test_wrap_round_trip_and_base64(issuer: str, value: str) -> None:
    wrapped = wrap(issuer, value)
    assert wrapped.startswith(WRAPPED_PREFIX)
    base64.b64decode(wrapped, validate=True)  # standard base64, as google-genai requires
    assert wire_signature(wrapped) == wrapped  # Gemini's own check lets it through
    assert unwrap(wrapped) == (issuer, value)
    assert is_wrapped(wrapped)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sig",
        ISSUED["anthropic"],
        ISSUED["gemini"],
        WRAPPED_PREFIX,
        WRAPPED_PREFIX + "!!!!",
        WRAPPED_PREFIX + "AAAA",
    ],
)
def test_unwrap_leaves_other_values_alone(value: str) -> None:
    assert unwrap(value) == (None, value)
    assert carried_part(value) is None
    assert not is_wrapped(value)


def test_a_body_holding_a_wrapped_value_is_recognised() -> None:
    """The server keeps such a body off the same-protocol pass-through path."""
    thinking = {"type": "thinking", "thinking": "t", "signature": wrap("gemini", "c2ln")}
    body = _next_request("anthropic", {"content": [thinking]})
    assert mentions_wrapped(orjson.dumps(body))
    assert not mentions_wrapped(orjson.dumps(UPSTREAM_BODIES["anthropic"]()))


def test_wrapped_fields_survive() -> None:
    part = ReasoningPart(encrypted="blob", redacted=True, issuer="anthropic")
    assert carried_part(wrap_part(part)) == part
    part = ReasoningPart(text="t", encrypted="E", issuer="openai_responses", id=REASONING_ID)
    assert carried_part(wrap_part(part), "t") == part
    assert carried_part(wrap_part(part, with_text=True)) == part  # text held by the wrapper
    assert wrap_part(ReasoningPart(text="t", signature="s")) is None  # issuer unknown: dropped
    assert wrap_part(ReasoningPart(text="t", issuer="gemini")) is None  # nothing to carry


def test_gemini_client_keeping_thoughts_gets_no_duplicate_reasoning() -> None:
    """A client that keeps the shown thought parts too: they are the carried reasoning's copy."""
    carried = wrap("anthropic", "SIG", text=THOUGHT)
    parts = [
        {"text": THINKING[0], "thought": True},
        {"text": THINKING[1], "thought": True},
        {"text": ANSWER, "thoughtSignature": carried},
    ]
    got = parse_parts(parts, "parts", CallIds())
    assert got == [
        ReasoningPart(text=THOUGHT, signature="SIG", issuer="anthropic"),
        TextPart(ANSWER),
    ]
