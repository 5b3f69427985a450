"""The command line, run as a real subprocess: --version, config check, serve."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from cliproxy import __version__
from cliproxy.serve import binds_loopback_only


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("cliproxy")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cliproxy.cli"]


def clean_env() -> dict[str, str]:
    # A developer's own CLIPROXY_CONFIG must not leak into the "no config" cases.
    return {k: v for k, v in os.environ.items() if k != "CLIPROXY_CONFIG"}


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cli_command(), *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=15,
    )


def run_cli_together(
    arg_lists: list[list[str]], cwd: Path, stdout: bool = False
) -> list[tuple[int, str]]:
    """Several independent CLI runs at once, since each pays the start-up cost. Each gives
    (status, stderr), or (status, stdout + stderr) with ``stdout``."""
    processes = [
        subprocess.Popen(
            [*cli_command(), *args],
            cwd=cwd,
            env=clean_env(),
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if stdout else subprocess.PIPE,
            text=True,
        )
        for args in arg_lists
    ]
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        results.append((process.returncode, out if stdout else err))
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.stdout.read_text()

    def log(self) -> str:
        return self.stderr.read_text()


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`cliproxy serve ARGS` in a subprocess, yielded once /healthz answers."""
    port = free_port()
    served = Served(
        subprocess.Popen(
            [*cli_command(), "serve", "--port", str(port), *args],
            cwd=tmp_path,
            env=env or clean_env(),
            stdout=(tmp_path / "serve.out").open("wb"),
            stderr=(tmp_path / "serve.err").open("wb"),
        ),
        port,
        tmp_path / "serve.out",
        tmp_path / "serve.err",
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            if served.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{served.output()}\n{served.log()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(served.base_url + "/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"serve never became healthy:\n{served.log()}")
            time.sleep(0.05)
        yield served
    finally:
        served.process.send_signal(signal.SIGTERM)
        try:
            served.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait()


# --- --version and config check ---------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"cliproxy {__version__}"


def test_config_check_passes_a_usable_file_and_lists_its_findings(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("port: 9000\napi-keys: [k]\nrequest-body-limit-mb: 4\n")
    noted = tmp_path / "noted.yaml"
    noted.write_text("port: 9000\nno-such-key: 1\ncommercial-mode: true\n")
    results = run_cli_together(
        [["config", "check", str(good)], ["config", "check", str(noted)]], tmp_path, stdout=True
    )
    (good_status, good_out), (noted_status, noted_out) = results
    assert good_status == 0, good_out
    assert f"{good}: OK" in good_out
    assert noted_status == 0, noted_out
    assert f"{noted}:2: no-such-key: unknown key" in noted_out
    assert f"not supported yet (ignored): {noted}:3: commercial-mode" in noted_out
    assert f"{noted}: OK (1 warning, 1 not supported yet)" in noted_out


def test_serve_writes_the_main_log_to_a_file_without_secrets(tmp_path: Path) -> None:
    client_key = "file-log-client-key-0123456789"
    upstream_key = "sk-file-log-upstream-key-abcdef"
    path = tmp_path / "my.yaml"
    path.write_text(
        f"api-keys: [{client_key}]\nlogging-to-file: true\nlogs-max-total-size-mb: 5\n"
        f"claude-api-key:\n  - api-key: {upstream_key}\n    base-url: http://127.0.0.1:9\n"
    )
    env = {k: v for k, v in clean_env().items() if k != "WRITABLE_PATH"}
    with serving(tmp_path, "--config", str(path), env=env) as served:
        headers = {"authorization": f"Bearer {client_key}"}
        reply = httpx.post(
            served.base_url + "/v1/messages",
            headers=headers,
            json={
                "model": "claude-x",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "hi"}],
            },
            timeout=20,
        )
        assert reply.status_code >= 400  # nothing listens upstream: the failure is logged
    main_log = tmp_path / "logs" / "main.log"
    text = main_log.read_text()
    assert f"logging to {main_log}" in text
    assert "] [--------] [info] [" in text
    for secret in (client_key, upstream_key):
        assert secret not in text
        assert secret not in served.log()


def test_config_check_names_key_path_and_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "port: 70000\n"
        "api-keys: [k]\n"
        "openai-compatibility:\n"
        "  - name: local\n"
        "    base-url: not-a-url\n"
        "    models: [m]\n"
    )
    result = run_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{path}:1: port: must be between 1 and 65535" in result.stderr
    assert f"{path}:5: openai-compatibility[0].base-url:" in result.stderr
    assert "2 errors, config not usable" in result.stderr


# file name, content (None: no such file), what `config check` must say on stderr
CHECK_ERRORS = [
    ("syntax.yaml", "port: 8317\napi-keys: [k\n", ":3: YAML syntax"),
    ("list.yaml", "- a\n- b\n", ":1: the file must be a mapping"),
    ("tls.yaml", "tls:\n  enable: true\n  cert: gone.pem\n  key: gone.key\n", ":3: tls.cert:"),
    ("absent.yaml", None, ": config file not found"),
]


def test_config_check_other_errors_exit_2(tmp_path: Path) -> None:
    for name, text, _ in CHECK_ERRORS:
        if text is not None:
            (tmp_path / name).write_text(text)
    runs = [["config", "check", str(tmp_path / name)] for name, _, _ in CHECK_ERRORS]
    for (name, _, expected), (status, stderr) in zip(
        CHECK_ERRORS, run_cli_together(runs, tmp_path), strict=True
    ):
        assert status == 2, (name, stderr)
        assert f"{tmp_path / name}{expected}" in stderr, stderr
        assert "Traceback" not in stderr


# --- serve ------------------------------------------------------------------------------------


def test_serve_without_config_runs_the_demo_and_prints_a_working_curl(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        reply = httpx.post(
            served.base_url + "/v1/chat/completions",
            json={"model": "demo-echo", "messages": [{"role": "user", "content": "cli"}]},
        )
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"] == "Echo: cli"
        banner = served.output()
        assert f"{served.base_url}/v1" in banner
        assert "embedded default" in banner
        assert "demo-echo" in banner
        curl = _curl_line(banner)
        assert served.base_url in curl
        if shutil.which("curl"):
            ran = subprocess.run(curl, shell=True, capture_output=True, text=True, timeout=10)
            assert ran.returncode == 0, ran.stderr
            assert "Echo: hello" in ran.stdout
    assert "Traceback" not in served.log()


def _curl_line(banner: str) -> str:
    """The printed curl command (it continues over a backslash-newline)."""
    lines = banner.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("curl "))
    command = lines[start].strip()
    while command.endswith("\\"):
        start += 1
        command = command[:-1] + " " + lines[start].strip()
    shlex.split(command)  # must be valid shell
    return command


def test_serve_with_config_file_applies_it(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text("api-keys: [secret-1]\ncommercial-mode: true\n")
    with serving(tmp_path, "--config", str(path)) as served:
        url = served.base_url + "/v1/models"
        assert httpx.get(url).status_code == 401
        listed = httpx.get(url, headers={"authorization": "Bearer secret-1"})
        assert "demo-echo" in {model["id"] for model in listed.json()["data"]}
        assert str(path) in served.output()
        # The banner's curl line carries the key header (abbreviated, never the whole key).
        assert "secret-1" not in served.output()
    log = served.log()
    assert log.count("commercial-mode") == 1
    assert "not supported yet" in log


def test_serve_refuses_to_start_with_status_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("host: 127.0.0.1\nrequest-retry: -3\n")
    (tmp_path / "public.yaml").write_text("host: 0.0.0.0\n")
    port = str(free_port())
    # arguments, what stderr must say
    cases = [
        (["--config", "bad.yaml"], "bad.yaml:2: request-retry: must be 0 or more"),
        (["--config", "absent.yaml"], "absent.yaml: config file not found"),
        (["--host", "0.0.0.0"], "refusing to listen on 0.0.0.0: no api-keys are configured"),
        (["--host", "192.168.1.20"], "refusing to listen on 192.168.1.20"),
        (["--config", "public.yaml"], "refusing to listen on 0.0.0.0"),
        (["--port=0"], "Invalid value for '--port'"),
        (["--port=70000"], "Invalid value for '--port'"),
    ]
    runs = [["serve", "--port", port, *args] for args, _ in cases]
    for (args, expected), (status, stderr) in zip(
        cases, run_cli_together(runs, tmp_path), strict=True
    ):
        assert status == 2, (args, stderr)
        assert expected in stderr, (args, stderr)
        assert "Traceback" not in stderr


def test_which_hosts_count_as_loopback_only() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert binds_loopback_only(host), host
    for host in ("0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "example.com"):
        assert not binds_loopback_only(host), host


def test_serve_allows_a_public_host_with_api_keys_from_CLIPROXY_CONFIG(tmp_path: Path) -> None:
    path = tmp_path / "from-env.yaml"
    path.write_text("api-keys: [public-key]\n")
    env = {**clean_env(), "CLIPROXY_CONFIG": str(path)}
    # Bound on every interface only for the moment it takes to answer loopback requests.
    with serving(tmp_path, "--host", "0.0.0.0", env=env) as served:
        url = served.base_url + "/v1/models"
        assert httpx.get(url, headers={"authorization": "Bearer public-key"}).status_code == 200
        assert httpx.get(url, headers={"x-api-key": "wrong"}).status_code == 401
        assert httpx.get(url).status_code == 401
        # The banner shows an address a local client can actually use.
        assert f"http://127.0.0.1:{served.port}" in served.output()
        assert str(path) in served.output()
