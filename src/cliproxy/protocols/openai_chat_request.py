"""OpenAI Chat Completions requests: wire JSON ⇄ canonical Request."""

from __future__ import annotations

import re
from typing import Any

import orjson

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
from cliproxy.protocols.base import JSON
from cliproxy.protocols.cross_vendor import (
    builtin_label,
    log_dropped_builtins,
    refuse_media,
    settle_orphan_results,
    settle_unanswered_calls,
)
from cliproxy.protocols.fields import (
    expect_list,
    expect_object,
    expect_str,
    optional_bool,
    optional_int,
    optional_number,
    optional_object,
    optional_str,
)

NAME = "openai_chat"

_DATA_URL = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*?);base64,(.*)$", re.DOTALL)

# Top-level request fields this module maps onto the canonical Request. Everything else the
# client sends is kept verbatim in request.extras[NAME] and put back by render_request.
_HANDLED = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "reasoning_effort",
        "response_format",
        "stream",
        "stream_options",
        "user",
        "metadata",
    }
)

# --- request: wire → canonical ------------------------------------------------------------------


def _text_parts(content: Any, path: str, allow_refusal: bool = False) -> list[TextPart]:
    """Content that may only hold text (system, tool and assistant messages)."""
    if isinstance(content, str):
        return [TextPart(content)]
    if content is None:
        return []
    if not isinstance(content, list):
        raise invalid(f"{path}: expected a string or a list of parts", path)
    parts: list[TextPart] = []
    for i, item in enumerate(content):
        item_path = f"{path}[{i}]"
        item = expect_object(item, item_path)
        kind = item.get("type")
        if kind == "text":
            parts.append(TextPart(expect_str(item.get("text"), f"{item_path}.text")))
        elif kind == "refusal" and allow_refusal:
            parts.append(TextPart(expect_str(item.get("refusal"), f"{item_path}.refusal")))
        else:
            raise invalid(f"{item_path}.type: expected 'text', got {kind!r}", f"{item_path}.type")
    return parts


def _data_url(url: str) -> tuple[str, str] | None:
    """(media_type, base64 data) of a ``data:...;base64,...`` URL, else None."""
    match = _DATA_URL.match(url)
    return (match.group(1), match.group(3)) if match else None


def _user_parts(content: Any, path: str) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    if not isinstance(content, list):
        raise invalid(f"{path}: expected a string or a list of parts", path)
    parts: list[Part] = []
    for i, item in enumerate(content):
        item_path = f"{path}[{i}]"
        item = expect_object(item, item_path)
        kind = item.get("type")
        if kind == "text":
            parts.append(TextPart(expect_str(item.get("text"), f"{item_path}.text")))
        elif kind == "image_url":
            parts.append(_image_part(item.get("image_url"), f"{item_path}.image_url"))
        elif kind == "input_audio":
            audio = expect_object(item.get("input_audio"), f"{item_path}.input_audio")
            data = expect_str(audio.get("data"), f"{item_path}.input_audio.data")
            fmt = expect_str(audio.get("format", "wav"), f"{item_path}.input_audio.format")
            # No audio part in the canonical model: an audio FilePart carries it.
            parts.append(FilePart(media_type=f"audio/{fmt}", data=data))
        elif kind == "file":
            parts.append(_file_part(item.get("file"), f"{item_path}.file"))
        else:
            raise invalid(
                f"{item_path}.type: expected text, image_url, input_audio or file, got {kind!r}",
                f"{item_path}.type",
            )
    return parts


def _image_part(raw: Any, path: str) -> ImagePart:
    if isinstance(raw, str):  # some clients send the URL directly
        raw = {"url": raw}
    raw = expect_object(raw, path)
    url = expect_str(raw.get("url"), f"{path}.url")
    detail = optional_str(raw.get("detail"), f"{path}.detail")
    inline = _data_url(url)
    if inline:
        return ImagePart(media_type=inline[0], data=inline[1], detail=detail)
    return ImagePart(url=url, detail=detail)


def _file_part(raw: Any, path: str) -> FilePart:
    raw = expect_object(raw, path)
    file_data = optional_str(raw.get("file_data"), f"{path}.file_data")
    file_id = optional_str(raw.get("file_id"), f"{path}.file_id")
    filename = optional_str(raw.get("filename"), f"{path}.filename")
    if file_data is None and file_id is None:
        raise invalid(f"{path}: needs file_data or file_id", path)
    part = FilePart(file_id=file_id, filename=filename)
    if file_data is not None:
        inline = _data_url(file_data)
        part.media_type, part.data = inline if inline else ("application/pdf", file_data)
    return part


def _tool_calls(raw: Any, path: str) -> list[ToolCallPart]:
    calls: list[ToolCallPart] = []
    for i, item in enumerate(expect_list(raw, path)):
        item_path = f"{path}[{i}]"
        item = expect_object(item, item_path)
        function = expect_object(item.get("function"), f"{item_path}.function")
        arguments = function.get("arguments", "{}")
        if isinstance(arguments, dict):  # lenient: some clients send the object itself
            arguments = orjson.dumps(arguments).decode()
        calls.append(
            ToolCallPart(
                id=expect_str(item.get("id"), f"{item_path}.id"),
                name=expect_str(function.get("name"), f"{item_path}.function.name"),
                arguments=expect_str(arguments, f"{item_path}.function.arguments") or "{}",
            )
        )
    return calls


def _parse_messages(raw: Any, request: Request) -> None:
    if not isinstance(raw, list) or not raw:
        raise invalid("messages: expected a non-empty list", "messages")
    tool_names: dict[str, str] = {}  # call id → tool name, for ToolResultPart.name (Gemini)
    for i, msg in enumerate(raw):
        path = f"messages[{i}]"
        msg = expect_object(msg, path)
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            parts = _text_parts(content, f"{path}.content")
            if not request.messages:
                request.system.extend(parts)
            else:
                request.messages.append(Message("system", list(parts)))
        elif role == "user":
            if content is None:
                raise invalid(f"{path}.content: required for user messages", f"{path}.content")
            request.messages.append(Message("user", _user_parts(content, f"{path}.content")))
        elif role == "assistant":
            assistant: list[Part] = []
            reasoning = msg.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                assistant.append(ReasoningPart(text=reasoning))
            # Empty text next to tool calls is noise other protocols reject (Anthropic).
            texts = _text_parts(content, f"{path}.content", allow_refusal=True)
            assistant.extend(p for p in texts if p.text)
            if isinstance(msg.get("refusal"), str) and msg["refusal"] and content is None:
                assistant.append(TextPart(msg["refusal"]))
            if msg.get("tool_calls") is not None:
                calls = _tool_calls(msg["tool_calls"], f"{path}.tool_calls")
                tool_names.update((call.id, call.name) for call in calls)
                assistant.extend(calls)
            request.messages.append(Message("assistant", assistant))
        elif role == "tool":
            call_id = expect_str(msg.get("tool_call_id"), f"{path}.tool_call_id")
            result = ToolResultPart(
                call_id=call_id,
                content=list(_text_parts(content, f"{path}.content")),
                name=tool_names.get(call_id),
            )
            last = request.messages[-1] if request.messages else None
            # Consecutive tool messages answer one assistant turn: one user message holds them.
            if (
                last
                and last.role == "user"
                and all(isinstance(p, ToolResultPart) for p in last.content)
            ):
                last.content.append(result)
            else:
                request.messages.append(Message("user", [result]))
        else:
            raise invalid(
                f"{path}.role: expected system, developer, user, assistant or tool, got {role!r}",
                f"{path}.role",
            )


def _parse_tools(raw: Any) -> list[Tool]:
    tools: list[Tool] = []
    for i, item in enumerate(expect_list(raw, "tools")):
        path = f"tools[{i}]"
        item = expect_object(item, path)
        kind = item.get("type", "function")
        if kind != "function":
            inner = item.get(kind) if isinstance(kind, str) else None
            name = inner.get("name") if isinstance(inner, dict) else None
            tools.append(Tool(name=name if isinstance(name, str) else str(kind), builtin=item))
            continue
        function = expect_object(item.get("function"), f"{path}.function")
        parameters = function.get("parameters")
        tool = Tool(
            name=expect_str(function.get("name"), f"{path}.function.name"),
            description=optional_str(function.get("description"), f"{path}.function.description")
            or "",
            strict=optional_bool(function.get("strict"), f"{path}.function.strict"),
        )
        if parameters is not None:
            tool.parameters = expect_object(parameters, f"{path}.function.parameters")
        tools.append(tool)
    return tools


def _parse_tool_choice(raw: Any, extras: JSON) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return ToolChoice(mode=raw)
    if isinstance(raw, dict) and raw.get("type") == "function":
        function = expect_object(raw.get("function"), "tool_choice.function")
        return ToolChoice(
            mode="tool", name=expect_str(function.get("name"), "tool_choice.function.name")
        )
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        # allowed_tools / custom: no canonical form; kept for a same-protocol round trip.
        extras["tool_choice"] = raw
        return None
    raise invalid("tool_choice: expected auto, none, required or an object", "tool_choice")


def _parse_response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    raw = expect_object(raw, "response_format")
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(type=kind)
    if kind == "json_schema":
        spec = expect_object(raw.get("json_schema"), "response_format.json_schema")
        schema = spec.get("schema")
        return ResponseFormat(
            type="json_schema",
            name=optional_str(spec.get("name"), "response_format.json_schema.name"),
            schema=optional_object(schema, "response_format.json_schema.schema"),
            strict=optional_bool(spec.get("strict"), "response_format.json_schema.strict"),
        )
    raise invalid(
        f"response_format.type: expected text, json_object or json_schema, got {kind!r}",
        "response_format.type",
    )


def _parse_stop(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        return list(raw)
    raise invalid("stop: expected a string or a list of strings", "stop")


def parse_common(body: JSON, request: Request) -> None:
    """Sampling, limits and stream options shared with the legacy completions endpoint."""
    request.max_tokens = optional_int(body.get("max_completion_tokens"), "max_completion_tokens")
    if request.max_tokens is None:
        request.max_tokens = optional_int(body.get("max_tokens"), "max_tokens")
    request.temperature = optional_number(body.get("temperature"), "temperature")
    request.top_p = optional_number(body.get("top_p"), "top_p")
    top_k = optional_int(body.get("top_k"), "top_k")  # not OpenAI's, but vLLM & co. accept it
    request.top_k = top_k
    request.stop = _parse_stop(body.get("stop"))
    n = optional_int(body.get("n"), "n")
    if n is not None and n != 1:
        raise invalid("n: only n=1 is supported (one choice per request)", "n")
    request.seed = optional_int(body.get("seed"), "seed")
    request.presence_penalty = optional_number(body.get("presence_penalty"), "presence_penalty")
    request.frequency_penalty = optional_number(body.get("frequency_penalty"), "frequency_penalty")
    request.stream = bool(optional_bool(body.get("stream"), "stream"))
    options = body.get("stream_options")
    if options is not None:
        options = expect_object(options, "stream_options")
        request.include_usage = bool(
            optional_bool(options.get("include_usage"), "stream_options.include_usage")
        )
    request.user = optional_str(body.get("user"), "user")
    request.metadata = optional_object(body.get("metadata"), "metadata")


def parse_request(body: JSON) -> Request:
    body = expect_object(body, "body")
    request = Request(model=expect_str(body.get("model"), "model"))
    extras = {key: value for key, value in body.items() if key not in _HANDLED}
    _parse_messages(body.get("messages"), request)
    parse_common(body, request)
    if body.get("tools") is not None:
        request.tools = _parse_tools(body["tools"])
    request.tool_choice = _parse_tool_choice(body.get("tool_choice"), extras)
    request.parallel_tool_calls = optional_bool(
        body.get("parallel_tool_calls"), "parallel_tool_calls"
    )
    effort = optional_str(body.get("reasoning_effort"), "reasoning_effort")
    if effort is not None:
        request.reasoning = Reasoning(effort=effort)
    request.response_format = _parse_response_format(body.get("response_format"))
    if body.get("max_completion_tokens") is not None:
        # Remembers which field name the client used; the value itself is request.max_tokens.
        extras["max_completion_tokens"] = body["max_completion_tokens"]
    if extras:
        request.extras[NAME] = extras
    return request


# --- request: canonical → wire -----------------------------------------------------------------


def _image_to_wire(part: ImagePart) -> JSON:
    url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.data or ''}"
    image: JSON = {"url": url}
    if part.detail:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _file_to_wire(part: FilePart) -> JSON:
    refuse_media(part, NAME, ("video",))
    if part.media_type.startswith("audio/") and part.data:
        fmt = part.media_type.split("/", 1)[1]
        fmt = {"mpeg": "mp3", "x-wav": "wav", "wave": "wav"}.get(fmt, fmt)
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": fmt}}
    if part.file_id:
        return {"type": "file", "file": {"file_id": part.file_id}}
    if part.data:
        media = part.media_type or "application/pdf"
        file: JSON = {"file_data": f"data:{media};base64,{part.data}"}
        file["filename"] = part.filename or "file"
        return {"type": "file", "file": file}
    # A file only known by URL has no Chat Completions form; name it so the model knows.
    return {"type": "text", "text": f"[file: {part.url or part.filename or 'unavailable'}]"}


def _content_to_wire(parts: list[Part]) -> str | list[JSON]:
    """A plain string when the content is only text (what every compatible server accepts)."""
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    wire: list[JSON] = []
    for part in parts:
        if isinstance(part, TextPart):
            wire.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            wire.append(_image_to_wire(part))
        elif isinstance(part, FilePart):
            wire.append(_file_to_wire(part))
    return wire


def _user_to_wire(message: Message) -> list[JSON]:
    wire: list[JSON] = []
    rest: list[Part] = []
    for part in message.content:
        if isinstance(part, ToolResultPart):
            wire.append({"role": "tool", "tool_call_id": part.call_id, "content": part.text()})
            # Tool messages only take text: their images follow as a user message.
            rest.extend(p for p in part.content if not isinstance(p, TextPart))
        elif not isinstance(part, ToolCallPart | ReasoningPart):
            rest.append(part)
    if rest or not wire:
        wire.append({"role": "user", "content": _content_to_wire(rest)})
    return wire


def _assistant_to_wire(message: Message) -> JSON:
    text = "".join(p.text for p in message.content if isinstance(p, TextPart))
    calls = [p for p in message.content if isinstance(p, ToolCallPart)]
    wire: JSON = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments or "{}"},
            }
            for call in calls
        ]
    return wire


def _messages_to_wire(request: Request) -> list[JSON]:
    wire: list[JSON] = []
    if request.system:
        wire.append({"role": "system", "content": request.system_text()})
    for message in settle_orphan_results(settle_unanswered_calls(request.messages)):
        if message.role == "system":
            wire.append({"role": "system", "content": message.text()})
        elif message.role == "assistant":
            wire.append(_assistant_to_wire(message))
        else:
            wire.extend(_user_to_wire(message))
    return wire


def _tool_to_wire(tool: Tool) -> JSON | None:
    if tool.builtin is not None:
        # Only Chat's own non-function tools fit here; other vendors' built-ins have no form.
        return tool.builtin if tool.builtin.get("type") == "custom" else None
    function: JSON = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def openai_effort(reasoning: Reasoning) -> str | None:
    """OpenAI's reasoning effort (Chat ``reasoning_effort``, Responses ``reasoning.effort``) for
    canonical settings. Thinking switched off (Anthropic disabled, Gemini budget 0) is "none";
    an effort goes as is; a token budget becomes the effort whose usual budget it is nearest
    (Anthropic/Gemini use 1024 / 8192 / 24576 for low / medium / high, and those map back).
    A dynamic or absent budget says nothing: the model's default applies."""
    if reasoning.enabled is False or reasoning.budget == 0:
        return "none"
    if reasoning.effort:
        return reasoning.effort
    if reasoning.budget is None or reasoning.budget < 0:
        return None
    if reasoning.budget <= 2048:
        return "low"
    return "medium" if reasoning.budget <= 12288 else "high"


def render_request(request: Request) -> JSON:
    extras = dict(request.extras.get(NAME, {}))
    body: JSON = {"model": request.model, "messages": _messages_to_wire(request)}
    tools = [t for t in (_tool_to_wire(tool) for tool in request.tools) if t is not None]
    log_dropped_builtins(
        NAME,
        [builtin_label(t) for t in request.tools if t.builtin and _tool_to_wire(t) is None],
    )
    if tools:
        body["tools"] = tools
        choice = request.tool_choice
        if choice is not None:
            body["tool_choice"] = (
                {"type": "function", "function": {"name": choice.name}}
                if choice.mode == "tool"
                else choice.mode
            )
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    effort = openai_effort(request.reasoning) if request.reasoning else None
    if effort:
        body["reasoning_effort"] = effort
    if request.max_tokens is not None:
        # Reasoning models reject max_tokens; older compatible servers only know max_tokens.
        use_new = "max_completion_tokens" in extras or effort is not None
        body["max_completion_tokens" if use_new else "max_tokens"] = request.max_tokens
    extras.pop("max_completion_tokens", None)
    for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "user"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.stop:
        body["stop"] = request.stop
    fmt = request.response_format
    if fmt is not None:
        body["response_format"] = _response_format_to_wire(fmt)
    if request.metadata and extras.get("store"):
        # OpenAI only accepts metadata on stored completions.
        body["metadata"] = request.metadata
    if request.stream:
        body["stream"] = True
        # Always ask for usage: the proxy counts tokens even when the client did not ask.
        body["stream_options"] = {"include_usage": True}
    for key, value in extras.items():
        body.setdefault(key, value)
    return body


def _response_format_to_wire(fmt: ResponseFormat) -> JSON:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    spec: JSON = {"name": fmt.name or "response", "schema": fmt.schema or {"type": "object"}}
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": spec}
