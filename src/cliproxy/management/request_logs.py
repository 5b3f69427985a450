"""Request log files: writing what server/request_log.py captured, and finding them again.

One file per request in the log directory (log_file.log_dir), named
``<sanitized-path>-<YYYY-MM-DDTHHMMSS>-<request id>.log`` (server-local time); with
``request-log`` off only failed requests are written, as ``error-<same>.log``, and the newest
``error-logs-max-files`` of those are kept (0: no count cap). With ``logs-max-total-size-mb``
set, the oldest request log files go first once all of them together pass it.

Writing happens after the reply ended, one file at a time, in a worker thread; a request never
waits for it. A failure to write is logged once (then only counted) and changes no reply.
Every file is redacted (management/redact.py) before it touches the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from cliproxy.auth.files import write_atomic
from cliproxy.config.schema import Config
from cliproxy.management.log_file import MIB, config_secrets, log_dir
from cliproxy.management.redact import Redactor, redact_headers
from cliproxy.management.request_log_view import summary_section
from cliproxy.server.request_log import SECTION_CAP, RequestRecord, Tee
from cliproxy.state import AppState, Runtime

log = logging.getLogger(__name__)

ERROR_PREFIX = "error-"
# Every file this module writes, and the error ones among them.
LOG_FILE = re.compile(r"[A-Za-z0-9._-]+-\d{4}-\d{2}-\d{2}T\d{6}-[0-9a-f]{8}\.log")
ERROR_FILE = re.compile(r"error-[A-Za-z0-9._-]+\.log")
REQUEST_ID = re.compile(r"[0-9a-f]{8}")
MAX_PENDING = 512  # records waiting for the writer; more are dropped (and counted)
_TOKEN_FIELDS = ("access_token", "refresh_token", "id_token", "api_key")


def file_name(record: RequestRecord) -> str:
    path = re.sub(r"[^A-Za-z0-9._]+", "-", record.path).strip("-.")[:96] or "root"
    stamp = time.strftime("%Y-%m-%dT%H%M%S", time.localtime(record.started))
    prefix = "" if record.config.request_log else ERROR_PREFIX
    return f"{prefix}{path}-{stamp}-{record.request_id}.log"


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]


def _block(title: str, lines: list[str], headers: list[tuple[str, str]]) -> list[str]:
    out = [f"=== {title} ===", *lines, "", "--- headers ---"]
    out += [f"{name}: {value}" for name, value in redact_headers(headers)]
    return out


def _body(raw: bytes, dropped: int = 0) -> list[str]:
    out = ["", "--- body ---", raw.decode("utf-8", "replace")]
    if dropped:
        out.append(f"[truncated {dropped} bytes]")
    return [*out, ""]


def _tee_body(tee: Tee) -> list[str]:
    return _body(tee.value(), tee.dropped)


def _capped_body(raw: bytes) -> list[str]:
    return _body(raw[:SECTION_CAP], max(len(raw) - SECTION_CAP, 0))


def sections(record: RequestRecord) -> list[tuple[str, str]]:
    """(title, text) of each section after the summary, in order, before redaction."""
    moment = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(record.started))
    url = record.path + (f"?{record.query.decode('latin-1')}" if record.query else "")
    found: list[tuple[str, list[str]]] = []
    request = _block(
        "REQUEST",
        [
            f"Request-Id: {record.request_id}",
            f"Time: {moment}",
            f"Method: {record.method}",
            f"URL: {url}",
            f"Client: {record.client}",
        ],
        _headers(record.headers),
    )
    found.append(("REQUEST", request + _tee_body(record.body)))
    for number, exchange in enumerate(record.exchanges, 1):
        title = f"UPSTREAM REQUEST {number}"
        sent = _block(title, [f"{exchange.method} {exchange.url}"], exchange.headers)
        found.append((title, sent + _capped_body(exchange.body)))
        title = f"UPSTREAM RESPONSE {number}"
        if exchange.status == 0:
            found.append(
                (title, [f"=== {title} ===", f"No reply: {exchange.error or 'none came'}", ""])
            )
            continue
        answer = _block(title, [f"Status: {exchange.status}"], exchange.reply_headers)
        # The body of a good reply is what the client got (the RESPONSE section).
        answer += [""] if exchange.error_body is None else _capped_body(exchange.error_body)
        found.append((title, answer))
    status = [f"Status: {record.status or 'none (the client hung up)'}"]
    if record.stream_error:
        status.append(f"Stream error: {record.stream_error}")
    reply = _block("RESPONSE", status, _headers(record.reply_headers)) + _tee_body(record.reply)
    found.append(("RESPONSE", reply))
    return [(title, "\n".join(lines)) for title, lines in found]


def render(record: RequestRecord) -> str:
    """The file's text, before redaction: the summary (request_log_view.py), then the
    sections."""
    parts = sections(record)
    layout = [(title, len(text)) for title, text in parts]
    return "\n".join([summary_section(record, layout), *(text for _, text in parts)])


def file_text(record: RequestRecord, redactor: Redactor) -> str:
    """The file's text as written: each section redacted on its own, so the summary can give
    each one's length (a reader then splits them exactly, whatever their bodies hold)."""
    parts = [(title, redactor.text(text)) for title, text in sections(record)]
    layout = [(title, len(text)) for title, text in parts]
    head = redactor.text(summary_section(record, layout))
    return "\n".join([head, *(text for _, text in parts)])


def log_files(directory: Path, pattern: re.Pattern[str]) -> list[tuple[Path, os.stat_result]]:
    """The files in ``directory`` whose names match, newest first."""
    found: list[tuple[Path, os.stat_result]] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return found
    for entry in entries:
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                found.append((Path(entry.path), entry.stat(follow_symlinks=False)))
    found.sort(key=lambda item: (item[1].st_mtime_ns, item[0].name), reverse=True)
    return found


def find_by_id(directory: Path, request_id: str) -> Path | None:
    ending = f"-{request_id}.log"
    for path, _ in log_files(directory, LOG_FILE):
        if path.name.endswith(ending):
            return path
    return None


def error_file(directory: Path, name: str) -> Path | None:
    """The error log file called ``name``, or None (also for a name that is not one)."""
    if not ERROR_FILE.fullmatch(name) or ".." in name:
        return None
    path = directory / name
    try:
        if path.resolve().parent != directory.resolve() or not path.is_file():
            return None
    except OSError:
        return None
    return path


def _remove(paths: Iterable[Path]) -> int:
    freed = 0
    for path in paths:
        with contextlib.suppress(OSError):
            size = path.stat().st_size
            path.unlink()
            freed += size
    return freed


def account_secrets(state: AppState) -> set[str]:
    """The tokens the accounts hold (from the routed credentials and the auth files)."""
    found = {c.secret for c in state.runtime.registry.credentials().values() if c.secret}
    for record in state.auth_store.records():
        found.update(s for s in (record.access_token, record.refresh_token) if s)
        for field in _TOKEN_FIELDS:
            value = record.raw.get(field)
            if isinstance(value, str) and value:
                found.add(value)
    return found


class RequestLogWriter:
    """The sink of RequestLogMiddleware: queues records and writes them in a worker thread."""

    def __init__(self, state_getter: Callable[[], AppState]) -> None:
        self.state_getter = state_getter
        self._pending: deque[tuple[RequestRecord, Path, frozenset[str]]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._redactor = Redactor(())
        self._totals: dict[Path, int] = {}  # bytes of request log files per directory
        self._secret_cache: tuple[Config, Runtime, frozenset[str]] | None = None
        self.failures = 0
        self.dropped = 0

    def submit(self, record: RequestRecord) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("request log: the writer is behind; requests go unlogged")
            return
        if record.attempts:
            resolve = self.state_getter().ledger.resolver
            for tried in record.attempts:
                credential = tried.attempt.credential_id
                if credential not in record.accounts:
                    info = resolve(credential)
                    record.accounts[credential] = (info.auth_index, info.source)
        # The directory too: where the config (and $WRITABLE_PATH) said when the request ran.
        self._pending.append((record, log_dir(record.config), self._secrets(record.config)))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._drain(), name="request log writer"
            )

    def _secrets(self, config: Config) -> frozenset[str]:
        """The secrets as they are now, read on the event loop. The runtime is rebuilt on every
        reload and account change (token refreshes included), so it keys the cache."""
        runtime = self.state_getter().runtime
        cached = self._secret_cache
        if cached is not None and cached[0] is config and cached[1] is runtime:
            return cached[2]
        found = frozenset({*config_secrets(config), *account_secrets(self.state_getter())})
        self._secret_cache = (config, runtime, found)
        return found

    async def _drain(self) -> None:
        while self._pending:
            record, directory, secrets = self._pending.popleft()
            try:
                await asyncio.to_thread(self._write, record, directory, secrets)
            except Exception as exc:
                self.failures += 1
                if self.failures == 1:
                    log.error(
                        "request log: cannot write a file (%s); later failures are only counted",
                        exc,
                    )

    async def flush(self) -> None:
        """Wait until every record handed in so far is written (tests, shutdown)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    def _write(self, record: RequestRecord, directory: Path, secrets: frozenset[str]) -> None:
        if secrets != self._redactor.secrets:
            self._redactor = Redactor(secrets)
        config = record.config
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / file_name(record)
        data = file_text(record, self._redactor).encode("utf-8")
        # Whole or not at all: a reader (the management routes, a tail) never sees half a file.
        write_atomic(path, data)
        if not config.request_log and config.error_logs_max_files > 0:
            kept = log_files(directory, ERROR_FILE)[config.error_logs_max_files :]
            self._forget(directory, _remove(p for p, _ in kept))
        self._cap_total(directory, config, len(data))

    def _forget(self, directory: Path, freed: int) -> None:
        if directory in self._totals:
            self._totals[directory] = max(self._totals[directory] - freed, 0)

    def _cap_total(self, directory: Path, config: Config, written: int) -> None:
        cap = config.logs_max_total_size_mb * MIB
        if cap <= 0:
            return
        total = self._totals.get(directory)
        if total is not None and total + written <= cap:
            self._totals[directory] = total + written
            return
        files = log_files(directory, LOG_FILE)
        total = sum(stat.st_size for _, stat in files)
        # Oldest first; the newest file (the one just written) always stays.
        for path, _ in reversed(files[1:]):
            if total <= cap:
                break
            total -= _remove([path])
        self._totals[directory] = total
