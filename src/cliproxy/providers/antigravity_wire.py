"""The Antigravity request as the IDE sends it: Gemini's GenerateContentRequest inside Code
Assist's envelope, with the fields the Antigravity backend wants (pure functions, no I/O).

    {"model": m, "userAgent": "antigravity", "requestType": "agent" | "image_gen" | "web_search",
     "project": p, "requestId": "agent-<uuid>",
     "request": {<GenerateContentRequest>, "sessionId": s}}

The inner request loses ``safetySettings`` (the IDE sends none), carries ``toolConfig`` in
camelCase, and for Claude models asks for VALIDATED function calling with ``maxOutputTokens``
capped at the model's limit; other models get no ``maxOutputTokens`` at all (the backend picks
it, as for the IDE).
"""

from __future__ import annotations

from typing import Any

from cliproxy.model.ids import random_uuid4

# Models the Antigravity registry listed in 2026-12 (CLIProxyAPI's, @a7e3596).
MODELS: tuple[str, ...] = (
    "claude-opus-4-6-thinking",
    "claude-sonnet-4-6",
    "gemini-3.6-flash-high",
    "gemini-3.7-flash-high",
    "gemini-3-flash",
    "gemini-3-flash-agent",
    "gemini-3.1-flash-image",
    "gemini-pro-agent",
    "gemini-3.1-pro-low",
    "gpt-oss-120b-medium",
    "gemini-3.1-flash-lite",
    "gemini-3.5-flash-low",
    "gemini-3.5-flash-extra-low",
)

# The most output tokens a Claude model takes through Antigravity; a larger ask is refused
# upstream, so it is lowered to this.
CLAUDE_MAX_OUTPUT_TOKENS = 64000

# Gemini REST accepts both spellings; the backend is given the IDE's (camelCase).
_CAMEL = {
    "tool_config": "toolConfig",
    "generation_config": "generationConfig",
    "system_instruction": "systemInstruction",
    "safety_settings": "safetySettings",
}


def is_claude(model: str) -> bool:
    return "claude" in model.lower()


def request_type(model: str, request: dict[str, Any]) -> str:
    if "image" in model.lower():
        return "image_gen"
    tools = request.get("tools")
    if isinstance(tools, list) and tools and all(_is_search_tool(tool) for tool in tools):
        return "web_search"
    return "agent"


def _is_search_tool(tool: object) -> bool:
    return isinstance(tool, dict) and bool(tool) and set(tool) <= {"googleSearch", "google_search"}


def inner_request(model: str, body: dict[str, object], session_id: str) -> dict[str, Any]:
    """The envelope's ``request`` from a Gemini request body (which it consumes)."""
    request: dict[str, Any] = {}
    for key, value in body.items():
        request[_CAMEL.get(key, key)] = value
    request.pop("model", None)  # the model rides in the envelope
    request.pop("safetySettings", None)
    request.pop("session_id", None)
    request.setdefault("sessionId", session_id)
    config = request.get("generationConfig")
    config = dict(config) if isinstance(config, dict) else {}
    if is_claude(model):
        tool_config = request.get("toolConfig")
        tool_config = dict(tool_config) if isinstance(tool_config, dict) else {}
        calling = tool_config.get("functionCallingConfig")
        calling = dict(calling) if isinstance(calling, dict) else {}
        calling["mode"] = "VALIDATED"
        tool_config["functionCallingConfig"] = calling
        request["toolConfig"] = tool_config
        wanted = config.get("maxOutputTokens")
        if isinstance(wanted, int | float) and wanted > CLAUDE_MAX_OUTPUT_TOKENS:
            config["maxOutputTokens"] = CLAUDE_MAX_OUTPUT_TOKENS
    else:
        config.pop("maxOutputTokens", None)
    if config or "generationConfig" in request:
        request["generationConfig"] = config
    return request


def envelope(model: str, project: str, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model,
        "userAgent": "antigravity",
        "requestType": request_type(model, request),
        "project": project,
        "requestId": f"agent-{random_uuid4()}",
        "request": request,
    }


# A reply that means "this host cannot serve it now", after which the IDE tries its next host.
_NO_CAPACITY = (b"no capacity", b"model_capacity_exhausted")


def moves_on(status: int, body: bytes) -> bool:
    return status == 429 or any(words in body.lower() for words in _NO_CAPACITY)
