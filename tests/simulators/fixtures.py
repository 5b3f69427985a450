"""Pytest fixtures for the simulators. Each server starts once per session (stopping one
costs ~0.2 s) and is reset before every test that uses it. Import them into a conftest:

    from tests.simulators.fixtures import anthropic_sim, gemini_sim, openai_chat_sim, responses_sim
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from .anthropic_sim import AnthropicSim
from .core import Simulator
from .gemini_sim import GeminiSim
from .openai_chat_sim import OpenAIChatSim
from .openai_responses_sim import ResponsesSim


@pytest.fixture(scope="session")
def _openai_chat_sim_server() -> Iterator[OpenAIChatSim]:
    with OpenAIChatSim() as sim:
        yield sim


@pytest.fixture(scope="session")
def _responses_sim_server() -> Iterator[ResponsesSim]:
    with ResponsesSim() as sim:
        yield sim


@pytest.fixture(scope="session")
def _anthropic_sim_server() -> Iterator[AnthropicSim]:
    with AnthropicSim() as sim:
        yield sim


@pytest.fixture(scope="session")
def _gemini_sim_server() -> Iterator[GeminiSim]:
    with GeminiSim() as sim:
        yield sim


@pytest.fixture
def openai_chat_sim(_openai_chat_sim_server: OpenAIChatSim) -> OpenAIChatSim:
    _openai_chat_sim_server.reset()
    return _openai_chat_sim_server


@pytest.fixture
def responses_sim(_responses_sim_server: ResponsesSim) -> ResponsesSim:
    _responses_sim_server.reset()
    return _responses_sim_server


@pytest.fixture
def anthropic_sim(_anthropic_sim_server: AnthropicSim) -> AnthropicSim:
    _anthropic_sim_server.reset()
    return _anthropic_sim_server


@pytest.fixture
def gemini_sim(_gemini_sim_server: GeminiSim) -> GeminiSim:
    _gemini_sim_server.reset()
    return _gemini_sim_server


@contextlib.contextmanager
def own_matrix_sims() -> Iterator[dict[str, Simulator]]:
    """A fresh simulator per upstream kind, keyed by the matrix's client model names, for tests
    that must not share the session's simulators (their pooled connections, their queues)."""
    started: dict[str, Simulator] = {
        "chat-model": OpenAIChatSim().start(),
        "resp-model": ResponsesSim().start(),
        "claude-model": AnthropicSim().start(),
        "gemini-model": GeminiSim().start(),
    }
    try:
        yield started
    finally:
        for sim in started.values():
            sim.stop()


def matrix_urls(sims: dict[str, Simulator]) -> dict[str, str]:
    """The base URLs of own_matrix_sims() under the names the configs format them by."""
    return {
        "chat": sims["chat-model"].base_url,
        "resp": sims["resp-model"].base_url,
        "claude": sims["claude-model"].base_url,
        "gemini": sims["gemini-model"].base_url,
    }
