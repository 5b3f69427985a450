"""The ``*-header-defaults`` sections: an operator's say in how cliproxy presents itself to the
subscription backends (providers/client_profiles.py holds the defaults they override).

``claude-header-defaults`` and ``codex-header-defaults`` take CLIProxyAPI's keys unchanged;
``gemini-cli-header-defaults`` has the same shape for Gemini CLI accounts, and
``antigravity-header-defaults`` (user-agent, version) for Antigravity accounts. Every section also
takes ``version``. A version lower than the current default (or than one a genuine CLI has shown)
is raised, never used: backends refuse current models to old clients.
"""

from __future__ import annotations

from pydantic import field_validator

from .base import ConfigModel


class _HeaderDefaults(ConfigModel):
    user_agent: str = ""
    version: str = ""

    @field_validator("*", mode="after")
    @classmethod
    def _trimmed(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class ClaudeHeaderDefaults(_HeaderDefaults):
    """Claude Code's user-agent and the X-Stainless-* values its SDK sends."""

    package_version: str = ""
    runtime_version: str = ""
    os: str = ""
    arch: str = ""
    timeout: str = ""
    # CLIProxyAPI pins OS/arch with it; cliproxy's profile is always one fixed device, so the
    # key is accepted and changes nothing.
    stabilize_device_profile: bool = False


class CodexHeaderDefaults(_HeaderDefaults):
    beta_features: str = ""  # x-codex-beta-features
    originator: str = ""


class AntigravityHeaderDefaults(_HeaderDefaults):
    """Antigravity accounts: ``version`` (or a whole ``antigravity/hub/<v> ...`` user-agent)."""


class GeminiCLIHeaderDefaults(_HeaderDefaults):
    api_client: str = ""  # x-goog-api-client, e.g. gl-node/20.20.2
