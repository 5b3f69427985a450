"""The OAuth machinery shared by every provider: PKCE, the authorize URL, the loopback callback
server, reading a pasted callback, and the token endpoint (code exchange and refresh).

Provider differences are data (flows.OAuthFlow): form or JSON token bodies, a client secret,
extra authorize parameters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import html
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import orjson
from aiohttp import web

from cliproxy.model import ProxyError
from cliproxy.providers.base import UpstreamReply, UpstreamRequest

from .flow_spec import OAuthFlow

TOKEN_TIMEOUT = 30.0
# OAuth error codes that no retry will fix: the grant or the client is not accepted.
_PERMANENT_ERRORS = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"}


class OAuthError(Exception):
    """A login step failed; the message is meant for the user."""


class PortBusyError(OAuthError):
    def __init__(self, port: int) -> None:
        super().__init__(
            f"port {port} is already in use, so the login callback cannot be received. "
            f"Close what is using it, pick another port with --port N, or use --no-browser "
            f"to paste the callback URL instead."
        )
        self.port = port


class TokenError(Exception):
    """The token endpoint refused or could not be reached. ``permanent`` means retrying with
    the same grant cannot succeed (the account must log in again)."""

    def __init__(
        self, message: str, *, permanent: bool, status: int | None = None, code: str = ""
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.code = code


class TokenSender(Protocol):
    """What posts to a token endpoint; cliproxy.providers.transport.UpstreamClient fits."""

    async def send(
        self, request: UpstreamRequest, proxy_url: str | None = None
    ) -> UpstreamReply: ...


# ----- PKCE and the authorize URL ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(64)[:96]  # 43..128 characters of the unreserved set
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return Pkce(verifier, challenge)


def new_state() -> str:
    return secrets.token_urlsafe(24)


def authorize_url(flow: OAuthFlow, redirect_uri: str, state: str, pkce: Pkce) -> str:
    params = [
        *flow.extra_authorize_params,
        ("client_id", flow.client_id),
        ("response_type", "code"),
        ("redirect_uri", redirect_uri),
        ("scope", " ".join(flow.scopes)),
        ("code_challenge", pkce.challenge),
        ("code_challenge_method", "S256"),
        ("state", state),
    ]
    joiner = "&" if "?" in flow.authorize_url else "?"
    return flow.authorize_url + joiner + urlencode(params)


# ----- the callback ----------------------------------------------------------------------------


def code_from_params(params: dict[str, str], expected_state: str) -> str:
    """The authorization code from callback parameters, after checking state and errors."""
    if error := params.get("error"):
        detail = params.get("error_description", "")
        raise OAuthError(
            f"the provider refused the login: {error}{': ' + detail if detail else ''}"
        )
    code = params.get("code", "")
    if not code:
        raise OAuthError("the callback carries no authorization code")
    if params.get("state", "") != expected_state:
        raise OAuthError(
            "the callback's state does not match this login (a stale or forged callback); "
            "start the login again"
        )
    return code


def parse_pasted(text: str, expected_state: str) -> str:
    """Read what the user pasted: the full callback URL, its query string, or ``code#state``
    (what Anthropic's page shows). Returns the code after checking the state."""
    pasted = text.strip().strip("'\"")
    if not pasted:
        raise OAuthError("nothing was pasted")
    if "://" in pasted or pasted.startswith("/"):
        query = urlsplit(pasted).query
    elif "=" in pasted:
        query = pasted.lstrip("?")
    elif "#" in pasted:
        code, _, state = pasted.partition("#")
        return code_from_params({"code": code, "state": state}, expected_state)
    else:
        raise OAuthError(
            "that is not a callback URL; paste the whole address the browser ended on "
            "(it contains code= and state=)"
        )
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    return code_from_params(params, expected_state)


_DONE_PAGE = """<!doctype html><meta charset="utf-8"><title>cliproxy login</title>
<body style="font-family: sans-serif; margin: 3em">
<h2>{title}</h2><p>{detail}</p></body>"""


class CallbackServer:
    """Receives the browser's redirect on http://localhost:PORT/PATH (127.0.0.1, and ::1 when
    the system has it, since browsers may resolve localhost to either)."""

    def __init__(self, path: str, expected_state: str) -> None:
        self.path = path
        self.expected_state = expected_state
        self.port = 0
        self._result: asyncio.Future[str] | None = None
        self._runner: web.AppRunner | None = None

    async def start(self, port: int) -> None:
        self._result = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get(self.path, self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, "127.0.0.1", port).start()
        except OSError as exc:
            await self.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortBusyError(port) from None
            raise OAuthError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self.port = port or self._bound_port()
        with contextlib.suppress(OSError):
            await web.TCPSite(self._runner, "::1", self.port).start()

    def _bound_port(self) -> int:
        assert self._runner is not None
        for address in self._runner.addresses:
            return int(address[1])
        return 0

    async def wait(self) -> str:
        """The authorization code, once a valid callback arrived."""
        assert self._result is not None, "start() first"
        return await asyncio.shield(self._result)

    async def _callback(self, request: web.Request) -> web.Response:
        assert self._result is not None
        params = dict(request.query)
        try:
            code = code_from_params(params, self.expected_state)
        except OAuthError as exc:
            if not self._result.done():
                self._result.set_exception(exc)
            return _page(400, "Login failed", str(exc))
        if not self._result.done():
            self._result.set_result(code)
        return _page(200, "Login complete", "You can close this tab and return to the terminal.")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _page(status: int, title: str, detail: str) -> web.Response:
    body = _DONE_PAGE.format(title=html.escape(title), detail=html.escape(detail))
    return web.Response(status=status, text=body, content_type="text/html")


# ----- the token endpoint ----------------------------------------------------------------------


async def exchange_code(
    sender: TokenSender,
    flow: OAuthFlow,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
    state: str,
    proxy_url: str | None = None,
) -> dict[str, Any]:
    params = {
        "grant_type": "authorization_code",
        "client_id": flow.client_id,
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    if flow.client_secret:
        params["client_secret"] = flow.client_secret
    if flow.send_state_in_exchange:
        params["state"] = state
    return await token_request(sender, flow, params, proxy_url)


async def refresh_grant(
    sender: TokenSender,
    flow: OAuthFlow,
    refresh_token: str,
    *,
    client_id: str = "",
    client_secret: str = "",
    proxy_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Exchange a refresh token the way the vendor's CLI does (the flow's refresh_* data); a
    file's own client id/secret (gemini) win over the flow's. ``headers``: the CLI's
    user-agent and identity headers."""
    values = {
        "grant_type": "refresh_token",
        "client_id": client_id or flow.client_id,
        "refresh_token": refresh_token,
        "client_secret": client_secret or flow.client_secret,
        **dict(flow.refresh_extra),
    }
    params = {name: values[name] for name in flow.refresh_fields if values.get(name)}
    return await token_request(
        sender,
        flow,
        params,
        proxy_url,
        encoding=flow.refresh_body,
        content_type=flow.refresh_content_type,
        headers=headers,
    )


async def token_request(
    sender: TokenSender,
    flow: OAuthFlow,
    params: dict[str, str],
    proxy_url: str | None,
    *,
    encoding: str = "",
    content_type: str = "",
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    if (encoding or flow.token_body) == "json":
        body, media_type = orjson.dumps(params), "application/json"
    else:
        body, media_type = urlencode(params).encode(), "application/x-www-form-urlencoded"
    request = UpstreamRequest(
        url=flow.token_url,
        headers={
            "Content-Type": content_type or media_type,
            "Accept": "application/json",
            **(headers or {}),
        },
        body=body,
    )
    try:
        async with asyncio.timeout(TOKEN_TIMEOUT):
            response = await sender.send(request, proxy_url)
            try:
                status = response.status
                data = await response.read()
            finally:
                response.release()
    except TimeoutError:
        raise TokenError("the token endpoint did not answer in time", permanent=False) from None
    except (ProxyError, aiohttp.ClientError) as exc:
        raise TokenError(f"cannot reach the token endpoint: {exc}", permanent=False) from None
    return _read_token_reply(status, data)


def _read_token_reply(status: int, data: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if status == 200:
        if not isinstance(payload.get("access_token"), str) or not payload["access_token"]:
            raise TokenError("the token endpoint answered without an access_token", permanent=False)
        return payload
    code, description = _error_fields(payload)
    detail = f"{code}: {description}" if description else code or "no details"
    permanent = code in _PERMANENT_ERRORS or status in (400, 401, 403)
    raise TokenError(
        f"token endpoint answered {status} ({detail})",
        permanent=permanent,
        status=status,
        code=code,
    )


def _error_fields(payload: dict[str, Any]) -> tuple[str, str]:
    error = payload.get("error")
    if isinstance(error, dict):  # {"error": {"type"/"code": ..., "message": ...}}
        code = error.get("code") or error.get("type") or ""
        return str(code), str(error.get("message", ""))
    description = payload.get("error_description", "")
    return (error if isinstance(error, str) else ""), str(description or "")
