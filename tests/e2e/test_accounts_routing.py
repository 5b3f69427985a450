"""Accounts from the auth dir serve requests: files in CLIProxyAPI's format are routed, tokens
are refreshed before use and after a 401, and files added or removed take effect live."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.clients import CLIENTS, ask
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim
from tests.simulators.code_assist_sim import CodeAssistSim
from tests.simulators.codex_backend_sim import CodexBackendSim
from tests.simulators.oauth_sim import OAuthSim

MODELS = {"codex": "gpt-6-codex", "claude": "claude-sonnet-4-6", "gemini": "gemini-2.5-flash"}


class ValidTokens:
    """Accepts exactly the access tokens the OAuth simulator has issued and not replaced."""

    def __init__(self, oauth: OAuthSim) -> None:
        self.oauth = oauth

    def __bool__(self) -> bool:
        return True

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.oauth.access_token_valid(token)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    auth_dir = tmp_path_factory.mktemp("accounts")
    with (
        OAuthSim() as oauth,
        CodexBackendSim() as codex,
        ClaudeOAuthSim() as claude,
        CodeAssistSim() as gemini,
    ):
        sims = {"codex": codex, "claude": claude, "gemini": gemini}
        env = {
            **oauth.env(),
            **{f"CLIPROXY_{k.upper()}_BASE_URL": s.base_url for k, s in sims.items()},
        }
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            for style, sim in sims.items():
                sim.api_keys = ValidTokens(oauth)  # type: ignore[assignment]
                _write(auth_dir, style, oauth.auth_file(style))
            with ProxyServer(f"auth-dir: {auth_dir}\n") as proxy:
                yield {"proxy": proxy, "oauth": oauth, "sims": sims, "auth_dir": auth_dir}


def _write(auth_dir: Path, style: str, content: dict[str, Any]) -> Path:
    path = auth_dir / f"{style}-account.json"
    path.write_text(json.dumps(content))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("style", list(MODELS))
@pytest.mark.parametrize("client", CLIENTS)
def test_every_client_reaches_every_account(client: str, style: str, world: dict[str, Any]) -> None:
    world["sims"][style].queue(Reply.text("hello from your subscription"))
    answer = ask(client, world["proxy"].base_url, MODELS[style], "hi", stream=client != "gemini")
    assert answer.text == "hello from your subscription"


def test_accounts_are_listed_in_models(world: dict[str, Any]) -> None:
    listed = {m["id"] for m in httpx.get(world["proxy"].base_url + "/v1/models").json()["data"]}
    assert set(MODELS.values()) <= listed
    assert "demo-echo" not in listed  # accounts count as configured upstreams


@pytest.mark.parametrize("style", list(MODELS))
def test_expiring_token_is_refreshed_before_use(style: str, world: dict[str, Any]) -> None:
    oauth: OAuthSim = world["oauth"]
    name = f"{style}-account.json"
    old_token = _token_in_store(world, name)
    calls_before = oauth.refresh_calls
    content = oauth.auth_file(style, expires_in=5)
    original = content["token"]["access_token"] if style == "gemini" else content["access_token"]
    path = _write(world["auth_dir"], style, content)
    # The store sees the new file (or already refreshed it: 5 s is inside the refresh lead).
    _wait_for(lambda: _token_in_store(world, name) not in (None, old_token))
    world["sims"][style].queue(Reply.text("fresh"))
    answer = ask("openai_chat", world["proxy"].base_url, MODELS[style], "hi", stream=False)
    assert answer.text == "fresh"
    saved = json.loads(path.read_text())
    token = saved["token"]["access_token"] if style == "gemini" else saved["access_token"]
    assert oauth.access_token_valid(token)
    sent = world["sims"][style].last_request.headers["authorization"]
    assert sent == f"Bearer {token}"
    assert token != original  # the short-lived token was replaced, and the file saved
    assert oauth.refresh_calls > calls_before


def test_a_401_refreshes_once_and_retries(world: dict[str, Any]) -> None:
    sim = world["sims"]["claude"]
    sim.queue(Reply.error(401, "token revoked upstream"), Reply.text("after refresh"))
    answer = ask("anthropic", world["proxy"].base_url, MODELS["claude"], "hi", stream=False)
    assert answer.text == "after refresh"
    first, second = sim.requests[-2:]
    assert first.headers["authorization"] != second.headers["authorization"]


def test_an_account_added_while_running_serves_at_once(world: dict[str, Any]) -> None:
    (world["auth_dir"] / "codex-account.json").unlink()
    _wait_for(lambda: _status(world, MODELS["codex"]) == 404)
    _write(world["auth_dir"], "codex", world["oauth"].auth_file("codex"))
    _wait_for(lambda: _status(world, MODELS["codex"]) == 200)


def _status(world: dict[str, Any], model: str) -> int:
    return httpx.post(
        world["proxy"].base_url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "x"}]},
    ).status_code


def _token_in_store(world: dict[str, Any], name: str) -> Any:
    record = world["proxy"].state.auth_store.get(name)
    return record and record.access_token


def _wait_for(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("style", list(MODELS))
async def test_login_then_the_proxy_serves_with_that_account(
    style: str, world: dict[str, Any], tmp_path: Path
) -> None:
    """The whole path a user takes: `cliproxy login` writes the file into the running proxy's
    auth dir, and the next request is served with the new account's token."""
    from cliproxy.auth.login import run_login
    from cliproxy.auth.store import AuthStore
    from tests.e2e.test_login import BrowserUI

    for old in world["auth_dir"].glob(f"{style}-account.json"):
        old.unlink()
    oauth: OAuthSim = world["oauth"]
    result = await run_login(
        style, AuthStore(world["auth_dir"]), BrowserUI(), flow=oauth.flows()[style], port=0
    )
    token = result.record.access_token
    _wait_for(lambda: _token_in_store(world, result.record.path.name) == token)
    world["sims"][style].queue(Reply.text("served by the new login"))
    answer = ask("openai_chat", world["proxy"].base_url, MODELS[style], "hi", stream=False)
    assert answer.text == "served by the new login"
    assert world["sims"][style].last_request.headers["authorization"] == f"Bearer {token}"
