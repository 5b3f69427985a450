"""Hot reload: editing config.yaml changes keys and models live; a bad edit is logged and the
last good config stays in force."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from cliproxy.config import load_config
from tests.proxy_server import ProxyServer

CHAT_BODY = {"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]}
RELOAD_TIMEOUT = 8.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


def write_atomically(path: Path, text: str) -> None:
    """Save the way editors do: write a temporary file and rename it over the original."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("# starts with the embedded defaults\n")
    return path


@pytest.fixture
def proxy(config_file: Path) -> Iterator[ProxyServer]:
    with ProxyServer(load_config(config_file), config_path=config_file) as server:
        yield server


def chat_status(proxy: ProxyServer, key: str | None) -> int:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    reply = httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT_BODY, headers=headers)
    return reply.status_code


def rejection_logged(caplog: pytest.LogCaptureFixture, count: int) -> Callable[[], bool]:
    def check() -> bool:
        rejected = [r for r in caplog.records if "config change rejected" in r.getMessage()]
        return len(rejected) >= count

    return check


def test_keys_apply_live_and_bad_edits_keep_the_last_good_config(
    proxy: ProxyServer, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert chat_status(proxy, None) == 200

    config_file.write_text("api-keys: [k1]\n")
    wait_for(lambda: chat_status(proxy, None) == 401, "requests without a key to be refused")
    assert chat_status(proxy, "k1") == 200
    assert chat_status(proxy, "k2") == 401
    assert any("config reloaded" in r.getMessage() for r in caplog.records)

    # Broken YAML: reported with its line, ignored.
    config_file.write_text("api-keys: [k2\nport: 8317\n")
    wait_for(rejection_logged(caplog, 1), "the YAML error to be logged")
    syntax = next(r for r in caplog.records if "config change rejected" in r.getMessage())
    assert syntax.levelno == logging.ERROR
    assert "YAML syntax" in syntax.getMessage()
    assert f"{config_file}:" in syntax.getMessage()
    assert chat_status(proxy, "k1") == 200
    assert chat_status(proxy, "k2") == 401
    assert chat_status(proxy, None) == 401

    # Valid YAML with an invalid value: reported with key path and line, ignored.
    config_file.write_text("api-keys: [k2]\nrequest-body-limit-mb: 0\n")
    wait_for(rejection_logged(caplog, 2), "the invalid value to be logged")
    message = [r for r in caplog.records if "config change rejected" in r.getMessage()][-1]
    assert f"{config_file}:2: request-body-limit-mb: must be at least 1" in message.getMessage()
    assert chat_status(proxy, "k1") == 200
    assert chat_status(proxy, "k2") == 401

    # A good edit after the bad ones applies again; saved the way editors save.
    write_atomically(config_file, "api-keys: [k2]\n")
    wait_for(lambda: chat_status(proxy, "k2") == 200, "k2 to be accepted")
    assert chat_status(proxy, "k1") == 401

    # Removing the keys opens the loopback-only mode again.
    config_file.write_text("api-keys: []\n")
    wait_for(lambda: chat_status(proxy, None) == 200, "keyless requests to be served again")


def test_adding_a_provider_lists_its_models(proxy: ProxyServer, config_file: Path) -> None:
    def model_ids() -> set[str]:
        client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="k1", max_retries=0)
        try:
            return {model.id for model in client.models.list()}
        except openai.AuthenticationError:
            return set()

    assert "local-llama" not in model_ids()
    # Nothing listens on port 9: only the listing is checked, no request goes upstream.
    config_file.write_text(
        "api-keys: [k1]\n"
        "openai-compatibility:\n"
        "  - name: local\n"
        "    base-url: http://127.0.0.1:9/v1\n"
        "    api-key-entries: [{api-key: upstream-secret}]\n"
        "    models:\n"
        "      - {name: llama-3.1-8b, alias: local-llama}\n"
        "      - qwen2.5\n"
    )
    wait_for(lambda: "local-llama" in model_ids(), "the new provider's model to be listed")
    assert {"local-llama", "qwen2.5"} <= model_ids()

    # Taking the provider out again removes its models.
    config_file.write_text("api-keys: [k1]\n")
    wait_for(lambda: "local-llama" not in model_ids(), "the removed model to disappear")
    assert "demo-echo" in model_ids()
