"""The application log, kept in memory for GET /logs: a ring of the newest lines.

The reference system tails its `main.log` file and only when `logging-to-file` is on; we keep
our own log records in a bounded ring instead, always, so the Management Center's Logs page
works without a log directory. Lines use the reference's layout, which the page parses:

    [YYYY-MM-DD HH:MM:SS] [--------] [level] [file:line] message

(the second field is the id of the generation request the line was logged for, the one its
request log file is named by (server/request_log.py); dashes outside such a request).
Timestamps are server-local time, as there. A record spanning several lines (a traceback)
becomes several lines, each stamped with its record's time.

Cursors are opaque to clients: base64url of `{"v", "epoch", "seq", "latest"}`. `seq` is the
last line delivered; `epoch` changes when the buffer is cleared or the process restarts, which
turns an old cursor into a `cursor-reset`, as a rotated file does in the reference.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from cliproxy.providers.exchanges import REQUEST_ID

MAX_LINES = 10_000
CURSOR_VERSION = 1
NO_REQUEST_ID = "--------"
LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}
# The records worth showing: everything cliproxy logs (every module logs under "cliproxy.").
LOGGER_NAME = "cliproxy"


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    timestamp: int  # unix seconds
    text: str


@dataclass(frozen=True, slots=True)
class _Cursor:
    epoch: str
    seq: int
    latest: int


class LogBuffer:
    """Thread-safe ring of log lines; `read` answers the GET /logs query modes."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self._next_seq = 1
        self._epoch = secrets.token_hex(4)
        # Records arrive from any thread (uvicorn, to_thread workers, the refresher).
        self._lock = threading.Lock()

    def append(self, timestamp: float, text: str) -> None:
        stamp = int(timestamp)
        with self._lock:
            for line in text.splitlines() or [""]:
                self._lines.append(LogLine(self._next_seq, stamp, line))
                self._next_seq += 1

    def clear(self) -> int:
        """Forget every line; cursors handed out so far stop matching. Returns lines removed."""
        with self._lock:
            removed = len(self._lines)
            self._lines.clear()
            self._epoch = secrets.token_hex(4)
            return removed

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)

    def read(
        self, *, limit: int | None = None, after: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """The GET /logs reply. `limit` > 0 or None, `after` unix seconds or None."""
        with self._lock:
            lines = list(self._lines)
            epoch = self._epoch
        if cursor:
            return self._from_cursor(lines, epoch, cursor, limit)
        if not after and limit:
            tail = lines[-limit:]
            return _reply(tail, len(lines), _latest(tail, 0), _cursor_after(lines, epoch, tail))
        chosen = [line for line in lines if not after or line.timestamp > after]
        if limit:
            chosen = chosen[-limit:]
        latest = max(_latest(lines, 0), after or 0)
        return _reply(chosen, len(lines), latest, _cursor_after(lines, epoch, lines))

    def _from_cursor(
        self, lines: list[LogLine], epoch: str, raw: str, limit: int | None
    ) -> dict[str, Any]:
        decoded = _decode_cursor(raw)
        first_seq = lines[0].seq if lines else self._next_seq
        if decoded is None or decoded.epoch != epoch or decoded.seq < first_seq - 1:
            # Cleared, restarted, or lines after the cursor were pushed out of the ring:
            # start over from the tail, and say so.
            tail = lines[-limit:] if limit else lines
            known = decoded.latest if decoded is not None else 0
            reply = _reply(tail, len(tail), _latest(tail, known), _cursor_after(lines, epoch, tail))
            reply["cursor-reset"] = True
            return reply
        fresh = [line for line in lines if line.seq > decoded.seq]
        if limit:
            fresh = fresh[:limit]  # oldest first: the next cursor continues where this stops
        latest = _latest(fresh, decoded.latest)
        next_cursor = _encode(epoch, fresh[-1].seq, latest) if fresh else raw
        return _reply(fresh, len(fresh), latest, next_cursor)


def _latest(lines: list[LogLine], floor: int) -> int:
    return max([floor, *(line.timestamp for line in lines)])


def _cursor_after(lines: list[LogLine], epoch: str, shown: list[LogLine]) -> str:
    """A cursor at the newest line in the buffer (what the reference returns after a tail)."""
    seq = lines[-1].seq if lines else 0
    return _encode(epoch, seq, _latest(shown, 0))


def _reply(lines: list[LogLine], count: int, latest: int, next_cursor: str) -> dict[str, Any]:
    return {
        "lines": [line.text for line in lines],
        "line-count": count,
        "latest-timestamp": latest,
        "next-cursor": next_cursor,
    }


def _encode(epoch: str, seq: int, latest: int) -> str:
    payload = orjson.dumps({"v": CURSOR_VERSION, "epoch": epoch, "seq": seq, "latest": latest})
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def _decode_cursor(raw: str) -> _Cursor | None:
    """None for anything that is not a cursor of ours (treated as a reset, not an error)."""
    text = raw.strip()
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        return None
    epoch, seq, latest = data.get("epoch"), data.get("seq"), data.get("latest")
    if not isinstance(epoch, str) or not _whole(seq) or not _whole(latest):
        return None
    return _Cursor(epoch, seq, latest)


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def format_record(record: logging.LogRecord, message: str) -> str:
    moment = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
    level = LEVEL_NAMES.get(record.levelno, record.levelname.lower())
    request_id = REQUEST_ID.get() or NO_REQUEST_ID
    return f"[{moment}] [{request_id}] [{level}] [{record.filename}:{record.lineno}] {message}"


class BufferHandler(logging.Handler):
    """Copies log records into a LogBuffer. Messages are taken as logged: the code that logs
    is responsible for masking keys (Credential.label, the management guard do)."""

    def __init__(self, buffer: LogBuffer) -> None:
        super().__init__(logging.DEBUG)
        self.buffer = buffer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            self.buffer.append(record.created, format_record(record, message))
        except Exception:
            self.handleError(record)


_installed: BufferHandler | None = None
_install_lock = threading.Lock()


def log_buffer() -> LogBuffer:
    """The process's buffer, its handler installed on the "cliproxy" logger on first use.

    One per process, like the log file it replaces: every server built in this process (tests
    build many) shares it, and no handler piles up per build.
    """
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = BufferHandler(LogBuffer())
            logging.getLogger(LOGGER_NAME).addHandler(_installed)
        return _installed.buffer
