"""What every management route shares: its context, JSON in and out, errors as JSON bodies."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cliproxy.management.errors import ApiError as ApiError
from cliproxy.management.errors import invalid as invalid
from cliproxy.model import ProxyError, loads_limited

if TYPE_CHECKING:
    from cliproxy.management.config_file import ConfigEditor
    from cliproxy.management.security import ManagementGuard
    from cliproxy.state import AppState

CONTEXT_KEY = "cliproxy.management"
MAX_BODY_BYTES = 8 * 1024 * 1024  # a config file or a provider list; far above real ones
OK = {"status": "ok"}


@dataclass
class ManagementContext:
    state_getter: Callable[[], AppState]
    editor: ConfigEditor
    guard: ManagementGuard


def context(request: Request) -> ManagementContext:
    found: ManagementContext = request.scope[CONTEXT_KEY]
    return found


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


Handler = Callable[[Request], Awaitable[Response]]


def api(handler: Handler) -> Handler:
    """Turns ApiError into its JSON reply, so handlers simply raise."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as error:
            return json_response(error.body(), error.status)

    return wrapped


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, None, f"body larger than {MAX_BODY_BYTES} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, None, f"body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> Any:
    """The JSON body; 400 `invalid body` when it is not JSON at all, 400 naming the limit when
    it nests deeper than the proxy writes or walks (model/json_limits.py)."""
    return parse_json(await read_body(request))


def parse_json(raw: bytes) -> Any:
    try:
        return loads_limited(raw, "body")
    except orjson.JSONDecodeError:
        raise ApiError(400, None, "invalid body") from None
    except ProxyError as error:
        raise ApiError(400, None, error.message) from None


async def read_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid("body: must be a JSON object")
    return body


def query_int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid(f"{name}: must be a whole number (got {raw[:40]!r})") from None


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def crud_routes(
    path: str, get: Handler, put: Handler, patch: Handler, delete: Handler
) -> list[Route]:
    """The four routes of one editable list or map: GET, PUT (replace), PATCH (one item) and
    DELETE (one item)."""
    return [
        Route(path, get, methods=["GET"]),
        Route(path, put, methods=["PUT"]),
        Route(path, patch, methods=["PATCH"]),
        Route(path, delete, methods=["DELETE"]),
    ]
