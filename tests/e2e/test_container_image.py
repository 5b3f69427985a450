"""The Dockerfile at the repository root, checked without Docker (none on the test machines):
its instructions are parsed, what it copies exists and is not left out of the build context,
its entry point is the console script, and its start command and health check work when run
here (with a free port and loopback in place of 8317 and every interface)."""

from __future__ import annotations

import fnmatch
import json
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cliproxy.config.schema import DEFAULT_PORT
from tests.e2e.test_cli import serving

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"

Instruction = tuple[str, str]  # (KEYWORD, arguments)


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the last instruction ends with a continuation"
    return found


def final_stage(parsed: list[Instruction]) -> list[Instruction]:
    starts = [i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM"]
    return parsed[starts[-1] :]


def one(stage: list[Instruction], keyword: str) -> str:
    values = [arguments for k, arguments in stage if k == keyword]
    assert len(values) == 1, f"{keyword}: {values}"
    return values[0]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value)
    return value


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore's rule: the last pattern matching the path (or a parent) decides."""
    verdict = False
    parts = path.split("/")
    for pattern in patterns:
        keep = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(
                prefix, pattern.removeprefix("**/")
            ):
                verdict = not keep
    return verdict


@pytest.fixture(scope="module")
def parsed() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def test_the_image_is_python_3_11_slim_and_runs_as_a_user(parsed: list[Instruction]) -> None:
    stage = final_stage(parsed)
    assert stage[0] == ("FROM", "python:3.11-slim")
    user = one(stage, "USER")
    assert user not in ("root", "0")
    assert user in one_with(stage, "RUN", "useradd")  # the user is made in the image
    assert one(stage, "EXPOSE") == str(DEFAULT_PORT)
    assert "/data" in exec_form(one(stage, "VOLUME"))


def one_with(stage: list[Instruction], keyword: str, fragment: str) -> str:
    values = [arguments for k, arguments in stage if k == keyword and fragment in arguments]
    assert len(values) == 1, f"{keyword} with {fragment!r}: {values}"
    return values[0]


def test_what_it_copies_exists_and_reaches_the_build_context(parsed: list[Instruction]) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [args for keyword, args in parsed if keyword == "COPY" and "--from" not in args]
    assert copied
    for arguments in copied:
        *sources, _destination = shlex.split(arguments)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not ignored(source, patterns), f"{source} is left out by .dockerignore"
    # Local secrets never reach the build context.
    for secret in ("config.yaml", "auths/a.json", "logs/main.log", "usage.sqlite", ".git"):
        assert ignored(secret, patterns), secret
    assert ignored("src/cliproxy/__pycache__/x.pyc", patterns)
    assert not ignored("src/cliproxy/console/static/index.html", patterns)


def test_the_entry_point_is_the_console_script(parsed: list[Instruction]) -> None:
    stage = final_stage(parsed)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert exec_form(one(stage, "ENTRYPOINT")) == ["cliproxy"]
    assert scripts["cliproxy"] == "cliproxy.cli:main"
    env = one(stage, "ENV")
    assert "CLIPROXY_CONFIG=/config/config.yaml" in env
    assert exec_form(one(stage, "CMD"))[:3] == ["serve", "--config", "/config/config.yaml"]


def test_the_start_command_serves_and_the_health_check_passes(
    parsed: list[Instruction], tmp_path: Path
) -> None:
    stage = final_stage(parsed)
    command = exec_form(one(stage, "CMD"))
    healthcheck = one(stage, "HEALTHCHECK")
    assert "--start-period" in healthcheck
    probe = exec_form(healthcheck.split(" CMD ", 1)[1])
    assert probe[0] == "python"
    # Here: a config in tmp_path for /config, loopback for every interface, a free port.
    config = tmp_path / "config.yaml"
    config.write_text(f"api-keys: [sk-container-test]\nauth-dir: {tmp_path / 'data'}\n")
    args = [config.as_posix() if a == "/config/config.yaml" else a for a in command[1:]]
    args = ["127.0.0.1" if a == "0.0.0.0" else a for a in args]
    with serving(tmp_path, *args) as served:
        check = [sys.executable, *probe[1:]]
        check = [part.replace(f":{DEFAULT_PORT}/", f":{served.port}/") for part in check]
        assert f":{served.port}/healthz" in check[-1]
        assert subprocess.run(check, timeout=15).returncode == 0
    # With nothing listening the same check fails, so it can tell.
    assert subprocess.run(check, timeout=15, capture_output=True).returncode != 0
