"""The device-code grant's polling rules (auth/device.py) against scripted token replies: the
interval, slow_down, transient failures, the overall time limit, and the reply checks."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
import pytest

from cliproxy.auth.device import DeviceCode, poll_for_tokens, request_device_code
from cliproxy.auth.flows import oauth_flow
from cliproxy.auth.oauth import OAuthError
from cliproxy.providers.base import UpstreamRequest


class _Reply:
    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        self.status = status
        self._body = orjson.dumps(body)
        self.headers: dict[str, str] = {}

    async def read(self) -> bytes:
        return self._body

    def release(self) -> None:
        return None


class ScriptedSender:
    """Answers each call with the next scripted (status, body)."""

    def __init__(self, *replies: tuple[int, Mapping[str, Any]]) -> None:
        self.replies = deque(replies)
        self.sent: list[UpstreamRequest] = []

    async def send(self, request: UpstreamRequest, proxy_url: str | None = None) -> _Reply:
        self.sent.append(request)
        status, body = self.replies.popleft()
        return _Reply(status, body)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


FLOW = oauth_flow("kimi", env={})
CODE = DeviceCode("dc-1", "ABCD", "https://example/device", "", 600.0, 5.0)
PENDING = (400, {"error": "authorization_pending"})
TOKENS = (200, {"access_token": "at", "refresh_token": "rt", "expires_in": 3600})


async def poll(sender: ScriptedSender, fake: FakeTime, code: DeviceCode = CODE) -> Any:
    return await poll_for_tokens(sender, FLOW, code, sleep=fake.sleep, clock=fake.clock)


async def test_pending_waits_the_servers_interval_and_slow_down_adds_five_seconds() -> None:
    fake = FakeTime()
    sender = ScriptedSender(PENDING, (400, {"error": "slow_down"}), PENDING, TOKENS)
    tokens = await poll(sender, fake)
    assert tokens["access_token"] == "at"
    assert fake.waits == [5.0, 5.0, 10.0, 10.0]
    form = sender.sent[0].body.decode()
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code" in form


async def test_a_transient_failure_keeps_polling() -> None:
    fake = FakeTime()
    sender = ScriptedSender((503, {}), PENDING, TOKENS)
    assert (await poll(sender, fake))["refresh_token"] == "rt"


async def test_the_wait_ends_at_the_codes_lifetime_or_the_flows_limit() -> None:
    fake = FakeTime()
    sender = ScriptedSender(*([PENDING] * 500))
    with pytest.raises(OAuthError, match="expired"):
        await poll(sender, fake, replace(CODE, expires_in=10_000.0))
    assert fake.now <= FLOW.poll_timeout + CODE.interval  # 15 minutes, not the code's 2.8 h


@pytest.mark.parametrize(
    ("error", "words"),
    [("access_denied", "denied"), ("expired_token", "expired"), ("invalid_client", "refused")],
)
async def test_final_errors_end_the_login(error: str, words: str) -> None:
    fake = FakeTime()
    with pytest.raises(OAuthError, match=words):
        await poll(ScriptedSender(PENDING, (400, {"error": error})), fake)


async def test_a_device_reply_without_its_fields_is_refused() -> None:
    sender = ScriptedSender((200, {"device_code": "dc", "user_code": "U"}))
    with pytest.raises(OAuthError, match="verification_uri"):
        await request_device_code(sender, FLOW)
    sender = ScriptedSender((429, {"error": "slow_down", "error_description": "later"}))
    with pytest.raises(OAuthError, match="429"):
        await request_device_code(sender, FLOW)
