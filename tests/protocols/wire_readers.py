"""Readers of an upstream's wire request body: vendor-neutral summaries (turns, tool calls and
results, tools, tool_choice, system text, response format) written straight from the wire facts
of /work/shared/reference/protocols.md, so tests never check a renderer with its own parser.
Shared by the cross-protocol corpus and the e2e fidelity / agent-loop tests."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

JSON = dict[str, Any]


def maybe_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text")
        )
    return ""


def read_tools(upstream: str, body: JSON) -> dict[str, tuple[str, JSON]]:
    """Function tools: name → (description, parameter schema)."""
    tools = body.get("tools") or []
    if upstream == "openai_chat":
        return {
            t["function"]["name"]: (
                t["function"].get("description", ""),
                t["function"]["parameters"],
            )
            for t in tools
            if t.get("type") == "function"
        }
    if upstream == "openai_responses":
        return {
            t["name"]: (t.get("description", ""), t["parameters"])
            for t in tools
            if t.get("type") == "function"
        }
    if upstream == "anthropic":
        return {
            t["name"]: (t.get("description", ""), t["input_schema"])
            for t in tools
            if "input_schema" in t
        }
    return {
        d["name"]: (
            d.get("description", ""),
            d.get("parameters") or d.get("parametersJsonSchema", {}),
        )
        for t in tools
        for d in t.get("functionDeclarations", [])
    }


def read_choice(upstream: str, body: JSON) -> Any:
    """tool_choice in neutral words: auto | none | required | ("tool", name) | None."""
    if upstream == "gemini":
        config = (body.get("toolConfig") or {}).get("functionCallingConfig")
        if config is None:
            return None
        mode, names = config.get("mode"), config.get("allowedFunctionNames")
        if mode == "ANY" and names and len(names) == 1:
            return ("tool", names[0])
        return {"AUTO": "auto", "NONE": "none", "ANY": "required"}[mode]
    choice = body.get("tool_choice")
    if choice is None or isinstance(choice, str):
        return choice
    if upstream == "anthropic":
        kind = choice["type"]
        return ("tool", choice["name"]) if kind == "tool" else {"any": "required"}.get(kind, kind)
    if upstream == "openai_chat":
        return ("tool", choice["function"]["name"])
    return ("tool", choice["name"])


def read_turns(upstream: str, body: JSON) -> list[tuple[str, list[JSON]]]:
    """The conversation as (role, neutral entries); entries are {"text"}, {"call": id, "name",
    "args"}, {"result": id, "name", "value", "error"}, {"image": "base64"|"url", ...}."""
    if upstream == "openai_chat":
        return _chat_turns(body)
    if upstream == "openai_responses":
        return _responses_turns(body)
    if upstream == "anthropic":
        return _anthropic_turns(body)
    return _gemini_turns(body)


def _chat_turns(body: JSON) -> list[tuple[str, list[JSON]]]:
    turns: list[tuple[str, list[JSON]]] = []
    for m in body["messages"]:
        entries: list[JSON] = []
        if m["role"] == "tool":
            entries.append({"result": m["tool_call_id"], "value": maybe_json(m["content"])})
        elif isinstance(m.get("content"), list):
            for p in m["content"]:
                if p["type"] == "text":
                    entries.append({"text": p["text"]})
                elif p["type"] == "image_url":
                    url = p["image_url"]["url"]
                    kind = "base64" if url.startswith("data:") else "url"
                    entries.append({"image": kind, "ref": url.rsplit(",", 1)[-1]})
                else:
                    entries.append({"other": p["type"], "raw": p})
        elif m.get("content"):
            entries.append({"text": m["content"]})
        for call in m.get("tool_calls") or []:
            entries.append(
                {
                    "call": call["id"],
                    "name": call["function"]["name"],
                    "args": maybe_json(call["function"]["arguments"]),
                }
            )
        turns.append((m["role"], entries))
    return turns


def _responses_turns(body: JSON) -> list[tuple[str, list[JSON]]]:
    turns: list[tuple[str, list[JSON]]] = []
    for item in body["input"]:
        kind = item.get("type", "message")
        if kind == "function_call":
            entry = {"call": item["call_id"], "name": item["name"]}
            turns.append(("assistant", [{**entry, "args": maybe_json(item["arguments"])}]))
        elif kind == "function_call_output":
            output = item["output"]
            value = maybe_json(output) if isinstance(output, str) else _text_of(output)
            entries: list[JSON] = [{"result": item["call_id"], "value": value}]
            if isinstance(output, list):
                entries += [_responses_part(p) for p in output if p["type"] != "input_text"]
            turns.append(("user", entries))
        elif kind == "message":
            content = item["content"]
            parts = (
                [{"type": "input_text", "text": content}] if isinstance(content, str) else content
            )
            turns.append((item["role"], [_responses_part(p) for p in parts]))
    return turns


def _responses_part(part: JSON) -> JSON:
    if part["type"] in ("input_text", "output_text"):
        return {"text": part["text"]}
    if part["type"] == "input_image":
        url = part["image_url"]
        kind = "base64" if url.startswith("data:") else "url"
        return {"image": kind, "ref": url.rsplit(",", 1)[-1]}
    return {"other": part["type"], "raw": part}


def _anthropic_block(block: JSON) -> JSON:
    kind = block["type"]
    if kind == "text":
        return {"text": block["text"]}
    if kind == "tool_use":
        return {"call": block["id"], "name": block["name"], "args": block["input"]}
    if kind == "tool_result":
        content = block.get("content", "")
        return {
            "result": block["tool_use_id"],
            "value": maybe_json(_text_of(content)),
            "error": bool(block.get("is_error")),
            "media": [b for b in content if b["type"] != "text"]
            if isinstance(content, list)
            else [],
        }
    if kind == "image":
        source = block["source"]
        if source["type"] == "base64":
            return {"image": "base64", "ref": source["data"], "media_type": source["media_type"]}
        return {"image": source["type"], "ref": source.get("url")}
    return {"other": kind, "raw": block}


def _anthropic_turns(body: JSON) -> list[tuple[str, list[JSON]]]:
    turns = []
    for m in body["messages"]:
        content = m["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        turns.append((m["role"], [_anthropic_block(b) for b in blocks]))
    return turns


def _gemini_turns(body: JSON) -> list[tuple[str, list[JSON]]]:
    turns = []
    for c in body["contents"]:
        entries: list[JSON] = []
        for p in c["parts"]:
            if "text" in p and not p.get("thought"):
                entries.append({"text": p["text"]})
            elif "functionCall" in p:
                call = p["functionCall"]
                entries.append({"call": call.get("id"), "name": call["name"], "args": call["args"]})
            elif "functionResponse" in p:
                fr = p["functionResponse"]
                response = fr["response"]
                error = set(response) == {"error"}
                value = response.get("output", response.get("error", response))
                if not error and set(response) != {"output"}:
                    value = response
                entries.append(
                    {"result": fr.get("id"), "name": fr["name"], "value": value, "error": error}
                )
            elif "inlineData" in p:  # google-genai itself sends the inner fields snake_case
                blob = p["inlineData"]
                media_type = blob.get("mimeType", blob.get("mime_type"))
                entries.append({"image": "base64", "ref": blob["data"], "media_type": media_type})
            elif "fileData" in p:
                ref = p["fileData"]
                entries.append({"image": "url", "ref": ref.get("fileUri", ref.get("file_uri"))})
        turns.append(("assistant" if c["role"] == "model" else c["role"], entries))
    return turns


def read_system(upstream: str, body: JSON) -> str:
    if upstream == "openai_chat":
        first = body["messages"][0]
        return first["content"] if first["role"] == "system" else ""
    if upstream == "openai_responses":
        return body.get("instructions", "")
    if upstream == "anthropic":
        system = body.get("system", "")
        return system if isinstance(system, str) else "".join(b["text"] for b in system)
    parts = (body.get("systemInstruction") or {}).get("parts", [])
    return "".join(p["text"] for p in parts)


def entries(turns: list[tuple[str, list[JSON]]], key: str) -> list[JSON]:
    return [e for _, es in turns for e in es if key in e]


def assert_results_meet_calls(upstream: str, body: JSON) -> list[JSON]:
    """Every result references a call issued in an EARLIER turn (Gemini: by id when present,
    and by name); returns the results."""
    issued: dict[Any, str] = {}
    results = []
    for role, es in read_turns(upstream, body):
        for e in es:
            if "result" in e:
                if upstream == "gemini" and e["result"] is None:
                    assert e["name"] in issued.values(), e
                else:
                    assert e["result"] in issued, (e, issued)
                    if upstream == "gemini":
                        assert issued[e["result"]] == e["name"]
                results.append(e)
        for e in es:
            if "call" in e:
                assert role == "assistant", (role, e)
                issued[e["call"]] = e["name"]
    return results


def assert_calls_answered_next(upstream: str, body: JSON) -> None:
    """The turn after an assistant turn with calls answers all of them, results first (what
    Anthropic, Chat Completions and Gemini insist on; Responses only needs each output after
    its call)."""
    turns = read_turns(upstream, body)
    if upstream == "openai_chat":
        # One tool message per call: merge the consecutive tool messages into one turn.
        merged: list[tuple[str, list[JSON]]] = []
        for role, es in turns:
            if role == "tool" and merged and merged[-1][0] == "tool":
                merged[-1][1].extend(es)
            else:
                merged.append((role, list(es)))
        turns = merged
    for (role, es), (_, following) in itertools.pairwise(turns):
        calls = [e["call"] for e in es if "call" in e]
        if role != "assistant" or not calls:
            continue
        leading = [e["result"] for e in following[: len(calls)] if "result" in e]
        if upstream == "gemini" and None in leading:
            assert len(leading) == len(calls), (es, following)
        else:
            assert leading == calls, (es, following)


def assert_alternates(upstream: str, body: JSON) -> None:
    """Anthropic and Gemini want user/assistant turns alternating, starting with the user."""
    roles = [role for role, _ in read_turns(upstream, body)]
    if upstream in ("anthropic", "gemini"):
        assert roles[0] == "user", roles
        assert all(a != b for a, b in itertools.pairwise(roles)), roles


def read_format(upstream: str, body: JSON) -> tuple[str, JSON | None]:
    if upstream == "openai_chat":
        fmt = body["response_format"]
        return fmt["type"], (fmt.get("json_schema") or {}).get("schema")
    if upstream == "openai_responses":
        fmt = body["text"]["format"]
        return fmt["type"], fmt.get("schema")
    if upstream == "anthropic":
        fmt = body["output_config"]["format"]
        return fmt["type"], fmt["schema"]
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    return ("json_schema" if schema else "json_object"), schema
