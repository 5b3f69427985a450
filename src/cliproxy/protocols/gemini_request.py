"""Gemini generateContent request bodies ↔ canonical Request.

The model is in the URL path, so parsing leaves ``Request.model`` empty (the server fills it in)
and rendering never writes it. Field names are read in camelCase or snake_case and written in
camelCase.

Reasoning effort → Gemini: a Gemini 1.x/2.x model name (read from ``request.model``) gets a
``thinkingBudget`` (those models reject ``thinkingLevel``); any other name, including an unknown
or empty one, gets ``thinkingLevel`` (Gemini 3 and later). An explicit token budget is always
sent as ``thinkingBudget``, which every thinking model accepts.
"""

from __future__ import annotations

import re
from typing import Any

from cliproxy.model import (
    Message,
    Reasoning,
    ReasoningPart,
    Request,
    ResponseFormat,
    TextPart,
    Tool,
    ToolChoice,
    invalid,
)
from cliproxy.protocols.cross_vendor import (
    builtin_label,
    log_dropped_builtins,
    settle_orphan_results,
    settle_unanswered_calls,
)
from cliproxy.protocols.fields import (
    expect_bool,
    expect_int,
    expect_list,
    expect_nonempty_str,
    expect_number,
    expect_object,
    expect_str,
    optional_str,
)
from cliproxy.protocols.gemini_parts import (
    JSON,
    NAME,
    CallIds,
    get,
    has,
    parse_parts,
    render_parts,
)
from cliproxy.protocols.gemini_schema import to_gemini_schema, to_json_schema

# Gemini CLI's documented escape hatch: replayed function calls that never had a signature
# (they came from another protocol) would otherwise be rejected by Gemini 3.
DUMMY_SIGNATURE = "skip_thought_signature_validator"

_TOP_LEVEL = ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig")
_GENERATION_FIELDS = (
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "thinkingConfig",
)
_SCHEMA_FIELDS = ("responseMimeType", "responseSchema", "responseJsonSchema")
_LEVELS = {"minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH", "xhigh": "HIGH"}
_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}


def parse_request(body: Any) -> Request:
    body = expect_object(body, "body")
    request = Request(model="")
    ids = CallIds(deterministic=True)
    contents = get(body, "contents")
    if not isinstance(contents, list):
        raise invalid("contents: expected a list of contents", "contents")
    for n, content in enumerate(contents):
        path = f"contents[{n}]"
        content = expect_object(content, path)
        role = content.get("role") or "user"
        if role not in ("user", "model", "function"):
            raise invalid(f"{path}.role: expected 'user' or 'model', got {role!r}", f"{path}.role")
        parts = parse_parts(content.get("parts"), f"{path}.parts", ids)
        request.messages.append(Message("assistant" if role == "model" else "user", parts))

    if has(body, "systemInstruction"):
        request.system = _parse_system(get(body, "systemInstruction"))
    if has(body, "tools"):
        request.tools = _parse_tools(get(body, "tools"))
    extras: JSON = {}
    if has(body, "toolConfig"):
        request.tool_choice, raw_config = _parse_tool_config(get(body, "toolConfig"))
        if raw_config is not None:
            extras["toolConfig"] = raw_config
    if has(body, "generationConfig"):
        leftovers = _parse_generation_config(get(body, "generationConfig"), request)
        if leftovers:
            extras["generationConfig"] = leftovers
    known = {name for field in _TOP_LEVEL for name in (field, _snake(field))} | {"model"}
    extras.update({key: value for key, value in body.items() if key not in known})
    if extras:
        request.extras[NAME] = extras
    if not contents:
        # Checked last so other field errors are reported first; the real API refuses an empty
        # conversation with 400 INVALID_ARGUMENT too.
        raise invalid("contents: must not be empty", "contents")
    return request


def parse_count_tokens_request(body: Any) -> Request:
    """countTokens takes either ``contents`` or a whole ``generateContentRequest``."""
    body = expect_object(body, "body")
    if has(body, "generateContentRequest"):
        return parse_request(get(body, "generateContentRequest"))
    return parse_request(body)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _parse_system(value: Any) -> list[TextPart]:
    if isinstance(value, str):
        return [TextPart(value)] if value else []
    system = expect_object(value, "systemInstruction")
    parts = parse_parts(system.get("parts"), "systemInstruction.parts", CallIds())
    if any(not isinstance(p, TextPart | ReasoningPart) for p in parts):
        raise invalid("systemInstruction.parts: only text parts are supported", "systemInstruction")
    return [p for p in parts if isinstance(p, TextPart)]


def _parse_tools(value: Any) -> list[Tool]:
    tools: list[Tool] = []
    for n, entry in enumerate(expect_list(value, "tools")):
        entry = expect_object(entry, f"tools[{n}]")
        for key, item in entry.items():
            if key in ("functionDeclarations", "function_declarations"):
                if not isinstance(item, list):
                    raise invalid(f"tools[{n}].{key}: expected a list", f"tools[{n}]")
                for m, declaration in enumerate(item):
                    tools.append(_parse_declaration(declaration, f"tools[{n}].{key}[{m}]"))
            else:
                # googleSearch, codeExecution, urlContext ...: kept verbatim for Gemini.
                tools.append(Tool(name=key, builtin={key: item}))
    return tools


def _parse_declaration(value: Any, path: str) -> Tool:
    declaration = expect_object(value, path)
    name = expect_nonempty_str(declaration.get("name"), f"{path}.name")
    description = expect_str(declaration.get("description") or "", f"{path}.description")
    tool = Tool(name=name, description=description)
    if has(declaration, "parametersJsonSchema"):
        schema = get(declaration, "parametersJsonSchema")
        tool.parameters = expect_object(schema, f"{path}.parametersJsonSchema")
    elif declaration.get("parameters") is not None:
        schema = expect_object(declaration["parameters"], f"{path}.parameters")
        tool.parameters = to_json_schema(schema)
    return tool


def _parse_tool_config(value: Any) -> tuple[ToolChoice | None, JSON | None]:
    """The canonical tool choice, and the raw toolConfig when the choice cannot express it."""
    config = expect_object(value, "toolConfig")
    calling = get(config, "functionCallingConfig")
    if calling is None:
        return None, config or None
    calling = expect_object(calling, "toolConfig.functionCallingConfig")
    mode = str(calling.get("mode") or "AUTO").upper()
    names = get(calling, "allowedFunctionNames") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise invalid(
            "toolConfig.functionCallingConfig.allowedFunctionNames: expected a list of strings",
            "toolConfig.functionCallingConfig.allowedFunctionNames",
        )
    exact = set(config) <= {"functionCallingConfig", "function_calling_config"}
    if mode == "ANY":
        if len(names) == 1:
            return ToolChoice("tool", names[0]), None if exact else config
        return ToolChoice("required"), None if exact and not names else config
    if mode in ("AUTO", "MODE_UNSPECIFIED", "VALIDATED"):
        plain = exact and not names and mode != "VALIDATED"
        return ToolChoice("auto"), None if plain else config
    if mode == "NONE":
        return ToolChoice("none"), None if exact else config
    raise invalid(
        f"toolConfig.functionCallingConfig.mode: unknown mode {mode!r}",
        "toolConfig.functionCallingConfig.mode",
    )


def _parse_generation_config(value: Any, request: Request) -> JSON:
    """Fill the request from generationConfig; return the fields it has no place for."""
    config = expect_object(value, "generationConfig")
    path = "generationConfig"
    consumed = {name for field in _GENERATION_FIELDS for name in (field, _snake(field))}
    if has(config, "temperature"):
        request.temperature = expect_number(get(config, "temperature"), f"{path}.temperature")
    if has(config, "topP"):
        request.top_p = expect_number(get(config, "topP"), f"{path}.topP")
    if has(config, "topK"):
        request.top_k = expect_int(get(config, "topK"), f"{path}.topK", integral_floats=True)
    if has(config, "maxOutputTokens"):
        request.max_tokens = expect_int(
            get(config, "maxOutputTokens"), f"{path}.maxOutputTokens", integral_floats=True
        )
    if has(config, "seed"):
        request.seed = expect_int(get(config, "seed"), f"{path}.seed", integral_floats=True)
    if has(config, "presencePenalty"):
        request.presence_penalty = expect_number(
            get(config, "presencePenalty"), f"{path}.presencePenalty"
        )
    if has(config, "frequencyPenalty"):
        request.frequency_penalty = expect_number(
            get(config, "frequencyPenalty"), f"{path}.frequencyPenalty"
        )
    if has(config, "stopSequences"):
        stop = get(config, "stopSequences")
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise invalid(
                f"{path}.stopSequences: expected a list of strings", f"{path}.stopSequences"
            )
        request.stop = list(stop)
    if has(config, "candidateCount"):
        count = expect_int(
            get(config, "candidateCount"), f"{path}.candidateCount", integral_floats=True
        )
        if count > 1:
            raise invalid(
                f"{path}.candidateCount: only 1 candidate is supported", f"{path}.candidateCount"
            )
    if has(config, "thinkingConfig"):
        request.reasoning = _parse_thinking(get(config, "thinkingConfig"))
    if _parse_response_format(config, request):
        consumed |= {name for field in _SCHEMA_FIELDS for name in (field, _snake(field))}
    return {key: item for key, item in config.items() if key not in consumed}


def _parse_response_format(config: JSON, request: Request) -> bool:
    """Set request.response_format from the response MIME type and schema; False when they
    mean something the canonical format cannot hold (e.g. text/x.enum) and stay extras."""
    mime = get(config, "responseMimeType")
    schema = get(config, "responseJsonSchema")
    if schema is None and get(config, "responseSchema") is not None:
        schema = to_json_schema(
            expect_object(get(config, "responseSchema"), "generationConfig.responseSchema")
        )
    if schema is not None and not isinstance(schema, dict):
        raise invalid("generationConfig.responseJsonSchema: expected an object", "generationConfig")
    if mime not in (None, "application/json", "text/plain"):
        return False
    if schema is not None:
        request.response_format = ResponseFormat("json_schema", schema=schema)
    elif mime == "application/json":
        request.response_format = ResponseFormat("json_object")
    return True


def _parse_thinking(value: Any) -> Reasoning:
    config = expect_object(value, "generationConfig.thinkingConfig")
    path = "generationConfig.thinkingConfig"
    reasoning = Reasoning()
    if has(config, "includeThoughts"):
        include = get(config, "includeThoughts")
        reasoning.include_thoughts = expect_bool(include, f"{path}.includeThoughts")
    if has(config, "thinkingBudget"):
        budget = expect_int(
            get(config, "thinkingBudget"), f"{path}.thinkingBudget", integral_floats=True
        )
        reasoning.enabled = budget != 0
        reasoning.budget = budget if budget > 0 else None  # -1 means "dynamic"
    level = optional_str(get(config, "thinkingLevel"), f"{path}.thinkingLevel")
    if level is not None and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
        reasoning.effort = level.lower()
        reasoning.enabled = True
    return reasoning


# --- canonical → wire ---------------------------------------------------------------------------


def render_request(request: Request) -> JSON:
    body: JSON = {}
    call_names: dict[str, str] = {}
    contents: list[JSON] = []
    system_texts = [p.text for p in request.system if p.text]
    for n, message in enumerate(settle_orphan_results(settle_unanswered_calls(request.messages))):
        if message.role == "system" and not contents:
            # Leading system turns belong in systemInstruction; later ones stay in place as
            # user text (Gemini has no system role inside contents).
            system_texts.extend(
                p.text for p in message.content if isinstance(p, TextPart) and p.text
            )
            continue
        role = "model" if message.role == "assistant" else "user"
        parts = render_parts(message.content, call_names, f"messages[{n}].content")
        if not parts:
            continue  # Gemini rejects a content without parts
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    for content in contents:
        if content["role"] == "model":
            _sign_first_call(content["parts"])
    body["contents"] = contents
    if system_texts:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system_texts]}

    extras = dict(request.extras.get(NAME, {}))
    tools = _render_tools(request.tools)
    if tools:
        body["tools"] = tools
    raw_tool_config = extras.pop("toolConfig", None)
    if raw_tool_config is not None:
        body["toolConfig"] = raw_tool_config
    elif request.tool_choice is not None and any("functionDeclarations" in t for t in tools):
        body["toolConfig"] = {"functionCallingConfig": _render_tool_choice(request.tool_choice)}
    generation = _render_generation_config(request, extras.pop("generationConfig", None))
    if generation:
        body["generationConfig"] = generation
    body.update(extras)
    return body


def _sign_first_call(parts: list[JSON]) -> None:
    calls = [p for p in parts if "functionCall" in p]
    if calls and not any("thoughtSignature" in p for p in calls):
        calls[0]["thoughtSignature"] = DUMMY_SIGNATURE


def _render_tools(tools: list[Tool]) -> list[JSON]:
    declarations: list[JSON] = []
    others: list[JSON] = []
    dropped: list[str] = []
    for tool in tools:
        if tool.builtin is not None:
            native = _native_builtin(tool.builtin)
            if native is not None:
                others.append(native)
            else:
                dropped.append(builtin_label(tool))
            continue
        declaration: JSON = {"name": tool.name}
        if tool.description:
            declaration["description"] = tool.description
        parameters = to_gemini_schema(tool.parameters)
        # An object without properties is rejected ("properties: should be non-empty").
        if parameters.get("properties"):
            declaration["parameters"] = parameters
        declarations.append(declaration)
    log_dropped_builtins(NAME, dropped)
    return ([{"functionDeclarations": declarations}] if declarations else []) + others


def _native_builtin(builtin: JSON) -> JSON | None:
    """A built-in tool Gemini can run: its own kinds verbatim, other vendors' web search as
    googleSearch; anything else is dropped."""
    kind = builtin.get("type")
    if kind is None:
        return builtin
    if isinstance(kind, str) and kind.startswith("web_search"):
        return {"googleSearch": {}}
    return None


def _render_tool_choice(choice: ToolChoice) -> JSON:
    if choice.mode == "none":
        return {"mode": "NONE"}
    if choice.mode == "required":
        return {"mode": "ANY"}
    if choice.mode == "tool" and choice.name:
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": "AUTO"}


def _render_generation_config(request: Request, leftovers: Any) -> JSON:
    config: JSON = dict(leftovers) if isinstance(leftovers, dict) else {}
    for key, value in (
        ("temperature", request.temperature),
        ("topP", request.top_p),
        ("topK", request.top_k),
        ("maxOutputTokens", request.max_tokens),
        ("seed", request.seed),
        ("presencePenalty", request.presence_penalty),
        ("frequencyPenalty", request.frequency_penalty),
    ):
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = list(request.stop)
    response_format = request.response_format
    if response_format is not None and response_format.type != "text":
        config["responseMimeType"] = "application/json"
        if response_format.type == "json_schema" and response_format.schema is not None:
            config["responseJsonSchema"] = response_format.schema
    if request.reasoning is not None:
        thinking = _render_thinking(request.reasoning, request.model)
        if thinking:
            config["thinkingConfig"] = thinking
    return config


def _gemini_major(model: str) -> int | None:
    match = re.search(r"gemini-(\d+)", model)
    return int(match.group(1)) if match else None


def _render_thinking(reasoning: Reasoning, model: str) -> JSON:
    config: JSON = {}
    major = _gemini_major(model)
    budgets_only = major is not None and major < 3
    effort = reasoning.effort
    if reasoning.enabled is False or effort == "none" or reasoning.budget == 0:
        if budgets_only:
            # 2.5 Pro cannot switch thinking off; 128 is its minimum budget.
            config["thinkingBudget"] = 128 if "pro" in model else 0
        else:
            config["thinkingLevel"] = "MINIMAL" if "flash" in model else "LOW"
    elif reasoning.budget is not None:
        config["thinkingBudget"] = reasoning.budget
    elif effort in _LEVELS:
        if budgets_only:
            budget = _BUDGETS[effort]
            config["thinkingBudget"] = 32768 if effort == "xhigh" and "pro" in model else budget
        else:
            config["thinkingLevel"] = _LEVELS[effort]
    elif effort:
        config["thinkingLevel"] = effort.upper()
    elif reasoning.enabled and budgets_only:
        config["thinkingBudget"] = -1  # dynamic
    if reasoning.include_thoughts is not None:
        config["includeThoughts"] = reasoning.include_thoughts
    return config
