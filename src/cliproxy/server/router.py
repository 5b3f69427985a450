"""Starlette's router with a shortcut for plain paths: the generation routes are looked up in a
dict instead of trying each route's regex in turn (the console's and management's routes come
first in the list, so a chat call used to try a dozen of them).

A path goes into the dict only when no route before it in the list could also match it, so the
first route that matches still wins, as in Starlette; a method the route does not take (a 405)
and every other path go the usual way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]


class ExactFirstRouter(Router):
    def __init__(self, routes: Sequence[BaseRoute], **options: object) -> None:
        super().__init__(list(routes), **options)  # type: ignore[arg-type]
        self._exact: dict[str, Route] = {}
        for index, route in enumerate(self.routes):
            if not isinstance(route, Route) or route.param_convertors or not route.methods:
                continue
            path = route.path
            earlier = self.routes[:index]
            if path in self._exact or any(_may_match(other, path) for other in earlier):
                continue
            self._exact[path] = route

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._exact.get(get_route_path(scope))
            if route is not None and scope["method"] in (route.methods or ()):
                scope.setdefault("router", self)
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = dict(scope.get("path_params", {}))
                await route.handle(scope, receive, send)
                return
        await super().app(scope, receive, send)


def _may_match(route: BaseRoute, path: str) -> bool:
    regex = getattr(route, "path_regex", None)
    return regex is None or regex.match(path) is not None


class Endpoint:
    """A request handler given to ``Route`` as a plain ASGI app, so Starlette calls it directly
    rather than through its per-route exception layer, which wraps ``send`` for every message
    of the reply (each chunk of a stream) and builds two closures per request. That layer only
    turns HTTPExceptions into the app's handlers; the generation routes raise ProxyErrors,
    which ErrorMiddleware answers, and the app-level exception layer still sees anything else."""

    __slots__ = ("handler",)

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)
