"""Malformed bodies sent to every route that reads one: never a 5xx, and every refusal in the
route's own error shape.

The shapes are the ones that got past the parsers before: JSON nested past what orjson writes
(about 254 levels) or what Python recursion takes, strings too long for the tokenizer, bytes that
are not UTF-8, JSON that is not an object, duplicate keys, empty and truncated bodies. Each goes
to every LLM route for a model of every upstream kind (pass-through and translated paths) and to
every management route that takes a body. Bodies are built deterministically, so a failure
reproduces; all failures are collected and reported together.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.routing import Route

from cliproxy.config import load_config
from cliproxy.management import ManagementMount
from cliproxy.model.json_limits import MAX_JSON_DEPTH
from tests.e2e.conftest import matrix_config
from tests.e2e.test_bad_input import anthropic_error, gemini_error, openai_error
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, GeminiSim, OpenAIChatSim, ResponsesSim

MANAGEMENT_KEY = "fuzz-management-key"
MODELS = ("chat-model", "resp-model", "claude-model", "gemini-model", "demo-echo")
HUGE = 1_000_000
LIMIT_WORDS = f"more than {MAX_JSON_DEPTH} levels"
# Past the limit, past orjson's write limit, past Python's recursion limit, past orjson's read limit.
TOO_DEEP = (MAX_JSON_DEPTH + 1, 300, 1000, 5000)
CONCURRENCY = 8


# ----- what a route answers ---------------------------------------------------------------------


def management_error(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    return body


Shape = Callable[[httpx.Response], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    raw: bytes
    shape: Shape
    # "deep": must be refused with 400 naming the limit; "fits": must not be refused for depth.
    expect: str = ""
    content_type: str = "application/json"


# ----- nesting ----------------------------------------------------------------------------------

_MARK = "\x00fuzz-mark\x00"


def nested(levels: int, kind: str, leaf: Any = 1) -> Any:
    """``levels`` containers, one inside the other, around ``leaf``."""
    value = leaf
    for _ in range(levels):
        value = [value] if kind == "array" else {"a": value}
    return value


def deep_schema(levels: int) -> dict[str, Any]:
    """A JSON Schema nesting ``levels`` objects through ``items`` (what the Gemini schema
    conversion walks)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 1):
        schema = {"type": "array", "items": schema}
    return schema


def enclosing(value: Any, mark: str = _MARK) -> int:
    """How many containers enclose the string ``mark`` in ``value`` (the injection depth)."""
    if value == mark:
        return 0
    if isinstance(value, dict | list):
        for child in value.values() if isinstance(value, dict) else value:
            found = enclosing(child, mark)
            if found >= 0:
                return found + 1
    return -1


def dumps(value: Any) -> bytes:
    """JSON text of ``value`` at any depth: orjson stops writing near 254 levels and the
    stdlib's writer at the recursion limit, so this one keeps its own stack."""
    out: list[bytes] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, dict):
            out.append(b"{")
            pieces: list[Any] = []
            for n, (key, child) in enumerate(item.items()):
                pieces += [b"," if n else b"", orjson.dumps(key) + b":", child]
            stack += [b"}", *reversed(pieces)]
        elif isinstance(item, list):
            out.append(b"[")
            pieces = []
            for n, child in enumerate(item):
                pieces += [b"," if n else b"", child]
            stack += [b"]", *reversed(pieces)]
        else:
            out.append(orjson.dumps(item))
    return b"".join(out)


def inject(body: Any, value: Any) -> bytes:
    """``body`` with its mark replaced by ``value``, written out (``value`` may be any depth)."""
    return dumps(_replace(body, value))


def _replace(body: Any, value: Any) -> Any:
    if body == _MARK:
        return value
    if isinstance(body, dict):
        return {k: _replace(v, value) for k, v in body.items()}
    if isinstance(body, list):
        return [_replace(v, value) for v in body]
    return body


# ----- the bodies of each protocol --------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """Where a protocol keeps the parts the fuzz aims at; each builder puts _MARK there."""

    base: Callable[[str], dict[str, Any]]
    text: Callable[[str], dict[str, Any]]
    tool_schema: Callable[[str], dict[str, Any]] | None = None
    tool_args: Callable[[str], dict[str, Any]] | None = None
    tool_result: Callable[[str], dict[str, Any]] | None = None
    # Whether tool-call arguments are an object in the body (else JSON text in a string).
    args_in_body: bool = False
    wrong_types: tuple[tuple[str, Any], ...] = ()


def _chat(model: str, messages: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 16,
        "messages": messages or [{"role": "user", "content": "hi"}],
        **extra,
    }


def _chat_call(args: Any, result: Any = "ok") -> list[Any]:
    return [
        {"role": "user", "content": "use the tool"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": args}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": result},
    ]


CHAT = Dialect(
    base=lambda m: _chat(m),
    text=lambda m: _chat(m, [{"role": "user", "content": _MARK}]),
    tool_schema=lambda m: _chat(
        m,
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "parameters": {"type": "object", "properties": {"x": _MARK}},
                },
            }
        ],
    ),
    tool_args=lambda m: _chat(m, _chat_call(_MARK)),
    tool_result=lambda m: _chat(m, _chat_call("{}", _MARK)),
    wrong_types=(
        ("messages", "hi"),
        ("messages", [1, None]),
        ("messages", [{"role": 5, "content": {"a": 1}}]),
        ("tools", "f"),
        ("tools", [1]),
        ("stream", "yes"),
        ("model", ["chat-model"]),
        ("max_tokens", "many"),
    ),
)

COMPLETIONS = Dialect(
    base=lambda m: {"model": m, "prompt": "hi", "max_tokens": 16},
    text=lambda m: {"model": m, "prompt": _MARK, "max_tokens": 16},
    wrong_types=(("prompt", {"a": 1}), ("prompt", [1, [2]]), ("stream", 3), ("model", 5)),
)


def _responses(model: str, items: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "input": items, "max_output_tokens": 16, **extra}


def _responses_call(args: Any, result: Any = "ok") -> list[Any]:
    return [
        {"role": "user", "content": "use the tool"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": args},
        {"type": "function_call_output", "call_id": "call_1", "output": result},
    ]


RESPONSES = Dialect(
    base=lambda m: _responses(m),
    text=lambda m: _responses(m, [{"role": "user", "content": _MARK}]),
    tool_schema=lambda m: _responses(
        m,
        tools=[
            {
                "type": "function",
                "name": "f",
                "parameters": {"type": "object", "properties": {"x": _MARK}},
            }
        ],
    ),
    tool_args=lambda m: _responses(m, _responses_call(_MARK)),
    tool_result=lambda m: _responses(m, _responses_call("{}", _MARK)),
    wrong_types=(
        ("input", 5),
        ("input", [1, "x", None]),
        ("input", [{"type": "function_call", "arguments": {"a": 1}}]),
        ("tools", {"a": 1}),
        ("instructions", [1]),
        ("stream", "no"),
    ),
)


def _anthropic(model: str, messages: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 16,
        "messages": messages or [{"role": "user", "content": "hi"}],
        **extra,
    }


def _anthropic_call(args: Any, result: Any = "ok") -> list[Any]:
    return [
        {"role": "user", "content": "use the tool"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": args}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": result}],
        },
    ]


ANTHROPIC = Dialect(
    base=lambda m: _anthropic(m),
    text=lambda m: _anthropic(m, [{"role": "user", "content": _MARK}]),
    tool_schema=lambda m: _anthropic(
        m,
        tools=[{"name": "f", "input_schema": {"type": "object", "properties": {"x": _MARK}}}],
    ),
    tool_args=lambda m: _anthropic(m, _anthropic_call(_MARK)),
    tool_result=lambda m: _anthropic(m, _anthropic_call({}, _MARK)),
    args_in_body=True,
    wrong_types=(
        ("messages", {"role": "user"}),
        ("messages", [{"role": "user", "content": [1, "x"]}]),
        ("system", 5),
        ("system", [{"type": "text", "text": 5}]),
        ("tools", [{"name": 5}]),
        ("max_tokens", "lots"),
    ),
)


def _gemini(contents: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "contents": contents or [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"maxOutputTokens": 16},  # the demo echoes no more than that
        **extra,
    }


def _gemini_call(args: Any, result: Any = "ok") -> list[Any]:
    return [
        {"role": "user", "parts": [{"text": "use the tool"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": args}}]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "f", "response": {"output": result}}}],
        },
    ]


GEMINI = Dialect(
    base=lambda m: _gemini(),
    text=lambda m: _gemini([{"role": "user", "parts": [{"text": _MARK}]}]),
    tool_schema=lambda m: _gemini(
        tools=[
            {
                "functionDeclarations": [
                    {"name": "f", "parameters": {"type": "OBJECT", "properties": {"x": _MARK}}}
                ]
            }
        ]
    ),
    tool_args=lambda m: _gemini(_gemini_call(_MARK)),
    tool_result=lambda m: _gemini(_gemini_call({}, _MARK)),
    args_in_body=True,
    wrong_types=(
        ("contents", "hi"),
        ("contents", [{"parts": "x"}]),
        ("contents", [{"role": "user", "parts": [{"text": 5}, 7]}]),
        ("systemInstruction", [1]),
        ("generationConfig", {"maxOutputTokens": "x", "responseSchema": 5}),
        ("tools", [{"functionDeclarations": {"a": 1}}]),
    ),
)


def _interaction(model: str, steps: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "input": steps, **extra}


def _interaction_call(arguments: Any) -> list[Any]:
    return [
        {"type": "user_input", "content": [{"type": "text", "text": "hi"}]},
        {"type": "function_call", "id": "c1", "name": "f", "arguments": arguments},
    ]


INTERACTIONS = Dialect(
    base=lambda m: _interaction(m),
    text=lambda m: _interaction(m, [{"type": "text", "text": _MARK}]),
    tool_schema=lambda m: _interaction(
        m,
        tools=[
            {
                "type": "function",
                "name": "f",
                "parameters": {"type": "object", "properties": {"x": _MARK}},
            }
        ],
    ),
    tool_args=lambda m: _interaction(m, _interaction_call(_MARK)),
    tool_result=lambda m: _interaction(
        m,
        [
            *_interaction_call({}),
            {"type": "function_result", "call_id": "c1", "name": "f", "result": _MARK},
        ],
    ),
    args_in_body=True,
    wrong_types=(
        ("input", 5),
        ("input", [{"type": "text", "text": 5}]),
        ("input", [{"type": "function_call", "id": 1}]),
        ("system_instruction", [1]),
        ("generation_config", {"max_output_tokens": "x"}),
        ("tools", [{"type": "function", "name": 5}]),
        ("agent", "a"),
    ),
)


# ----- the malformed shapes ---------------------------------------------------------------------

Named = list[tuple[str, bytes, str]]  # (shape name, body, expectation)


def parse_shapes(good: bytes) -> Named:
    """Bodies a route refuses before it reads a field; one model per route is enough."""
    shapes = [
        ("empty", b""),
        ("blank", b" \n\t "),
        ("truncated-third", good[: len(good) // 3]),
        ("truncated-last", good[:-1]),
        ("trailing-garbage", good + b" }{"),
        ("not-json", b"{model: chat-model}"),
        ("utf8-bom", b"\xef\xbb\xbf" + good),
        ("invalid-utf8-in-string", good.replace(b'"hi"', b'"h\xff\xfei"')),
        ("invalid-utf8-bare", b"\x80\x81\x82"),
        ("overlong-utf8", good.replace(b'"hi"', b'"\xc0\xafhi"')),
        ("lone-surrogate", good.replace(b'"hi"', b'"\\ud800hi"')),
        ("nul-byte", good.replace(b'"hi"', b'"h\x00i"')),
        ("nan", good[:-1] + b',"temperature":NaN}'),
        ("huge-number", good[:-1] + b',"temperature":1e999}'),
        ("array", b"[]"),
        ("array-of-body", b"[" + good + b"]"),
        ("number", b"42"),
        ("string", b'"hello"'),
        ("null", b"null"),
        ("true", b"true"),
    ]
    named: Named = [(n, raw, "") for n, raw in shapes]
    for kind in ("array", "object"):
        for levels in (MAX_JSON_DEPTH, *TOO_DEEP):
            named.append((f"top-{kind}-{levels}", dumps(nested(levels, kind)), _fits(levels)))
    return named


def duplicate_key_shapes(base: dict[str, Any], keys: int = 2) -> Named:
    good = orjson.dumps(base)
    return [
        # The same key twice, the odd value last (JSON parsers keep the last one).
        (f"duplicate-{key}-{odd.decode()}", good[:-1] + f',"{key}":'.encode() + odd + b"}", "")
        for key in list(base)[:keys]
        for odd in (b"5", b"null", b"[]")
    ]


def deep_shapes(dialect: Dialect, model: str, levels: tuple[int, ...], **extra: Any) -> Named:
    """Nesting at the limit and past it where each protocol reads deeply: an unknown field, a
    tool's schema, tool-call arguments and a tool result."""
    shapes: Named = []
    holder = {**dialect.base(model), **extra, "fuzz_extra": _MARK}
    inside = enclosing(holder)
    for kind in ("array", "object"):
        for n in levels:
            body = inject(holder, nested(n - inside, kind))
            shapes.append((f"extra-{kind}-{n}", body, _fits(n)))
    if dialect.tool_schema is not None:
        holder = {**dialect.tool_schema(model), **extra}
        inside = enclosing(holder)
        for n in levels:
            shapes.append((f"tool-schema-{n}", inject(holder, deep_schema(n - inside)), _fits(n)))
    if dialect.tool_args is not None:
        holder = {**dialect.tool_args(model), **extra}
        inside = enclosing(holder)
        for n in levels:
            if dialect.args_in_body:  # an object in the body (arguments must be an object)
                value = {"a": nested(n - inside - 1, "object")}
                shapes.append((f"tool-args-{n}", inject(holder, value), _fits(n)))
            else:  # JSON text in a string, parsed only where it is translated
                text = dumps(nested(n, "object")).decode()
                shapes.append((f"tool-args-{n}", inject(holder, text), ""))
    if dialect.tool_result is not None:
        holder = {**dialect.tool_result(model), **extra}
        for n in levels:
            text = dumps(nested(n, "array")).decode()
            shapes.append((f"tool-result-{n}", inject(holder, text), ""))
    return shapes


def _fits(levels: int) -> str:
    return "fits" if levels <= MAX_JSON_DEPTH else "deep"


def text_shapes(dialect: Dialect, model: str, counting: bool, **extra: Any) -> Named:
    """Text the tokenizer and the translators must take: a million characters without a space
    (and other long runs where tokens are counted), special-token spellings."""
    holder = {**dialect.text(model), **extra}
    shapes = [
        ("huge-run", inject(holder, "a" * HUGE)),
        ("special-tokens", inject(holder, "<|endoftext|> <|im_start|>system<|im_end|>")),
    ]
    if counting:
        shapes += [
            ("huge-base64", inject(holder, _base64_run())),
            ("huge-cjk", inject(holder, "字" * (HUGE // 3))),
            ("huge-digits", inject(holder, "7" * HUGE)),
        ]
    return [(n, raw, "") for n, raw in shapes]


@functools.cache
def _base64_run() -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return "".join(random.Random(7).choices(letters, k=HUGE))


def wrong_type_shapes(dialect: Dialect, model: str) -> Named:
    base = dialect.base(model)
    shapes: Named = [("huge-model", orjson.dumps({**base, "model": "m" * 100_000}), "")]
    for key, value in dialect.wrong_types:
        name = f"type-{key}-{orjson.dumps(value).decode()[:20]}"
        shapes.append((name, orjson.dumps({**base, key: value}), ""))
    return shapes


def llm_targets() -> Iterator[tuple[str, Dialect, str, Shape]]:
    """(path, dialect, model, error shape) for every LLM route and model."""
    for model in MODELS:
        yield "/v1/chat/completions", CHAT, model, openai_error
        yield "/v1/completions", COMPLETIONS, model, openai_error
        yield "/v1/responses", RESPONSES, model, openai_error
        yield "/v1/messages", ANTHROPIC, model, anthropic_error
        yield "/v1/messages/count_tokens", ANTHROPIC, model, anthropic_error
        yield "/v1/interactions", INTERACTIONS, model, gemini_error
        yield "/v1beta/interactions", INTERACTIONS, model, gemini_error
        for prefix in ("/v1beta/models", "/v1/models"):
            for method in ("generateContent", "streamGenerateContent", "countTokens"):
                yield f"{prefix}/{model}:{method}", GEMINI, model, gemini_error


def llm_cases() -> list[Case]:
    cases: list[Case] = []
    for path, dialect, model, shape in llm_targets():
        base = dialect.base(model)
        counting = "ount" in path  # count_tokens, countTokens
        if path.startswith("/v1/models/"):
            # The handler of /v1beta/models: a smaller selection of the same shapes.
            named = parse_shapes(orjson.dumps(base))[::3]
            named += deep_shapes(dialect, model, (MAX_JSON_DEPTH + 1,))
            named += text_shapes(dialect, model, counting)[:1]
        else:
            named = [
                *duplicate_key_shapes(base),
                *deep_shapes(dialect, model, (MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 300)),
                *text_shapes(dialect, model, counting),
                *wrong_type_shapes(dialect, model),
            ]
            if model == MODELS[0]:
                # Refused before the model is looked at.
                named += parse_shapes(orjson.dumps(base))
                named += deep_shapes(dialect, model, (1000, 5000))
        if dialect is not GEMINI and not counting:
            # Streaming requests take their own paths through the proxy.
            streamed = deep_shapes(dialect, model, (MAX_JSON_DEPTH, 300), stream=True)
            streamed += text_shapes(dialect, model, False, stream=True)[:1]
            named += [(f"stream-{n}", raw, e) for n, raw, e in streamed]
        label = path if dialect is GEMINI else f"{path} [{model}]"
        cases += [Case(f"{label} {n}", "POST", path, raw, shape, e) for n, raw, e in named]
    return cases


# The routes whose body is a whole config.yaml (PUT saves it, validate only checks it).
YAML_ROUTES = ("/config.yaml", "/config.yaml/validate")


def _filled(path: str) -> str:
    """A route path with its parameters filled in (a config key path for /v8's)."""
    return path.replace("{channel}", "x").replace("{path:path}", "routing/retry/request-retry")


def management_cases(proxy: ProxyServer) -> list[Case]:
    """Every management route that takes a body, found in the live app (so a new route is
    covered without editing this list), and the public OAuth callback."""
    mounts = [r for r in proxy.app.routes if isinstance(r, ManagementMount)]
    assert [mount.path for mount in mounts] == ["/v0/management", "/v8/management"]
    targets = [
        (method, mount.path + _filled(route.path))
        for mount in mounts
        for route in mount.app.router.routes  # type: ignore[attr-defined]
        if isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"GET", "HEAD"})
    ]
    targets += [
        ("POST", "/v0/management/oauth-callback"),
        ("POST", "/v8/management/oauth/callback"),
    ]
    good = {"name": "x.json", "value": True, "type": "claude"}
    bodies: Named = [
        *parse_shapes(orjson.dumps(good))[::3],
        *duplicate_key_shapes(good, keys=1)[:1],
        ("huge-string", orjson.dumps({**good, "name": "a" * HUGE}), ""),
    ]
    holder = {**good, "value": _MARK}
    inside = enclosing(holder)
    for kind, levels in (("object", MAX_JSON_DEPTH + 1), ("array", 300), ("object", 5000)):
        value = nested(levels - inside, kind)
        bodies.append((f"deep-field-{kind}-{levels}", inject(holder, value), "deep"))
    # Routes that refuse a plain JSON body before reading it (uploads come below), YAML, and
    # DELETE routes, which mostly go by the query string: no limit to name there.
    unread = ("/auth-files", "/vertex/import", "/credentials", "/oauth/import", *YAML_ROUTES)
    cases: list[Case] = []
    for method, path in targets:
        for name, raw, expect in bodies:
            if method == "DELETE" or (method != "PATCH" and path.endswith(unread)):
                expect = ""
            case = Case(f"{method} {path} {name}", method, path, raw, management_error, expect)
            cases.append(case)
    # The bodies as auth-file uploads: raw with ?name=, and as multipart file parts.
    multipart = "multipart/form-data; boundary=fuzz-boundary"
    for name, raw, expect in bodies:
        upload = "/v0/management/auth-files?name=fuzz.json"
        cases.append(Case(f"POST {upload} {name}", "POST", upload, raw, management_error, expect))
        for path in ("/v0/management/auth-files", "/v0/management/vertex/import"):
            framed = _multipart_file(raw)
            label = f"POST {path} multipart {name}"
            cases.append(Case(label, "POST", path, framed, management_error, expect, multipart))
    return cases


def _multipart_file(data: bytes) -> bytes:
    head = (
        b"--fuzz-boundary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="fuzz.json"\r\n'
        b"Content-Type: application/json\r\n\r\n"
    )
    return head + data + b"\r\n--fuzz-boundary--\r\n"


# ----- running them -----------------------------------------------------------------------------


def judge(case: Case, reply: httpx.Response) -> str | None:
    """What is wrong with the reply, or None."""
    snippet = reply.text[:300]
    if reply.status_code >= 500:
        return f"{reply.status_code}: {snippet}"
    if case.expect == "deep" and (reply.status_code != 400 or LIMIT_WORDS not in reply.text):
        return f"expected a 400 naming the depth limit, got {reply.status_code}: {snippet}"
    if case.expect == "fits" and LIMIT_WORDS in reply.text:
        return f"refused for depth at the limit: {snippet}"
    if 400 <= reply.status_code < 500:
        if not reply.headers.get("content-type", "").startswith("application/json"):
            return f"{reply.status_code} is not JSON: {snippet}"
        try:
            case.shape(reply)
        except (AssertionError, ValueError, KeyError, TypeError) as exc:
            return f"{reply.status_code} not in the route's error shape ({exc!r}): {snippet}"
    return None


async def run(
    base_url: str, cases: list[Case], headers: dict[str, str], concurrency: int = CONCURRENCY
) -> list[str]:
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one(http: httpx.AsyncClient, case: Case) -> None:
        async with gate:
            try:
                reply = await http.request(
                    case.method,
                    case.path,
                    content=case.raw,
                    headers={"content-type": case.content_type, **headers},
                )
            except httpx.HTTPError as exc:
                failures.append(f"{case.name}: {exc!r}")
                return
        problem = judge(case, reply)
        if problem:
            failures.append(f"{case.name}: {problem}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(one(http, case) for case in cases))
    return failures


def report(failures: list[str], total: int) -> str:
    # 5xx first; then the rest, so the worst are never cut off.
    ordered = sorted(failures, key=lambda line: (": 5" not in line, line))
    shown = "\n".join(ordered[:80])
    return f"{len(failures)} of {total} bodies got a bad reply:\n{shown}"


@pytest.fixture(scope="module")
def llm_proxy(
    _openai_chat_sim_server: OpenAIChatSim,
    _responses_sim_server: ResponsesSim,
    _anthropic_sim_server: AnthropicSim,
    _gemini_sim_server: GeminiSim,
) -> Iterator[ProxyServer]:
    # A proxy of its own: whatever the fuzz leaves behind (cooldowns) stays out of the shared one.
    config = matrix_config(
        _openai_chat_sim_server, _responses_sim_server, _anthropic_sim_server, _gemini_sim_server
    )
    with ProxyServer(config) as proxy:
        yield proxy


@pytest.fixture
def management_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(
        f'remote-management:\n  secret-key: "{MANAGEMENT_KEY}"\nauth-dir: "{auth_dir}"\n'
        "api-keys: [client-key-1]\n"
        "claude-api-key:\n  - api-key: sk-ant-1\n    base-url: http://127.0.0.1:9/claude\n"
    )
    with ProxyServer(load_config(path), config_path=path) as proxy:
        yield proxy


def test_llm_routes_answer_malformed_bodies_without_a_5xx(
    llm_proxy: ProxyServer,
    openai_chat_sim: OpenAIChatSim,
    responses_sim: ResponsesSim,
    anthropic_sim: AnthropicSim,
    gemini_sim: GeminiSim,
) -> None:
    cases = llm_cases()
    failures = asyncio.run(run(llm_proxy.base_url, cases, {}))
    assert not failures, report(failures, len(cases))
    good = {"model": "demo-echo", "messages": [{"role": "user", "content": "still here"}]}
    reply = httpx.post(llm_proxy.base_url + "/v1/chat/completions", json=good, timeout=10)
    assert reply.status_code == 200 and "still here" in reply.text


def test_management_routes_answer_malformed_bodies_without_a_5xx(
    management_proxy: ProxyServer,
) -> None:
    cases = management_cases(management_proxy)
    headers = {"authorization": f"Bearer {MANAGEMENT_KEY}"}
    # ruamel takes seconds over a flow sequence thousands of levels deep; the few hundred
    # levels below show the YAML routes refuse deep bodies without a 5xx all the same.
    yaml = [
        case
        for case in cases
        if case.path.endswith(YAML_ROUTES) and not case.name.endswith("-5000")
    ]
    json = [case for case in cases if not case.path.endswith(YAML_ROUTES)]
    failures = asyncio.run(run(management_proxy.base_url, json, headers))
    # The config file routes take YAML, where `null` is a valid (empty) config that ends
    # management itself: one at a time, with the file put back after each accepted one.
    path = management_proxy.config_path
    assert path is not None
    original = path.read_text()
    for case in yaml:
        failures += asyncio.run(run(management_proxy.base_url, [case], headers))
        if path.read_text() != original:
            path.write_text(original)
            management_proxy.state.apply(load_config(path))
    assert not failures, report(failures, len(cases))


def test_the_fuzz_covers_every_route_that_reads_a_body(llm_proxy: ProxyServer) -> None:
    """A POST route added to the app must join llm_targets (management routes are found in
    the app itself by management_cases)."""
    covered = {path for path, *_ in llm_targets()}
    for route in llm_proxy.app.routes:
        if not isinstance(route, Route) or "POST" not in (route.methods or ()):
            continue
        if route.path.startswith(("/v0/management", "/v8/management")):
            continue
        if route.path.startswith(("/api/", "/auth")):
            continue  # Amp's control plane: relayed to its upstream as is, never parsed here
        prefix = route.path.split("{", 1)[0]
        assert any(path.startswith(prefix) for path in covered), route.path
