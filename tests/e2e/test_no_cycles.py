"""A served request leaves no reference cycles behind.

Each cycle a request builds outlives it until the garbage collector finds it, and with one per
request the collector ran every few requests and took about a tenth of the proxy's CPU at full
load (docs/benchmark.md). So the request path is kept free of them: its objects are freed by
reference counting the moment the request ends, and the server can run the collector rarely
(serve.py). This test serves requests of each kind with the collector off and looks at what it
would have had to collect.
"""

from __future__ import annotations

import gc
import types

import httpx

from tests.e2e.conftest import matrix_config
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, GeminiSim, OpenAIChatSim, ResponsesSim

REQUESTS = [
    # (path, body): pass-through, translated, streamed and not, and the fallback-free demo.
    (
        "/v1/chat/completions",
        {"model": "chat-model", "messages": [{"role": "user", "content": "hi"}]},
    ),
    (
        "/v1/chat/completions",
        {"model": "chat-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ),
    (
        "/v1/chat/completions",
        {"model": "claude-model", "messages": [{"role": "user", "content": "hi"}]},
    ),
    (
        "/v1/messages",
        {
            "model": "claude-model",
            "max_tokens": 32,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    ("/v1/responses", {"model": "resp-model", "input": "hi"}),
    (
        "/v1/chat/completions",
        {"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]},
    ),
]


def _ours(thing: object) -> str | None:
    """A name for ``thing`` when it is cliproxy's (an instance of its classes, or one of its
    functions, frames or coroutines), else None."""
    code = None
    if isinstance(thing, types.FunctionType):
        code = thing.__code__
    elif isinstance(thing, types.FrameType):
        code = thing.f_code
    elif isinstance(thing, types.CoroutineType | types.GeneratorType | types.AsyncGeneratorType):
        code = getattr(thing, "cr_code", None) or getattr(thing, "gi_code", None)
        code = code or getattr(thing, "ag_code", None)
    if code is not None:
        # The ledger's schema migrations (Alembic) run once, when it opens its database with
        # the first records, not per request.
        where = code.co_filename
        ours = "/cliproxy/" in where and "/cliproxy/usage/migrations/" not in where
        return code.co_qualname if ours else None
    kind = type(thing)
    return kind.__qualname__ if kind.__module__.startswith("cliproxy.") else None


def test_requests_leave_no_cycles(
    _openai_chat_sim_server: OpenAIChatSim,
    _responses_sim_server: ResponsesSim,
    _anthropic_sim_server: AnthropicSim,
    _gemini_sim_server: GeminiSim,
) -> None:
    # A server of its own: the shared one may still be ending other tests' requests and
    # connections while this one counts.
    config = matrix_config(
        _openai_chat_sim_server, _responses_sim_server, _anthropic_sim_server, _gemini_sim_server
    )
    with ProxyServer(config) as proxy, httpx.Client(base_url=proxy.base_url, timeout=30) as client:
        for path, body in REQUESTS:  # first use: imports, caches, connection pools
            assert client.post(path, json=body).status_code == 200, path
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                for path, body in REQUESTS:
                    assert client.post(path, json=body).status_code == 200, path
            gc.collect()
            garbage = list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    ours = sorted({name for thing in garbage if (name := _ours(thing)) is not None})
    assert ours == [], f"requests left reference cycles through: {', '.join(ours)}"
