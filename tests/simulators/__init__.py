"""Loopback upstream simulators for end-to-end tests: OpenAI Chat, OpenAI Responses,
Anthropic Messages and Gemini, each scriptable per test with `Reply` objects.

    with OpenAIChatSim() as sim:
        sim.queue(Reply.text("Hello world", input_tokens=11, output_tokens=7))
        ...  # point the code under test at sim.base_url
        assert sim.last_request.json["model"] == "gpt-4o-mini"
"""

from .anthropic_sim import AnthropicSim
from .core import RecordedRequest, Simulator
from .gemini_sim import GeminiSim
from .openai_chat_sim import OpenAIChatSim
from .openai_responses_sim import ResponsesSim
from .reply import Reply, ToolCall
from .server import SimServer

__all__ = [
    "AnthropicSim",
    "GeminiSim",
    "OpenAIChatSim",
    "RecordedRequest",
    "Reply",
    "ResponsesSim",
    "SimServer",
    "Simulator",
    "ToolCall",
]
