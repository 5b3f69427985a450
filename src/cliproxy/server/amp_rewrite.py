"""What Amp needs changed in replies cliproxy serves it locally (docs/amp.md), in JSON bodies
and in SSE streams alike:

- a model served through `ampcode.model-mappings` is named back as the model Amp asked for;
- tool names come back in the casing Amp declared them with (`bash` -> `Bash`): Amp matches
  tool names case-sensitively, and some upstreams lower-case them;
- `tool_use` and `thinking` blocks without a `signature` get an empty one, since Amp's TUI
  reads `signature.length` and fails on a missing one.

Applied only to model calls on Amp's paths (`/api/provider/...`) while Amp is on; replies
forwarded from Amp's own upstream are already what Amp expects and pass untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Message, Send

_SIGNED = frozenset({"tool_use", "thinking"})
_CALLS = frozenset({"tool_use", "function_call"})
_MODEL_KEYS = ("model", "modelVersion")
# Where a reply carries its model besides the top level (Anthropic's message_start, the
# Responses API's events).
_MODEL_HOLDERS = ("message", "response")
# Arguments are the model's own data: nothing inside them is rewritten.
_OPAQUE = frozenset({"input", "arguments", "args", "partial_json", "text", "thinking"})


def declared_tools(body: dict[str, Any]) -> dict[str, str]:
    """Lower-cased tool name -> the casing the request declared, in any of the protocols."""
    names: dict[str, str] = {}
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        candidates = [tool.get("name")]
        function = tool.get("function")
        if isinstance(function, dict):
            candidates.append(function.get("name"))
        declarations = tool.get("functionDeclarations") or tool.get("function_declarations")
        for declaration in declarations if isinstance(declarations, list) else []:
            if isinstance(declaration, dict):
                candidates.append(declaration.get("name"))
        for name in candidates:
            if isinstance(name, str) and name:
                names.setdefault(name.lower(), name)
    return names


@dataclass
class AmpRewrite:
    alias: str | None = None  # the model Amp asked for, when a mapping served another
    tool_names: dict[str, str] = field(default_factory=dict)
    _pending: bytes = b""

    def fix(self, value: Any) -> bool:
        """Rewrite a decoded reply (or event) in place; True when anything changed."""
        changed = False
        if isinstance(value, dict):
            if self.alias is not None:
                changed |= self._rename_model(value)
                for holder in _MODEL_HOLDERS:
                    inner = value.get(holder)
                    if isinstance(inner, dict):
                        changed |= self._rename_model(inner)
            kind = value.get("type")
            if kind in _SIGNED and not isinstance(value.get("signature"), str):
                value["signature"] = ""
                changed = True
            if kind in _CALLS:
                changed |= self._recase(value)
            for key, inner in value.items():
                if key in ("function", "functionCall") and isinstance(inner, dict):
                    changed |= self._recase(inner)
                if key not in _OPAQUE and isinstance(inner, dict | list):
                    changed |= self.fix(inner)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict | list):
                    changed |= self.fix(item)
        return changed

    def _rename_model(self, holder: dict[str, Any]) -> bool:
        changed = False
        for key in _MODEL_KEYS:
            if isinstance(holder.get(key), str) and holder[key] != self.alias:
                holder[key] = self.alias
                changed = True
        return changed

    def _recase(self, holder: dict[str, Any]) -> bool:
        name = holder.get("name")
        if not isinstance(name, str):
            return False
        declared = self.tool_names.get(name.lower())
        if declared is None or declared == name:
            return False
        holder["name"] = declared
        return True

    def json_body(self, raw: bytes) -> bytes:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        return orjson.dumps(value) if self.fix(value) else raw

    def feed(self, chunk: bytes) -> bytes:
        """SSE bytes in, rewritten SSE bytes out; a partial event waits for its end."""
        data = self._pending + chunk
        cut = max(data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n"))
        if cut < 0:
            self._pending = data
            return b""
        end = cut + (4 if data[cut : cut + 4] == b"\r\n\r\n" else 2)
        self._pending = data[end:]
        return self._events(data[:end])

    def close(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._events(rest) if rest else b""

    def _events(self, block: bytes) -> bytes:
        lines = block.split(b"\n")
        for index, line in enumerate(lines):
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if not payload.startswith(b"{"):
                continue
            try:
                value = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if self.fix(value):
                tail = b"\r" if line.endswith(b"\r") else b""
                lines[index] = b"data: " + orjson.dumps(value) + tail
        return b"\n".join(lines)


def rewriting_send(send: Send, rewrite: AmpRewrite) -> Send:
    """``send`` with the reply rewritten: SSE event by event, JSON once it is complete (its
    Content-Length then follows the new body); other replies pass as they are."""
    mode = "pass"
    held: Message | None = None
    buffered: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal mode, held
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            kind = next((v for k, v in headers if k.lower() == b"content-type"), b"").lower()
            if b"text/event-stream" in kind:
                mode = "sse"
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                await send({**message, "headers": headers})
            elif b"json" in kind:
                mode, held = "json", message
            else:
                await send(message)
            return
        if message["type"] != "http.response.body" or mode == "pass":
            await send(message)
            return
        more = bool(message.get("more_body"))
        body: bytes = message.get("body", b"")
        if mode == "sse":
            out = rewrite.feed(body) + (b"" if more else rewrite.close())
            await send({"type": "http.response.body", "body": out, "more_body": more})
            return
        buffered.append(body)
        if more:
            return
        new = rewrite.json_body(b"".join(buffered))
        assert held is not None
        headers = [(k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(new)).encode()))
        await send({**held, "headers": headers})
        await send({"type": "http.response.body", "body": new})

    return wrapped
