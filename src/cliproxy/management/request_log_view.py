"""A request log file's summary section, and reading files back (GET /request-logs).

Every file starts with a summary written from the record, one JSON value per line, so nothing
a client sent can break its layout:

    === SUMMARY ===
    Request: {"request_id", "time", "method", "url", "model", "served_model", "fell_back",
              "status", "failed", "stream_error", "attempts"}
    Attempt 1: {"number", "model", "fallback", "provider", "upstream_model", "auth_index",
                "account", "status", "error_kind", "error", "latency_ms", "result", ...}
    Sections: [["REQUEST", 812], ["UPSTREAM REQUEST 1", 410], ...]

then the sections (request_logs.py). Each section was redacted on its own and ``Sections``
gives its length in characters, so a reader splits them exactly whatever a body holds. Files
written before the summary existed are split on their section title lines instead.

An attempt's ``model`` is the model name it was for: the requested one, or (``fallback``) one
of its model-fallbacks; ``result`` is ``answered``, ``failed``, ``not sent`` (the credential
could not take the call) or ``token refreshed`` (a 401 answered by refreshing the account,
which is then asked again).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Any

import orjson

from cliproxy.server.outcomes import Tried
from cliproxy.server.request_log import RequestRecord

SUMMARY_TITLE = "=== SUMMARY ==="
HEAD_BYTES = 64 * 1024  # read of each file for a listing: the summary is well inside it
MAX_ERROR_CHARS = 1000
BODY_SHOWN = 512 * 1024  # characters of a body in GET /request-logs/{id}; the download has all
_TITLE = re.compile(r"=== (REQUEST|UPSTREAM REQUEST \d+|UPSTREAM RESPONSE \d+|RESPONSE) ===")
_TRUNCATED = re.compile(r"\n\[truncated (\d+) bytes\]\Z")
_OLD_FIELDS = {"Request-Id": "request_id", "Method": "method", "URL": "url"}


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _result(tried: Tried) -> str:
    attempt = tried.attempt
    if attempt.ok:
        return "answered"
    if not attempt.sent:
        return "not sent"
    return "token refreshed" if attempt.reauthorized else "failed"


def _attempt(tried: Tried, accounts: dict[str, tuple[str, str]]) -> dict[str, Any]:
    attempt = tried.attempt
    auth_index, account = accounts.get(attempt.credential_id, (attempt.credential_id, ""))
    return {
        "number": attempt.number,
        "model": tried.model,
        "fallback": tried.fallback,
        "provider": attempt.provider,
        "upstream_model": attempt.upstream_model,
        "auth_index": auth_index,
        "account": account,
        "status": attempt.status,
        "error_kind": attempt.error_kind.value if attempt.error_kind is not None else None,
        "error": tried.message[:MAX_ERROR_CHARS],
        "latency_ms": round(attempt.latency * 1000, 1),
        "result": _result(tried),
        "rested": attempt.rested,
        "refused": attempt.refused,
    }


def summary_section(record: RequestRecord, layout: list[tuple[str, int]]) -> str:
    """The summary's text (before redaction); ``layout``: each section's title and length."""
    answered = [t for t in record.attempts if t.attempt.ok]
    last = answered[-1] if answered else None
    url = record.path + (f"?{record.query.decode('latin-1')}" if record.query else "")
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.started))
    request = {
        "request_id": record.request_id,
        "time": f"{started}.{int(record.started % 1 * 1000):03d}Z",
        "method": record.method,
        "url": url,
        "client_key": record.client_key,
        "model": record.model,
        "served_model": last.model if last is not None else "",
        "fell_back": last is not None and last.fallback,
        "status": record.status,
        "failed": record.failed,
        "stream_error": record.stream_error,
        "attempts": len(record.attempts),
    }
    lines = [SUMMARY_TITLE, f"Request: {_json(request)}"]
    for tried in record.attempts:
        lines.append(f"Attempt {tried.attempt.number}: {_json(_attempt(tried, record.accounts))}")
    lines += [f"Sections: {_json(layout)}", ""]
    return "\n".join(lines)


# ----- reading ----------------------------------------------------------------------------------


def _summary(text: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[Any], int]:
    """(request, attempts, layout, where the sections start) of a file's text; (None, [], [],
    0) when it has no summary. A line that does not read is left out."""
    if not text.startswith(SUMMARY_TITLE + "\n"):
        return None, [], [], 0
    request: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = []
    layout: list[Any] = []
    position = len(SUMMARY_TITLE) + 1
    while True:
        end = text.find("\n", position)
        line = text[position:] if end < 0 else text[position:end]
        position = len(text) if end < 0 else end + 1
        if not line:
            return request, attempts, layout, position
        name, _, raw = line.partition(": ")
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if name == "Request" and isinstance(value, dict):
            request = value
        elif name.startswith("Attempt ") and isinstance(value, dict):
            attempts.append(value)
        elif name == "Sections" and isinstance(value, list):
            layout = value


def _split(text: str, start: int, layout: list[Any]) -> list[str] | None:
    """The sections cut by their lengths; None when the layout does not fit the text."""
    found: list[str] = []
    position = start
    for item in layout:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], int)):
            return None
        title, length = item
        chunk = text[position : position + length]
        if len(chunk) != length or not chunk.startswith(f"=== {title} ==="):
            return None
        found.append(chunk)
        position += length + 1
    return found


def _split_on_titles(text: str, start: int) -> list[str]:
    """Files without a layout: a section starts at each title line (a body holding one
    splits wrongly here, which is why new files carry their layout)."""
    lines = text[start:].split("\n")
    found: list[list[str]] = []
    for line in lines:
        if _TITLE.fullmatch(line) or not found:
            found.append([])
        found[-1].append(line)
    return ["\n".join(chunk) for chunk in found]


def _section(text: str) -> dict[str, Any]:
    lines = text.split("\n")
    title = lines[0].strip("= ") if lines else ""
    index = 1
    info: list[str] = []
    while index < len(lines) and lines[index]:
        info.append(lines[index])
        index += 1
    headers: list[list[str]] = []
    if index + 1 < len(lines) and lines[index + 1] == "--- headers ---":
        index += 2
        while index < len(lines) and lines[index]:
            name, _, value = lines[index].partition(": ")
            headers.append([name, value])
            index += 1
    body: str | None = None
    truncated = omitted = 0
    if index + 1 < len(lines) and lines[index + 1] == "--- body ---":
        body = "\n".join(lines[index + 2 :])
        body = body.removesuffix("\n")
        cut = _TRUNCATED.search(body)
        if cut:
            truncated = int(cut.group(1))
            body = body[: cut.start()]
        if len(body) > BODY_SHOWN:
            omitted = len(body) - BODY_SHOWN
            body = body[:BODY_SHOWN]
    return {
        "title": title,
        "lines": info,
        "headers": headers,
        "body": body,
        "truncated_bytes": truncated,
        "omitted_chars": omitted,
    }


def _read_head(path: Path) -> str:
    with path.open("rb") as handle:
        return handle.read(HEAD_BYTES).decode("utf-8", "replace")


def _old_request(text: str) -> dict[str, Any]:
    """What a file without a summary tells of its request, from its REQUEST lines."""
    found: dict[str, Any] = {}
    for line in text.split("\n")[1:12]:
        if not line:
            break
        name, _, value = line.partition(": ")
        if name in _OLD_FIELDS:
            found[_OLD_FIELDS[name]] = value
    return found


def _file_facts(path: Path, stat: os.stat_result) -> dict[str, Any]:
    request_id = path.stem.rsplit("-", 1)[-1]
    return {
        "id": request_id,
        "name": path.name,
        "size": stat.st_size,
        "modified": int(stat.st_mtime),
        "error": path.name.startswith("error-"),
    }


def listing(path: Path, stat: os.stat_result) -> dict[str, Any] | None:
    """One file as GET /request-logs lists it; None when it cannot be read (gone meanwhile)."""
    try:
        head = _read_head(path)
    except OSError:
        return None
    request, _, _, _ = _summary(head)
    entry = _file_facts(path, stat)
    if request is None:
        request = _old_request(head)
    entry["summary"] = bool(request.get("time"))
    for name in ("time", "method", "url", "model", "served_model", "status", "failed"):
        entry[name] = request.get(name)
    entry["fell_back"] = request.get("fell_back", False)
    entry["attempts"] = request.get("attempts")
    return entry


def entry(path: Path, stat: os.stat_result) -> dict[str, Any] | None:
    """One file as GET /request-logs/{id} shows it: its summary, its attempts and each
    section (info lines, headers, body); None when it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    text = raw.decode("utf-8", "replace")
    request, attempts, layout, start = _summary(text)
    parts = _split(text, start, layout) if layout else None
    if parts is None:
        with contextlib.suppress(ValueError):
            start = text.index("=== REQUEST ===", start)
        parts = _split_on_titles(text, start)
    found = _file_facts(path, stat)
    found["request"] = request if request is not None else _old_request(text[start:])
    found["attempts"] = attempts
    found["sections"] = [_section(part) for part in parts]
    return found
