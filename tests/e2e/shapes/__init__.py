"""Request bodies shaped like the ones real clients send (reference/clients.md)."""

from __future__ import annotations

import json
from typing import Any

SCHEMA_2020 = "https://json-schema.org/draft/2020-12/schema"


def claude_code_body(model: str) -> dict[str, Any]:
    """Claude Code 2.1.x's first request: billing header system block, cached blocks, system
    entries inside messages, metadata.user_id as a JSON string, tools with $schema."""
    return {
        "model": model,
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.331.abc; cc_entrypoint=sdk-cli;",
            },
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": {"type": "ephemeral"},
            },
            {
                "type": "text",
                "text": "Use the tools to help the user.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {
                "role": "system",
                "content": [
                    {
                        "type": "text",
                        "text": "<per-turn context>",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            },
            {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
        ],
        "tools": [
            {
                "name": "Bash",
                "description": "Run a shell command",
                "input_schema": {
                    "$schema": SCHEMA_2020,
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                    "additionalProperties": False,
                },
            },
            {
                "name": "DeferredToolPlaceholder",
                "description": "placeholder",
                "input_schema": {"$schema": SCHEMA_2020, "type": "object", "properties": {}},
                "defer_loading": True,
            },
        ],
        "metadata": {
            "user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "s-1"})
        },
        "thinking": {"type": "enabled", "budget_tokens": 31999, "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }


CLAUDE_CODE_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-app": "cli",
    "user-agent": "claude-cli/2.1.331 (external, sdk-cli)",
    "x-api-key": "dummy",
}


def codex_body(model: str) -> dict[str, Any]:
    """Codex CLI 0.169's request: no instructions, two developer messages, namespace and
    web_search tools, encrypted reasoning requested."""
    return {
        "model": model,
        "stream": True,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are Codex, a coding agent."}],
            },
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "<permissions>read-only</permissions>"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "<environment_context/>"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "say hi"}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "name": "exec_command",
                "description": "Run a command",
                "strict": False,
                "parameters": {
                    "type": "object",
                    "properties": {"cmd": {"type": "string"}},
                    "required": ["cmd"],
                    "additionalProperties": False,
                },
            },
            {"type": "web_search"},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "019a-session",
        "client_metadata": {"x-codex-installation-id": "inst-1"},
    }


CODEX_HEADERS = {
    "authorization": "Bearer dummy",
    "originator": "codex_exec",
    "accept": "text/event-stream",
    "session-id": "019a-session",
}


def gemini_cli_router_body() -> dict[str, Any]:
    """Gemini CLI's model-router classifier call (non-streamed, JSON schema answer)."""
    return {
        "contents": [{"role": "user", "parts": [{"text": "say hi"}]}],
        "systemInstruction": {"role": "user", "parts": [{"text": "Classify the request."}]},
        "generationConfig": {
            "temperature": 0,
            "maxOutputTokens": 1024,
            "thinkingConfig": {"thinkingBudget": 512},
            "responseMimeType": "application/json",
            "responseJsonSchema": {
                "type": "object",
                "properties": {
                    "complexity_reasoning": {"type": "string"},
                    "complexity_score": {"type": "integer", "minimum": 1, "maximum": 100},
                },
                "required": ["complexity_reasoning", "complexity_score"],
            },
        },
    }


GEMINI_CLI_HEADERS = {
    "x-goog-api-key": "dummy",
    "x-goog-api-client": "google-genai-sdk/1.30.0 gl-node/v20.20.2",
    "user-agent": "GeminiCLI-tui/0.61.0/gemini-3.1-pro-preview (linux; x64; terminal)",
}
