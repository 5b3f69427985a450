"""Amp's model calls (`/api/provider/{provider}/...`, server/pinned.py) while Amp is on: the
decision the reference system names LOCAL_PROVIDER, MODEL_MAPPING, AMP_CREDITS or NO_PROVIDER.

- LOCAL_PROVIDER: a credential here serves the model for that provider; cliproxy answers.
- MODEL_MAPPING: an `ampcode.model-mappings` entry names a model served here; the call is
  answered with it (a thinking suffix such as `(8192)` is kept) and the reply names the model
  Amp asked for. `force-model-mappings` makes a mapping win over LOCAL_PROVIDER.
- AMP_CREDITS: nothing here serves it; the call goes on to Amp's upstream unchanged (it is
  paid from the Amp account's credits).
- NO_PROVIDER: nothing here serves it and no Amp key is known; cliproxy answers its 404.

A plain ASGI middleware just inside the client-key check, so every branch is authorised the
same way; locally served replies go through server/amp_rewrite.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cliproxy.config.ampcode import AmpCode
from cliproxy.model import ProxyError
from cliproxy.server.access import presented_key
from cliproxy.server.amp_rewrite import AmpRewrite, declared_tools, rewriting_send
from cliproxy.server.amp_upstream import send_to_amp, upstream_key, upstream_target
from cliproxy.server.outcomes import track_of
from cliproxy.server.pinned import PINNED_PATH, pin_of
from cliproxy.state import AppState

log = logging.getLogger(__name__)

LOCAL_PROVIDER, MODEL_MAPPING, AMP_CREDITS, NO_PROVIDER = (
    "LOCAL_PROVIDER",
    "MODEL_MAPPING",
    "AMP_CREDITS",
    "NO_PROVIDER",
)
_BODY_MODEL_PATHS = frozenset(
    {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/responses",
        "/v1/messages",
        "/v1/messages/count_tokens",
    }
)
_GEMINI = re.compile(r"^/v1(?:beta)?/models/(?P<model>[^:/]+):(?P<method>\w+)$")
_SUFFIX = re.compile(r"^(?P<base>.+?)(?P<suffix>\([^()]*\))$")


@dataclass(frozen=True)
class Decision:
    kind: str
    model: str  # the model the call is answered with


def split_suffix(model: str) -> tuple[str, str]:
    """`claude-opus-4(8192)` -> (`claude-opus-4`, `(8192)`)."""
    found = _SUFFIX.match(model)
    return (found["base"], found["suffix"]) if found else (model, "")


def decide(amp: AmpCode, model: str, served: Callable[[str], bool], has_key: bool) -> Decision:
    """The fallback decision for one model call; ``served`` says whether a local credential
    answers a model name."""
    local = served(model)
    if local and not amp.force_model_mappings:
        return Decision(LOCAL_PROVIDER, model)
    base, suffix = split_suffix(model)
    mapping = amp.mapping_for(base)
    if mapping is not None:
        for target in (mapping.to + suffix, mapping.to):
            if served(target):
                return Decision(MODEL_MAPPING, target)
    if local:
        return Decision(LOCAL_PROVIDER, model)
    return Decision(AMP_CREDITS if has_key else NO_PROVIDER, model)


class AmpModelCalls:
    def __init__(self, app: ASGIApp, state_getter: Callable[[], AppState]) -> None:
        self.app = app
        self.state_getter = state_getter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or PINNED_PATH not in scope or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = self.state_getter()
        amp: AmpCode | None = state.runtime.config.amp
        path: str = scope["path"]
        gemini = _GEMINI.match(path)
        if amp is None or not (path in _BODY_MODEL_PATHS or gemini):
            await self.app(scope, receive, send)
            return
        raw, complete = await _read_body(receive, state.runtime.config.request_body_limit_bytes)
        body = _json_object(raw) if complete else None
        model = gemini["model"] if gemini else (body or {}).get("model")
        if not isinstance(model, str) or not model or body is None:
            # Too large, not JSON or no model: cliproxy's own route says what is wrong.
            await self.app(scope, _replay(raw, receive), send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client_key = presented_key(headers, scope.get("query_string", b""))
        decision = decide(
            amp,
            model,
            lambda name: _served(scope, state, name),
            bool(upstream_key(amp, client_key)),
        )
        log.info("amp model call %s: %s -> %s", model, decision.kind, decision.model)
        if decision.kind == AMP_CREDITS:
            # The request's outcome event (and request log) name the model Amp answered.
            track = track_of(scope)
            streamed = gemini["method"] == "streamGenerateContent" if gemini else body.get("stream")
            track.model, track.stream = model, bool(streamed)
            target = upstream_target(scope[PINNED_PATH], scope.get("query_string", b""))
            reply = await send_to_amp(
                state,
                amp,
                "POST",
                target,
                headers.items(),
                raw,
                client_key,
            )
            await reply(scope, receive, send)
            return
        rewrite = AmpRewrite(tool_names=declared_tools(body))
        if decision.kind == MODEL_MAPPING:
            rewrite.alias = model
            scope = dict(scope)
            if gemini:
                new_path = path.replace(f"/models/{model}:", f"/models/{decision.model}:", 1)
                scope["path"], scope["raw_path"] = new_path, new_path.encode()
            else:
                body["model"] = decision.model
                raw = orjson.dumps(body)
                scope["headers"] = [
                    *((k, v) for k, v in scope["headers"] if k.lower() != b"content-length"),
                    (b"content-length", str(len(raw)).encode()),
                ]
        await self.app(scope, _replay(raw, receive), rewriting_send(send, rewrite))


def _served(scope: Scope, state: AppState, model: str) -> bool:
    try:
        pin = pin_of(scope, state)
        registry = state.runtime.registry
        if pin is None:
            registry.candidates(model)
        else:
            pin.candidates(registry.candidates)(model)
    except ProxyError:
        return False
    return True


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body; False when it passed ``limit`` (what was read is replayed, and the
    route answers 413 as it does for any call)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), False
        if not message.get("more_body"):
            break
    return b"".join(chunks), True


def _replay(raw: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replayed
