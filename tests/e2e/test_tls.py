"""`tls.enable` serves HTTPS with the configured cert and key, through the real `cliproxy serve`."""

from __future__ import annotations

import contextlib
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
import trustme

from tests.e2e.test_cli import clean_env, cli_command, free_port


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="module")
def https_proxy(
    ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory, trusting: ssl.SSLContext
) -> Iterator[tuple[str, str]]:
    """`cliproxy serve` with TLS on; yields (base URL, banner)."""
    directory = tmp_path_factory.mktemp("tls")
    issued = ca.issue_cert("127.0.0.1", "localhost")
    issued.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    issued.private_key_pem.write_to_path(str(directory / "server.key"))
    config = directory / "config.yaml"
    # Relative paths: they must be read from the config file's directory, not the cwd.
    config.write_text(
        "api-keys: [tls-key]\ntls:\n  enable: true\n  cert: server.crt\n  key: server.key\n"
    )
    port = free_port()
    out = directory / "serve.out"
    process = subprocess.Popen(
        [*cli_command(), "serve", "--config", str(config), "--port", str(port)],
        cwd=directory.parent,
        env=clean_env(),
        stdout=out.open("wb"),
        stderr=(directory / "serve.err").open("wb"),
    )
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise AssertionError((directory / "serve.err").read_text())
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/healthz", verify=trusting, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("HTTPS server never became healthy")
            time.sleep(0.05)
        yield base, out.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_https_request_with_the_ca_trusted(
    https_proxy: tuple[str, str], trusting: ssl.SSLContext
) -> None:
    base, banner = https_proxy
    reply = httpx.post(
        base + "/v1/chat/completions",
        json={"model": "demo-echo", "messages": [{"role": "user", "content": "secure"}]},
        headers={"authorization": "Bearer tls-key"},
        verify=trusting,
    )
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "Echo: secure"
    assert reply.http_version in ("HTTP/1.1", "HTTP/2")
    assert f"OpenAI base URL:     {base}/v1" in banner


def test_sdks_over_https(https_proxy: tuple[str, str], trusting: ssl.SSLContext) -> None:
    base, _ = https_proxy
    # Each SDK takes its own HTTP client class; both accept an SSLContext as `verify`.
    with openai.DefaultHttpxClient(verify=trusting) as http:
        oa = openai.OpenAI(base_url=base + "/v1", api_key="tls-key", http_client=http)
        chat = oa.chat.completions.create(
            model="demo-echo", messages=[{"role": "user", "content": "over tls"}]
        )
        assert chat.choices[0].message.content == "Echo: over tls"
    with anthropic.DefaultHttpxClient(verify=trusting) as http2:
        an = anthropic.Anthropic(base_url=base, api_key="tls-key", http_client=http2)
        with an.messages.stream(
            model="demo-echo", max_tokens=20, messages=[{"role": "user", "content": "stream"}]
        ) as stream:
            assert stream.get_final_message().content[0].text == "Echo: stream"


def test_untrusted_certificate_is_rejected_by_the_client(https_proxy: tuple[str, str]) -> None:
    base, _ = https_proxy
    # Proves the server really presents the trustme certificate: without the CA it fails.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(base + "/healthz")


def test_plain_http_is_not_served_on_the_tls_port(https_proxy: tuple[str, str]) -> None:
    base, _ = https_proxy
    plain = base.replace("https://", "http://")
    with contextlib.suppress(httpx.TransportError):
        reply = httpx.get(plain + "/healthz", timeout=3)
        # uvicorn may answer a plaintext request with a bare 400; it must never be served.
        assert reply.status_code != 200
