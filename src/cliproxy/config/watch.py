"""Hot reload: watch config.yaml and hand each valid new version to the server."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import awatch

from .errors import ConfigError
from .load import load_config
from .schema import Config

log = logging.getLogger(__name__)

OnChange = Callable[[Config], Awaitable[None] | None]
OnError = Callable[[ConfigError], None]


def diff_keys(old: Config, new: Config) -> list[str]:
    """Top-level keys (YAML spelling, schema order) whose values differ between two configs."""
    changed = [
        info.alias or name
        for name, info in Config.model_fields.items()
        if getattr(old, name) != getattr(new, name)
    ]
    old_extra = old.model_extra or {}
    new_extra = new.model_extra or {}
    for key in sorted(set(old_extra) | set(new_extra)):
        if old_extra.get(key) != new_extra.get(key):
            changed.append(key)
    return changed


def _fingerprint(path: Path) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


class ConfigWatcher:
    """Reloads `path` when it changes on disk.

    The directory is watched rather than the file because editors and config tools save by
    writing a temporary file and renaming it over the old one, which would orphan a watch on
    the file itself. A valid new config goes to `on_change`; an invalid one goes to `on_error`
    and the caller keeps serving the last good config (also kept here as `.current`).
    """

    def __init__(
        self,
        path: Path,
        on_change: OnChange,
        on_error: OnError,
        *,
        current: Config | None = None,
        debounce_ms: int = 300,
        force_polling: bool | None = None,
    ) -> None:
        self.path = Path(path).absolute()
        self.on_change = on_change
        self.on_error = on_error
        self.current = current
        self.debounce_ms = debounce_ms
        self.force_polling = force_polling
        self._stop = asyncio.Event()
        # Content already handled; saves a reload when an editor touches the file unchanged.
        self._seen = _fingerprint(self.path)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Watch until stop() is called. Never raises for a bad config or a failing callback."""
        async for changes in awatch(
            self.path.parent,
            stop_event=self._stop,
            debounce=self.debounce_ms,
            force_polling=self.force_polling,
            recursive=False,
        ):
            # Any change in the directory triggers a content check rather than matching names:
            # a Kubernetes ConfigMap, for one, updates by swapping a `..data` symlink, so the
            # event never names config.yaml. reload() reads the file and skips unchanged content.
            del changes
            await self.reload()

    async def reload(self) -> Config | None:
        """Read the file now; returns the new config, or None when unchanged or invalid."""
        fingerprint = _fingerprint(self.path)
        if fingerprint is not None and fingerprint == self._seen:
            return None
        self._seen = fingerprint
        try:
            cfg = load_config(self.path)
        except ConfigError as exc:
            log.debug("config reload rejected:\n%s", exc)
            self._safely(self.on_error, exc)
            return None
        if self.current is not None:
            log.debug("config reloaded: %s", ", ".join(diff_keys(self.current, cfg)) or "no change")
        self.current = cfg
        try:
            outcome = self.on_change(cfg)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("applying the reloaded config failed")
        return cfg

    @staticmethod
    def _safely(callback: OnError, exc: ConfigError) -> None:
        try:
            callback(exc)
        except Exception:
            log.exception("config error handler failed")
