"""One login, start to finish: authorize in the browser (or by pasting the callback), exchange
the code, learn who the account is, and write its auth file.

The terminal side (printing, prompting, opening the browser) is behind `LoginUI`, so the CLI
renders it with rich and tests drive it directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from cliproxy.providers.client_profiles import ClientIdentities
from cliproxy.providers.transport import UpstreamClient

from .device_login import run_device_login
from .flow_spec import ProjectSetup
from .flows import OAuthFlow, oauth_flow
from .gemini_setup import discover_project, fetch_email
from .identity import Identity, identity_from_tokens
from .login_common import LoginResult, LoginUI, save_account
from .oauth import (
    CallbackServer,
    OAuthError,
    TokenError,
    authorize_url,
    exchange_code,
    new_pkce,
    new_state,
    parse_pasted,
)
from .store import AuthStore

__all__ = ["LoginResult", "LoginUI", "finish_login", "run_login", "save_account"]

CALLBACK_TIMEOUT = 600.0


async def run_login(
    provider: str,
    store: AuthStore,
    ui: LoginUI,
    *,
    flow: OAuthFlow | None = None,
    no_browser: bool = False,
    port: int | None = None,
    project: str | None = None,
    proxy_url: str | None = None,
    callback_timeout: float = CALLBACK_TIMEOUT,
    onboard_poll_interval: float = 2.0,
) -> LoginResult:
    """Raises OAuthError (with a message for the user) or AuthWriteError."""
    flow = flow or oauth_flow(provider)
    if flow.device:
        return await run_device_login(flow, store, ui, no_browser=no_browser, proxy_url=proxy_url)
    pkce, state = new_pkce(), new_state()
    if no_browser:
        redirect_uri = flow.redirect_uri(port)
        url = authorize_url(flow, redirect_uri, state, pkce)
        ui.show_url(url, paste=True)
        pasted = await asyncio.to_thread(ui.prompt, "Paste the callback URL here")
        code = parse_pasted(pasted, state)
    else:
        server = CallbackServer(flow.callback_path, state)
        await server.start(flow.callback_port if port is None else port)
        try:
            redirect_uri = flow.redirect_uri(server.port)
            url = authorize_url(flow, redirect_uri, state, pkce)
            ui.show_url(url, paste=False)
            if not await asyncio.to_thread(ui.open_browser, url):
                ui.info("No browser could be opened here: open the URL above yourself.")
            ui.info(f"Waiting for the login callback on {redirect_uri} ...")
            try:
                code = await asyncio.wait_for(server.wait(), callback_timeout)
            except TimeoutError:
                raise OAuthError("no login callback arrived in time; start again") from None
        finally:
            await server.close()

    ui.info("Exchanging the authorization code for tokens ...")
    return await finish_login(
        flow,
        store,
        code=code,
        verifier=pkce.verifier,
        redirect_uri=redirect_uri,
        state=state,
        project=project,
        proxy_url=proxy_url,
        progress=ui.info,
        onboard_poll_interval=onboard_poll_interval,
    )


async def finish_login(
    flow: OAuthFlow,
    store: AuthStore,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
    state: str,
    project: str | None = None,
    proxy_url: str | None = None,
    progress: Callable[[str], None] | None = None,
    onboard_poll_interval: float = 2.0,
) -> LoginResult:
    """The second half of a login, shared by the CLI and the management API: exchange the
    authorization code, learn who the account is, and write (or update) its auth file.
    Raises OAuthError (with a message for the user) or AuthWriteError."""
    client = UpstreamClient(global_proxy=proxy_url, read_timeout=60)
    try:
        tokens = await exchange_code(
            client, flow, code=code, verifier=verifier, redirect_uri=redirect_uri, state=state
        )
    except TokenError as exc:
        raise OAuthError(f"the token exchange failed: {exc}") from None
    finally:
        await client.close()

    identity = identity_from_tokens(flow.provider, tokens)
    project_id, project_auto = project or "", False
    if flow.project_setup is not None:
        identity, project_id, project_auto = await _google_account(
            flow,
            flow.project_setup,
            tokens,
            project,
            progress or _quiet,
            proxy_url,
            onboard_poll_interval,
        )
    return save_account(flow, store, tokens, identity, project_id, project_auto)


def _quiet(message: str) -> None:
    return None


async def _google_account(
    flow: OAuthFlow,
    setup: ProjectSetup,
    tokens: dict[str, Any],
    project: str | None,
    progress: Callable[[str], None],
    proxy_url: str | None,
    poll_interval: float,
) -> tuple[Identity, str, bool]:
    access = str(tokens["access_token"])
    headers: dict[str, str] = {}
    version = ""
    if setup.vendor:
        profile = ClientIdentities().profile(setup.vendor)
        headers["user-agent"] = profile.user_agent_for()
        version = profile.version
    # Only plain HTTP(S) proxies here; SOCKS needs the transport's connector.
    proxy = proxy_url if proxy_url and proxy_url.startswith(("http://", "https://")) else None
    async with aiohttp.ClientSession(trust_env=False, proxy=proxy) as session:
        email = await fetch_email(session, flow.userinfo_url, access)
        if project:
            return Identity(email=email), project, False
        progress(f"Looking up the Google Cloud project for {setup.label} ...")
        found = await discover_project(
            session,
            flow.code_assist_base_url,
            access,
            setup=setup,
            headers=headers,
            version=version,
            poll_interval=poll_interval,
            progress=progress,
        )
    return Identity(email=email), found, True
