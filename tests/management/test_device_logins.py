# ruff: noqa: F811  (the simulator fixtures are imported, then named as parameters)
"""Device-code logins started from the management API (`/kimi-auth-url`, `/xai-auth-url`),
polled with get-auth-status as the Management Center does: approval, denial, an expired code,
slow_down, cancel, an unreachable vendor; then the new account serves a request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_device_logins import auth_files, read_private
from tests.management.test_oauth_logins import wait_for
from tests.proxy_server import ProxyServer
from tests.simulators.device_fixtures import (  # noqa: F401 (pytest fixtures)
    _kimi_server,
    _xai_server,
    kimi,
    xai,
)
from tests.simulators.kimi_sim import KimiSim
from tests.simulators.xai_sim import XaiSim


def auth_dir(proxy: ProxyServer) -> Path:
    return proxy.state.runtime.config.auth_dir


def start(api: httpx.Client, kind: str) -> dict[str, Any]:
    reply = api.get(f"/{kind}-auth-url")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


@pytest.mark.parametrize(("kind", "prefix"), [("kimi", "kmi-"), ("xai", "xai-")])
def test_management_device_login_then_the_account_serves(
    api: httpx.Client,
    proxy: ProxyServer,
    kimi: KimiSim,
    xai: XaiSim,
    kind: str,
    prefix: str,
) -> None:
    sim = kimi if kind == "kimi" else xai
    sim.auth.outcomes.extend(["pending", "pending", "pending"])
    body = start(api, kind)
    assert body["flow"] == "device" and body["state"].startswith(prefix)
    assert body["user_code"] == sim.auth.user_code
    assert body["url"].startswith(sim.auth.verification_uri)
    assert body["expires_in"] == 900
    assert api.get("/get-auth-status", params={"state": body["state"]}).json() == {"status": "wait"}
    assert wait_for(api, body["state"]) == {"status": "ok"}
    (path,) = auth_files(auth_dir(proxy), kind)
    assert read_private(path)["type"] == kind
    model = "kimi-k2.5" if kind == "kimi" else "grok-4.6"
    with httpx.Client(base_url=proxy.base_url, timeout=10) as client:
        for _ in range(50):  # the auth dir watcher picks the new file up
            reply = client.post(
                "/v1/chat/completions",
                headers={"authorization": "Bearer client-key-1"},
                json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            )
            if reply.status_code == 200:
                break
            time.sleep(0.1)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "echo: hi"


@pytest.mark.parametrize(("outcome", "words"), [("denied", "denied"), ("expired", "expired")])
def test_management_device_login_denied_or_expired(
    api: httpx.Client, proxy: ProxyServer, kimi: KimiSim, outcome: str, words: str
) -> None:
    kimi.auth.outcomes.extend(["pending", outcome])
    body = start(api, "kimi")
    status = wait_for(api, body["state"])
    assert status["status"] == "error" and words in status["error"]
    assert auth_files(auth_dir(proxy), "kimi") == []


def test_management_device_login_honours_slow_down(api: httpx.Client, kimi: KimiSim) -> None:
    kimi.auth.outcomes.extend(["slow_down", "pending"])
    body = start(api, "kimi")
    assert wait_for(api, body["state"]) == {"status": "ok"}
    assert kimi.auth.too_fast == 0


def test_management_device_login_can_be_cancelled(api: httpx.Client, kimi: KimiSim) -> None:
    kimi.auth.outcomes.extend(["pending"] * 1000)
    body = start(api, "kimi")
    reply = api.delete("/oauth-session", params={"state": body["state"]})
    assert reply.json() == {"status": "ok", "cancelled": True}


def test_management_device_login_unreachable_vendor_is_502(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPROXY_KIMI_DEVICE_URL", "http://127.0.0.1:9/device")
    reply = api.get("/kimi-auth-url")
    assert reply.status_code == 502 and "device-authorization" in reply.json()["error"]
