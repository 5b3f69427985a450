"""A device-code login start to finish (Kimi, xAI), shared by `cliproxy login` and the
management API: resolve the endpoints, get a code, show it, poll, write the auth file.

The two halves are separate so the management API can answer the start call with the user
code and verification URL at once, and poll in the background.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from cliproxy.providers.client_profiles import ClientIdentities
from cliproxy.providers.transport import UpstreamClient

from .catalog import catalog
from .device import DeviceCode, Sleep, discover, poll_for_tokens, request_device_code
from .flow_spec import OAuthFlow
from .login_common import LoginResult, LoginUI, save_account
from .store import AuthStore


@dataclass(frozen=True, slots=True)
class DeviceLogin:
    """A started device login: the flow with its endpoints found, the code to show, and the
    identity headers every call of this login carries."""

    flow: OAuthFlow
    code: DeviceCode
    device_id: str
    headers: dict[str, str]


async def begin_device_login(
    flow: OAuthFlow,
    *,
    identities: ClientIdentities | None = None,
    proxy_url: str | None = None,
) -> DeviceLogin:
    """Raises OAuthError with a message for the user."""
    entry = catalog().entry(flow.provider)
    profile = (identities or ClientIdentities()).profile(entry.vendor)
    device_id = entry.file.new_device_id()
    headers = profile.refresh_headers(device_id)
    client = UpstreamClient(global_proxy=proxy_url, read_timeout=60)
    try:
        resolved = await discover(client, flow, entry.flow.issuer)
        code = await request_device_code(client, resolved, headers)
    finally:
        await client.close()
    return DeviceLogin(resolved, code, device_id, headers)


async def finish_device_login(
    login: DeviceLogin,
    store: AuthStore,
    *,
    proxy_url: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> LoginResult:
    """Poll until the user decides, then write the account's file. Raises OAuthError or
    AuthWriteError."""
    client = UpstreamClient(global_proxy=proxy_url, read_timeout=60)
    try:
        tokens = await poll_for_tokens(
            client, login.flow, login.code, headers=login.headers, sleep=sleep
        )
    finally:
        await client.close()
    entry = catalog().entry(login.flow.provider)
    identity = entry.file.identity(tokens)
    if login.device_id:
        identity = replace(identity, account_id=login.device_id)
    return save_account(login.flow, store, tokens, identity)


async def run_device_login(
    flow: OAuthFlow,
    store: AuthStore,
    ui: LoginUI,
    *,
    no_browser: bool = False,
    proxy_url: str | None = None,
) -> LoginResult:
    login = await begin_device_login(flow, proxy_url=proxy_url)
    ui.show_url(login.code.url, paste=False)
    ui.info(f"Enter the code {login.code.user_code} on that page if it asks for one.")
    if not no_browser and not await asyncio.to_thread(ui.open_browser, login.code.url):
        ui.info("No browser could be opened here: open the URL above yourself.")
    ui.info("Waiting for the login to be approved ...")
    return await finish_device_login(login, store, proxy_url=proxy_url)
