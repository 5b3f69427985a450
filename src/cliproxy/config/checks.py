"""Checks that need more than one field, the file system, or the whole list of providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import KeyPath
from .schema import Config
from .upstreams import ModelAlias, ProviderKey


@dataclass
class CheckResult:
    errors: list[tuple[KeyPath, str]] = field(default_factory=list)
    warnings: list[tuple[KeyPath, str]] = field(default_factory=list)


def resolve_path(value: str, base_dir: Path) -> Path:
    """`~` is expanded; relative paths are read from the config file's directory."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


# The `<kind>-api-key` sections of ProviderKey entries.
KEY_SECTIONS = ("gemini-api-key", "claude-api-key", "codex-api-key", "xai-api-key")


def run_checks(cfg: Config, base_dir: Path) -> CheckResult:
    """Validate `cfg` and normalise it in place (TLS paths made absolute, empty keys dropped)."""
    result = CheckResult()
    _check_tls(cfg, base_dir, result)
    _check_openai_names(cfg, result)
    _check_client_keys(cfg, result)
    for section in KEY_SECTIONS:
        entries: list[ProviderKey] = getattr(cfg, section.replace("-", "_"))
        for index, entry in enumerate(entries):
            _check_aliases(entry.models, (section, index), result)
    for index, provider in enumerate(cfg.openai_compatibility):
        _check_aliases(provider.models, ("openai-compatibility", index), result)
    # Last, because it renumbers the lists the paths above refer to.
    _drop_empty_keys(cfg, result)
    return result


def _check_tls(cfg: Config, base_dir: Path, result: CheckResult) -> None:
    tls = cfg.tls
    if not tls.enable:
        return
    for name in ("cert", "key"):
        value: str = getattr(tls, name).strip()
        if not value:
            result.errors.append((("tls", name), "is required when tls.enable is true"))
            continue
        path = resolve_path(value, base_dir)
        if not path.is_file():
            result.errors.append((("tls", name), f"file not found: {path}"))
            continue
        setattr(tls, name, str(path))


def _check_openai_names(cfg: Config, result: CheckResult) -> None:
    # The name identifies the provider in logs, usage and the management API: it must be unique.
    first_use: dict[str, int] = {}
    for index, provider in enumerate(cfg.openai_compatibility):
        folded = provider.name.casefold()
        if folded in first_use:
            message = (
                f"duplicate provider name {provider.name!r} "
                f"(already used by openai-compatibility[{first_use[folded]}])"
            )
            result.errors.append((("openai-compatibility", index, "name"), message))
        else:
            first_use[folded] = index


def _check_client_keys(cfg: Config, result: CheckResult) -> None:
    # A name stands for its key in usage and limits; a key must say which policy is its own.
    names: dict[str, int] = {}
    keys: dict[str, int] = {}
    for index, entry in enumerate(cfg.client_keys):
        folded = entry.name.casefold()
        if folded in names:
            message = (
                f"duplicate client key name {entry.name!r} (already used by client-keys"
                f"[{names[folded]}]); each key needs its own name"
            )
            result.errors.append((("client-keys", index, "name"), message))
        else:
            names[folded] = index
        if entry.key in keys:
            message = (
                f"the key of {entry.name!r} is the same as that of client-keys[{keys[entry.key]}]"
            )
            result.errors.append((("client-keys", index, "key"), message))
        else:
            keys[entry.key] = index
        if entry.key in cfg.api_keys:
            message = (
                f"the key of {entry.name!r} is also listed in api-keys (where it has no "
                "policy); keep it in one place"
            )
            result.errors.append((("client-keys", index, "key"), message))


def _check_aliases(models: list[ModelAlias], where: KeyPath, result: CheckResult) -> None:
    first_use: dict[str, int] = {}
    for index, model in enumerate(models):
        client_name = model.client_name
        if client_name not in first_use:
            first_use[client_name] = index
            continue
        earlier = models[first_use[client_name]]
        if earlier.name == model.name:
            message = f"{client_name!r} repeats models[{first_use[client_name]}]"
        else:
            message = (
                f"alias {client_name!r} is also given to models[{first_use[client_name]}] "
                f"({earlier.name!r}); requests for it are shared between the upstream models"
            )
        result.warnings.append(((*where, "models", index, "alias"), message))


def _drop_empty_keys(cfg: Config, result: CheckResult) -> None:
    # CLIProxyAPI silently skips entries with neither a key nor a base URL; we skip and say so.
    for section in KEY_SECTIONS:
        attr = section.replace("-", "_")
        entries: list[ProviderKey] = getattr(cfg, attr)
        kept = []
        for index, entry in enumerate(entries):
            if entry.is_empty:
                result.warnings.append(((section, index), "has no api-key or base-url; skipped"))
            else:
                kept.append(entry)
        if len(kept) != len(entries):
            setattr(cfg, attr, kept)
