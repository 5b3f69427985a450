"""OpenAI Responses requests: wire JSON (POST /v1/responses) ↔ canonical Request.

Split from openai_responses.py to keep each file about one direction of the protocol.
"""

from __future__ import annotations

from typing import Any

from cliproxy.model import (
    FilePart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ReasoningPart,
    Request,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    invalid,
)
from cliproxy.protocols.cross_vendor import (
    builtin_label,
    is_web_search,
    log_dropped_builtins,
    refuse_media,
    settle_orphan_results,
    settle_unanswered_calls,
)
from cliproxy.protocols.fields import (
    expect_list,
    expect_nonempty_str,
    expect_object,
    expect_str,
    optional_bool,
    optional_int,
    optional_number,
    optional_object,
    optional_str,
)
from cliproxy.protocols.openai_chat_request import openai_effort
from cliproxy.protocols.signatures import carried_part

JSON = dict[str, Any]
NAME = "openai_responses"

# Top-level request fields with a canonical home; every other field goes to extras verbatim.
_KNOWN_FIELDS = {
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "temperature",
    "top_p",
    "reasoning",
    "text",
    "stream",
    "user",
    "metadata",
}

# Hosted tool types the Responses API itself understands; other vendors' built-ins are dropped
# when rendering because this API would reject them.
_HOSTED_TOOL_TYPES = {
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "image_generation",
    "computer_use_preview",
    "computer_use",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "custom",
    "namespace",
    "tool_search",
}

# Request fields that make the Responses API supply earlier turns from its own storage.
_SERVER_STATE = ("previous_response_id", "conversation")

_ROLE_MAP = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


# ---------------------------------------------------------------------------------------------
# wire → canonical


def parse_request(body: Any) -> Request:
    if not isinstance(body, dict):
        raise invalid("body: expected a JSON object")
    request = Request(model=expect_nonempty_str(body.get("model"), "model"))
    instructions = optional_str(body.get("instructions"), "instructions")
    if instructions:
        request.system.append(TextPart(instructions))

    _parse_input(body.get("input"), request)
    request.tools = _parse_tools(body.get("tools"))
    _parse_tool_choice(body.get("tool_choice"), request)
    request.parallel_tool_calls = optional_bool(
        body.get("parallel_tool_calls"), "parallel_tool_calls"
    )
    request.max_tokens = optional_int(body.get("max_output_tokens"), "max_output_tokens")
    request.temperature = optional_number(body.get("temperature"), "temperature")
    request.top_p = optional_number(body.get("top_p"), "top_p")
    request.stream = bool(optional_bool(body.get("stream"), "stream"))
    request.user = optional_str(body.get("user"), "user")
    request.metadata = optional_object(body.get("metadata"), "metadata")
    request.reasoning = _parse_reasoning(body.get("reasoning"))
    _parse_text_config(body.get("text"), request)

    extras = {key: value for key, value in body.items() if key not in _KNOWN_FIELDS}
    if extras:
        request.extras.setdefault(NAME, {}).update(extras)
    return request


def _parse_input(raw: Any, request: Request) -> None:
    if raw is None:
        return  # allowed with previous_response_id / conversation
    if isinstance(raw, str):
        request.messages.append(Message("user", [TextPart(raw)]))
        return
    if not isinstance(raw, list):
        raise invalid("input: expected a string or a list of items", "input")
    for position, item in enumerate(raw):
        path = f"input[{position}]"
        parsed = _parse_item(expect_object(item, path), path)
        if parsed is None:
            continue
        role, parts = parsed
        # Leading system/developer turns (Codex sends its prompt this way) are the system prompt.
        if role == "system" and not request.messages:
            request.system.extend(p for p in parts if isinstance(p, TextPart))
            continue
        _append(request.messages, role, parts)


def _append(messages: list[Message], role: str, parts: list[Part]) -> None:
    """Consecutive items with the same canonical role form one message."""
    if messages and messages[-1].role == role:
        messages[-1].content.extend(parts)
    else:
        messages.append(Message(role, list(parts)))  # type: ignore[arg-type]


def _parse_item(item: JSON, path: str) -> tuple[str, list[Part]] | None:
    kind = item.get("type")
    if kind is None or kind == "message":
        raw_role = item.get("role")
        role = _ROLE_MAP.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise invalid(f"{path}.role: expected user, assistant, system or developer", path)
        return role, _parse_content(item.get("content"), f"{path}.content")
    if kind == "function_call":
        call_id = expect_nonempty_str(item.get("call_id"), f"{path}.call_id")
        name = expect_nonempty_str(item.get("name"), f"{path}.name")
        arguments = item.get("arguments", "{}")
        if not isinstance(arguments, str):
            raise invalid(f"{path}.arguments: expected a JSON string", f"{path}.arguments")
        return "assistant", [ToolCallPart(id=call_id, name=name, arguments=arguments or "{}")]
    if kind == "function_call_output":
        call_id = expect_nonempty_str(item.get("call_id"), f"{path}.call_id")
        output = item.get("output")
        content: list[TextPart | ImagePart | FilePart]
        if isinstance(output, str):
            content = [TextPart(output)]
        elif isinstance(output, list):
            content = [
                p
                for p in _parse_content(output, f"{path}.output")
                if isinstance(p, TextPart | ImagePart | FilePart)
            ]
        else:
            raise invalid(f"{path}.output: expected a string or a list", f"{path}.output")
        return "user", [ToolResultPart(call_id=call_id, content=content)]
    if kind == "reasoning":
        return "assistant", [_parse_reasoning_item(item, path)]
    # Hosted-tool call records, item references, compaction markers...: only meaningful to the
    # Responses API itself, which is reached through the pass-through path, so skip them here.
    return None


def _parse_reasoning_item(item: JSON, path: str) -> ReasoningPart:
    summary = expect_list(item.get("summary") or [], f"{path}.summary")
    texts = [s.get("text", "") for s in summary if isinstance(s, dict)]
    if not texts and isinstance(item.get("content"), list):
        texts = [c.get("text", "") for c in item["content"] if isinstance(c, dict)]
    encrypted = item.get("encrypted_content")
    text = "\n\n".join(t for t in texts if isinstance(t, str) and t)
    # Another vendor's reasoning that rode through this client comes back to its issuer.
    carried = carried_part(encrypted, text)
    if carried is not None:
        return carried
    return ReasoningPart(
        text=text,
        encrypted=encrypted if isinstance(encrypted, str) else None,
        issuer=NAME,
        id=item.get("id") if isinstance(item.get("id"), str) else None,
    )


def _parse_content(raw: Any, path: str) -> list[Part]:
    if isinstance(raw, str):
        return [TextPart(raw)]
    if not isinstance(raw, list):
        raise invalid(f"{path}: expected a string or a list of parts", path)
    parts: list[Part] = []
    for position, part in enumerate(raw):
        part_path = f"{path}[{position}]"
        parsed = _parse_part(expect_object(part, part_path), part_path)
        if parsed is not None:
            parts.append(parsed)
    return parts


def _parse_part(part: JSON, path: str) -> Part | None:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text", "summary_text"):
        return TextPart(expect_str(part.get("text"), f"{path}.text"))
    if kind == "refusal":
        return TextPart(str(part.get("refusal", "")))
    if kind == "input_image":
        detail = part.get("detail")
        detail = detail if isinstance(detail, str) else None
        url = part.get("image_url")
        if isinstance(url, str) and url:
            return _image_from_url(url, detail)
        file_id = part.get("file_id")
        if isinstance(file_id, str) and file_id:
            # ImagePart has no file id; a FilePart with an image type renders back to input_image.
            return FilePart(media_type="image/*", file_id=file_id)
        raise invalid(f"{path}: input_image needs image_url or file_id", path)
    if kind == "input_file":
        return _parse_file(part, path)
    raise invalid(f"{path}.type: unsupported content part type {kind!r}", f"{path}.type")


def _image_from_url(url: str, detail: str | None) -> ImagePart:
    media_type, data = _split_data_url(url)
    if data is not None:
        return ImagePart(media_type=media_type, data=data, detail=detail)
    return ImagePart(url=url, detail=detail)


def _parse_file(part: JSON, path: str) -> FilePart:
    filename = part.get("filename") if isinstance(part.get("filename"), str) else None
    file_data = part.get("file_data")
    if isinstance(file_data, str) and file_data:
        media_type, data = _split_data_url(file_data)
        if data is None:  # bare base64 without a data: prefix
            media_type, data = "application/octet-stream", file_data
        return FilePart(media_type=media_type, data=data, filename=filename)
    if isinstance(part.get("file_url"), str):
        return FilePart(url=part["file_url"], filename=filename)
    if isinstance(part.get("file_id"), str):
        return FilePart(file_id=part["file_id"], filename=filename)
    raise invalid(f"{path}: input_file needs file_data, file_url or file_id", path)


def _split_data_url(url: str) -> tuple[str, str | None]:
    """("image/png", base64) for a data: URL, ("", None) for anything else."""
    if not url.startswith("data:"):
        return "", None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return "", None
    return header[: -len(";base64")], data


def _parse_tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    tools: list[Tool] = []
    for position, tool in enumerate(expect_list(raw, "tools")):
        path = f"tools[{position}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise invalid(f"{path}: expected an object with a type", path)
        if tool["type"] != "function":
            tools.append(Tool(name=tool["type"], builtin=dict(tool)))
            continue
        name = expect_nonempty_str(tool.get("name"), f"{path}.name")
        parameters = optional_object(tool.get("parameters"), f"{path}.parameters")
        strict = tool.get("strict")
        built = Tool(name=name, description=str(tool.get("description") or ""))
        if parameters is not None:
            built.parameters = parameters
        built.strict = strict if isinstance(strict, bool) else None
        tools.append(built)
    return tools


def _parse_tool_choice(raw: Any, request: Request) -> None:
    if raw is None:
        return
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise invalid("tool_choice: expected auto, none, required or an object", "tool_choice")
        request.tool_choice = ToolChoice(raw)  # type: ignore[arg-type]
        return
    if not isinstance(raw, dict):
        raise invalid("tool_choice: expected a string or an object", "tool_choice")
    if raw.get("type") == "function" and isinstance(raw.get("name"), str):
        request.tool_choice = ToolChoice("tool", raw["name"])
        return
    # allowed_tools / hosted-tool choices have no canonical form: keep them for a round trip.
    request.extras.setdefault(NAME, {})["tool_choice"] = raw


def _parse_reasoning(raw: Any) -> Reasoning | None:
    if raw is None:
        return None
    raw = expect_object(raw, "reasoning")
    effort = raw.get("effort")
    summary = raw.get("summary") or raw.get("generate_summary")
    return Reasoning(
        effort=effort if isinstance(effort, str) else None,
        summary=summary if isinstance(summary, str) else None,
    )


def _parse_text_config(raw: Any, request: Request) -> None:
    if raw is None:
        return
    raw = expect_object(raw, "text")
    fmt = raw.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in (
            "text",
            "json_object",
            "json_schema",
        ):
            raise invalid("text.format.type: expected text, json_object or json_schema", "text")
        schema = fmt.get("schema")
        request.response_format = ResponseFormat(
            type=fmt["type"],
            name=fmt.get("name") if isinstance(fmt.get("name"), str) else None,
            schema=schema if isinstance(schema, dict) else None,
            strict=fmt.get("strict") if isinstance(fmt.get("strict"), bool) else None,
        )
    rest = {key: value for key, value in raw.items() if key != "format"}
    if rest:  # e.g. verbosity
        request.extras.setdefault(NAME, {})["text"] = rest


# ---------------------------------------------------------------------------------------------
# canonical → wire


def render_request(request: Request) -> JSON:
    extras = dict(request.extras.get(NAME, {}))
    messages = request.messages
    if not any(extras.get(key) for key in _SERVER_STATE):
        # Without server-side history a function_call_output needs its function_call.
        messages = settle_orphan_results(settle_unanswered_calls(messages))
    body: JSON = {"model": request.model, "input": _render_messages(messages)}
    if request.system_text():
        body["instructions"] = request.system_text()
    tools = [t for t in (_render_tool(tool) for tool in request.tools) if t is not None]
    log_dropped_builtins(
        NAME,
        [builtin_label(t) for t in request.tools if t.builtin and _render_tool(t) is None],
    )
    if tools:
        body["tools"] = tools
    if request.tool_choice is not None:
        choice = request.tool_choice
        if choice.mode == "tool":
            body["tool_choice"] = {"type": "function", "name": choice.name}
        else:
            body["tool_choice"] = choice.mode
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.max_tokens is not None:
        body["max_output_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    reasoning = _render_reasoning(request.reasoning)
    if reasoning:
        body["reasoning"] = reasoning
    text: JSON = dict(extras.pop("text", None) or {})
    if request.response_format is not None:
        text["format"] = _render_format(request.response_format)
    if text:
        body["text"] = text
    if request.stream:
        body["stream"] = True
    if request.user is not None:
        body["user"] = request.user
    if request.metadata is not None:
        body["metadata"] = request.metadata
    body.update(extras)
    return body


def _render_messages(messages: list[Message]) -> list[JSON]:
    items: list[JSON] = []
    for message in messages:
        items.extend(_render_message(message))
    return items


def _render_message(message: Message) -> list[JSON]:
    """One canonical message → items: tool calls, tool results and reasoning are items of their
    own, the parts between them form message items (order kept)."""
    role = "developer" if message.role == "system" else message.role
    items: list[JSON] = []
    pending: list[JSON] = []
    for part in message.content:
        if isinstance(part, TextPart | ImagePart | FilePart):
            rendered = _render_part(part, message.role)
            if rendered is not None:
                pending.append(rendered)
            continue
        if pending:
            items.append({"type": "message", "role": role, "content": pending})
            pending = []
        if isinstance(part, ToolCallPart):
            items.append(
                {
                    "type": "function_call",
                    "call_id": part.id,
                    "name": part.name,
                    "arguments": part.arguments or "{}",
                }
            )
        elif isinstance(part, ToolResultPart):
            items.append(_render_tool_result(part))
        elif isinstance(part, ReasoningPart):
            reasoning = _render_reasoning_item(part)
            if reasoning is not None:
                items.append(reasoning)
    if pending:
        items.append({"type": "message", "role": role, "content": pending})
    return items


def _render_part(part: Part, role: str) -> JSON | None:
    if isinstance(part, TextPart):
        if role == "assistant":
            return {"type": "output_text", "text": part.text, "annotations": []}
        return {"type": "input_text", "text": part.text}
    if isinstance(part, ImagePart):
        url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.data or ''}"
        return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}
    if isinstance(part, FilePart):
        refuse_media(part, NAME, ("audio", "video"))
        if part.file_id and part.media_type.startswith("image"):
            return {"type": "input_image", "file_id": part.file_id, "detail": "auto"}
        file: JSON = {"type": "input_file"}
        if part.data is not None:
            media_type = part.media_type or "application/octet-stream"
            file["file_data"] = f"data:{media_type};base64,{part.data}"
        elif part.url:
            file["file_url"] = part.url
        elif part.file_id:
            file["file_id"] = part.file_id
        else:
            return None
        if part.filename:
            file["filename"] = part.filename
        return file
    return None


def _render_tool_result(part: ToolResultPart) -> JSON:
    output: str | list[JSON]
    if all(isinstance(p, TextPart) for p in part.content):
        output = part.text()
    else:
        output = [r for r in (_render_part(p, "user") for p in part.content) if r is not None]
    return {"type": "function_call_output", "call_id": part.call_id, "output": output}


def _render_reasoning_item(part: ReasoningPart) -> JSON | None:
    """Only reasoning this API produced can go back to it; other vendors' thinking is dropped."""
    if part.issuer != NAME or not (part.id or part.encrypted):
        return None
    item: JSON = {"type": "reasoning"}
    if part.id:
        item["id"] = part.id
    item["summary"] = [{"type": "summary_text", "text": part.text}] if part.text else []
    if part.encrypted:
        item["encrypted_content"] = part.encrypted
    return item


def _render_tool(tool: Tool) -> JSON | None:
    if tool.builtin is not None:
        if tool.builtin.get("type") in _HOSTED_TOOL_TYPES:
            return tool.builtin
        # Anthropic's web_search_2025xxxx and Gemini's googleSearch have a hosted twin here.
        return {"type": "web_search"} if is_web_search(tool.builtin) else None
    rendered: JSON = {"type": "function", "name": tool.name, "parameters": tool.parameters}
    if tool.description:
        rendered["description"] = tool.description
    if tool.strict is not None:
        rendered["strict"] = tool.strict
    return rendered


def _render_reasoning(reasoning: Reasoning | None) -> JSON:
    if reasoning is None:
        return {}
    rendered: JSON = {}
    effort = openai_effort(reasoning)
    if effort is not None:
        rendered["effort"] = effort
    summary = reasoning.summary
    if summary is None and reasoning.include_thoughts:
        summary = "auto"
    if summary is not None:
        rendered["summary"] = summary
    return rendered


def _render_format(fmt: ResponseFormat) -> JSON:
    rendered: JSON = {"type": fmt.type}
    if fmt.type == "json_schema":
        rendered["name"] = fmt.name or "response"
        rendered["schema"] = fmt.schema or {"type": "object"}
        if fmt.strict is not None:
            rendered["strict"] = fmt.strict
    return rendered
