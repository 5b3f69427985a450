"""The shared OAuth pieces: PKCE, authorize URLs, pasted callbacks, the loopback server, the
per-provider data and endpoint overrides."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cliproxy.auth.flows import oauth_flow
from cliproxy.auth.oauth import (
    CallbackServer,
    OAuthError,
    PortBusyError,
    authorize_url,
    new_pkce,
    parse_pasted,
)


def test_pkce_is_s256_of_the_verifier() -> None:
    pkce = new_pkce()
    assert 43 <= len(pkce.verifier) <= 128
    digest = hashlib.sha256(pkce.verifier.encode()).digest()
    assert pkce.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert new_pkce().verifier != pkce.verifier


@pytest.mark.parametrize(
    ("provider", "port", "path", "extra"),
    [
        ("codex", 1455, "/auth/callback", {"codex_cli_simplified_flow": "true"}),
        ("claude", 54545, "/callback", {"code": "true"}),
        ("gemini", 8085, "/oauth2callback", {"access_type": "offline", "prompt": "consent"}),
    ],
)
def test_authorize_url_carries_the_provider_data(
    provider: str, port: int, path: str, extra: dict[str, str]
) -> None:
    flow = oauth_flow(provider, env={})
    pkce = new_pkce()
    url = authorize_url(flow, flow.redirect_uri(), "st4te", pkce)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(flow.authorize_url + "?")
    assert query["redirect_uri"] == f"http://localhost:{port}{path}"
    assert query["client_id"] == flow.client_id
    assert query["code_challenge"] == pkce.challenge
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == "st4te"
    assert query["response_type"] == "code"
    for key, value in extra.items():
        assert query[key] == value


def test_endpoints_are_overridable_by_environment() -> None:
    env = {
        "CLIPROXY_GEMINI_TOKEN_URL": "http://127.0.0.1:1/token",
        "CLIPROXY_GEMINI_AUTHORIZE_URL": "http://127.0.0.1:1/auth",
        "CLIPROXY_GEMINI_USERINFO_URL": "http://127.0.0.1:1/userinfo",
        "CLIPROXY_CODE_ASSIST_BASE_URL": "http://127.0.0.1:1/",
        "CLIPROXY_CODEX_TOKEN_URL": "http://127.0.0.1:2/token",
    }
    gemini = oauth_flow("gemini", env=env)
    assert (gemini.token_url, gemini.authorize_url, gemini.userinfo_url) == (
        "http://127.0.0.1:1/token",
        "http://127.0.0.1:1/auth",
        "http://127.0.0.1:1/userinfo",
    )
    assert gemini.code_assist_base_url == "http://127.0.0.1:1"
    assert oauth_flow("codex", env=env).token_url == "http://127.0.0.1:2/token"
    assert oauth_flow("claude", env=env).token_url == "https://platform.claude.com/v1/oauth/token"


@pytest.mark.parametrize(
    "pasted",
    [
        "http://localhost:1455/auth/callback?code=abc&state=S1",
        "  'http://localhost:1455/auth/callback?state=S1&code=abc'  ",
        "code=abc&state=S1",
        "?code=abc&state=S1",
        "abc#S1",
    ],
)
def test_pasted_callback_forms(pasted: str) -> None:
    assert parse_pasted(pasted, "S1") == "abc"


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        ("http://localhost/cb?code=abc&state=OTHER", "state does not match"),
        ("abc#OTHER", "state does not match"),
        ("http://localhost/cb?state=S1", "no authorization code"),
        ("http://localhost/cb?error=access_denied&state=S1", "refused the login: access_denied"),
        ("justacode", "not a callback URL"),
        ("", "nothing was pasted"),
    ],
)
def test_bad_pastes_are_explained(pasted: str, message: str) -> None:
    with pytest.raises(OAuthError, match=message):
        parse_pasted(pasted, "S1")


async def test_callback_server_receives_the_code_and_ignores_other_paths() -> None:
    server = CallbackServer("/cb", "S1")
    await server.start(0)
    try:
        async with httpx.AsyncClient() as client:
            other = await client.get(f"http://127.0.0.1:{server.port}/favicon.ico")
            assert other.status_code == 404
            page = await client.get(f"http://localhost:{server.port}/cb?code=c0de&state=S1")
        assert page.status_code == 200 and "Login complete" in page.text
        assert await asyncio.wait_for(server.wait(), 2) == "c0de"
    finally:
        await server.close()


async def test_callback_with_wrong_state_fails_the_login() -> None:
    server = CallbackServer("/cb", "S1")
    await server.start(0)
    try:
        async with httpx.AsyncClient() as client:
            page = await client.get(f"http://127.0.0.1:{server.port}/cb?code=x&state=forged")
        assert page.status_code == 400
        with pytest.raises(OAuthError, match="state does not match"):
            await asyncio.wait_for(server.wait(), 2)
    finally:
        await server.close()


async def test_busy_port_is_reported_with_the_ways_out() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = CallbackServer("/cb", "S1")
        with pytest.raises(PortBusyError) as caught:
            await server.start(port)
    message = str(caught.value)
    assert f"port {port} is already in use" in message
    assert "--port" in message and "--no-browser" in message
