"""`logging-to-file: true`: the main log also goes to `logs/main.log`, rotated, as in CLIProxyAPI.

Where: `$WRITABLE_PATH/logs` when that variable is set, else `./logs` when the working
directory is writable, else `<auth-dir>/logs` (CLIProxyAPI's order). Lines have the layout the
Management Center's Logs page parses (log_buffer.format_record). Files rotate to `main.log.1`,
`main.log.2`, ...; with `logs-max-total-size-mb` set, the file size and the number kept are
chosen so that main.log and its rotations together stay under that many MB; with 0, files
rotate at 10 MB and the newest ROTATIONS_WITHOUT_CAP are kept.

Secrets never reach the file in full: every line is passed through a mask of the secrets the
config holds (client keys, upstream keys, the management key, proxy passwords, collector
headers) and of common token shapes (bearer tokens, `sk-` keys, JWTs, Google tokens), each
shown as `mask_secret` shows keys (`sk-a…cdef`).

`serve` calls ``configure`` at start and after each reload; a program embedding cliproxy never
gets a file handler unless it calls it itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import logging.handlers
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from cliproxy.auth.file_lock import lock_path
from cliproxy.config.schema import Config
from cliproxy.management.log_buffer import format_record
from cliproxy.management.security import ENV_PASSWORD, is_bcrypt_hash
from cliproxy.providers.base import mask_secret

LOG_NAME = "main.log"
ROTATE_BYTES = 10 * 1024 * 1024  # CLIProxyAPI's (lumberjack's) file size
ROTATIONS_WITHOUT_CAP = 1000
MIN_FILE_BYTES = 64 * 1024
MIB = 1024 * 1024

# Token shapes masked even when the config does not hold them (account tokens, pasted keys).
_TOKEN_SHAPES = re.compile(
    r"(?<![\w-])(?:"
    r"sk-[\w-]{8,}"  # OpenAI / Anthropic style keys
    r"|eyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]{6,}"  # JWTs (ChatGPT access tokens)
    r"|ya29\.[\w.-]{8,}"  # Google access tokens
    r"|1//[\w-]{8,}"  # Google refresh tokens
    r"|AIza[\w-]{20,}"  # Google API keys
    r")"
)
_BEARER = re.compile(r"(?i)(bearer\s+)([^\s\"',;]{9,})")


def log_dir(config: Config) -> Path:
    writable = os.environ.get("WRITABLE_PATH", "").strip()
    if writable:
        return Path(writable) / "logs"
    cwd = Path.cwd()
    if os.access(cwd, os.W_OK):
        return cwd / "logs"
    return config.auth_dir / "logs"


def rotation(cap_mb: int) -> tuple[int, int]:
    """(bytes per file, rotated files kept) so that all of them stay within ``cap_mb``."""
    if cap_mb <= 0:
        return ROTATE_BYTES, ROTATIONS_WITHOUT_CAP
    cap = cap_mb * MIB
    per_file = max(min(ROTATE_BYTES, cap // 2), MIN_FILE_BYTES)
    return per_file, max(cap // per_file - 1, 1)


def config_secrets(config: Config) -> list[str]:
    """Every secret the config holds, longest first (so no secret is masked piecemeal)."""
    found: set[str] = set(config.client_key_values)
    keyed = (
        *config.gemini_api_key,
        *config.claude_api_key,
        *config.codex_api_key,
        *config.xai_api_key,
    )
    for entry in (*keyed, *config.vertex_api_key):
        found.add(entry.api_key)
    for compat in config.openai_compatibility:
        found.update(key.api_key for key in compat.api_key_entries)
    secret_key = config.remote_management.secret_key.strip()
    if secret_key and not is_bcrypt_hash(secret_key):
        found.add(secret_key)
    found.update(config.otel.headers.values())
    password = os.environ.get(ENV_PASSWORD, "").strip()
    if password:
        found.add(password)
    urls = [config.proxy_url]
    urls += [e.proxy_url for e in (*config.gemini_api_key, *config.claude_api_key)]
    urls += [
        e.proxy_url for e in (*config.codex_api_key, *config.vertex_api_key, *config.xai_api_key)
    ]
    for url in urls:
        if url and "@" in url:
            try:
                proxy_password = urlsplit(url).password
            except ValueError:
                proxy_password = None
            if proxy_password:
                found.add(proxy_password)
    # Very short values would mask ordinary words; config keys are never that short.
    return sorted((s for s in found if len(s) >= 6), key=len, reverse=True)


class MaskingFormatter(logging.Formatter):
    """The reference's line layout, with secrets masked (tracebacks included)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        listed = [s for s in secrets if s]
        self._secrets = re.compile("|".join(re.escape(s) for s in listed)) if listed else None

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        return self.mask(format_record(record, message))

    def mask(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(lambda m: mask_secret(m.group(0)), text)
        text = _BEARER.sub(lambda m: m.group(1) + mask_secret(m.group(2)), text)
        return _TOKEN_SHAPES.sub(lambda m: mask_secret(m.group(0)), text)


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """The rotating handler for several processes on one file (`workers: N`): each line is
    written, and the file rotated, under a lock on `.main.log.lock` held across processes,
    and a process whose file was rotated away by another reopens `main.log` first. Without
    it, each would rotate on its own count and write on into files the others had moved or
    removed."""

    def __init__(self, path: Path, max_bytes: int, backup_count: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        self._lock_fd: int | None = None
        self._lock_pid = 0

    def _lock(self) -> int:
        # Opened per process: a forked worker shares its parent's open lock file, and
        # flock does not keep the holders of one open file apart.
        if self._lock_fd is None or self._lock_pid != os.getpid():
            self._lock_fd = os.open(
                lock_path(Path(self.baseFilename)), os.O_RDWR | os.O_CREAT, 0o600
            )
            self._lock_pid = os.getpid()
        return self._lock_fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lock = self._lock()
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:
            self.handleError(record)
            return
        try:
            self._follow_rotation()
            super().emit(record)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    def _follow_rotation(self) -> None:
        if self.stream is None:
            return
        try:
            current = os.stat(self.baseFilename).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(self.stream.fileno()).st_ino:
            self.stream.close()
            self.stream = self._open()

    def close(self) -> None:
        if self._lock_fd is not None and self._lock_pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
        self._lock_fd = None
        super().close()


class FileLogging:
    """The process's main-log file handler, on the root logger while the config asks for it."""

    def __init__(self) -> None:
        self.handler: logging.handlers.RotatingFileHandler | None = None
        self.path: Path | None = None
        self._shape: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.managed = False  # configure() was called: reloads follow the config from then on
        # Several processes write the file (`workers`): fixed by the first configure(), at
        # start, since a reload does not change how many processes there are.
        self.shared: bool | None = None

    def configure(self, config: Config) -> Path | None:
        """Start, adjust or stop writing the file to match ``config``; the file's path or
        None. A directory that cannot be written is logged, not fatal."""
        with self._lock:
            self.managed = True
            if self.shared is None:
                self.shared = config.workers > 1
            if not config.logging_to_file:
                self._stop()
                return None
            shape = rotation(config.logs_max_total_size_mb)
            if self.handler is not None and shape != self._shape:
                self._stop()  # the cap changed: reopen with the new sizes
            if self.handler is None:
                path = (self.path.parent if self.path else log_dir(config)) / LOG_NAME
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    handler: logging.handlers.RotatingFileHandler
                    if self.shared:
                        handler = SharedRotatingFileHandler(path, *shape)
                    else:
                        handler = logging.handlers.RotatingFileHandler(
                            path, maxBytes=shape[0], backupCount=shape[1], encoding="utf-8"
                        )
                except OSError as exc:
                    logging.getLogger(__name__).error(
                        "logging-to-file: cannot write %s (%s); the log stays on the console",
                        path,
                        exc.strerror or exc,
                    )
                    return None
                handler.setFormatter(MaskingFormatter())
                logging.getLogger().addHandler(handler)
                self.handler, self.path, self._shape = handler, path, shape
            formatter = self.handler.formatter
            if isinstance(formatter, MaskingFormatter):
                formatter.set_secrets(config_secrets(config))
            return self.path

    def _stop(self) -> None:
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()
            self.handler = None

    def stop(self) -> None:
        with self._lock:
            self._stop()


# One per process, like the root logger it writes from.
file_logging = FileLogging()
