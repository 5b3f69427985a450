"""quota-exceeded: a Gemini CLI account whose project or model is out of quota is served at
once by its other project, then by a preview variant of the model, before the client is told
to wait; with both switches off the 429 reaches the client.

One Google login with two Cloud projects (CLIProxyAPI's comma-separated ``project_id``) is
the only credential, so every success below can only come from a fallback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cliproxy.providers.gemini_quota import PREVIEW_FALLBACKS
from tests.e2e.clients import ask
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.code_assist_sim import CodeAssistSim
from tests.simulators.oauth_sim import OAuthSim

PROJECTS = ("proj-a", "proj-b")
PRO = "gemini-2.5-pro"
NO_PREVIEWS = "gemini-3-pro-preview"  # a model with no preview fallbacks
SWITCHES_OFF = "quota-exceeded:\n  switch-project: false\n  switch-preview-model: false\n"
ONLY_PROJECTS = "quota-exceeded:\n  switch-preview-model: false\n"


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[OAuthSim, CodeAssistSim]]:
    with OAuthSim() as oauth, CodeAssistSim() as code_assist, pytest.MonkeyPatch.context() as env:
        for name, value in oauth.env().items():
            env.setenv(name, value)  # a token refresh never leaves 127.0.0.1
        yield oauth, code_assist


@pytest.fixture
def code_assist(sims: tuple[OAuthSim, CodeAssistSim]) -> Iterator[CodeAssistSim]:
    sim = sims[1]
    sim.reset()
    yield sim
    sim.reset()


def start_proxy(
    sims: tuple[OAuthSim, CodeAssistSim], auth_dir: Path, extra_config: str = ""
) -> ProxyServer:
    """A proxy whose only credential is one Gemini CLI login with both projects."""
    oauth, code_assist = sims
    content: dict[str, Any] = oauth.auth_file("gemini")
    content["project_id"] = ",".join(PROJECTS)
    content["base_url"] = code_assist.base_url
    path = auth_dir / "gemini-user@example.com-all.json"
    path.write_text(json.dumps(content))
    path.chmod(0o600)
    # No waiting for a reset inside the request: a quota 429 must be answered by a fallback
    # or reach the client at once.
    config = f"auth-dir: {auth_dir}\nmax-retry-interval: 0\n{extra_config}"
    return ProxyServer(config).start()


@pytest.fixture
def proxy(sims: tuple[OAuthSim, CodeAssistSim], tmp_path: Path) -> Iterator[ProxyServer]:
    server = start_proxy(sims, tmp_path)
    yield server
    server.stop()


def sent(sim: CodeAssistSim) -> list[tuple[str, str]]:
    """(project, model) of every generation request the upstream received, in order."""
    return [(r.json["project"], r.json["model"]) for r in sim.requests]


def tokens(sim: CodeAssistSim) -> set[str]:
    return {r.headers["authorization"] for r in sim.requests}


@pytest.mark.parametrize("stream", [False, True])
def test_an_exhausted_project_is_served_by_the_next_one(
    stream: bool, proxy: ProxyServer, code_assist: CodeAssistSim
) -> None:
    code_assist.exhaust(project="proj-a")
    code_assist.queue(Reply.text("answered by the second project"))
    answer = ask("gemini", proxy.base_url, NO_PREVIEWS, "hi", stream=stream)
    assert answer.text == "answered by the second project"
    assert sent(code_assist) == [("proj-a", NO_PREVIEWS), ("proj-b", NO_PREVIEWS)]
    assert len(tokens(code_assist)) == 1  # the same account, not another credential


def test_a_model_exhausted_on_every_project_falls_back_to_its_preview(
    proxy: ProxyServer, code_assist: CodeAssistSim
) -> None:
    preview = PREVIEW_FALLBACKS[PRO][0]
    code_assist.exhaust(model=PRO)
    code_assist.queue(Reply.text("answered by the preview"))
    reply = httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": PRO, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["choices"][0]["message"]["content"] == "answered by the preview"
    assert body["model"] == PRO  # the client still sees the model it asked for
    assert sent(code_assist) == [("proj-a", PRO), ("proj-b", PRO), ("proj-a", preview)]


def test_every_fallback_exhausted_reports_the_quota_429(
    proxy: ProxyServer, code_assist: CodeAssistSim
) -> None:
    """Each alternative is asked once, in the documented order, and the client gets the
    upstream's 429 with its reset hint (not the last fallback's error of some other kind)."""
    code_assist.exhaust(retry_after=40)
    reply = httpx.post(
        f"{proxy.base_url}/v1beta/models/{PRO}:generateContent",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
        timeout=10,
    )
    assert reply.status_code == 429
    assert reply.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert abs(int(reply.headers["retry-after"]) - 40) <= 2
    previews = [(p, m) for m in PREVIEW_FALLBACKS[PRO] for p in PROJECTS]
    assert sent(code_assist) == [("proj-a", PRO), ("proj-b", PRO), *previews]


def test_without_preview_switch_only_projects_are_tried(
    sims: tuple[OAuthSim, CodeAssistSim], code_assist: CodeAssistSim, tmp_path: Path
) -> None:
    code_assist.exhaust(model=PRO)
    proxy = start_proxy(sims, tmp_path, ONLY_PROJECTS)
    try:
        reply = httpx.post(
            f"{proxy.base_url}/v1beta/models/{PRO}:generateContent",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
            timeout=10,
        )
    finally:
        proxy.stop()
    assert reply.status_code == 429
    assert sent(code_assist) == [("proj-a", PRO), ("proj-b", PRO)]


def test_with_both_switches_off_the_429_reaches_the_client(
    sims: tuple[OAuthSim, CodeAssistSim], code_assist: CodeAssistSim, tmp_path: Path
) -> None:
    code_assist.exhaust(project="proj-a", retry_after=25)
    proxy = start_proxy(sims, tmp_path, SWITCHES_OFF)
    try:
        reply = httpx.post(
            f"{proxy.base_url}/v1beta/models/{PRO}:generateContent",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
            timeout=10,
        )
    finally:
        proxy.stop()
    assert reply.status_code == 429
    assert reply.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert abs(int(reply.headers["retry-after"]) - 25) <= 2
    assert sent(code_assist) == [("proj-a", PRO)]  # proj-b still had quota, but was not asked


def test_a_multi_project_account_bills_its_first_project(
    proxy: ProxyServer, code_assist: CodeAssistSim
) -> None:
    code_assist.queue(Reply.text("plain"))
    assert ask("gemini", proxy.base_url, PRO, "hi", stream=False).text == "plain"
    assert sent(code_assist) == [("proj-a", PRO)]
