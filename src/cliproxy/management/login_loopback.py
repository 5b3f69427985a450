"""`?is_webui=true`: receive the browser's redirect on the vendor's fixed loopback port.

The authorize URL sends the browser to http://localhost:<vendor port><path> (1455 for Codex,
54545 for Claude, 8085 for Gemini). When the management page runs on the same machine as the
proxy, a listener there completes the login without any pasting. The reference binds all
interfaces and redirects to its own callback route; this one binds loopback only, hands the
code straight to the session, and stops as soon as the login ends or expires. Failing to bind
is not an error: the page still shows the URL, and the user can paste the callback instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .login_sessions import SESSION_TTL, LoginError, LoginSession, LoginSessions, Phase
from .login_sharing import LoginView

log = logging.getLogger(__name__)

# After the outcome, the browser's own request still needs its reply before the listener goes.
CLOSE_GRACE_SECONDS = 0.5

_PAGE = """<!doctype html><meta charset="utf-8"><title>cliproxy login</title>
<body style="font-family: sans-serif; margin: 3em"><h2>{title}</h2><p>{detail}</p>
<script>setTimeout(function () {{ window.close(); }}, 5000);</script></body>"""


def result_page(title: str, detail: str) -> str:
    """The small page a browser shows at the end of the redirect (closes itself after 5 s,
    as the reference's does)."""
    return _PAGE.format(title=html.escape(title), detail=html.escape(detail))


def outcome_page(session: LoginView | None) -> tuple[int, str]:
    """Status and page for a login (this instance's or another's) after its callback was
    handled."""
    if session is None or session.phase is Phase.FAILED:
        reason = session.error if session is not None else "unknown or expired login"
        return 400, result_page("Authentication failed", reason)
    if session.phase is Phase.DONE:
        detail = f"Saved {session.account}. You can close this window."
        return 200, result_page("Authentication successful", detail)
    return 200, result_page(
        "Authentication received", "The login is being completed; the management page shows it."
    )


async def finish_wait(session: LoginView, seconds: float) -> None:
    """Give the exchange a moment, so the page can say how the login ended."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(session.finished.wait(), seconds)


async def listen_for_callback(sessions: LoginSessions, session: LoginSession) -> bool:
    """Start the loopback listener for `session`; False (logged) when the port is unavailable.
    A listener of an earlier login on the same port is stopped first, as the reference does."""
    port = session.flow.callback_port
    earlier = sessions.listening.get(port)
    if earlier is not None and earlier.listener is not None:
        earlier.listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await earlier.listener
    app = web.Application()
    app.router.add_get(session.flow.callback_path, _handler(sessions, session))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    except OSError as exc:
        await runner.cleanup()
        log.warning(
            "%s login: cannot listen on 127.0.0.1:%d (%s); the callback URL must be pasted",
            session.provider,
            port,
            exc.strerror or exc,
        )
        return False
    # Browsers may resolve localhost to ::1 first; loopback too, so still local only.
    with contextlib.suppress(OSError):
        await web.TCPSite(runner, "::1", port).start()
    sessions.listening[port] = session
    session.listener = asyncio.create_task(
        _serve_until_done(sessions, session, runner, port), name=f"login listener :{port}"
    )
    return True


async def _serve_until_done(
    sessions: LoginSessions, session: LoginSession, runner: web.AppRunner, port: int
) -> None:
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.finished.wait(), SESSION_TTL)
        await asyncio.sleep(CLOSE_GRACE_SECONDS)
    finally:
        await runner.cleanup()
        if sessions.listening.get(port) is session:
            del sessions.listening[port]


def _handler(
    sessions: LoginSessions, session: LoginSession
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def callback(request: web.Request) -> web.Response:
        query = request.query
        # Only this login's state is taken; anything else (a stale tab, a forged request
        # from another local program) is refused without ending the login.
        if query.get("state", "") != session.state:
            page = result_page(
                "Authentication failed", "this callback is not for the pending login"
            )
            return web.Response(status=400, text=page, content_type="text/html")
        error = query.get("error", "")
        if error and query.get("error_description"):
            error = f"{error}: {query['error_description']}"
        try:
            sessions.submit(session.state, code=query.get("code", ""), error=error)
        except LoginError as exc:
            page = result_page("Authentication failed", exc.message)
            return web.Response(status=exc.status, text=page, content_type="text/html")
        await finish_wait(session, 30.0)
        status, page = outcome_page(session)
        return web.Response(status=status, text=page, content_type="text/html")

    return callback
