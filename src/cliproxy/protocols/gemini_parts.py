"""Gemini content parts, usage and finish reasons ↔ canonical values (shared by the request,
response and stream code of the Gemini protocol).

Signatures: Gemini puts ``thoughtSignature`` on a thought part, a function-call part or a plain
text part. A signature on a function call becomes ``ToolCallPart.signature``; one on a thought
part stays on that ReasoningPart; one on a plain text part becomes an empty ReasoningPart
(issuer "gemini") just before the text, and rendering puts such a signature-only ReasoningPart
back onto the part that follows it. A *wrapped* thoughtSignature (signatures.py) is another
vendor's reasoning that rode through a Gemini client: it becomes a ReasoningPart of that issuer
(before the part that carried it), and the thought parts that showed its text are dropped.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import replace
from typing import Any

import orjson

from cliproxy.model import (
    FilePart,
    FinishReason,
    ImagePart,
    Part,
    ProxyError,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    invalid,
    loads_limited,
)
from cliproxy.model.ids import random_hex
from cliproxy.protocols.fields import expect_object, expect_str
from cliproxy.protocols.signatures import carried_part

NAME = "gemini"  # the protocol's name, also the issuer of its reasoning signatures
ISSUER = NAME
JSON = dict[str, Any]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def get(obj: JSON, camel: str) -> Any:
    """A field by its camelCase name or its snake_case twin (the API accepts both spellings)."""
    if camel in obj:
        return obj[camel]
    return obj.get(_snake(camel))


def has(obj: JSON, camel: str) -> bool:
    return camel in obj or _snake(camel) in obj


class CallIds:
    """Gemini matches function responses to calls by name (ids are optional), canonical parts
    by id. Calls without an id get one; a response without an id takes the id of the earliest
    still-unanswered call with the same name."""

    def __init__(self, deterministic: bool = True) -> None:
        self._deterministic = deterministic
        self._count = 0
        self._pending: list[tuple[str, str]] = []  # (id, name) of unanswered calls

    def _new(self, name: str) -> str:
        if self._deterministic:
            self._count += 1
            return f"call_{name}_{self._count - 1}"
        return f"call_{name}_{random_hex(12)}"

    def for_call(self, name: str, given: Any) -> str:
        call_id = given if isinstance(given, str) and given else self._new(name)
        self._pending.append((call_id, name))
        return call_id

    def for_result(self, name: str, given: Any) -> str:
        if isinstance(given, str) and given:
            self._pending = [p for p in self._pending if p[0] != given]
            return given
        for position, (call_id, call_name) in enumerate(self._pending):
            if call_name == name:
                del self._pending[position]
                return call_id
        return self._new(name)


def wire_signature(signature: str | None) -> str | None:
    """The signature if it can go on the wire as thoughtSignature, else None. The field is
    bytes (base64) for the API and the SDKs: google-genai fails to parse a whole reply over a
    value that does not decode, so anything else (another vendor's token) is dropped."""
    if not signature or not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", signature):
        return None
    return None if len(signature.rstrip("=")) % 4 == 1 else signature


def _media(blob: JSON, path: str) -> ImagePart | FilePart:
    mime = expect_str(get(blob, "mimeType") or "", f"{path}.mimeType")
    data = expect_str(blob.get("data"), f"{path}.data")
    if mime.startswith("image/"):
        return ImagePart(media_type=mime, data=data)
    return FilePart(media_type=mime, data=data)


def _result_content(response: JSON) -> tuple[str, bool]:
    """The text of a functionResponse.response object and whether it reports an error."""
    if set(response) == {"output"} and isinstance(response["output"], str):
        return response["output"], False
    if set(response) == {"error"} and isinstance(response["error"], str):
        return response["error"], True
    return orjson.dumps(response).decode(), False


def parse_part(part: Any, path: str, ids: CallIds, strict: bool = True) -> list[Part]:
    """One wire part → canonical parts. ``strict`` (requests) rejects unknown part kinds;
    replies skip them."""
    part = expect_object(part, path)
    signature = get(part, "thoughtSignature")
    signature = signature if isinstance(signature, str) and signature else None
    # Another vendor's reasoning that rode through a Gemini client (signatures.py): it stands
    # before the part that carried it, as Gemini's own signature-only reasoning does.
    carried = carried_part(signature)
    if carried is not None:
        signature = None
    before: list[Part] = [carried] if carried is not None else []
    if "text" in part:
        text = expect_str(part["text"], f"{path}.text")
        if part.get("thought") is True:
            if carried is not None and not carried.text:
                return [replace(carried, text=text)]
            # A carried part with its own text does not own this thought's text.
            shown = [ReasoningPart(text=text, issuer=ISSUER)] if text else []
            if carried is not None:
                return [carried, *shown]
            return [ReasoningPart(text=text, signature=signature, issuer=ISSUER)]
        out: list[Part] = before
        if signature:
            out.append(ReasoningPart(signature=signature, issuer=ISSUER))
        if text:
            out.append(TextPart(text))
        return out
    if has(part, "inlineData"):
        return [
            _media(
                expect_object(get(part, "inlineData"), f"{path}.inlineData"), f"{path}.inlineData"
            )
        ]
    if has(part, "fileData"):
        ref = expect_object(get(part, "fileData"), f"{path}.fileData")
        uri = expect_str(get(ref, "fileUri"), f"{path}.fileData.fileUri")
        mime = str(get(ref, "mimeType") or "")
        if mime.startswith("image/"):
            # An image by reference: other protocols have image-URL forms for it, not file ones.
            return [ImagePart(media_type=mime, url=uri)]
        return [FilePart(media_type=mime, url=uri)]
    if has(part, "functionCall"):
        call = expect_object(get(part, "functionCall"), f"{path}.functionCall")
        name = expect_str(call.get("name"), f"{path}.functionCall.name")
        args = call.get("args")
        args = {} if args is None else expect_object(args, f"{path}.functionCall.args")
        call_id = ids.for_call(name, call.get("id"))
        call_part = ToolCallPart(call_id, name, orjson.dumps(args).decode(), signature=signature)
        return [*before, call_part]
    if has(part, "functionResponse"):
        return [_function_response(part, path, ids)]
    if has(part, "executableCode"):
        code = expect_object(get(part, "executableCode"), f"{path}.executableCode")
        language = str(code.get("language", "")).lower().replace("language_unspecified", "")
        return [TextPart(f"```{language}\n{code.get('code', '')}\n```")]
    if has(part, "codeExecutionResult"):
        result = expect_object(get(part, "codeExecutionResult"), f"{path}.codeExecutionResult")
        return [TextPart(str(result.get("output", "")))]
    if part.get("thought") is True or signature or carried is not None or not strict:
        # A bare signature part, or a kind a reply may carry that we cannot represent.
        return before + ([ReasoningPart(signature=signature, issuer=ISSUER)] if signature else [])
    raise invalid(f"{path}: unsupported part with keys {sorted(part)}", path)


def _function_response(part: JSON, path: str, ids: CallIds) -> ToolResultPart:
    path = f"{path}.functionResponse"
    result = expect_object(get(part, "functionResponse"), path)
    name = expect_str(result.get("name"), f"{path}.name")
    response = result.get("response")
    response = {} if response is None else expect_object(response, f"{path}.response")
    text, is_error = _result_content(response)
    content: list[TextPart | ImagePart | FilePart] = [TextPart(text)]
    extra_parts = result.get("parts")
    if isinstance(extra_parts, list):  # multimodal function responses (Gemini 3)
        for n, extra in enumerate(extra_parts):
            blob = get(expect_object(extra, f"{path}.parts[{n}]"), "inlineData")
            if isinstance(blob, dict):
                content.append(_media(blob, f"{path}.parts[{n}].inlineData"))
    call_id = ids.for_result(name, result.get("id"))
    return ToolResultPart(call_id, content, name=name, is_error=is_error)


def parse_parts(parts: Any, path: str, ids: CallIds, strict: bool = True) -> list[Part]:
    if parts is None:
        return []
    if not isinstance(parts, list):
        raise invalid(f"{path}: expected a list of parts", path)
    out: list[Part] = []
    for n, part in enumerate(parts):
        parsed = parse_part(part, f"{path}[{n}]", ids, strict)
        for item in parsed:
            if isinstance(item, ReasoningPart) and item.issuer != ISSUER and item.text:
                _drop_shown_copy(out, item.text)
        out.extend(parsed)
    return out


def _drop_shown_copy(out: list[Part], text: str) -> None:
    """Remove the unsigned thought parts just before a carried reasoning part when they hold
    its text: they are the copy shown to the client (the wrapper holds the text too, because
    Gemini CLI keeps signatures but not thought parts in its history)."""
    joined = ""
    for start in range(len(out) - 1, -1, -1):
        previous = out[start]
        if not isinstance(previous, ReasoningPart) or previous.issuer != ISSUER:
            return
        if previous.signature or not previous.text:
            return
        joined = previous.text + joined
        if joined == text:
            del out[start:]
            return
        if not text.endswith(joined):
            return


# --- canonical → wire ---------------------------------------------------------------------------


def _data_url(url: str) -> tuple[str, str] | None:
    """(mime type, base64 data) of a ``data:`` URL, else None."""
    match = re.match(r"data:([^;,]*)(?:;[^,]*)?;base64,(.*)", url, re.DOTALL)
    return (match.group(1), match.group(2)) if match else None


def _render_media(part: ImagePart | FilePart, path: str) -> JSON:
    default_mime = "image/png" if isinstance(part, ImagePart) else "application/octet-stream"
    if part.data:
        return {"inlineData": {"mimeType": part.media_type or default_mime, "data": part.data}}
    inline = _data_url(part.url) if part.url else None
    if inline:
        return {"inlineData": {"mimeType": inline[0] or default_mime, "data": inline[1]}}
    uri = part.url or (part.file_id if isinstance(part, FilePart) else None)
    if not uri:
        raise invalid(f"{path}: the file has neither data nor a URL", path)
    ref: JSON = {"fileUri": uri}
    if part.media_type:
        ref["mimeType"] = part.media_type
    elif isinstance(part, ImagePart):
        # OpenAI clients link images without a type; Gemini needs one to treat it as an image.
        guessed = mimetypes.guess_type(uri)[0] or ""
        ref["mimeType"] = guessed if guessed.startswith("image/") else default_mime
    return {"fileData": ref}


def _args_object(arguments: str, path: str) -> JSON:
    """functionCall.args must be an object. History from a protocol that carries arguments as
    text may hold broken JSON or a bare array (a model's mistake, replayed by the client):
    refusing it would make the whole conversation unusable, so the text is kept as
    ``{"_raw": text}``, the same form the Anthropic renderer uses. Text nested past
    MAX_JSON_DEPTH is refused (400; a reply's renderer makes that the upstream's 502)."""
    if not arguments.strip():
        return {}
    try:
        args = loads_limited(arguments, f"{path}: tool call arguments")
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return args if isinstance(args, dict) else {"_raw": arguments}


def _response_object(result: ToolResultPart) -> JSON:
    """functionResponse.response must be an object: a JSON-object result is sent as itself,
    other text wrapped as {"output": text} (or {"error": text})."""
    text = result.text()
    if result.is_error:
        return {"error": text}
    if text.lstrip().startswith("{"):
        try:
            parsed = loads_limited(text, "tool result")
        except (orjson.JSONDecodeError, ProxyError):
            parsed = None  # text nested too deep to send as an object is sent as text
        # A lone {"output": str} / {"error": str} would read back as the wrapper: wrap it too.
        if isinstance(parsed, dict) and not _is_wrapper(parsed):
            return parsed
    return {"output": text}


def _is_wrapper(response: JSON) -> bool:
    return len(response) == 1 and isinstance(response.get("output", response.get("error")), str)


def render_parts(parts: list[Part], call_names: dict[str, str], path: str) -> list[JSON]:
    """Canonical parts of one message → Gemini parts. ``call_names`` maps call ids seen so far to
    function names (a ToolResultPart may lack its name); calls in ``parts`` are added to it."""
    out: list[JSON] = []
    pending: str | None = None  # a signature-only ReasoningPart waiting for the next part
    for n, part in enumerate(parts):
        where = f"{path}[{n}]"
        wire: JSON | None = None
        if isinstance(part, TextPart):
            wire = {"text": part.text} if part.text else None
        elif isinstance(part, ReasoningPart):
            # Thoughts and signatures are only meaningful to the model that produced them.
            if part.issuer != ISSUER or part.redacted:
                continue
            signature = wire_signature(part.signature)
            if not part.text:
                if signature and pending:  # two in a row: the first keeps a part of its own
                    out.append({"text": "", "thoughtSignature": pending})
                pending = signature or pending
                continue
            wire = {"text": part.text, "thought": True}
            if signature:
                wire["thoughtSignature"] = signature
        elif isinstance(part, ImagePart | FilePart):
            wire = _render_media(part, where)
        elif isinstance(part, ToolCallPart):
            call_names[part.id] = part.name
            call: JSON = {"name": part.name, "args": _args_object(part.arguments, where)}
            if part.id:
                call["id"] = part.id
            wire = {"functionCall": call}
            signature = wire_signature(part.signature)
            if signature:
                wire["thoughtSignature"] = signature
        elif isinstance(part, ToolResultPart):
            out.extend(_render_result(part, call_names, where))
            continue
        if wire is None:
            continue
        if pending and ("text" in wire or "functionCall" in wire):
            # A signed part or a thought cannot take it (a thought's signature would read as
            # that thought's own): then it goes on an empty part of its own, order kept.
            if "thoughtSignature" in wire or wire.get("thought"):
                out.append({"text": "", "thoughtSignature": pending})
            else:
                wire["thoughtSignature"] = pending
            pending = None
        out.append(wire)
    if pending:
        last = out[-1] if out else None
        signable = (
            last is not None
            and ("text" in last or "functionCall" in last)
            and not last.get("thought")
        )
        if last is not None and signable and "thoughtSignature" not in last:
            last["thoughtSignature"] = pending
        else:
            out.append({"text": "", "thoughtSignature": pending})
    return out


def _render_result(result: ToolResultPart, call_names: dict[str, str], path: str) -> list[JSON]:
    name = result.name or call_names.get(result.call_id)
    if not name:
        raise invalid(
            f"{path}: tool result for call id {result.call_id!r} has no function name and no "
            "earlier tool call with that id",
            path,
        )
    response: JSON = {"name": name, "response": _response_object(result)}
    if result.call_id:
        response["id"] = result.call_id
    out: list[JSON] = [{"functionResponse": response}]
    for n, extra in enumerate(result.content):
        if isinstance(extra, ImagePart | FilePart):
            out.append(_render_media(extra, f"{path}.content[{n}]"))
    return out


# --- usage and finish reasons -------------------------------------------------------------------


def _count(meta: JSON, camel: str) -> int:
    value = get(meta, camel)
    return value if isinstance(value, int) and value > 0 else 0


def parse_usage(meta: Any) -> Usage:
    """usageMetadata → canonical Usage (Gemini's candidates count excludes thoughts)."""
    if not isinstance(meta, dict):
        return Usage()
    thoughts = _count(meta, "thoughtsTokenCount")
    return Usage(
        input_tokens=_count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount"),
        output_tokens=_count(meta, "candidatesTokenCount") + thoughts,
        cached_tokens=_count(meta, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def render_usage(usage: Usage) -> JSON:
    meta: JSON = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.total_tokens,
    }
    if usage.cached_tokens > 0:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens > 0:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


_BLOCKED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "LANGUAGE",
}
# The model produced a call the API refused to return: nothing usable came back.
_FAILED = {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"}


def parse_finish_reason(value: Any, has_tool_calls: bool) -> FinishReason:
    """finishReason → canonical. STOP with function calls is TOOL_CALLS; OTHER and unknown
    reasons count as STOP (the content so far stands)."""
    if value == "MAX_TOKENS":
        return FinishReason.LENGTH
    if value in _BLOCKED:
        return FinishReason.CONTENT_FILTER
    if value in _FAILED:
        return FinishReason.ERROR
    return FinishReason.TOOL_CALLS if has_tool_calls else FinishReason.STOP


def render_finish_reason(reason: FinishReason) -> str:
    if reason is FinishReason.LENGTH:
        return "MAX_TOKENS"
    if reason in (FinishReason.CONTENT_FILTER, FinishReason.REFUSAL):
        return "SAFETY"
    if reason is FinishReason.ERROR:
        return "OTHER"
    return "STOP"
