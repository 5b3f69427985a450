"""Vertex URLs as the provider builds them: the region's host (the bare host for `global`),
the project path for service accounts, the publisher path for vertex-api-key, and the
countTokens body Vertex accepts."""

from __future__ import annotations

import orjson
import pytest

from cliproxy.auth.vertex_account import ServiceAccountError, read_service_account, vertex_file
from cliproxy.providers.base import Credential, RequestContext
from cliproxy.providers.vertex import VertexApiKeyProvider, VertexProvider, count_body

PEM = "-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n"


def ctx(stream: bool) -> RequestContext:
    return RequestContext(stream, {}, {}, "gemini")


def account(location: str) -> Credential:
    facts = {"project_id": "p-1", "email": "sa@p-1", "type": "vertex"}
    if location:
        facts["location"] = location
    return Credential(id="vertex-p-1.json", secret="ya29.t", base_url="", account=facts)


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com"),
        ("", "https://us-central1-aiplatform.googleapis.com"),
        ("global", "https://aiplatform.googleapis.com"),
    ],
)
def test_service_account_urls(location: str, host: str) -> None:
    where = location or "us-central1"
    body: dict[str, object] = {"model": "x", "contents": []}
    built = VertexProvider().build_request(account(location), "gemini-2.5-pro", body, ctx(True))
    assert built.url == (
        f"{host}/v1/projects/p-1/locations/{where}/publishers/google/models/"
        "gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    assert built.headers["authorization"] == "Bearer ya29.t"
    assert "model" not in orjson.loads(built.body)


def test_api_key_urls_and_count_body() -> None:
    provider = VertexApiKeyProvider()
    key = Credential(id="vertex-api-key[0]", secret="vk", base_url="")
    built = provider.build_request(key, "gemini-2.5-flash", {"contents": []}, ctx(False))
    assert built.url == (
        "https://aiplatform.googleapis.com/v1/publishers/google/models/"
        "gemini-2.5-flash:generateContent"
    )
    assert built.headers["x-goog-api-key"] == "vk"
    gateway = Credential(id="vertex-api-key[1]", secret="vk", base_url="https://zenmux.ai/api/")
    inner = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "model": "models/m"}
    counted = provider.build_count_request(
        gateway, "m", {"generateContentRequest": inner}, ctx(False)
    )
    assert counted.url == "https://zenmux.ai/api/v1/publishers/google/models/m:countTokens"
    assert orjson.loads(counted.body) == {"contents": inner["contents"]}
    assert count_body({}) == {"contents": []}


def test_service_account_checks_name_the_field() -> None:
    good = {"type": "service_account", "project_id": "p", "client_email": "e", "private_key": PEM}
    assert read_service_account(orjson.dumps(good)) == good
    name, raw = vertex_file(good, location="", prefix="/team/")
    assert name == "vertex-p.json"
    assert (raw["location"], raw["prefix"], raw["email"]) == ("us-central1", "team", "e")
    for broken, field in (
        ({**good, "private_key": ""}, "private_key"),
        ({**good, "private_key": "secret"}, "PEM"),
        ({k: v for k, v in good.items() if k != "client_email"}, "client_email"),
        ({**good, "token_uri": "file:///etc"}, "token_uri"),
        ([good], "JSON object"),
    ):
        with pytest.raises(ServiceAccountError, match=field):
            read_service_account(orjson.dumps(broken), "sa.json")
