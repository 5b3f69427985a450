"""Amp's settings (docs/amp.md): where the upstream key comes from (config, AMP_API_KEY, the
Amp CLI's secrets file) and what happens with none; Amp off when the file never mentions it;
restrict-management-to-localhost; the legacy top-level spellings; config errors by path; and
the fallback decision and reply rewriter on their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import orjson
import pytest

from cliproxy.app import build_app
from cliproxy.config import ConfigError, parse_config_text
from cliproxy.config.ampcode import AmpCode, AmpModelMapping
from cliproxy.server.amp_models import (
    AMP_CREDITS,
    LOCAL_PROVIDER,
    MODEL_MAPPING,
    NO_PROVIDER,
    decide,
)
from cliproxy.server.amp_rewrite import AmpRewrite
from cliproxy.server.amp_upstream import SECRETS_FIELD
from tests.proxy_server import ProxyServer
from tests.simulators import Reply
from tests.simulators.amp_sim import UPSTREAM_KEY, AmpSim

CLIENT_KEY = "amp-client-key"


@pytest.fixture
def amp() -> Iterator[AmpSim]:
    with AmpSim() as sim:
        yield sim


@pytest.fixture
def no_key_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AMP_API_KEY and a home without Amp's secrets file (never the developer's own)."""
    monkeypatch.delenv("AMP_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def _ask(proxy: ProxyServer, model: str = "claude-fable-9") -> anthropic.types.Message:
    client = anthropic.Anthropic(
        base_url=proxy.base_url + "/api/provider/anthropic", api_key=CLIENT_KEY, max_retries=0
    )
    return client.messages.create(
        model=model, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )


def _config(amp: AmpSim, block: str) -> str:
    return f"demo: false\napi-keys: [{CLIENT_KEY}]\n{block.format(url=amp.base_url)}"


def test_the_key_comes_from_the_environment_then_amps_secrets_file(
    amp: AmpSim, no_key_anywhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ProxyServer(_config(amp, "ampcode:\n  upstream-url: {url}\n")) as proxy:
        # NO_PROVIDER: nothing serves the model and no Amp key is known: cliproxy's 404.
        with pytest.raises(anthropic.NotFoundError):
            _ask(proxy)
        assert not amp.requests

        secrets = no_key_anywhere / ".local" / "share" / "amp" / "secrets.json"
        secrets.parent.mkdir(parents=True)
        secrets.write_bytes(orjson.dumps({SECRETS_FIELD: UPSTREAM_KEY}))
        amp.queue(Reply.text("paid by file"))
        assert _ask(proxy).content[0].type == "text"
        assert amp.last_request.headers["x-api-key"] == UPSTREAM_KEY

        # The environment wins over the file.
        secrets.write_bytes(orjson.dumps({SECRETS_FIELD: "stale"}))
        monkeypatch.setenv("AMP_API_KEY", UPSTREAM_KEY)
        amp.queue(Reply.text("paid by env"))
        _ask(proxy)
        assert amp.last_request.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_without_an_ampcode_block_amp_is_off(amp: AmpSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_API_KEY", UPSTREAM_KEY)
    with ProxyServer(_config(amp, "")) as proxy:
        with pytest.raises(anthropic.NotFoundError):
            _ask(proxy)
        reply = httpx.get(
            proxy.base_url + "/api/user", headers={"authorization": f"Bearer {CLIENT_KEY}"}
        )
        assert reply.status_code == 404
        page = httpx.get(proxy.base_url + "/threads/T-1")
        assert page.status_code == 401  # no longer an open page
    assert not amp.requests


def test_legacy_top_level_keys_turn_amp_on(amp: AmpSim, no_key_anywhere: Path) -> None:
    block = f"amp-upstream-url: {{url}}\namp-upstream-api-key: {UPSTREAM_KEY}\n"
    with ProxyServer(_config(amp, block)) as proxy:
        amp.queue(Reply.text("legacy"))
        _ask(proxy)
    assert amp.last_request.path == "/api/provider/anthropic/v1/messages"


async def test_restrict_management_to_localhost_serves_this_machine_only(
    amp: AmpSim, no_key_anywhere: Path
) -> None:
    block = (
        "ampcode:\n  upstream-url: {url}\n  upstream-api-key: "
        + UPSTREAM_KEY
        + "\n  restrict-management-to-localhost: true\n"
    )
    app = build_app(parse_config_text(_config(amp, block), "t.yaml"))
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    for peer, status in ((("10.0.0.5", 4000), 403), (("127.0.0.1", 4000), 200)):
        transport = httpx.ASGITransport(app=app, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            reply = await client.get("/api/user", headers=headers)
            page = await client.get("/threads/T-1")  # no client key
        assert reply.status_code == status, reply.text
        if status == 403:
            assert "restrict-management-to-localhost" in reply.text
            # Only this machine opens Amp's pages without a key.
            assert page.status_code == 401
        else:
            assert page.status_code == 200
    await app.state.cliproxy.upstream.close()  # no lifespan ran to close it
    assert [r.path for r in amp.requests] == ["/api/user", "/threads/T-1"]


def test_legacy_keys_fill_in_what_the_block_leaves_out() -> None:
    config = parse_config_text(
        "ampcode:\n  upstream-url: http://127.0.0.1:9\n"
        "amp-upstream-url: http://127.0.0.1:10\n"
        "amp-upstream-api-key: legacy-key\n"
        "amp-model-mappings: [{from: a, to: b}]\n"
        "amp-restrict-management-to-localhost: true\n",
        "t.yaml",
    )
    amp = config.amp
    assert amp is not None
    assert amp.upstream_url == "http://127.0.0.1:9"  # the block wins
    assert amp.upstream_api_key == "legacy-key"
    assert [(m.from_, m.to) for m in amp.model_mappings] == [("a", "b")]
    assert amp.restrict_management_to_localhost
    assert not config.unsupported_keys() and not config.warnings
    assert parse_config_text("port: 8317\n", "t.yaml").amp is None
    assert parse_config_text("ampcode: {}\n", "t.yaml").amp == AmpCode()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("ampcode:\n  upstream-url: ftp://x\n", "t.yaml:2: ampcode.upstream-url: must be"),
        ("amp-upstream-url: nowhere\n", "t.yaml:1: amp-upstream-url: must be"),
        (
            "ampcode:\n  model-mappings:\n    - {from: '(', to: b}\n",
            "t.yaml:3: ampcode.model-mappings[0].from: '(' is not a valid regular expression",
        ),
        (
            "ampcode:\n  model-mappings:\n    - {from: a}\n",
            "t.yaml:3: ampcode.model-mappings[0].to: is required",
        ),
        (
            "ampcode:\n  upstream-api-keys:\n    - {api-keys: [k]}\n",
            "t.yaml:3: ampcode.upstream-api-keys[0].upstream-api-key: is required",
        ),
        (
            "ampcode:\n  force-model-mappings: maybe\n",
            "t.yaml:2: ampcode.force-model-mappings: must be true or false",
        ),
    ],
)
def test_config_errors_name_their_path(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "t.yaml")
    assert where in str(caught.value)


def test_the_fallback_decision() -> None:
    served = {"local-a", "local-b", "local-b(8192)"}.__contains__
    amp = AmpCode(model_mappings=[AmpModelMapping(**{"from": "claude-.*", "to": "local-b"})])
    assert decide(amp, "local-a", served, True).kind == LOCAL_PROVIDER
    mapped = decide(amp, "claude-opus(8192)", served, True)
    assert (mapped.kind, mapped.model) == (MODEL_MAPPING, "local-b(8192)")  # suffix kept
    assert decide(amp, "gpt-9", served, True).kind == AMP_CREDITS
    assert decide(amp, "gpt-9", served, False).kind == NO_PROVIDER
    # A mapping whose target nobody here serves does not apply.
    lost = AmpCode(model_mappings=[AmpModelMapping(**{"from": "x", "to": "nowhere"})])
    assert decide(lost, "x", served, True).kind == AMP_CREDITS
    # force-model-mappings: the mapping wins over a local provider of the model itself.
    both = AmpCode(model_mappings=[AmpModelMapping(**{"from": "local-a", "to": "local-b"})])
    assert decide(both, "local-a", served, True).kind == LOCAL_PROVIDER
    forced = both.model_copy(update={"force_model_mappings": True})
    assert decide(forced, "local-a", served, True).model == "local-b"


def test_the_rewriter_signs_thinking_blocks_in_json_and_split_sse() -> None:
    rewrite = AmpRewrite(alias="asked", tool_names={"read": "Read"})
    body = {"model": "served", "content": [{"type": "thinking", "thinking": "hm"}]}
    out = orjson.loads(rewrite.json_body(orjson.dumps(body)))
    assert out == {"model": "asked", "content": [{**body["content"][0], "signature": ""}]}
    event = {
        "type": "response.output_item.added",
        "item": {"type": "function_call", "name": "read"},
    }
    frame = b"event: x\ndata: " + orjson.dumps(event) + b"\n\n"
    first = rewrite.feed(frame[:20])
    streamed = first + rewrite.feed(frame[20:]) + rewrite.close()
    assert first == b""  # half an event waits for the rest
    data = orjson.loads(streamed.split(b"data: ", 1)[1])
    assert data["item"]["name"] == "Read" and streamed.endswith(b"\n\n")
    untouched = b"data: [DONE]\n\n"
    assert rewrite.feed(untouched) == untouched


def test_the_rewriter_recases_openai_and_gemini_tool_calls() -> None:
    rewrite = AmpRewrite(tool_names={"bash": "Bash", "read": "Read"})
    chunk = {"choices": [{"delta": {"tool_calls": [{"function": {"name": "bash"}}]}}]}
    assert rewrite.fix(chunk)
    assert chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "Bash"
    gemini = {"candidates": [{"content": {"parts": [{"functionCall": {"name": "READ"}}]}}]}
    assert rewrite.fix(gemini)
    assert gemini["candidates"][0]["content"]["parts"][0]["functionCall"]["name"] == "Read"
    # A name Amp did not declare, and the model's own arguments, are left alone.
    other = {"type": "tool_use", "name": "grep", "input": {"type": "thinking"}, "signature": "s"}
    assert not rewrite.fix(other)
    assert other["input"] == {"type": "thinking"}


def test_an_unreachable_amp_upstream_is_a_clear_502(no_key_anywhere: Path) -> None:
    text = f"demo: false\napi-keys: [{CLIENT_KEY}]\nampcode:\n  upstream-url: http://127.0.0.1:9\n"
    with ProxyServer(text) as proxy:
        reply = httpx.get(
            proxy.base_url + "/api/user", headers={"authorization": f"Bearer {CLIENT_KEY}"}
        )
    assert reply.status_code == 502
    assert "cannot reach Amp's upstream" in reply.text
