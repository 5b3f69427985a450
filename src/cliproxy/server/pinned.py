"""`/api/provider/{provider}/...`: the generation and model routes with one provider pinned
(CLIProxyAPI's provider-alias paths, routing/pins.py for what a word means).

A plain ASGI middleware, just inside the access log, rewrites such a path to the route it
stands for (`/api/provider/anthropic/v1/messages` -> `/v1/messages`; the forms without `/v1`
gain it) and leaves the word in the scope: the client-key check, the error shapes, the outcome
events and the request log then treat the call as the plain route it is, and the routes narrow
their candidates and listings to the pin.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from cliproxy.routing.pins import ProviderPin, resolve_pin
from cliproxy.state import AppState

PREFIX = "/api/provider/"
PIN = "cliproxy.pin"  # the provider word of a pinned call
PINNED_PATH = "cliproxy.pinned_path"  # the path the client sent
_WITHOUT_V1 = ("models", "chat/completions", "completions", "responses", "messages")


def route_path(rest: str) -> str | None:
    """The plain route a pinned path's remainder stands for; None when it stands for none."""
    if rest.startswith(("v1/", "v1beta/")) or rest in ("v1", "v1beta"):
        return "/" + rest
    if rest.startswith("v1beta1/") and "/models/" in rest:
        # Vertex-style `v1beta1/publishers/google/models/<model>:<method>` (Amp's Gemini calls).
        return "/v1beta/models/" + rest.split("/models/", 1)[1]
    if rest.startswith(_WITHOUT_V1):
        head = rest.split("/", 1)[0]
        if rest in _WITHOUT_V1 or rest.startswith(head + "/"):
            return "/v1/" + rest
    return None


class ProviderPinMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] in ("http", "websocket") and path.startswith(PREFIX):
            word, _, rest = path[len(PREFIX) :].partition("/")
            target = route_path(rest) if word else None
            if target is not None:
                scope = dict(scope)
                scope[PIN], scope[PINNED_PATH] = word, path
                scope["path"], scope["raw_path"] = target, target.encode()
        await self.app(scope, receive, send)


def pin_of(scope: Scope, state: AppState) -> ProviderPin | None:
    """The call's pin, resolved against the current registry (404 for an unknown word)."""
    word = scope.get(PIN)
    if word is None:
        return None
    kinds = {*state.account_providers, *(p.name for p in state.account_providers.values())}
    return resolve_pin(word, state.runtime.registry, kinds)
