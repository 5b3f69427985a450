"""The OAuth device-authorization grant (RFC 8628), shared by every kind whose flow says
``grant="device_code"`` (Kimi, xAI): find the endpoints (OIDC discovery for an issuer), ask for
a device code, show the user code and verification URL, and poll the token endpoint until the
user approves, denies, or the code expires.

Polling follows the RFC: ``authorization_pending`` waits the interval again, ``slow_down``
adds the flow's step (5 s) to the interval for every later poll, ``expired_token`` and
``access_denied`` end the login with a message for the user. The flow's ``poll_timeout``
caps the whole wait even when the server grants a longer-lived code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson

from cliproxy.model import ProxyError
from cliproxy.providers.base import UpstreamRequest

from .flow_spec import OAuthFlow
from .oauth import TOKEN_TIMEOUT, OAuthError, TokenError, TokenSender, token_request

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DISCOVERY_PATH = "/.well-known/openid-configuration"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """The device-authorization reply: what the user types where, and what we poll with."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: float  # seconds the code lives (the flow's poll_timeout when not said)
    interval: float

    @property
    def url(self) -> str:
        """Where to send the user: the link with the code filled in when there is one."""
        return self.verification_uri_complete or self.verification_uri


# ----- endpoints ------------------------------------------------------------------------------


def _allowed(flow: OAuthFlow, default_issuer: str, url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if flow.issuer != default_issuer:
        # An overridden issuer (tests, a mirror the operator named): its own origin only.
        issuer = urlsplit(flow.issuer)
        return (parts.scheme, parts.netloc) == (issuer.scheme, issuer.netloc)
    if parts.scheme != "https":
        return False
    return any(host == domain or host.endswith("." + domain) for domain in flow.endpoint_domains)


async def discover(sender: TokenSender, flow: OAuthFlow, default_issuer: str = "") -> OAuthFlow:
    """The flow with its device and token endpoints from the issuer's discovery document
    (flows without an issuer are returned as they are). ``default_issuer``: the catalog's
    value, to tell an override apart. Raises OAuthError naming what is wrong."""
    if not flow.issuer:
        return flow
    url = flow.issuer.rstrip("/") + DISCOVERY_PATH
    request = UpstreamRequest(url, {"Accept": "application/json"}, b"", method="GET")
    status, data = await _exchange(sender, request, "the OIDC discovery document")
    if status != 200:
        raise OAuthError(f"the OIDC discovery document {url} answered {status}")
    document = _json_object(data)
    found: dict[str, Any] = {}
    for key, attr in (
        ("device_authorization_endpoint", "device_authorization_url"),
        ("token_endpoint", "token_url"),
    ):
        value = document.get(key)
        if not isinstance(value, str) or not value:
            raise OAuthError(f"the OIDC discovery document {url} names no {key}")
        if not _allowed(flow, default_issuer or flow.issuer, value):
            raise OAuthError(
                f"the OIDC discovery document {url} names {key} {value!r}, which is not "
                f"https on {' or '.join(flow.endpoint_domains) or 'the issuer'}; refusing it"
            )
        found[attr] = value
    return replace(flow, **found)


# ----- asking for a code and polling -----------------------------------------------------------


async def request_device_code(
    sender: TokenSender,
    flow: OAuthFlow,
    headers: Mapping[str, str] | None = None,
    proxy_url: str | None = None,
) -> DeviceCode:
    params = {"client_id": flow.client_id}
    if flow.scopes:
        params["scope"] = " ".join(flow.scopes)
    request = UpstreamRequest(
        flow.device_authorization_url,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            **(headers or {}),
        },
        urlencode(params).encode(),
    )
    status, data = await _exchange(sender, request, "the device-authorization endpoint", proxy_url)
    reply = _json_object(data)
    if status != 200:
        error = reply.get("error_description") or reply.get("error") or "no details"
        raise OAuthError(f"the device-authorization endpoint answered {status} ({error})")
    device_code, user_code = reply.get("device_code"), reply.get("user_code")
    uri = reply.get("verification_uri") or reply.get("verification_url")
    if not all(isinstance(v, str) and v for v in (device_code, user_code, uri)):
        raise OAuthError(
            "the device-authorization reply lacks device_code, user_code or verification_uri"
        )
    complete = reply.get("verification_uri_complete")
    return DeviceCode(
        device_code=str(device_code),
        user_code=str(user_code),
        verification_uri=str(uri),
        verification_uri_complete=complete if isinstance(complete, str) else "",
        expires_in=_seconds(reply.get("expires_in"), flow.poll_timeout),
        interval=_seconds(reply.get("interval"), flow.poll_interval),
    )


async def poll_for_tokens(
    sender: TokenSender,
    flow: OAuthFlow,
    code: DeviceCode,
    *,
    headers: Mapping[str, str] | None = None,
    proxy_url: str | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll until the user approved: the token reply. Raises OAuthError when the user
    denied, the code expired, or the wait ran past its limit."""
    # The server's interval (5 s when it names none), unless the flow's was overridden (tests).
    interval = flow.poll_interval if flow.poll_override else code.interval
    deadline = clock() + min(code.expires_in, flow.poll_timeout)
    params = {
        "grant_type": DEVICE_GRANT,
        "device_code": code.device_code,
        "client_id": flow.client_id,
    }
    while True:
        await sleep(interval)
        if clock() > deadline:
            raise OAuthError("the login code expired before it was approved; start again")
        try:
            return await token_request(
                sender, flow, params, proxy_url, encoding="form", headers=headers
            )
        except TokenError as exc:
            if exc.code == "authorization_pending":
                continue
            if exc.code == "slow_down":
                interval += flow.slow_down_step
                continue
            if exc.code == "expired_token":
                raise OAuthError(
                    "the login code expired before it was approved; start again"
                ) from None
            if exc.code == "access_denied":
                raise OAuthError("the login was denied on the verification page") from None
            if exc.permanent:
                raise OAuthError(f"the token endpoint refused the login: {exc}") from None
            # A transient failure (5xx, network): the code is still good, keep polling.
            continue


# ----- small helpers ---------------------------------------------------------------------------


async def _exchange(
    sender: TokenSender, request: UpstreamRequest, what: str, proxy_url: str | None = None
) -> tuple[int, bytes]:
    try:
        async with asyncio.timeout(TOKEN_TIMEOUT):
            response = await sender.send(request, proxy_url)
            try:
                return response.status, await response.read()
            finally:
                response.release()
    except TimeoutError:
        raise OAuthError(f"{what} did not answer in time") from None
    except (ProxyError, aiohttp.ClientError) as exc:
        raise OAuthError(f"cannot reach {what}: {exc}") from None


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _seconds(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default
