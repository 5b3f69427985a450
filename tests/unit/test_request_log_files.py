"""Request log files without a server: redaction, the body caps, file names, and the writer's
failure policy (logged once, never raised)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cliproxy.config import parse_config_text
from cliproxy.management.redact import Redactor, redact_headers
from cliproxy.management.request_log_view import entry, listing
from cliproxy.management.request_logs import RequestLogWriter, file_name, file_text, render
from cliproxy.providers.base import UpstreamRequest
from cliproxy.providers.exchanges import EXCHANGES, Exchange, opened
from cliproxy.server.request_log import SECTION_CAP, RequestRecord, Tee

CONFIGURED = "configured-secret-4242"


def test_header_values_that_carry_credentials_are_masked() -> None:
    headers = [
        ("Authorization", "Bearer abcdefghijklmnop"),
        ("x-api-key", "qrstuvwxyz123456"),
        ("X-Goog-Api-Key", "AIzaSomethingLong12345"),
        ("Cookie", "session=abcdefghijkl"),
        ("set-cookie", "id=zyxwvutsrqpo"),
        ("x-management-key", "short"),
        ("content-type", "application/json"),
    ]
    masked = dict(redact_headers(headers))
    assert masked["Authorization"] == "Bearer abcd…mnop"
    assert masked["x-api-key"] == "qrst…3456"
    assert masked["Cookie"] == "sess…ijkl"
    assert masked["x-management-key"] == "*****"
    assert masked["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /v1beta/models?key=AIzaVerySecretKey0001&alt=sse", "AIzaVerySecretKey0001"),
        ("grant_type=refresh_token&refresh_token=rt-long-refresh-value", "rt-long-refresh-value"),
        ("code=oauth-code-1234567890&state=x", "oauth-code-1234567890"),
        ('{"access_token": "at-long-access-value"}', "at-long-access-value"),
        ('{"refreshToken":"rt-camel-case-value"}', "rt-camel-case-value"),
        ('{"id_token":"idt-0123456789abcdef"}', "idt-0123456789abcdef"),
        ('{"client_secret":"cs-0123456789"}', "cs-0123456789"),
        ('{"password":"hunter2-hunter2"}', "hunter2-hunter2"),
        ('data: {"api_key":"plain-key-value-xyz"}\n\n', "plain-key-value-xyz"),
        ('{"code":"4/0AbCdEfGhIjKlMnOpQrSt"}', "4/0AbCdEfGhIjKlMnOpQrSt"),
        (f"the user pasted {CONFIGURED} into a message", CONFIGURED),
        ("Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl", "eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl"),
        ("a key sk-ant-api03-abcdefghijkl in text", "sk-ant-api03-abcdefghijkl"),
    ],
)
def test_secrets_are_masked_wherever_they_appear(text: str, secret: str) -> None:
    redacted = Redactor([CONFIGURED]).text(text)
    assert secret not in redacted
    assert "…" in redacted or "*" in redacted


def test_ordinary_content_is_left_alone() -> None:
    text = '{"error":{"code":"invalid_api_key","message":"no"},"model":"gpt-5","tokens":3}'
    assert Redactor([CONFIGURED]).text(text) == text


def test_bodies_are_capped_with_a_note() -> None:
    tee = Tee()
    tee.add(b"a" * (SECTION_CAP - 10))
    tee.add(b"b" * 30)
    tee.add(b"c" * 5)
    assert tee.kept == SECTION_CAP and tee.dropped == 25
    assert tee.value().endswith(b"b" * 10)


def _record(config_text: str, path: str = "/v1/chat/completions") -> RequestRecord:
    scope: dict[str, Any] = {
        "method": "POST",
        "path": path,
        "query_string": b"",
        "client": ("127.0.0.1", 5000),
        "headers": [(b"authorization", b"Bearer client-key-abcdefgh")],
    }
    return RequestRecord(scope, parse_config_text(config_text, "c.yaml"))


def test_file_names() -> None:
    record = _record("request-log: true\n", "/v1beta/models/gemini-2.5-pro:streamGenerateContent")
    name = file_name(record)
    assert name.startswith("v1beta-models-gemini-2.5-pro-streamGenerateContent-")
    assert name.endswith(f"-{record.request_id}.log")
    assert file_name(_record("request-log: false\n")).startswith("error-v1-chat-completions-")


def test_exchanges_are_noted_only_while_a_request_is_recorded() -> None:
    request = UpstreamRequest("https://up.example/v1", {"x-api-key": "k"}, b"{}")
    assert opened(request) is None
    book: list[Exchange] = []
    token = EXCHANGES.set(book)
    try:
        exchange = opened(request)
    finally:
        EXCHANGES.reset(token)
    assert exchange is not None and book == [exchange]
    exchange.error = "cannot reach upstream up.example: ClientConnectorError"
    record = _record("request-log: true\n")
    record.exchanges = book
    text = render(record)
    assert "=== UPSTREAM REQUEST 1 ===\nPOST https://up.example/v1" in text
    assert "No reply: cannot reach upstream" in text


def test_a_write_failure_is_logged_once_and_never_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("WRITABLE_PATH", str(blocker))  # logs/ cannot be made under a file
    state = SimpleNamespace(
        runtime=SimpleNamespace(registry=SimpleNamespace(credentials=dict)),
        auth_store=SimpleNamespace(records=tuple),
    )
    writer = RequestLogWriter(lambda: state)  # type: ignore[arg-type, return-value]

    async def run() -> None:
        for _ in range(3):
            writer.submit(_record("request-log: true\n"))
        await writer.flush()

    with caplog.at_level(logging.ERROR, "cliproxy"):
        asyncio.run(run())
    assert writer.failures == 3
    assert len([r for r in caplog.records if "request log" in r.getMessage()]) == 1


def test_a_body_holding_section_titles_is_read_back_exactly(tmp_path: Path) -> None:
    """Each section's length is in the summary, so a body that looks like the file's own
    layout (a client can send anything) never splits it wrongly; secrets are masked in the
    summary too."""
    record = _record("request-log: true\n")
    sneaky = f"line\n\n=== RESPONSE ===\nStatus: 999\n\n--- body ---\nforged {CONFIGURED}"
    record.body.add(sneaky.encode())
    record.status = 200
    record.reply.add(b"the real reply")
    path = tmp_path / file_name(record)
    path.write_text(file_text(record, Redactor([CONFIGURED])))
    found = entry(path, path.stat())
    assert found is not None
    request, response = found["sections"]
    assert request["title"] == "REQUEST" and request["body"].startswith("line\n\n=== RESPONSE")
    assert "forged conf…4242" in request["body"] and CONFIGURED not in path.read_text()
    assert response["lines"] == ["Status: 200"] and response["body"] == "the real reply"
    assert ["authorization", "Bearer clie…efgh"] in request["headers"]
    assert found["request"]["request_id"] == record.request_id and found["attempts"] == []
    listed = listing(path, path.stat())
    assert listed is not None and listed["status"] == 200 and listed["summary"] is True


def test_a_summary_that_does_not_fit_falls_back_to_the_titles(tmp_path: Path) -> None:
    record = _record("request-log: true\n")
    record.body.add(b"{}")
    record.reply.add(b"ok")
    text = file_text(record, Redactor(()))
    path = tmp_path / file_name(record)
    path.write_text(text.replace("=== REQUEST ===\n", "=== REQUEST ===\nextra line\n"))
    found = entry(path, path.stat())
    assert found is not None
    assert [s["title"] for s in found["sections"]] == ["REQUEST", "RESPONSE"]
    assert found["sections"][1]["body"] == "ok"
