"""Local token estimates: real BPE counts of everything the client sent, nothing more."""

from __future__ import annotations

import httpx

from cliproxy.model import ImagePart, Message, Request, TextPart, Tool
from cliproxy.usage.tokens import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    REPLY_PRIMER,
    count_request,
    count_text,
)
from tests.proxy_server import ProxyServer


def test_text_is_counted_with_the_bpe_not_by_characters() -> None:
    assert count_text("Hello world") == 2
    assert count_text("") == 0
    assert count_text("antidisestablishmentarianism") > 1


def test_request_counts_system_messages_tools_and_images() -> None:
    plain = Request(model="m", messages=[Message("user", [TextPart("Hello world")])])
    assert count_request(plain) == REPLY_PRIMER + MESSAGE_OVERHEAD + 2
    with_system = Request(model="m", system=[TextPart("Be brief.")], messages=plain.messages)
    assert count_request(with_system) > count_request(plain)
    tool = Tool(name="get_weather", description="Weather for a city", parameters={"type": "object"})
    with_tool = Request(model="m", messages=plain.messages, tools=[tool])
    assert count_request(with_tool) > count_request(plain)
    with_image = Request(
        model="m",
        messages=[Message("user", [TextPart("Hello world"), ImagePart("image/png", data="AAAA")])],
    )
    assert count_request(with_image) == count_request(plain) + IMAGE_TOKENS


def test_count_tokens_endpoint_estimates_for_upstreams_that_cannot_count() -> None:
    with ProxyServer() as proxy:
        base = {"model": "demo-echo", "messages": [{"role": "user", "content": "Hello world"}]}
        plain = httpx.post(proxy.base_url + "/v1/messages/count_tokens", json=base).json()
        assert plain == {"input_tokens": REPLY_PRIMER + MESSAGE_OVERHEAD + 2}
        tools = {
            **base,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        }
        with_tools = httpx.post(proxy.base_url + "/v1/messages/count_tokens", json=tools).json()
        assert with_tools["input_tokens"] > plain["input_tokens"]
        gemini = httpx.post(
            proxy.base_url + "/v1beta/models/demo-echo:countTokens",
            json={"contents": [{"role": "user", "parts": [{"text": "Hello world"}]}]},
        ).json()
        assert gemini == {"totalTokens": REPLY_PRIMER + MESSAGE_OVERHEAD + 2}
        bad = httpx.post(
            proxy.base_url + "/v1/messages/count_tokens",
            json={"model": "demo-echo", "messages": "x"},
        )
        assert bad.status_code == 400 and bad.json()["type"] == "error"
