"""ExactFirstRouter (server/router.py): plain paths by dict, and the same answers as Starlette's
router: the first matching route wins, a wrong method is still a 405, other paths still route."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Message

from cliproxy.server.router import ExactFirstRouter


def answer(text: str):
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(text)

    return endpoint


ROUTES = [
    Route("/items/{name}", answer("param route"), methods=["GET"]),
    Route("/items/plain", answer("plain route, shadowed"), methods=["GET"]),
    Route("/v1/chat", answer("chat"), methods=["POST"]),
]


def app() -> Starlette:
    built = Starlette()
    built.router = ExactFirstRouter(ROUTES)
    return built


async def call(method: str, path: str) -> tuple[int, bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    await app()(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def test_only_unshadowed_plain_paths_take_the_shortcut() -> None:
    assert set(ExactFirstRouter(ROUTES)._exact) == {"/v1/chat"}


async def test_answers_are_starlettes() -> None:
    assert await call("POST", "/v1/chat") == (200, b"chat")
    assert await call("GET", "/items/plain") == (200, b"param route")  # the first match wins
    assert (await call("GET", "/v1/chat"))[0] == 405
    assert (await call("GET", "/nowhere"))[0] == 404
