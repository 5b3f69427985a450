"""Hot reload: watch config.yaml and hand each valid new version to the server."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

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


MAX_LINK_HOPS = 40  # as the kernel's own limit: a longer chain is a loop


def quiet_watchfiles_log() -> None:
    """Keep watchfiles' own "N changes detected" lines (info) and "all changes filtered out"
    lines (debug) out of our log. With the log written to a file in a watched directory, each
    such line is itself a change, which logs another line: a loop ten times a second. A level
    someone set on purpose is left alone."""
    logger = logging.getLogger("watchfiles")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def link_chain(path: Path) -> list[Path]:
    """`path` and each path its symlinks lead to, in order, compared lexically (not resolved:
    a dangling hop still names the entry whose return would fix it)."""
    chain = [Path(os.path.normpath(path))]
    while len(chain) <= MAX_LINK_HOPS:
        try:
            target = os.readlink(chain[-1])
        except OSError:  # not a symlink (or gone): the end of the chain
            break
        chain.append(Path(os.path.normpath(chain[-1].parent / target)))
    return chain


def names_that_matter(path: Path) -> set[str]:
    """The entries of `path`'s directory whose change can change what reading `path` gives:
    its own name, and the first step of every hop of its symlink chain that passes through
    that directory (a ConfigMap's `..data` link, a `current -> v2` release link), including
    the real file's directory once every link is followed."""
    directory = Path(os.path.normpath(path.parent))
    real_directory = Path(os.path.realpath(directory))
    names = {path.name}
    hops = [*link_chain(path), Path(os.path.realpath(path))]
    for hop in hops:
        for base in (directory, real_directory):
            if hop.is_relative_to(base) and hop != base:
                names.add(hop.relative_to(base).parts[0])
    return names


def _fingerprint(path: Path) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


class ConfigWatcher:
    """Reloads `path` when it changes on disk.

    The directory is watched rather than the file because editors and config tools save by
    writing a temporary file and renaming it over the old one, which would orphan a watch on
    the file itself. Only events naming the file, or a link on the way to it, wake the
    watcher (see `wants`): the directory may also hold a log file that changes all the time.
    A valid new config goes to `on_change`; an invalid one goes to `on_error` and the caller
    keeps serving the last good config (also kept here as `.current`).
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

    def wants(self, change: Change, path: str) -> bool:
        """The watch filter: does this event name an entry that config.yaml's content goes
        through? A Kubernetes ConfigMap updates by swapping a `..data` symlink, so its event
        never names config.yaml itself; the chain is read afresh each time, as a swap changes
        it. The directory itself counts too: when polling, a save by rename within the same
        second shows only as a change of the directory. reload() still compares content, so
        a false positive costs one read."""
        del change
        if os.path.normpath(path) == os.path.normpath(self.path.parent):
            return True
        return Path(path).name in names_that_matter(self.path)

    async def run(self) -> None:
        """Watch until stop() is called. Never raises for a bad config or a failing callback."""
        quiet_watchfiles_log()
        async for changes in awatch(
            self.path.parent,
            watch_filter=self.wants,
            stop_event=self._stop,
            debounce=self.debounce_ms,
            force_polling=self.force_polling,
            recursive=False,
        ):
            del changes  # which entry changed does not matter: the file is read again
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
