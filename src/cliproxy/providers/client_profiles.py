"""Who cliproxy says it is to each subscription backend: one client-identity profile per vendor.

The Codex backend and Anthropic refuse current models to clients below a minimum version
(400 "model requires a newer version of Codex", ``claude_code_version_too_old``), so the version
a request claims is not decoration. Everything a provider puts into an identity header (product
version, user-agent, originator, betas, SDK and runtime strings) lives here as data:

- the defaults are the current releases (reference/subscription-wire.md, captured 2026-12-01);
- operators override them in config (``claude-header-defaults``, ``codex-header-defaults`` as in
  CLIProxyAPI, and ``gemini-cli-header-defaults``);
- when a genuine official CLI passes through with a newer version, that version is adopted for
  the vendor (``ClientIdentities.adopt``), kept in memory and in the auth dir, so cliproxy never
  falls behind the client its users run. A version is never lowered: an operator's older
  user-agent keeps its text but carries the newest version known.
"""

from __future__ import annotations

import logging
import platform
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

log = logging.getLogger(__name__)

CODEX = "codex"
CLAUDE = "claude"
GEMINI_CLI = "gemini-cli"
ANTIGRAVITY = "antigravity"
KIMI = "kimi"  # kimi-cli (Kimi Code)
GROK = "grok"  # the Grok CLI (grok-shell)
VENDORS = (CODEX, CLAUDE, GEMINI_CLI, ANTIGRAVITY, KIMI, GROK)

# How each vendor's user-agent names its version: codex_exec/0.169.0, codex_cli_rs/0.169.0,
# claude-cli/2.1.331, GeminiCLI/0.61.0 or GeminiCLI-tui/0.61.0, antigravity/hub/2.9.1.
_VERSION_IN_UA = {
    CODEX: re.compile(r"^(codex_[a-z_]+)/(\d+(?:\.\d+)*)"),
    CLAUDE: re.compile(r"^(claude-cli)/(\d+(?:\.\d+)*)"),
    GEMINI_CLI: re.compile(r"^(GeminiCLI(?:-[a-z]+)?)/(\d+(?:\.\d+)*)"),
    ANTIGRAVITY: re.compile(r"^(antigravity(?:/hub)?)/(\d+(?:\.\d+)*)"),
    KIMI: re.compile(r"^(KimiCLI)/(\d+(?:\.\d+)*)"),
    GROK: re.compile(r"^(grok-shell)/(\d+(?:\.\d+)*)"),
}


def version_key(version: str) -> tuple[int, ...]:
    """Numeric order of dotted versions ("2.1.331" > "2.1.75"); non-numbers sort lowest."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else -1)
    return tuple(parts)


def newer(candidate: str, than: str) -> bool:
    return version_key(candidate) > version_key(than)


def ua_version(vendor: str, user_agent: str) -> str | None:
    """The product version a vendor CLI's user-agent names, or None for any other client."""
    match = _VERSION_IN_UA[vendor].match(user_agent.strip())
    return match.group(2) if match else None


def _linux_label() -> str:
    """The OS as the Codex CLI's user-agent names it ("Debian 12.0.0"): distribution and a
    three-part version, from /etc/os-release; plain "Linux" when there is none."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "Linux"
    fields = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    name = fields.get("ID", "linux").strip('"').capitalize()
    version = fields.get("VERSION_ID", "").strip('"')
    if version:
        pieces = [*version.split("."), "0", "0"][:3]
        return f"{name} {'.'.join(pieces)}"
    return name


def host_os_label() -> str:
    system = platform.system()
    if system == "Darwin":
        return f"Mac OS {platform.mac_ver()[0] or '14.0.0'}"
    if system == "Windows":
        return f"Windows {platform.release()}"
    return _linux_label()


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine or "x86_64")


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """One vendor CLI's identity as cliproxy presents it for clients that are not that CLI.

    ``user_agent`` is a template: ``{version}`` and ``{model}`` are filled in per request.
    ``sdk_headers`` are sent as they are (Claude Code's X-Stainless-* set)."""

    vendor: str
    version: str
    user_agent: str
    originator: str = ""
    betas: tuple[str, ...] = ()
    sdk_headers: Mapping[str, str] = field(default_factory=dict)
    runtime: str = ""  # x-goog-api-client for Gemini CLI
    beta_features: str = ""  # x-codex-beta-features
    # What the CLI's token refresh carries (its HTTP library differs from its API client's).
    refresh_user_agent: str = ""
    # Device headers the CLI sends on its logins, refreshes and API calls (kimi-cli's
    # X-Msh-*; "{version}" is filled in), and the header that carries the device id.
    device_headers: Mapping[str, str] = field(default_factory=dict)
    device_id_header: str = ""

    def user_agent_for(self, model: str = "") -> str:
        return self.user_agent.replace("{version}", self.version).replace("{model}", model)

    def refresh_headers(self, device_id: str = "") -> dict[str, str]:
        headers = {"user-agent": self.refresh_user_agent.replace("{version}", self.version)}
        if self.originator:
            headers["originator"] = self.originator
        if self.runtime:
            headers["x-goog-api-client"] = self.runtime
        headers.update(self.device_identity(device_id))
        return headers

    def device_identity(self, device_id: str = "") -> dict[str, str]:
        """The device headers, with the device id when the vendor takes one."""
        headers = {
            name: value.replace("{version}", self.version)
            for name, value in self.device_headers.items()
        }
        if self.device_id_header and device_id:
            headers[self.device_id_header] = device_id
        return headers


def _default_profiles() -> dict[str, ClientProfile]:
    os_label, arch = host_os_label(), host_arch()
    node_arch = {"x86_64": "x64"}.get(arch, arch)
    return {
        CODEX: ClientProfile(
            vendor=CODEX,
            version="0.169.0",
            originator="codex_exec",
            user_agent=f"codex_exec/{{version}} ({os_label}; {arch}) xterm (codex_exec; {{version}})",
            refresh_user_agent=f"codex_exec/{{version}} ({os_label}; {arch}) xterm",
        ),
        CLAUDE: ClientProfile(
            vendor=CLAUDE,
            version="2.1.331",
            user_agent="claude-cli/{version} (external, cli)",
            refresh_user_agent="axios/1.15.2",
            betas=(
                "claude-code-20250219",
                "oauth-2025-04-20",
                "interleaved-thinking-2025-05-14",
                "context-management-2025-06-27",
                "prompt-caching-scope-2026-01-05",
                "per-turn-control-2026-07-01",
                "mid-conversation-tool-changes-2026-07-01",
                "tool-provenance-2026-10-26",
                "thinking-token-count-2026-05-13",
                "advanced-tool-use-2025-11-20",
                "mid-conversation-system-clear-at-2026-08-21",
                "effort-2025-11-24",
                "thinking-binding-controls-2026-08-01",
                "extended-cache-ttl-2025-04-11",
                "cache-diagnosis-2026-04-07",
            ),
            sdk_headers={
                "x-stainless-arch": node_arch,
                "x-stainless-lang": "js",
                "x-stainless-os": {"Darwin": "MacOS", "Windows": "Windows"}.get(
                    platform.system(), "Linux"
                ),
                "x-stainless-package-version": "0.128.0",
                "x-stainless-retry-count": "0",
                "x-stainless-runtime": "node",
                "x-stainless-runtime-version": "v26.12.1",
                "x-stainless-timeout": "600",
            },
        ),
        GEMINI_CLI: ClientProfile(
            vendor=GEMINI_CLI,
            version="0.61.0",
            user_agent=(
                f"GeminiCLI-tui/{{version}}/{{model}} ({platform.system().lower() or 'linux'}; "
                f"{node_arch}; terminal) google-api-nodejs-client/10.9.0"
            ),
            runtime="gl-node/20.20.2",
            refresh_user_agent="google-api-nodejs-client/10.9.0",
        ),
        # The Antigravity IDE's hub as CLIProxyAPI presents it (always macOS on Apple silicon).
        # Google refuses stale versions ("This version of Antigravity is no longer
        # supported"); 2.9.1 is the hub version of 2026-12. Its auto-updater manifest names
        # newer ones; cliproxy does not fetch it: raise `antigravity-header-defaults.version`.
        ANTIGRAVITY: ClientProfile(
            vendor=ANTIGRAVITY,
            version="2.9.1",
            user_agent="antigravity/hub/{version} darwin/arm64",
            refresh_user_agent="antigravity/hub/{version} darwin/arm64",
        ),
        KIMI: ClientProfile(
            vendor=KIMI,
            version="1.12.0",
            user_agent="KimiCLI/{version}",
            refresh_user_agent="KimiCLI/{version}",
            device_headers={
                "X-Msh-Platform": "kimi_cli",
                "X-Msh-Version": "{version}",
                "X-Msh-Device-Name": _header_safe(platform.node()) or "localhost",
                "X-Msh-Device-Model": _header_safe(
                    f"{platform.system()} {platform.release()} {platform.machine()}"
                ),
            },
            device_id_header="X-Msh-Device-Id",
        ),
        GROK: ClientProfile(
            vendor=GROK,
            version="0.2.120",
            user_agent="grok-shell/{version}",
            refresh_user_agent="grok-shell/{version}",
        ),
    }


def _header_safe(text: str) -> str:
    """A host fact as a header value: printable ASCII only (a hostname may be anything)."""
    return "".join(c for c in text if " " <= c <= "~").strip()


@dataclass(frozen=True, slots=True)
class HeaderDefaults:
    """An operator's overrides for one vendor (the ``*-header-defaults`` config sections);
    empty strings leave the profile's value."""

    user_agent: str = ""
    version: str = ""
    originator: str = ""
    beta_features: str = ""
    runtime: str = ""
    sdk_headers: Mapping[str, str] = field(default_factory=dict)


AdoptedVersions = dict[str, str]  # vendor -> version


class ClientIdentities:
    """The profiles in force: defaults, then config overrides, then adopted versions. Owned by
    the application state, which also keeps the adopted versions on disk (``saved``);
    providers read ``profile(vendor)`` per request."""

    def __init__(
        self,
        adopted: AdoptedVersions | None = None,
        saved: Callable[[AdoptedVersions], None] | None = None,
    ) -> None:
        self._defaults = _default_profiles()
        self._overrides: dict[str, HeaderDefaults] = {}
        self._adopted = {
            vendor: version
            for vendor, version in (adopted or {}).items()
            if vendor in VENDORS and isinstance(version, str) and _plausible(version)
        }
        self._saved = saved
        self._profiles = self._build()

    def configure(self, overrides: Mapping[str, HeaderDefaults]) -> None:
        """Apply the config's overrides (at start and on reload)."""
        self._overrides = dict(overrides)
        self._profiles = self._build()

    def profile(self, vendor: str) -> ClientProfile:
        return self._profiles[vendor]

    def adopted(self) -> AdoptedVersions:
        return dict(self._adopted)

    def adopt(self, vendor: str, version: str) -> bool:
        """A genuine CLI of ``vendor`` passed through claiming ``version``: use it from now on
        when it is newer than what is in force. True when something changed."""
        if not _plausible(version) or not newer(version, self._profiles[vendor].version):
            return False
        self._adopted[vendor] = version
        self._profiles = self._build()
        log.info("adopted %s client version %s from a genuine client", vendor, version)
        if self._saved is not None:
            try:
                self._saved(dict(self._adopted))
            except Exception:
                log.exception("could not save the adopted client versions")
        return True

    def _build(self) -> dict[str, ClientProfile]:
        return {vendor: self._effective(vendor) for vendor in VENDORS}

    def _effective(self, vendor: str) -> ClientProfile:
        profile = self._defaults[vendor]
        wanted = self._overrides.get(vendor, HeaderDefaults())
        versions = [profile.version, wanted.version, self._adopted.get(vendor, "")]
        template = profile.user_agent
        if wanted.user_agent:
            match = _VERSION_IN_UA[vendor].match(wanted.user_agent)
            if match:
                versions.append(match.group(2))
                start, end = match.span(2)
                template = wanted.user_agent[:start] + "{version}" + wanted.user_agent[end:]
            else:
                template = wanted.user_agent  # not the vendor's shape: the operator's own text
        version = max((v for v in versions if _plausible(v)), key=version_key)
        return replace(
            profile,
            version=version,
            user_agent=template,
            originator=wanted.originator or profile.originator,
            beta_features=wanted.beta_features or profile.beta_features,
            runtime=wanted.runtime or profile.runtime,
            sdk_headers={**profile.sdk_headers, **wanted.sdk_headers},
        )


def _plausible(version: str) -> bool:
    return re.fullmatch(r"\d+(?:\.\d+){1,3}", version) is not None
