"""The Antigravity request as built from a Gemini body, and what the provider reads back from
fetchAvailableModels (no I/O: the e2e tests send them)."""

from __future__ import annotations

import orjson
import pytest

from cliproxy.providers.antigravity import (
    DAILY_BASE_URL,
    PROD_BASE_URL,
    AntigravityProvider,
    default_base_urls,
)
from cliproxy.providers.antigravity_wire import inner_request, moves_on, request_type
from cliproxy.providers.base import Credential, RequestContext

CTX = RequestContext(stream=True, client_headers={}, client_query={}, client_protocol="gemini")


def _credential(**account: str) -> Credential:
    return Credential("antigravity-a.json", "ya29.token", "", account=account)


@pytest.mark.parametrize(
    ("model", "tools", "expected"),
    [
        ("gemini-3-flash", None, "agent"),
        ("gemini-3.1-flash-image", None, "image_gen"),
        ("gemini-3-flash", [{"googleSearch": {}}], "web_search"),
        ("gemini-3-flash", [{"googleSearch": {}}, {"functionDeclarations": []}], "agent"),
    ],
)
def test_request_type(model: str, tools: list[dict[str, object]] | None, expected: str) -> None:
    assert request_type(model, {"tools": tools} if tools else {}) == expected


def test_snake_case_fields_are_the_ides_camel_case() -> None:
    body: dict[str, object] = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tool_config": {"functionCallingConfig": {"mode": "AUTO"}},
        "generation_config": {"maxOutputTokens": 200000, "temperature": 1},
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT"}],
        "session_id": "theirs",
    }
    inner = inner_request("claude-opus-4-6-thinking", body, "ours")
    assert inner["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}
    assert inner["generationConfig"] == {"maxOutputTokens": 64000, "temperature": 1}
    assert "safetySettings" not in inner and "session_id" not in inner
    assert inner["sessionId"] == "ours"
    assert inner_request("claude-sonnet-4-6", {"contents": []}, "s")["toolConfig"] == {
        "functionCallingConfig": {"mode": "VALIDATED"}
    }


def test_a_client_session_id_is_kept() -> None:
    assert inner_request("gemini-3-flash", {"sessionId": "mine"}, "ours")["sessionId"] == "mine"


def test_hosts_in_order_and_a_file_base_url_alone() -> None:
    provider = AntigravityProvider()
    assert default_base_urls({}) == (DAILY_BASE_URL, PROD_BASE_URL)
    assert default_base_urls({"CLIPROXY_ANTIGRAVITY_BASE_URLS": " http://a/ , http://b"}) == (
        "http://a",
        "http://b",
    )
    body: dict[str, object] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    request = provider.build_request(_credential(project_id="p"), "gemini-3-flash", body, CTX)
    assert request.url == f"{DAILY_BASE_URL}/v1internal:streamGenerateContent?alt=sse"
    assert request.fallback_urls == (f"{PROD_BASE_URL}/v1internal:streamGenerateContent?alt=sse",)
    assert set(request.headers) == {"content-type", "user-agent", "authorization"}
    assert orjson.loads(request.body)["project"] == "p"
    own = Credential("x", "t", "http://gateway/", account={"project_id": "p"})
    request = provider.build_request(own, "gemini-3-flash", dict(body), CTX)
    assert request.url.startswith("http://gateway/v1internal:") and not request.fallback_urls


def test_moving_on() -> None:
    assert moves_on(429, b"{}")
    assert moves_on(503, b'{"error": {"message": "No capacity available for model x"}}')
    assert not moves_on(503, b'{"error": {"message": "The service is unavailable."}}')
    assert not moves_on(400, b"{}")


def test_an_account_without_a_project_is_not_asked() -> None:
    refusal = AntigravityProvider().refusal(_credential(), CTX, {})
    assert refusal is not None and "cliproxy login antigravity" in refusal.message
    assert AntigravityProvider().refusal(_credential(project_id="p"), CTX, {}) is None


def test_models_and_quota_from_fetch_available_models() -> None:
    provider = AntigravityProvider()
    data = {
        "models": {
            "gemini-3-flash": {
                "quotaInfo": {"remainingFraction": 0.25, "resetTime": "2030-01-01T00:00:00Z"}
            },
            "claude-sonnet-4-6": {"displayName": "Claude Sonnet 4.6"},
            "tab_flash_lite_preview": {"quotaInfo": {"remainingFraction": 1}},
        }
    }
    assert provider.read_models(data) == ["gemini-3-flash", "claude-sonnet-4-6"]
    reading = provider.read_quota(data, now=1.0)
    assert reading is not None
    (window,) = reading.windows
    assert (window.name, window.used_percent) == ("gemini-3-flash", 75.0)
    assert window.resets_at == 1893456000.0
    assert provider.read_quota({"models": []}, now=1.0) is None
    assert provider.quota_request(_credential()) is None  # no project: nothing to ask
