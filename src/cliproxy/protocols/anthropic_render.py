"""Canonical Request → Anthropic Messages request body (for an Anthropic upstream).

Choices made here so the API accepts what other protocols' clients sent:
- ``max_tokens`` is required: without one we ask for DEFAULT_MAX_TOKENS, raised when a thinking
  budget needs more room (the budget must stay below max_tokens).
- Messages must alternate user/assistant: consecutive same-role turns are merged, and tool_result
  blocks are moved to the front of their user turn (the API wants them first).
- A ``system`` message inside the conversation (OpenAI developer turns, Claude Code's per-turn
  system entries) becomes user text wrapped in ``<system-reminder>`` tags, the convention Claude
  models already follow for out-of-band instructions; the plain API has no mid-conversation system
  role without a beta.
- Reasoning given as an effort only becomes ``thinking: enabled`` with EFFORT_BUDGETS tokens;
  effort "none" (or Gemini's budget 0) becomes ``thinking: disabled``.
  With thinking on, sampling settings the API refuses (temperature other than 1, top_k, top_p
  below 0.95) are left out.
- Only thinking blocks Anthropic signed are replayed; other vendors' reasoning is dropped.
- Tool arguments that are not a JSON object become ``{"_raw": text}`` (see anthropic_wire).
- A tool result without its call becomes user text; other vendors' built-in tools are kept only
  when they are web search (as web_search_20250305), else dropped with a log line; audio and
  video input is refused with a 400 (see cross_vendor).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from cliproxy.model import (
    FilePart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ReasoningPart,
    Request,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from cliproxy.protocols.anthropic_request import TOOL_EXTRAS, format_from_wire, reasoning_from_wire
from cliproxy.protocols.anthropic_wire import (
    JSON,
    NAME,
    reasoning_block,
    tool_use_block,
    tool_use_id,
)
from cliproxy.protocols.cross_vendor import (
    builtin_label,
    is_web_search,
    log_dropped_builtins,
    refuse_media,
    settle_orphan_results,
    settle_unanswered_calls,
)

DEFAULT_MAX_TOKENS = 32000
# Anthropic's own server / client tools are versioned by date: web_search_20250305, bash_20250124.
_SERVER_TOOL_TYPE = re.compile(r"^[a-z_]+_\d{8}$")
WEB_SEARCH_TOOL: JSON = {"type": "web_search_20250305", "name": "web_search"}
MIN_THINKING_BUDGET = 1024  # the API's lower bound for budget_tokens
EFFORT_BUDGETS = {
    "minimal": 1024,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}
# Extras rendered by dedicated code below instead of being copied back verbatim.
_SPECIAL_EXTRAS = frozenset({"thinking", "output_config", "output_format"})
# Fields /v1/messages/count_tokens accepts (it rejects max_tokens, stream, sampling settings).
_COUNT_TOKENS_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"}
    | {"context_management", "output_config", "output_format"}
)


def render_request(request: Request) -> JSON:
    extras: JSON = request.extras.get(NAME, {})
    thinking, max_tokens = _thinking_and_max_tokens(request, extras)
    body: JSON = {"model": request.model, "max_tokens": max_tokens}
    system = [_text_block(part) for part in request.system if part.text]
    if system:
        body["system"] = system
    body["messages"] = _render_messages(
        settle_orphan_results(settle_unanswered_calls(request.messages))
    )
    tool_extras = extras.get(TOOL_EXTRAS, {})
    tools = [_render_tool(tool, tool_extras) for tool in request.tools]
    log_dropped_builtins(
        NAME, [builtin_label(t) for t, w in zip(request.tools, tools, strict=True) if w is None]
    )
    if any(tools):
        body["tools"] = [tool for tool in tools if tool is not None]
        choice = _render_tool_choice(request)
        if choice is not None:
            body["tool_choice"] = choice
    else:
        _declare_history_tools(body)
    if thinking is not None and _thinks(thinking) and not _thinking_allowed(body):
        thinking = None
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    _render_sampling(request, body, thinking_on=thinking is not None and _thinks(thinking))
    metadata = _render_metadata(request)
    if metadata:
        body["metadata"] = metadata
    if thinking is not None:
        body["thinking"] = thinking
    output_config = _render_output_config(request, extras)
    if output_config:
        body["output_config"] = output_config
    if "output_format" in extras and request.response_format == format_from_wire(
        None, extras["output_format"]
    ):
        body["output_format"] = extras["output_format"]
    for key, value in extras.items():
        if not key.startswith("_") and key not in _SPECIAL_EXTRAS:
            body.setdefault(key, value)
    if request.stream:
        body["stream"] = True
    return body


def render_count_tokens_request(request: Request) -> JSON:
    """Body for POST /v1/messages/count_tokens: the message body minus what it refuses."""
    body = render_request(request)
    return {key: value for key, value in body.items() if key in _COUNT_TOKENS_FIELDS}


# ---------------------------------------------------------------------------------------------
# Thinking, output_config, sampling


def _thinks(thinking: JSON) -> bool:
    return thinking.get("type") != "disabled"


def _thinking_allowed(body: JSON) -> bool:
    """Whether the API would accept thinking with this body. It refuses thinking with a forced
    tool choice, and when the last assistant turn calls tools without starting with a thinking
    block (a conversation that began on another vendor). The answer matters more than the
    thinking, so thinking is dropped in those cases."""
    if body.get("tool_choice", {}).get("type") in ("any", "tool"):
        return False
    assistants = [m for m in body["messages"] if m["role"] == "assistant"]
    if not assistants or isinstance(assistants[-1]["content"], str):
        return True
    blocks = assistants[-1]["content"]
    calls_tools = any(block["type"] == "tool_use" for block in blocks)
    return not calls_tools or blocks[0]["type"] in ("thinking", "redacted_thinking")


def _declare_history_tools(body: JSON) -> None:
    """The API refuses tool_use/tool_result blocks when no tools are declared; clients of other
    protocols may drop their tool list once they are done calling tools. Declare the tools the
    history uses (any input accepted) and forbid new calls."""
    names: dict[str, None] = {}
    for message in body["messages"]:
        if isinstance(message["content"], list):
            for block in message["content"]:
                if block["type"] == "tool_use":
                    names[block["name"]] = None
    if names:
        body["tools"] = [{"name": name, "input_schema": {"type": "object"}} for name in names]
        body["tool_choice"] = {"type": "none"}


def _thinking_and_max_tokens(request: Request, extras: JSON) -> tuple[JSON | None, int]:
    raw = extras.get("thinking")
    if request.reasoning == reasoning_from_wire(raw, extras.get("output_config")):
        # Unchanged since it was parsed from an Anthropic body: send the client's own setting.
        max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
        if isinstance(raw, dict) and isinstance(raw.get("budget_tokens"), int):
            max_tokens = request.max_tokens or max(DEFAULT_MAX_TOKENS, raw["budget_tokens"] + 8192)
        return (raw if isinstance(raw, dict) else None), max_tokens
    budget = _budget_for(request.reasoning)
    if budget is None:
        # An explicit "no thinking" (effort none, Gemini budget 0) is said, not just implied.
        off = _thinking_off(request.reasoning)
        return ({"type": "disabled"} if off else None), request.max_tokens or DEFAULT_MAX_TOKENS
    if request.max_tokens is None:
        return _enabled(budget), max(DEFAULT_MAX_TOKENS, budget + 8192)
    if budget >= request.max_tokens:
        budget = request.max_tokens // 2  # leave half of the client's cap for the answer
    if budget < MIN_THINKING_BUDGET:
        return None, request.max_tokens
    return _enabled(budget), request.max_tokens


def _thinking_off(reasoning: Reasoning | None) -> bool:
    if reasoning is None:
        return False
    return reasoning.enabled is False or reasoning.effort == "none" or reasoning.budget == 0


def _enabled(budget: int) -> JSON:
    return {"type": "enabled", "budget_tokens": budget}


def _budget_for(reasoning: Reasoning | None) -> int | None:
    if reasoning is None or reasoning.enabled is False or reasoning.effort == "none":
        return None
    if reasoning.budget is not None:
        if reasoning.budget == 0:
            return None  # Gemini's "thinking off"
        if reasoning.budget > 0:
            return max(reasoning.budget, MIN_THINKING_BUDGET)
        # negative: Gemini's "dynamic" budget; fall through to the effort mapping
    if reasoning.effort is None and reasoning.enabled is None and reasoning.budget is None:
        return None  # e.g. only a summary preference: nothing asks for thinking
    return EFFORT_BUDGETS.get(reasoning.effort or "medium", EFFORT_BUDGETS["medium"])


def _render_output_config(request: Request, extras: JSON) -> JSON:
    raw = extras.get("output_config")
    config: JSON = dict(raw) if isinstance(raw, dict) else {}
    if request.reasoning != reasoning_from_wire(extras.get("thinking"), raw):
        # The reasoning setting changed (or came from another protocol): the budget carries it.
        config.pop("effort", None)
    wanted = request.response_format
    if wanted != format_from_wire(raw, None):
        config.pop("format", None)
        if wanted is not None and wanted.type == "json_schema" and wanted.schema is not None:
            config["format"] = {"type": "json_schema", "schema": wanted.schema}
        elif wanted is not None and wanted.type in ("json_object", "json_schema"):
            # "Any JSON object" (OpenAI's json_object) has no schema: the loosest object one.
            config["format"] = {"type": "json_schema", "schema": {"type": "object"}}
    return config


def _render_sampling(request: Request, body: JSON, *, thinking_on: bool) -> None:
    if request.temperature is not None and (not thinking_on or request.temperature == 1):
        body["temperature"] = request.temperature
    if request.top_p is not None and (not thinking_on or request.top_p >= 0.95):
        body["top_p"] = request.top_p
    if request.top_k is not None and not thinking_on:
        body["top_k"] = request.top_k


def _render_metadata(request: Request) -> JSON | None:
    # Anthropic's metadata only has user_id; other keys (OpenAI's free-form metadata) are refused.
    user_id = (request.metadata or {}).get("user_id") or request.user
    return {"user_id": user_id} if isinstance(user_id, str) and user_id else None


# ---------------------------------------------------------------------------------------------
# Tools


def _render_tool(tool: Tool, tool_extras: dict[str, JSON]) -> JSON | None:
    if tool.builtin is not None:
        kind = tool.builtin.get("type")
        if isinstance(kind, str) and _SERVER_TOOL_TYPE.match(kind):
            return tool.builtin
        # Another vendor's web search has a server-tool twin; other built-ins have none.
        return dict(WEB_SEARCH_TOOL) if is_web_search(tool.builtin) else None
    wire: JSON = {"name": tool.name}
    if tool.description:
        wire["description"] = tool.description
    wire["input_schema"] = tool.parameters
    if tool.strict is not None:
        wire["strict"] = tool.strict
    if tool.cache_control is not None:
        wire["cache_control"] = tool.cache_control
    for key, value in tool_extras.get(tool.name, {}).items():
        wire.setdefault(key, value)
    return wire


def _render_tool_choice(request: Request) -> JSON | None:
    choice = request.tool_choice
    wire: JSON | None = None
    if choice is not None:
        kinds = {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}
        wire = {"type": kinds[choice.mode]}
        if choice.mode == "tool":
            wire["name"] = choice.name or ""
    if request.parallel_tool_calls is False:
        wire = wire or {"type": "auto"}
        if wire["type"] != "none":  # the API does not take the flag with type none
            wire["disable_parallel_tool_use"] = True
    return wire


# ---------------------------------------------------------------------------------------------
# Messages and blocks


def _render_messages(messages: list[Message]) -> list[JSON]:
    turns: list[tuple[str, list[JSON]]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _render_parts(message.content, system=message.role == "system")
        if not blocks:
            continue  # the API refuses empty turns
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    rendered = []
    for role, blocks in turns:
        if role == "user":
            # tool_result blocks must lead the user turn that answers the tool calls.
            results = [b for b in blocks if b["type"] == "tool_result"]
            blocks = results + [b for b in blocks if b["type"] != "tool_result"]
        rendered.append({"role": role, "content": _compact(blocks)})
    return rendered


def _compact(blocks: list[JSON]) -> list[JSON] | str:
    """A lone plain text block is sent as a string, the shape most clients use themselves."""
    if len(blocks) == 1 and blocks[0]["type"] == "text" and len(blocks[0]) == 2:
        return str(blocks[0]["text"])
    return blocks


def _render_parts(parts: list[Part], *, system: bool) -> list[JSON]:
    blocks: list[JSON] = []
    for part in parts:
        if isinstance(part, TextPart):
            if not part.text.strip():
                continue  # empty text blocks are refused
            if system:
                part = TextPart(
                    f"<system-reminder>\n{part.text}\n</system-reminder>", part.cache_control
                )
            blocks.append(_text_block(part))
        elif isinstance(part, ImagePart | FilePart):
            blocks.append(_media_block(part))
        elif isinstance(part, ToolCallPart):
            blocks.append(tool_use_block(part))
        elif isinstance(part, ToolResultPart):
            blocks.append(_tool_result_block(part))
        elif isinstance(part, ReasoningPart):
            block = reasoning_block(part, require_signature=True)
            if block is not None:
                blocks.append(block)
    return blocks


def _text_block(part: TextPart) -> JSON:
    block: JSON = {"type": "text", "text": part.text}
    return _with_cache(block, part.cache_control)


def _with_cache(block: JSON, cache_control: dict[str, Any] | None) -> JSON:
    if cache_control is not None:
        block["cache_control"] = cache_control
    return block


def _media_block(part: ImagePart | FilePart) -> JSON:
    media = part.media_type or ""
    if isinstance(part, FilePart):
        refuse_media(part, NAME, ("audio", "video"))
    if isinstance(part, ImagePart):
        source = _image_source(part)
        return _with_cache({"type": "image", "source": source}, part.cache_control)
    if part.file_id:
        kind = "image" if media.startswith("image") else "document"
        block: JSON = {"type": kind, "source": {"type": "file", "file_id": part.file_id}}
    elif part.data is not None and media.startswith("image/"):
        source = {"type": "base64", "media_type": media, "data": part.data}
        block = {"type": "image", "source": source}
    elif part.data is not None and media.startswith("text/"):
        text = base64.b64decode(part.data).decode("utf-8", errors="replace")
        block = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
        }
    elif part.data is not None:
        source = {"type": "base64", "media_type": media or "application/pdf", "data": part.data}
        block = {"type": "document", "source": source}
    else:
        block = {"type": "document", "source": {"type": "url", "url": part.url or ""}}
    if part.filename and block["type"] == "document":
        block["title"] = part.filename
    return _with_cache(block, part.cache_control)


def _image_source(part: ImagePart) -> JSON:
    url = part.url or ""
    if part.data is None and url.startswith("data:") and ";base64," in url:
        # OpenAI clients inline images as data: URLs; Anthropic wants them as base64 sources.
        header, _, data = url.partition(";base64,")
        return {"type": "base64", "media_type": header[5:], "data": data}
    if part.data is not None:
        return {"type": "base64", "media_type": part.media_type or "image/png", "data": part.data}
    return {"type": "url", "url": url}


def _tool_result_block(part: ToolResultPart) -> JSON:
    block: JSON = {"type": "tool_result", "tool_use_id": tool_use_id(part.call_id)}
    content = [p for p in part.content if not isinstance(p, TextPart) or p.text]
    if len(content) == 1 and isinstance(content[0], TextPart) and not content[0].cache_control:
        block["content"] = content[0].text
    elif content:
        block["content"] = [
            _text_block(p) if isinstance(p, TextPart) else _media_block(p) for p in content
        ]
    if part.is_error:
        block["is_error"] = True
    return _with_cache(block, part.cache_control)
