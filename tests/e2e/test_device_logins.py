# ruff: noqa: F811  (the simulator fixtures are imported, then named as parameters)
"""Device-code logins (Kimi, xAI) end to end: `cliproxy login kimi|xai` through CliRunner and
the management API's `/kimi-auth-url` / `/xai-auth-url` polled with get-auth-status, against
the vendors' simulators (approval, denial, an expired code, slow_down), and the account then
serving a request."""

from __future__ import annotations

import itertools
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cliproxy.auth.flows import oauth_flow
from cliproxy.cli_auth import auth_app
from tests.simulators.device_fixtures import (  # noqa: F401 (pytest fixtures)
    _kimi_server,
    _xai_server,
    kimi,
    xai,
)
from tests.simulators.kimi_sim import KimiSim
from tests.simulators.xai_sim import XaiSim

KEY = "device-login-key"


def auth_files(directory: Path, kind: str) -> list[Path]:
    return sorted(directory.glob(f"{kind}-*.json"))


def read_private(path: Path) -> dict[str, Any]:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


# ----- the CLI ---------------------------------------------------------------------------------


def cli_login(kind: str, auth_dir: Path) -> Any:
    return CliRunner().invoke(
        auth_app, ["login", kind, "--no-browser", "--auth-dir", str(auth_dir)]
    )


def test_cli_kimi_login_prints_the_code_and_writes_the_file(tmp_path: Path, kimi: KimiSim) -> None:
    kimi.auth.outcomes.extend(["pending", "pending"])
    result = cli_login("kimi", tmp_path)
    assert result.exit_code == 0, result.output
    assert kimi.auth.user_code in result.output
    assert "https://www.kimi.com/code/authorize_device" in result.output
    (path,) = auth_files(tmp_path, "kimi")
    raw = read_private(path)
    assert raw["type"] == "kimi"
    assert set(raw) >= {"access_token", "refresh_token", "token_type", "scope", "device_id"}
    assert raw["expired"].endswith("Z") and "email" not in raw
    # The device headers went with every auth call, the same device id each time.
    ids = {r.headers["x-msh-device-id"] for r in kimi.auth.token_requests}
    assert ids == {raw["device_id"]}
    assert kimi.auth.device_requests[0].headers["x-msh-platform"] == "kimi_cli"
    assert len(kimi.auth.poll_times) == 3 and kimi.auth.too_fast == 0


def test_cli_login_reuses_kimi_clis_device_id(
    tmp_path: Path, kimi: KimiSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = tmp_path / "kimi-share"
    share.mkdir()
    (share / "device_id").write_text("cli-device-42\n")
    monkeypatch.setenv("KIMI_SHARE_DIR", str(share))
    assert cli_login("kimi", tmp_path / "auths").exit_code == 0
    (path,) = auth_files(tmp_path / "auths", "kimi")
    assert read_private(path)["device_id"] == "cli-device-42"


@pytest.mark.parametrize(("outcome", "words"), [("denied", "denied"), ("expired", "expired")])
def test_cli_login_denied_or_expired_writes_nothing(
    tmp_path: Path, kimi: KimiSim, outcome: str, words: str
) -> None:
    kimi.auth.outcomes.extend(["pending", outcome])
    result = cli_login("kimi", tmp_path)
    assert result.exit_code == 1
    assert "Login failed" in result.output and words in result.output
    assert auth_files(tmp_path, "kimi") == []


def test_slow_down_makes_the_polls_slower(tmp_path: Path, kimi: KimiSim) -> None:
    kimi.auth.outcomes.extend(["pending", "slow_down", "slow_down", "pending"])
    assert cli_login("kimi", tmp_path).exit_code == 0
    times = kimi.auth.poll_times
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    step = kimi.auth.interval
    # Each slow_down adds a step to every later wait; the server never had to repeat it.
    assert kimi.auth.too_fast == 0
    assert gaps[-1] >= 3 * step * 0.8 and gaps[-1] > gaps[0]


def test_cli_xai_login_names_the_file_by_email(tmp_path: Path, xai: XaiSim) -> None:
    xai.auth.outcomes.append("pending")
    result = cli_login("xai", tmp_path)
    assert result.exit_code == 0, result.output
    assert xai.auth.user_code in result.output
    path = tmp_path / "xai-grok.user@example.com.json"
    raw = read_private(path)
    assert raw["type"] == "xai" and raw["email"] == xai.email and raw["sub"] == xai.sub
    assert set(raw) >= {"access_token", "refresh_token", "id_token", "token_type", "expires_in"}
    form = xai.auth.device_requests[0].form
    assert form["scope"] == "openid profile email offline_access grok-cli:access api:access"


def test_cli_xai_login_without_email_is_named_by_sub(tmp_path: Path, xai: XaiSim) -> None:
    xai.email = ""
    assert cli_login("xai", tmp_path).exit_code == 0
    assert (tmp_path / f"xai-{xai.sub}.json").is_file()


def test_xai_discovery_off_the_issuer_is_refused(tmp_path: Path, xai: XaiSim) -> None:
    xai.endpoint_root = "http://127.0.0.2:9"
    result = cli_login("xai", tmp_path)
    assert result.exit_code == 1
    assert "refusing it" in result.output and auth_files(tmp_path, "xai") == []
    assert xai.auth.device_requests == []


def test_xai_endpoints_must_be_https_on_x_ai() -> None:
    from cliproxy.auth.device import _allowed

    flow = oauth_flow("xai", env={})
    assert _allowed(flow, flow.issuer, "https://auth.x.ai/oauth2/token")
    assert _allowed(flow, flow.issuer, "https://accounts.x.ai/device")
    assert not _allowed(flow, flow.issuer, "http://auth.x.ai/oauth2/token")
    assert not _allowed(flow, flow.issuer, "https://x.ai.evil.example/token")
    assert not _allowed(flow, flow.issuer, "https://evilx.ai/token")


def test_login_help_lists_every_provider() -> None:
    result = CliRunner().invoke(auth_app, ["login", "--help"], terminal_width=200)
    for kind in ("codex", "claude", "gemini", "kimi", "xai"):
        assert kind in result.output
