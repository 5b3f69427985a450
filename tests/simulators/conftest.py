from tests.simulators.fixtures import (  # noqa: F401 (pytest finds fixtures by name)
    _anthropic_sim_server,
    _gemini_sim_server,
    _openai_chat_sim_server,
    _responses_sim_server,
    anthropic_sim,
    gemini_sim,
    openai_chat_sim,
    responses_sim,
)
