"""What a rate limit rests on a Codex account: by default the whole account (ChatGPT plans
limit the account across models), and only the model it hit with
`codex: {model-level-cooling: true}`, CLIProxyAPI's switch for the same choice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.codex_backend_sim import CodexBackendSim, usage_limit_reply
from tests.simulators.oauth_sim import OAuthSim

CONFIG = """auth-dir: {auth_dir}
request-retry: 0
max-retry-interval: 0
{switch}
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[OAuthSim, CodexBackendSim, Path]]:
    with OAuthSim() as oauth, CodexBackendSim() as codex, pytest.MonkeyPatch.context() as patch:
        for name, value in {**oauth.env(), "CLIPROXY_CODEX_BASE_URL": codex.base_url}.items():
            patch.setenv(name, value)
        account = oauth.auth_file("codex")
        codex.api_keys = {account["access_token"]}
        path = tmp_path / "codex-account.json"
        path.write_text(json.dumps(account))
        path.chmod(0o600)
        yield oauth, codex, tmp_path


def ask(proxy: ProxyServer, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(proxy.base_url + "/v1/chat/completions", json=body, timeout=30)


@pytest.mark.parametrize(
    ("switch", "other_model_served"),
    [
        ("", False),
        ("codex: {model-level-cooling: false}", False),
        ("codex: {model-level-cooling: true}", True),
    ],
)
def test_a_codex_rate_limit_rests_the_account_unless_model_level_cooling(
    world: tuple[OAuthSim, CodexBackendSim, Path], switch: str, other_model_served: bool
) -> None:
    _, codex, auth_dir = world
    with ProxyServer(CONFIG.format(auth_dir=auth_dir, switch=switch)) as proxy:
        codex.queue(usage_limit_reply(resets_in_seconds=1800))
        limited = ask(proxy, "gpt-6")
        assert limited.status_code == 429, limited.text
        codex.queue(Reply.text("still here"))
        sent_before = len(codex.requests)
        other = ask(proxy, "gpt-6.1")
        if other_model_served:
            assert other.status_code == 200, other.text
            assert other.json()["choices"][0]["message"]["content"] == "still here"
        else:
            assert other.status_code == 429, other.text
            assert len(codex.requests) == sent_before  # the resting account was not asked
        assert ask(proxy, "gpt-6").status_code == 429  # the model that hit its limit rests


def test_the_codex_block_is_read_and_its_other_switches_are_known(tmp_path: Path) -> None:
    from cliproxy.config.load import parse_config_text

    config = parse_config_text(
        "codex: {model-level-cooling: true, disable-codex-cloaking: true}\n"
        "claude: {model-level-cooling: false}\n",
        "test.yaml",
    )
    assert config.codex.model_level_cooling is True
    assert config.claude.model_level_cooling is False
