"""A proxy wired to all four upstream simulators (and the demo), shared by the e2e matrix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import Served
from tests.e2e.workers_server import serving_two_workers
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, GeminiSim, OpenAIChatSim, ResponsesSim
from tests.simulators.fixtures import (  # noqa: F401  (pytest fixtures)
    _anthropic_sim_server,
    _gemini_sim_server,
    _openai_chat_sim_server,
    _responses_sim_server,
    anthropic_sim,
    gemini_sim,
    openai_chat_sim,
    responses_sim,
)

UPSTREAM_KEY = "sim-upstream-key"


def matrix_config(
    chat: OpenAIChatSim, resp: ResponsesSim, claude: AnthropicSim, gem: GeminiSim
) -> str:
    return f"""
demo: true
request-retry: 2
openai-compatibility:
  - name: chat-sim
    base-url: {chat.base_url}
    api-key-entries: [{{api-key: {UPSTREAM_KEY}}}]
    models: [{{name: up-chat, alias: chat-model}}]
codex-api-key:
  - api-key: {UPSTREAM_KEY}
    base-url: {resp.base_url}
    models: [{{name: up-resp, alias: resp-model}}]
claude-api-key:
  - api-key: {UPSTREAM_KEY}
    base-url: {claude.base_url}
    models: [{{name: up-claude, alias: claude-model}}]
gemini-api-key:
  - api-key: {UPSTREAM_KEY}
    base-url: {gem.base_url}
    models: [{{name: up-gemini, alias: gemini-model}}]
"""


@pytest.fixture(scope="session")
def matrix_proxy(
    _openai_chat_sim_server: OpenAIChatSim,  # noqa: F811
    _responses_sim_server: ResponsesSim,  # noqa: F811
    _anthropic_sim_server: AnthropicSim,  # noqa: F811
    _gemini_sim_server: GeminiSim,  # noqa: F811
) -> Iterator[ProxyServer]:
    config = matrix_config(
        _openai_chat_sim_server, _responses_sim_server, _anthropic_sim_server, _gemini_sim_server
    )
    with ProxyServer(config) as proxy:
        yield proxy


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Served]:
    """`cliproxy serve` with `workers: 2` (tests/e2e/workers_server.py)."""
    with serving_two_workers(tmp_path) as served:
        yield served
