"""Bad input gets a 4xx in the calling protocol's own error JSON, never a traceback, and the
server keeps serving afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from google import genai
from google.genai import types as gtypes

from tests.proxy_server import ProxyServer

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyServer]:
    with ProxyServer("request-body-limit-mb: 1\n") as server:
        yield server


@pytest.fixture(scope="module")
def client(proxy: ProxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.base_url, timeout=10) as http:
        yield http


def openai_error(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    return error


def anthropic_error(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert body["type"] == "error", body
    error = body["error"]
    assert isinstance(error["type"], str) and error["type"]
    assert isinstance(error["message"], str) and error["message"]
    return error


def gemini_error(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == reply.status_code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["status"], str) and error["status"].isupper()
    return error


Shape = Callable[[httpx.Response], dict[str, Any]]

# route, the error shape its clients read, a body that the demo provider serves
ROUTES: list[tuple[str, Shape, dict[str, Any]]] = [
    (
        "/v1/chat/completions",
        openai_error,
        {"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]},
    ),
    ("/v1/responses", openai_error, {"model": "demo-echo", "input": "hi"}),
    (
        "/v1/messages",
        anthropic_error,
        {"model": "demo-echo", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]},
    ),
    (
        "/v1beta/models/demo-echo:generateContent",
        gemini_error,
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    ),
    (
        "/v1/models/demo-echo:generateContent",
        gemini_error,
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    ),
]
ROUTE_IDS = [route for route, _, _ in ROUTES]


def post_raw(client: httpx.Client, path: str, raw: bytes) -> httpx.Response:
    return client.post(path, content=raw, headers={"content-type": "application/json"})


def assert_client_error(reply: httpx.Response, status: int, shape: Shape) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert "Traceback" not in reply.text
    return shape(reply)


@pytest.mark.parametrize(("path", "shape", "good"), ROUTES, ids=ROUTE_IDS)
def test_the_good_body_is_served(
    client: httpx.Client, path: str, shape: Shape, good: dict[str, Any]
) -> None:
    # Proves the bad-input tests below fail for the reason they name, not for a broken route.
    reply = client.post(path, json=good)
    assert reply.status_code == 200, reply.text
    assert "Echo: hi" in reply.text


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"model": "demo-echo",', b"\xff\xfe\x00garbage", b"", b"   "],
    ids=["malformed", "truncated", "not-utf8", "empty", "blank"],
)
@pytest.mark.parametrize(("path", "shape", "good"), ROUTES, ids=ROUTE_IDS)
def test_unparsable_body_is_400(
    client: httpx.Client, path: str, shape: Shape, good: dict[str, Any], raw: bytes
) -> None:
    assert_client_error(post_raw(client, path, raw), 400, shape)


@pytest.mark.parametrize("raw", [b"[1, 2]", b"[]", b"null", b"5", b'"text"'])
@pytest.mark.parametrize(("path", "shape", "good"), ROUTES, ids=ROUTE_IDS)
def test_json_that_is_not_an_object_is_400(
    client: httpx.Client, path: str, shape: Shape, good: dict[str, Any], raw: bytes
) -> None:
    error = assert_client_error(post_raw(client, path, raw), 400, shape)
    assert "JSON object" in error["message"]


# Each wrong value, with the field the error message must name.
WRONG_TYPES: list[tuple[str, Shape, dict[str, Any], str]] = [
    ("/v1/chat/completions", openai_error, {"messages": "x"}, "messages"),
    ("/v1/chat/completions", openai_error, {"messages": [5]}, "messages[0]"),
    ("/v1/chat/completions", openai_error, {"max_tokens": "many"}, "max_tokens"),
    ("/v1/chat/completions", openai_error, {"temperature": "hot"}, "temperature"),
    ("/v1/chat/completions", openai_error, {"stream": "yes"}, "stream"),
    ("/v1/chat/completions", openai_error, {"model": 5}, "model"),
    ("/v1/responses", openai_error, {"input": 5}, "input"),
    ("/v1/responses", openai_error, {"max_output_tokens": "many"}, "max_output_tokens"),
    ("/v1/responses", openai_error, {"model": ["demo-echo"]}, "model"),
    ("/v1/messages", anthropic_error, {"messages": "x"}, "messages"),
    ("/v1/messages", anthropic_error, {"max_tokens": "many"}, "max_tokens"),
    ("/v1/messages", anthropic_error, {"max_tokens": None}, "max_tokens"),
    ("/v1/messages", anthropic_error, {"messages": [{"role": "bogus", "content": "x"}]}, "role"),
    ("/v1beta/models/demo-echo:generateContent", gemini_error, {"contents": 5}, "contents"),
    ("/v1beta/models/demo-echo:generateContent", gemini_error, {"contents": [5]}, "contents[0]"),
    ("/v1beta/models/demo-echo:generateContent", gemini_error, {"contents": []}, "contents"),
    (
        "/v1beta/models/demo-echo:generateContent",
        gemini_error,
        {"generationConfig": {"maxOutputTokens": "many"}},
        "maxOutputTokens",
    ),
    ("/v1/models/demo-echo:generateContent", gemini_error, {"contents": "x"}, "contents"),
]


@pytest.mark.parametrize(
    ("path", "shape", "change", "names"),
    WRONG_TYPES,
    ids=[f"{path}-{next(iter(change))}" for path, _, change, _ in WRONG_TYPES],
)
def test_wrong_types_are_400_naming_the_field(
    client: httpx.Client, path: str, shape: Shape, change: dict[str, Any], names: str
) -> None:
    good = next(body for route, _, body in ROUTES if route == path)
    body = {key: value for key, value in {**good, **change}.items() if value is not None}
    error = assert_client_error(client.post(path, json=body), 400, shape)
    assert names in error["message"], error


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/chat/completions", openai_error),
        ("/v1/responses", openai_error),
        ("/v1/messages", anthropic_error),
    ],
)
def test_missing_model_is_400(client: httpx.Client, path: str, shape: Shape) -> None:
    good = next(body for route, _, body in ROUTES if route == path)
    body = {key: value for key, value in good.items() if key != "model"}
    error = assert_client_error(client.post(path, json=body), 400, shape)
    assert "model" in error["message"]


@pytest.mark.parametrize(("path", "shape", "good"), ROUTES, ids=ROUTE_IDS)
def test_unknown_model_is_404(
    client: httpx.Client, path: str, shape: Shape, good: dict[str, Any]
) -> None:
    if ":" in path:
        path = path.replace("demo-echo", "no-such-model")
        body = good
    else:
        body = {**good, "model": "no-such-model"}
    error = assert_client_error(client.post(path, json=body), 404, shape)
    assert "no-such-model" in error["message"]


@pytest.mark.parametrize(("path", "shape", "good"), ROUTES, ids=ROUTE_IDS)
def test_oversized_body_is_413(
    client: httpx.Client, path: str, shape: Shape, good: dict[str, Any]
) -> None:
    # Valid JSON, 2 MiB, against a 1 MiB limit: the size alone must decide.
    padded = orjson.dumps({**good, "metadata": {"pad": "a" * (2 * MIB)}})
    error = assert_client_error(post_raw(client, path, padded), 413, shape)
    assert "request-body-limit-mb" in error["message"]


@pytest.mark.parametrize(("path", "shape", "good"), ROUTES[:3:2], ids=ROUTE_IDS[:3:2])
def test_oversized_chunked_body_without_length_is_413(
    client: httpx.Client, path: str, shape: Shape, good: dict[str, Any]
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"pad": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    reply = client.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in reply.request.headers
    assert_client_error(reply, 413, shape)


def test_default_body_limit_is_32_mib() -> None:
    with ProxyServer() as server:
        assert server.config.request_body_limit_bytes == 32 * MIB
        # 2 MiB is fine under the default limit.
        body = {
            "model": "demo-echo",
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"pad": "a" * (2 * MIB)},
        }
        reply = httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=10)
        assert reply.status_code == 200, reply.text[:300]


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/no-such-route", openai_error),
        ("/v2/chat/completions", openai_error),
        ("/v1/messages/no-such-route", anthropic_error),
        ("/v1beta/no-such-route", gemini_error),
    ],
)
def test_unknown_route_is_404_in_protocol_format(
    client: httpx.Client, path: str, shape: Shape
) -> None:
    assert_client_error(client.post(path, json={}), 404, shape)
    assert_client_error(client.get(path), 404, shape)
    if shape is openai_error:
        assert client.post(path, json={}).json()["error"]["code"] != "model_not_found"


@pytest.mark.parametrize(("path", "shape", "good"), ROUTES, ids=ROUTE_IDS)
def test_get_on_a_post_route_is_405(
    client: httpx.Client, path: str, shape: Shape, good: dict[str, Any]
) -> None:
    reply = client.get(path)
    assert_client_error(reply, 405, shape)
    assert "POST" in reply.headers["allow"]


def test_unknown_gemini_method_is_400(client: httpx.Client) -> None:
    reply = client.post("/v1beta/models/demo-echo:fly", json={"contents": []})
    error = assert_client_error(reply, 400, gemini_error)
    assert "generateContent" in error["message"]


def test_still_serving_every_sdk_after_all_that(proxy: ProxyServer) -> None:
    oa = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key="unused", max_retries=0)
    chat = oa.chat.completions.create(
        model="demo-echo", messages=[{"role": "user", "content": "still here"}]
    )
    assert chat.choices[0].message.content == "Echo: still here"
    assert oa.responses.create(model="demo-echo", input="yes").output_text == "Echo: yes"
    an = anthropic.Anthropic(base_url=proxy.base_url, api_key="unused", max_retries=0)
    message = an.messages.create(
        model="demo-echo", max_tokens=20, messages=[{"role": "user", "content": "ok"}]
    )
    assert message.content[0].text == "Echo: ok"
    gc = genai.Client(api_key="unused", http_options=gtypes.HttpOptions(base_url=proxy.base_url))
    assert gc.models.generate_content(model="demo-echo", contents="fine").text == "Echo: fine"
