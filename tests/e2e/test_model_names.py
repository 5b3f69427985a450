"""Model names through the real proxy: aliases, exclusions, prefixes and alias pools decide
which upstream model a simulator is asked for, and /v1/models (in every SDK's shape) lists
exactly the names that are served."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai

from tests.e2e.clients import CLIENTS, ask
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, OpenAIChatSim
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim

CONFIG = """
oauth-model-alias:
  claude:
    - {{name: claude-sonnet-4-6, alias: sonnet}}
    - {{name: claude-haiku-4-5, alias: quick, fork: true}}
oauth-excluded-models:
  claude: ["CLAUDE-OPUS-*"]
claude-api-key:
  - api-key: team-key
    base-url: {anthropic}
    prefix: team
    excluded-models: ["claude-3-*", "claude-opus-4-*"]
openai-compatibility:
  - name: gw
    base-url: {chat}
    api-key-entries: [{{api-key: gw-key}}]
    models: [{{name: deepseek-v3.1, alias: big}}, {{name: glm-5, alias: big}}]
"""

# What the configuration above must serve, and what it must not.
SERVED = {
    "sonnet": "claude-sonnet-4-6",  # account alias (the account no longer serves the original)
    "quick": "claude-haiku-4-5",  # forked alias: both names
    "claude-haiku-4-5": "claude-haiku-4-5",
    "team/claude-sonnet-4-6": "claude-sonnet-4-6",  # the prefixed key
}
NOT_SERVED = ("claude-opus-4-5", "claude-opus-4-1", "team/claude-3-opus", "elsewhere/big")


@pytest.fixture(scope="module")
def account_sim() -> Iterator[ClaudeOAuthSim]:
    with ClaudeOAuthSim() as sim:
        yield sim


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory,
    account_sim: ClaudeOAuthSim,
    _anthropic_sim_server: AnthropicSim,
    _openai_chat_sim_server: OpenAIChatSim,
) -> Iterator[ProxyServer]:
    auth_dir = tmp_path_factory.mktemp("names-accounts")
    _write_account(auth_dir, account_sim.base_url)
    config = CONFIG.format(
        anthropic=_anthropic_sim_server.base_url, chat=_openai_chat_sim_server.base_url
    )
    with ProxyServer(f"auth-dir: {auth_dir}\n{config}") as server:
        yield server


def _write_account(auth_dir: Path, base_url: str) -> None:
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86_400))
    content = {
        "type": "claude",
        "access_token": "at-claude-names",
        "refresh_token": "rt-claude-names",
        "email": "names@example.com",
        "expired": expiry,
        "base_url": base_url,
    }
    path = auth_dir / "claude-names.json"
    path.write_text(json.dumps(content))
    path.chmod(0o600)


def _listed_openai(base: str) -> list[str]:
    client = openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0)
    return [m.id for m in client.models.list()]


def _listed_anthropic(base: str) -> list[str]:
    client = anthropic.Anthropic(base_url=base, api_key="k", max_retries=0)
    return [m.id for m in client.models.list()]


def _listed_gemini(base: str) -> list[str]:
    client = genai.Client(api_key="k", http_options={"base_url": base})
    return [(m.name or "").removeprefix("models/") for m in client.models.list()]


def test_every_sdk_sees_one_listing_of_exactly_the_served_names(proxy: ProxyServer) -> None:
    base = proxy.base_url
    listing = _listed_openai(base)
    assert len(listing) == len(set(listing))  # the pool alias "big" appears once
    assert sorted(_listed_anthropic(base)) == sorted(listing)
    assert sorted(_listed_gemini(base)) == sorted(listing)
    assert set(SERVED) | {"big"} <= set(listing)
    assert not set(NOT_SERVED) & set(listing)
    # The account's replaced name is gone from the listing; the key (prefix "team", force
    # off) still lists it bare, because that credential serves it bare.
    assert "claude-sonnet-4-6" in listing and "team/claude-sonnet-4-6" in listing
    owners = {m["id"]: m["owned_by"] for m in httpx.get(base + "/v1/models").json()["data"]}
    assert owners["sonnet"] == "claude"
    assert owners["big"] == "openai-compatibility:gw"
    assert owners["team/claude-sonnet-4-6"] == "claude-api-key"


def test_every_listed_name_is_served(proxy: ProxyServer) -> None:
    registry = proxy.state.runtime.registry
    for name in _listed_openai(proxy.base_url):
        assert registry.candidates(name), name


@pytest.mark.parametrize("client", CLIENTS)
def test_aliases_reach_the_upstream_under_its_own_name(
    client: str, proxy: ProxyServer, account_sim: ClaudeOAuthSim, anthropic_sim: AnthropicSim
) -> None:
    account_sim.reset()
    for name, upstream in SERVED.items():
        answer = ask(client, proxy.base_url, name, f"to {name}", stream=client != "gemini")
        assert answer.text == f"echo: to {name}", name
        sim = anthropic_sim if name.startswith("team/") else account_sim
        assert sim.last_request.json["model"] == upstream, name


@pytest.mark.parametrize("client", CLIENTS)
def test_excluded_and_foreign_names_are_404_without_an_upstream_call(
    client: str, proxy: ProxyServer, account_sim: ClaudeOAuthSim, anthropic_sim: AnthropicSim
) -> None:
    account_sim.reset()
    for name in NOT_SERVED:
        with pytest.raises(Exception) as caught:
            ask(client, proxy.base_url, name, "hi", stream=False)
        assert _status(caught.value) == 404, name
    assert account_sim.requests == [] and anthropic_sim.requests == []


def test_the_account_no_longer_serves_a_replaced_name(
    proxy: ProxyServer, account_sim: ClaudeOAuthSim, anthropic_sim: AnthropicSim
) -> None:
    account_sim.reset()
    for _ in range(4):
        ask("anthropic", proxy.base_url, "claude-sonnet-4-6", "plain", stream=False)
    # Only the key serves the original name; the account serves it only as "sonnet".
    assert account_sim.requests == [] and len(anthropic_sim.requests) == 4


def test_a_pool_alias_rotates_across_its_upstream_models(
    proxy: ProxyServer, openai_chat_sim: OpenAIChatSim
) -> None:
    for client in CLIENTS:
        ask(client, proxy.base_url, "big", "one", stream=False)
    models = [r.json["model"] for r in openai_chat_sim.requests]
    assert sorted(models) == ["deepseek-v3.1", "deepseek-v3.1", "glm-5", "glm-5"]


def test_model_details_for_listed_names_only(proxy: ProxyServer) -> None:
    base = proxy.base_url
    assert httpx.get(base + "/v1/models/sonnet").json()["owned_by"] == "claude"
    detail = httpx.get(base + "/v1beta/models/big").json()
    assert detail["name"] == "models/big"
    headers = {"anthropic-version": "2023-06-01"}
    assert httpx.get(base + "/v1/models/quick", headers=headers).json()["id"] == "quick"
    for name in ("claude-opus-4-5", "nothing-here"):
        assert httpx.get(f"{base}/v1/models/{name}").status_code == 404


def _status(error: Any) -> int | None:
    return getattr(error, "status_code", None) or getattr(error, "code", None)
