"""Gemini Interactions requests (POST /v1beta/interactions) → the canonical Request.

The body names exactly one of ``model`` or ``agent``; ``input`` is a string, one content
(``{"type": "text", ...}``), a list of contents (one user turn), or a list of steps (a whole
conversation: ``user_input``, ``model_output``, ``thought``, ``function_call``,
``function_result``). Interactions kept on Google's side (``previous_interaction_id``,
``agent``, ``background``) cannot be answered by another vendor's model, so they are refused
with a message saying what to send instead, never silently dropped.
"""

from __future__ import annotations

from typing import Any

import orjson

from cliproxy.model import (
    ImagePart,
    Message,
    Part,
    Reasoning,
    ReasoningPart,
    Request,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    invalid,
)
from cliproxy.protocols.fields import (
    JSON,
    expect_list,
    expect_nonempty_str,
    expect_object,
    expect_str,
    optional_int,
    optional_number,
    optional_object,
    optional_str,
)

NAME = "gemini_interactions"

_KNOWN_FIELDS = frozenset(
    {"model", "input", "system_instruction", "tools", "generation_config", "stream", "store"}
)
# Fields that need Google's own servers: refused with what to do instead.
_SERVER_SIDE = {
    "previous_interaction_id": "send the whole conversation as a list of steps in input",
    "background": "run the interaction in the foreground (stream: true keeps it responsive)",
    "continuation_token": "send the whole conversation as a list of steps in input",
    "agent": "agents run on Google's servers; name a model instead",
}
_STEP_TYPES = ("user_input", "model_output", "thought", "function_call", "function_result")
_THINKING_EFFORT = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}


def interaction_model(body: Any) -> str:
    """The model the body names (``models/`` prefix stripped), checking the model/agent rule."""
    body = expect_object(body, "body")
    has_model, has_agent = body.get("model") is not None, body.get("agent") is not None
    if has_model == has_agent:
        raise invalid("body: exactly one of model or agent is required", "model")
    if has_agent:
        raise invalid(f"agent: {_SERVER_SIDE['agent']}", "agent")
    return expect_nonempty_str(body["model"], "model").removeprefix("models/")


def parse_request(body: Any) -> Request:
    model = interaction_model(body)
    for field, instead in _SERVER_SIDE.items():
        if body.get(field) not in (None, False, ""):
            raise invalid(f"{field}: not served by cliproxy; {instead}", field)
    request = Request(model=model)
    system = optional_str(body.get("system_instruction"), "system_instruction")
    if system:
        request.system.append(TextPart(system))
    request.messages = _messages(body.get("input"))
    request.tools = [_tool(raw, f"tools[{i}]") for i, raw in enumerate(_list(body, "tools"))]
    _generation_config(optional_object(body.get("generation_config"), "generation_config"), request)
    request.stream = body.get("stream") is True
    extras = {key: value for key, value in body.items() if key not in _KNOWN_FIELDS}
    if extras:
        request.extras[NAME] = extras
    return request


def _list(body: JSON, key: str) -> list[Any]:
    raw = body.get(key)
    return [] if raw is None else expect_list(raw, key)


def _messages(raw: Any) -> list[Message]:
    if raw is None:
        raise invalid("input: required (a string, a content, or a list of steps)", "input")
    if isinstance(raw, str):
        return [Message("user", [TextPart(raw)])]
    if isinstance(raw, dict):
        return [Message("user", [_content(raw, "input")])]
    items = expect_list(raw, "input")
    if items and all(isinstance(i, dict) and i.get("type") in _STEP_TYPES for i in items):
        return _steps(items)
    return [Message("user", [_content(item, f"input[{i}]") for i, item in enumerate(items)])]


def _content(raw: Any, path: str) -> Part:
    item = expect_object(raw, path)
    kind = item.get("type")
    if kind == "text":
        return TextPart(expect_str(item.get("text"), f"{path}.text"))
    if kind == "image":
        data, uri = item.get("data"), item.get("uri")
        if not isinstance(data, str) and not isinstance(uri, str):
            raise invalid(f"{path}: an image needs data (base64) or uri", path)
        media = optional_str(item.get("mime_type"), f"{path}.mime_type") or ""
        return ImagePart(media_type=media, data=data if isinstance(data, str) else None, url=uri)
    raise invalid(f"{path}.type: expected text or image (got {kind!r})", path)


def _steps(items: list[Any]) -> list[Message]:
    messages: list[Message] = []

    def add(role: str, part: Part) -> None:
        if messages and messages[-1].role == role:
            messages[-1].content.append(part)
        else:
            messages.append(Message(role, [part]))  # type: ignore[arg-type]

    for i, step in enumerate(items):
        path = f"input[{i}]"
        kind = step["type"]
        if kind in ("user_input", "model_output"):
            role = "user" if kind == "user_input" else "assistant"
            for j, content in enumerate(_list(step, "content")):
                add(role, _content(content, f"{path}.content[{j}]"))
        elif kind == "thought":
            summary = [c for c in _list(step, "summary") if isinstance(c, dict)]
            text = "".join(str(c.get("text", "")) for c in summary if c.get("type") == "text")
            signature = optional_str(step.get("signature"), f"{path}.signature")
            add("assistant", ReasoningPart(text=text, signature=signature, issuer="gemini"))
        elif kind == "function_call":
            arguments = optional_object(step.get("arguments"), f"{path}.arguments") or {}
            add(
                "assistant",
                ToolCallPart(
                    id=expect_nonempty_str(step.get("id"), f"{path}.id"),
                    name=expect_nonempty_str(step.get("name"), f"{path}.name"),
                    arguments=orjson.dumps(arguments).decode(),
                ),
            )
        else:
            add("user", _function_result(step, path))
    return messages


def _function_result(step: JSON, path: str) -> ToolResultPart:
    result = step.get("result")
    if isinstance(result, str):
        content: list[Any] = [TextPart(result)]
    elif isinstance(result, list):
        content = [_content(c, f"{path}.result[{k}]") for k, c in enumerate(result)]
    elif isinstance(result, dict):
        content = [TextPart(orjson.dumps(result).decode())]
    else:
        raise invalid(f"{path}.result: expected a string, an object or a list of contents", path)
    return ToolResultPart(
        call_id=expect_nonempty_str(step.get("call_id"), f"{path}.call_id"),
        content=content,
        name=optional_str(step.get("name"), f"{path}.name"),
        is_error=step.get("is_error") is True,
    )


def _tool(raw: Any, path: str) -> Tool:
    tool = expect_object(raw, path)
    if tool.get("type") != "function":
        raise invalid(
            f"{path}.type: only function tools are served (got {tool.get('type')!r})", path
        )
    parameters = optional_object(tool.get("parameters"), f"{path}.parameters")
    return Tool(
        name=expect_nonempty_str(tool.get("name"), f"{path}.name"),
        description=optional_str(tool.get("description"), f"{path}.description") or "",
        parameters=parameters or {"type": "object", "properties": {}},
    )


def _generation_config(config: JSON | None, request: Request) -> None:
    if not config:
        return
    path = "generation_config"
    request.temperature = optional_number(config.get("temperature"), f"{path}.temperature")
    request.top_p = optional_number(config.get("top_p"), f"{path}.top_p")
    request.max_tokens = optional_int(config.get("max_output_tokens"), f"{path}.max_output_tokens")
    request.seed = optional_int(config.get("seed"), f"{path}.seed")
    stops = config.get("stop_sequences")
    if stops is not None:
        request.stop = [
            expect_str(s, f"{path}.stop_sequences[{i}]")
            for i, s in enumerate(expect_list(stops, f"{path}.stop_sequences"))
        ]
    level = optional_str(config.get("thinking_level"), f"{path}.thinking_level")
    if level is not None:
        effort = _THINKING_EFFORT.get(level.lower())
        if effort is None:
            raise invalid(f"{path}.thinking_level: expected minimal, low, medium or high", path)
        request.reasoning = Reasoning(effort=effort, include_thoughts=True)
    choice = config.get("tool_choice")
    if isinstance(choice, str):
        modes = {"auto": "auto", "none": "none", "any": "required", "validated": "auto"}
        if choice.lower() not in modes:
            raise invalid(f"{path}.tool_choice: expected auto, any, none or validated", path)
        request.tool_choice = ToolChoice(mode=modes[choice.lower()])  # type: ignore[arg-type]
