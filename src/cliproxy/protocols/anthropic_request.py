"""Anthropic Messages request body → canonical Request.

Unknown content block types (server tool blocks such as ``server_tool_use`` or
``web_search_tool_result``, ``tool_reference``, ``search_result`` ...) have no canonical form and
are skipped rather than rejected: the same-protocol path forwards them untouched, and on a
translated path the other vendor could not use them anyway.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from cliproxy.model import (
    FilePart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    Request,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    invalid,
)
from cliproxy.protocols.anthropic_wire import (
    JSON,
    NAME,
    optional_cache_control,
    parse_reasoning_block,
)
from cliproxy.protocols.fields import (
    expect_list,
    expect_object,
    expect_str,
    optional_bool,
    optional_int,
    optional_number,
    optional_str,
)

# Top-level fields with a canonical home. Everything else is kept raw in extras["anthropic"];
# thinking and output_config are mapped AND kept raw, so display/effort details survive.
_MODELED = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "metadata",
    }
)
# Keys of a custom tool that map onto Tool fields; any other key (defer_loading, input_examples,
# allowed_callers ...) is kept per tool name in extras["anthropic"][TOOL_EXTRAS].
_TOOL_FIELDS = frozenset({"type", "name", "description", "input_schema", "strict", "cache_control"})
TOOL_EXTRAS = "_tool_extras"

_ROLES = ("user", "assistant", "system")
_EFFORTS = {"max": "xhigh"}  # Anthropic's top effort level; the canonical scale ends at xhigh


def parse_request(body: Any, *, require_max_tokens: bool = True) -> Request:
    body = expect_object(body, "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: required (a non-empty string)", "model")
    max_tokens = optional_int(body.get("max_tokens"), "max_tokens")
    if max_tokens is None and require_max_tokens:
        raise invalid("max_tokens: required", "max_tokens")
    if max_tokens is not None and max_tokens < 1:
        raise invalid("max_tokens: must be at least 1", "max_tokens")

    extras = {key: value for key, value in body.items() if key not in _MODELED}
    tools, tool_extras = _parse_tools(body.get("tools"))
    if tool_extras:
        extras[TOOL_EXTRAS] = tool_extras
    tool_choice, parallel = _parse_tool_choice(body.get("tool_choice"))
    metadata = body.get("metadata")
    if metadata is not None:
        expect_object(metadata, "metadata")
    stream = optional_bool(body.get("stream"), "stream")

    return Request(
        model=model,
        messages=_parse_messages(body.get("messages")),
        system=_parse_system(body.get("system")),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=max_tokens,
        temperature=optional_number(body.get("temperature"), "temperature"),
        top_p=optional_number(body.get("top_p"), "top_p"),
        top_k=optional_int(body.get("top_k"), "top_k"),
        stop=_parse_stop(body.get("stop_sequences")),
        reasoning=reasoning_from_wire(body.get("thinking"), body.get("output_config")),
        response_format=format_from_wire(body.get("output_config"), body.get("output_format")),
        stream=bool(stream),
        metadata=metadata,
        extras={NAME: extras} if extras else {},
    )


# ---------------------------------------------------------------------------------------------
# Reasoning and structured output (also used by the renderer to tell whether the canonical
# values still match the raw ones it kept)


def reasoning_from_wire(thinking: Any, output_config: Any) -> Reasoning | None:
    effort = None
    if output_config is not None:
        output_config = expect_object(output_config, "output_config")
        raw_effort = optional_str(output_config.get("effort"), "output_config.effort")
        effort = _EFFORTS.get(raw_effort, raw_effort) if raw_effort else None
    if thinking is None:
        return Reasoning(effort=effort) if effort else None
    thinking = expect_object(thinking, "thinking")
    kind = expect_str(thinking.get("type"), "thinking.type")
    display = optional_str(thinking.get("display"), "thinking.display")
    include = None if display is None else display != "omitted"
    if kind == "disabled":
        return Reasoning(enabled=False, effort=effort, include_thoughts=include)
    budget = None
    if kind == "enabled":
        budget = optional_int(thinking.get("budget_tokens"), "thinking.budget_tokens")
        if budget is None:
            raise invalid("thinking.budget_tokens: required when type is enabled", "thinking")
    # adaptive (and any newer type) means "think as needed": enabled without a fixed budget.
    return Reasoning(enabled=True, budget=budget, effort=effort, include_thoughts=include)


def format_from_wire(output_config: Any, output_format: Any) -> ResponseFormat | None:
    fmt = output_config.get("format") if isinstance(output_config, dict) else None
    if fmt is None:
        fmt = output_format  # the older structured-outputs beta put it at the top level
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema")
    return ResponseFormat(type="json_schema", schema=schema if isinstance(schema, dict) else None)


# ---------------------------------------------------------------------------------------------
# System, messages, content blocks


def _parse_system(raw: Any) -> list[TextPart]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [TextPart(raw)] if raw else []
    parts: list[TextPart] = []
    for i, block in enumerate(expect_list(raw, "system")):
        path = f"system[{i}]"
        block = expect_object(block, path)
        if block.get("type") != "text":
            raise invalid(f"{path}.type: expected text", path)
        text = expect_str(block.get("text"), f"{path}.text")
        parts.append(TextPart(text, cache_control=optional_cache_control(block, path)))
    return parts


def _parse_messages(raw: Any) -> list[Message]:
    if raw is None:
        raise invalid("messages: required", "messages")
    items = expect_list(raw, "messages")
    if not items:
        raise invalid("messages: at least one message is required", "messages")
    tool_names: dict[str, str] = {}  # tool_use id → name, so results can name their tool
    messages: list[Message] = []
    for i, item in enumerate(items):
        path = f"messages[{i}]"
        item = expect_object(item, path)
        role = item.get("role")
        if role not in _ROLES:
            raise invalid(f"{path}.role: expected user, assistant or system", f"{path}.role")
        content = item.get("content")
        if isinstance(content, str):
            parts: list[Part] = [TextPart(content)] if content else []
        elif isinstance(content, list):
            parts = _parse_blocks(content, f"{path}.content", tool_names)
        else:
            raise invalid(f"{path}.content: expected a string or a list of blocks", path)
        messages.append(Message(role=role, content=parts))
    return messages


def _parse_blocks(blocks: list[Any], path: str, tool_names: dict[str, str]) -> list[Part]:
    parts: list[Part] = []
    for i, block in enumerate(blocks):
        parts.extend(_parse_block(block, f"{path}[{i}]", tool_names))
    return parts


def _parse_block(block: Any, path: str, tool_names: dict[str, str]) -> list[Part]:
    block = expect_object(block, path)
    kind = expect_str(block.get("type"), f"{path}.type")
    if kind == "text":
        text = expect_str(block.get("text"), f"{path}.text")
        return [TextPart(text, cache_control=optional_cache_control(block, path))]
    if kind == "image":
        return [_parse_image(block, path)]
    if kind == "document":
        return _parse_document(block, path)
    if kind == "tool_use":
        call_id = expect_str(block.get("id"), f"{path}.id")
        name = expect_str(block.get("name"), f"{path}.name")
        tool_names[call_id] = name
        args = expect_object(block.get("input", {}), f"{path}.input")
        return [ToolCallPart(id=call_id, name=name, arguments=orjson.dumps(args).decode())]
    if kind == "tool_result":
        return [_parse_tool_result(block, path, tool_names)]
    if kind == "thinking":
        text = expect_str(block.get("thinking"), f"{path}.thinking")
        signature = optional_str(block.get("signature"), f"{path}.signature")
        return [parse_reasoning_block(kind, text, signature)]
    if kind == "redacted_thinking":
        data = expect_str(block.get("data"), f"{path}.data")
        return [parse_reasoning_block(kind, "", data)]
    return []  # see the module docstring


def _parse_image(block: JSON, path: str) -> ImagePart | FilePart:
    source = expect_object(block.get("source"), f"{path}.source")
    kind = source.get("type")
    cache = optional_cache_control(block, path)
    if kind == "base64":
        return ImagePart(
            media_type=expect_str(source.get("media_type"), f"{path}.source.media_type"),
            data=expect_str(source.get("data"), f"{path}.source.data"),
            cache_control=cache,
        )
    if kind == "url":
        url = expect_str(source.get("url"), f"{path}.source.url")
        return ImagePart(url=url, cache_control=cache)
    if kind == "file":
        # ImagePart has no file id; an image-typed FilePart renders back as an image block.
        file_id = expect_str(source.get("file_id"), f"{path}.source.file_id")
        return FilePart(media_type="image/*", file_id=file_id, cache_control=cache)
    raise invalid(f"{path}.source.type: expected base64, url or file", f"{path}.source")


def _parse_document(block: JSON, path: str) -> list[Part]:
    source = expect_object(block.get("source"), f"{path}.source")
    kind = source.get("type")
    cache = optional_cache_control(block, path)
    title = optional_str(block.get("title"), f"{path}.title")
    spath = f"{path}.source"
    if kind == "base64":
        return [
            FilePart(
                media_type=expect_str(source.get("media_type"), f"{spath}.media_type"),
                data=expect_str(source.get("data"), f"{spath}.data"),
                filename=title,
                cache_control=cache,
            )
        ]
    if kind == "text":
        text = expect_str(source.get("data"), f"{spath}.data")
        data = base64.b64encode(text.encode()).decode()
        media = source.get("media_type") or "text/plain"
        return [FilePart(media_type=media, data=data, filename=title, cache_control=cache)]
    if kind == "url":
        url = expect_str(source.get("url"), f"{spath}.url")
        return [
            FilePart(media_type="application/pdf", url=url, filename=title, cache_control=cache)
        ]
    if kind == "file":
        file_id = expect_str(source.get("file_id"), f"{spath}.file_id")
        return [FilePart(file_id=file_id, filename=title, cache_control=cache)]
    if kind == "content":
        # A "custom content" document is a list of text/image blocks: they are the document.
        inner = expect_list(source.get("content"), f"{spath}.content")
        return _parse_blocks(inner, f"{spath}.content", {})
    raise invalid(f"{spath}.type: expected base64, text, url, file or content", spath)


def _parse_tool_result(block: JSON, path: str, tool_names: dict[str, str]) -> ToolResultPart:
    call_id = expect_str(block.get("tool_use_id"), f"{path}.tool_use_id")
    raw = block.get("content")
    content: list[TextPart | ImagePart | FilePart] = []
    if isinstance(raw, str):
        content = [TextPart(raw)]
    elif isinstance(raw, list):
        for part in _parse_blocks(raw, f"{path}.content", tool_names):
            if isinstance(part, TextPart | ImagePart | FilePart):
                content.append(part)
    elif raw is not None:
        raise invalid(f"{path}.content: expected a string or a list of blocks", path)
    return ToolResultPart(
        call_id=call_id,
        content=content,
        name=tool_names.get(call_id),
        is_error=bool(optional_bool(block.get("is_error"), f"{path}.is_error")),
        cache_control=optional_cache_control(block, path),
    )


# ---------------------------------------------------------------------------------------------
# Tools and the rest


def _parse_tools(raw: Any) -> tuple[list[Tool], dict[str, JSON]]:
    if raw is None:
        return [], {}
    tools: list[Tool] = []
    extras: dict[str, JSON] = {}
    for i, item in enumerate(expect_list(raw, "tools")):
        path = f"tools[{i}]"
        item = expect_object(item, path)
        kind = item.get("type")
        if kind not in (None, "custom"):
            # A server / Anthropic-defined tool (web_search_20250305, bash_20250124 ...): only
            # its raw definition means anything.
            name = item.get("name")
            tools.append(Tool(name=name if isinstance(name, str) else str(kind), builtin=item))
            continue
        name = expect_str(item.get("name"), f"{path}.name")
        if not name:
            raise invalid(f"{path}.name: must not be empty", f"{path}.name")
        schema = expect_object(item.get("input_schema"), f"{path}.input_schema")
        tools.append(
            Tool(
                name=name,
                description=optional_str(item.get("description"), f"{path}.description") or "",
                parameters=schema,
                strict=optional_bool(item.get("strict"), f"{path}.strict"),
                cache_control=optional_cache_control(item, path),
            )
        )
        leftover = {key: value for key, value in item.items() if key not in _TOOL_FIELDS}
        if leftover:
            extras[name] = leftover
    return tools, extras


def _parse_tool_choice(raw: Any) -> tuple[ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    raw = expect_object(raw, "tool_choice")
    kind = raw.get("type")
    parallel = None
    if optional_bool(raw.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use"):
        parallel = False
    if kind == "auto":
        return ToolChoice("auto"), parallel
    if kind == "any":
        return ToolChoice("required"), parallel
    if kind == "none":
        return ToolChoice("none"), parallel
    if kind == "tool":
        name = expect_str(raw.get("name"), "tool_choice.name")
        return ToolChoice("tool", name), parallel
    raise invalid("tool_choice.type: expected auto, any, tool or none", "tool_choice.type")


def _parse_stop(raw: Any) -> list[str]:
    if raw is None:
        return []
    items = expect_list(raw, "stop_sequences")
    return [expect_str(item, f"stop_sequences[{i}]") for i, item in enumerate(items)]
