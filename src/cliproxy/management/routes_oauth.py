"""Logins started from the browser (the reference's §3.8, its Management Center "OAuth" page).

Under /v0/management (key required): `GET /<provider>-auth-url` starts a login and returns the
authorize URL and its state, `GET /get-auth-status?state=` is polled until ok or error,
`DELETE /oauth-session?state=` cancels. Finishing needs no key, as in the reference (the
unguessable, single-use state is the capability): the provider callback routes on the main
app (`/codex/callback`, `/anthropic/callback`, `/gemini-cli/callback`), and
`GET|POST /v0/management/oauth-callback` (and `/v8/management/oauth/callback`) with the pasted
callback URL, which only requires the management API to be enabled. `public_routes()` returns
those for the server's ROUTES.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from cliproxy.auth.catalog import catalog
from cliproxy.state import AppState

from .common import ApiError, Handler, json_response, read_object
from .login_loopback import finish_wait, listen_for_callback, outcome_page, result_page
from .login_sessions import LoginError, LoginSessions, canonical_provider
from .security import management_enabled

PREFIX = "/v0/management"
# The same callback in the /v8/management tree (v8_routes.py).
V8_CALLBACK = "/v8/management/oauth/callback"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
CALLBACK_FIELDS = ("provider", "redirect_url", "code", "state", "error")
# How long a provider callback page waits for the exchange, to say how the login ended.
PAGE_WAIT_SECONDS = 30.0
# The provider callback routes (no key): the client api-keys check must not apply to them.
# Path → the login it finishes, from each kind's catalog entry.
CALLBACK_ROUTES = {
    f"/{name}/callback": entry.login
    for entry in catalog().entries
    for name in entry.callback_routes
}
CALLBACK_PATHS = frozenset(CALLBACK_ROUTES)


def login_sessions(app: Any) -> LoginSessions:
    """The server's login sessions, kept on the Starlette app so the management mount and
    the public callback routes share them (created on first use)."""
    sessions = getattr(app.state, "oauth_logins", None)
    if not isinstance(sessions, LoginSessions):
        sessions = LoginSessions()
        app.state.oauth_logins = sessions
    return sessions


def _app_state(request: Request) -> AppState:
    state = getattr(request.app.state, "cliproxy", None)
    if not isinstance(state, AppState):
        raise ApiError(500, None, "login routes are not attached to a cliproxy server")
    return state


def _refusals(handler: Handler) -> Handler:
    """LoginError and ApiError → `{"error": message}` with their status."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except LoginError as exc:
            return json_response({"error": exc.message}, exc.status)
        except ApiError as exc:
            return json_response(exc.body(), exc.status)

    return wrapped


# ----- starting, polling, cancelling (behind the key) -------------------------------------------


def _starter(provider: str) -> Handler:
    @_refusals
    async def start_login(request: Request) -> Response:
        """Start a login: {"status":"ok","url":<authorize URL>,"state":<state>}."""
        sessions = login_sessions(request.app)
        query = request.query_params
        entry = catalog().by_login(provider)
        if entry is not None and entry.flow.device:
            return await _start_device(request, provider)
        takes_project = entry is not None and entry.cloud_project
        project = query.get("project_id", "").strip() if takes_project else ""
        session = sessions.start(provider, _app_state(request), project or None)
        if query.get("is_webui", "").strip().lower() in TRUE_WORDS:
            await listen_for_callback(sessions, session)
        return json_response({"status": "ok", "url": session.url, "state": session.state})

    return start_login


async def _start_device(request: Request, provider: str) -> Response:
    """A device-code login (kimi, xai): the verification URL, the user code to type there and
    how long it lives, as the reference answers; then poll get-auth-status."""
    session = await login_sessions(request.app).start_device(provider, _app_state(request))
    return json_response(
        {
            "status": "ok",
            "url": session.url,
            "state": session.state,
            "flow": "device",
            "user_code": session.user_code,
            "expires_in": int(session.expires_in),
        }
    )


@_refusals
async def get_auth_status(request: Request) -> Response:
    """{"status":"wait"} | {"status":"ok"} | {"status":"error","error":...}"""
    state = request.query_params.get("state", "").strip()
    return json_response(login_sessions(request.app).status(state))


@_refusals
async def delete_oauth_session(request: Request) -> Response:
    """Cancel a pending login: {"status":"ok","cancelled":bool}."""
    state = request.query_params.get("state", "").strip()
    if not state:
        raise LoginError(400, "state is required")
    cancelled = login_sessions(request.app).cancel(state)
    return json_response({"status": "ok", "cancelled": cancelled})


# ----- finishing ---------------------------------------------------------------------------------


def redirect_params(text: str) -> dict[str, str]:
    """code/state/error from what the user pasted: the callback URL, its query string, or
    Anthropic's `code#state`."""
    pasted = text.strip().strip("'\"")
    if not pasted:
        return {}
    if "://" in pasted or pasted.startswith(("/", "?")):
        try:
            parts = urlsplit(pasted)
        except ValueError:  # e.g. an unclosed IPv6 bracket: "http://[::1/?code=..."
            raise ApiError(400, None, "redirect_url: not a valid URL") from None
        query = parts.query or (parts.fragment if "=" in parts.fragment else "")
    elif "=" in pasted:
        query = pasted
    else:
        code, _, state = pasted.partition("#")
        return {"code": code, "state": state}
    return {name: values[0] for name, values in parse_qs(query).items() if values}


def _callback_fields(source: dict[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name in (*CALLBACK_FIELDS, "error_description"):
        value = source.get(name)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ApiError(400, None, f"{name}: must be a string")
        fields[name] = value.strip()
    # The pasted URL only fills what the request left out.
    for name, value in redirect_params(fields["redirect_url"]).items():
        if name in fields and not fields[name]:
            fields[name] = value
    if "#" in fields["code"]:  # Anthropic's page shows code#state; people paste it as the code
        code, _, state = fields["code"].partition("#")
        fields["code"] = code
        fields["state"] = fields["state"] or state
    if fields["error"] and fields["error_description"]:
        fields["error"] = f"{fields['error']}: {fields['error_description']}"
    return fields


@_refusals
async def oauth_callback(request: Request) -> Response:
    """Finish a login from the pasted callback: {"provider","redirect_url","code","state",
    "error"} as a JSON body (POST) or query (GET) → {"status":"ok"}; the exchange goes on in
    the background (poll get-auth-status)."""
    if request.method == "POST":
        source: dict[str, Any] = await read_object(request)
    else:
        source = dict(request.query_params)
    fields = _callback_fields(source)
    if fields["provider"] and canonical_provider(fields["provider"]) is None:
        raise LoginError(400, f"unknown provider {fields['provider']!r}")
    login_sessions(request.app).submit(
        fields["state"], provider=fields["provider"], code=fields["code"], error=fields["error"]
    )
    return json_response({"status": "ok"})


async def public_oauth_callback(request: Request) -> Response:
    """/v0/management/oauth-callback without the key: only the availability check applies."""
    if not management_enabled(_app_state(request).runtime.config.remote_management):
        return Response(b"", status_code=404)
    return await oauth_callback(request)


def _provider_callback(provider: str) -> Handler:
    async def provider_callback(request: Request) -> Response:
        """Where the browser lands after approving: finish the login, show how it went."""
        query = request.query_params
        names = ("code", "state", "error", "error_description")
        fields = _callback_fields({name: query.get(name) for name in names})
        sessions = login_sessions(request.app)
        try:
            sessions.submit(
                fields["state"], provider=provider, code=fields["code"], error=fields["error"]
            )
        except (LoginError, ApiError) as exc:
            return HTMLResponse(result_page("Authentication failed", exc.message), exc.status)
        session = sessions.view(fields["state"])  # this instance's login or another's
        if session is not None:
            await finish_wait(session, PAGE_WAIT_SECONDS)
        status, page = outcome_page(session)
        return HTMLResponse(page, status)

    return provider_callback


# ----- route tables ------------------------------------------------------------------------------

# Path → the login it starts, from each kind's catalog entry.
_STARTERS = {
    f"/{name}-auth-url": entry.login for entry in catalog().entries for name in entry.login_routes
}

# Logins CLIProxyAPI offers that cliproxy does not: a clear JSON refusal instead of "no route",
# so the Management Center's card shows why.
_UNSUPPORTED = tuple(
    name
    for name in ("antigravity", "kimi", "xai", "qwen", "iflow")
    if catalog().by_login(name) is None
)


def _supported_logins() -> str:
    """The logins offered, naming the kind where the login's name does not show it
    ("anthropic (claude)")."""
    return ", ".join(
        entry.login if entry.login.startswith(entry.kind) else f"{entry.login} ({entry.kind})"
        for entry in catalog().entries
    )


def unsupported_login(provider: str) -> Response:
    return json_response(
        {
            "status": "error",
            "error": f"{provider} logins are not supported by cliproxy; "
            f"supported: {_supported_logins()}",
        },
        422,
    )


def _refuse_login(provider: str) -> Handler:
    async def unsupported(request: Request) -> Response:
        return unsupported_login(provider)

    return unsupported


ROUTES: list[Route] = [
    *(Route(path, _starter(provider), methods=["GET"]) for path, provider in _STARTERS.items()),
    *(Route(f"/{name}-auth-url", _refuse_login(name), methods=["GET"]) for name in _UNSUPPORTED),
    Route("/get-auth-status", get_auth_status, methods=["GET"]),
    Route("/oauth-session", delete_oauth_session, methods=["DELETE"]),
    # Also reachable without the key through public_routes(); listed here so the OpenAPI
    # document names it and a server without the public registration still finishes logins.
    Route("/oauth-callback", oauth_callback, methods=["GET", "POST"]),
]


def public_routes() -> list[Route]:
    """Routes for the main app's ROUTES, ahead of the /v0/management mount."""
    return [
        *(
            Route(path, _provider_callback(provider), methods=["GET"])
            for path, provider in CALLBACK_ROUTES.items()
        ),
        Route(PREFIX + "/oauth-callback", public_oauth_callback, methods=["GET", "POST"]),
        Route(V8_CALLBACK, public_oauth_callback, methods=["GET", "POST"]),
    ]
