"""Sending a request on to Amp's upstream (ampcode.com or `ampcode.upstream-url`) as it came,
with Amp's key in place of the client's, and streaming the answer back (docs/amp.md).

Used by the control-plane proxy (server/amp_control.py) and by model calls no local
credential serves (server/amp_models.py). The key sent upstream is, first found:
`ampcode.upstream-api-keys` (by the client key presented), `ampcode.upstream-api-key`, the
`AMP_API_KEY` environment variable, then the Amp CLI's own ~/.local/share/amp/secrets.json.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

import aiohttp
import orjson
from starlette.responses import StreamingResponse

from cliproxy.config.ampcode import AmpCode
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.accounts_common import NOT_RELAYED
from cliproxy.state import AppState

log = logging.getLogger(__name__)

SECRETS_FIELD = "apiKey@https://ampcode.com/"
# Never forwarded: the client's own credentials, hop headers, encodings (a gzip body is
# unpacked here, and aiohttp decompresses the reply). Cookies do go on: Amp's pages need them.
_DROPPED_REQUEST = NOT_RELAYED - {"cookie", "chatgpt-account-id", "content-encoding"}
# Hop headers, and the encoding aiohttp already undid; CORS is cliproxy's to answer, so
# the upstream's (meant for its own site) is blanked.
_DROPPED_REPLY = frozenset(
    {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"}
)


def secrets_path() -> Path:
    return Path.home() / ".local" / "share" / "amp" / "secrets.json"


def _from_secrets_file(path: Path) -> str:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return ""
    value = data.get(SECRETS_FIELD) if isinstance(data, dict) else None
    return value.strip() if isinstance(value, str) else ""


def upstream_key(
    amp: AmpCode, client_key: str | None, environ: Mapping[str, str] = os.environ
) -> str:
    """The Amp key to send upstream for a call presenting ``client_key`` ("" when none)."""
    if client_key:
        for entry in amp.upstream_api_keys:
            if client_key in entry.api_keys:
                return entry.upstream_api_key
    if amp.upstream_api_key:
        return amp.upstream_api_key
    from_env = environ.get("AMP_API_KEY", "").strip()
    return from_env or _from_secrets_file(secrets_path())


def decoded_body(body: bytes, headers: Mapping[str, str]) -> bytes:
    """A gzip body is unpacked, whether it says so (Content-Encoding: gzip) or not (Amp sends
    some without the header); anything else is kept as it came."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if body[:2] != b"\x1f\x8b" or encoding not in ("", "gzip"):
        return body
    try:
        return gzip.decompress(body)
    except (OSError, EOFError, zlib.error):
        return body


def upstream_target(path: str, query_string: bytes) -> str:
    """The path and query to ask upstream: the query without a `key=` (a client key given
    the Gemini way is cliproxy's, never Amp's)."""
    query = query_string.decode("latin-1")
    kept = [part for part in query.split("&") if part and not part.startswith("key=")]
    return path + ("?" + "&".join(kept) if kept else "")


def request_headers(
    headers: Iterable[tuple[str, str]], key: str, unpacked: bool = False
) -> dict[str, str]:
    dropped = _DROPPED_REQUEST | {"content-encoding"} if unpacked else _DROPPED_REQUEST
    out = {name: value for name, value in headers if name.lower() not in dropped}
    if key:
        out["X-Api-Key"] = key
        out["Authorization"] = f"Bearer {key}"
    return out


def reply_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in _DROPPED_REPLY and not name.lower().startswith("access-control-")
    ]


async def send_to_amp(
    state: AppState,
    amp: AmpCode,
    method: str,
    path_and_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    client_key: str | None,
) -> StreamingResponse:
    """Send the request to Amp's upstream and stream its answer back as it comes; redirects
    are the client's to follow (Amp's login pages send the browser on)."""
    key = upstream_key(amp, client_key)
    headers = list(headers)
    sent = decoded_body(body, {name.lower(): value for name, value in headers})
    url = amp.upstream_url + path_and_query
    session, proxy = await state.upstream.session_for(None)
    try:
        reply = await session.request(
            method,
            url,
            data=sent or None,
            headers=request_headers(headers, key, unpacked=sent is not body),
            proxy=proxy,
            allow_redirects=False,
        )
    except TimeoutError as exc:
        raise ProxyError(ErrorKind.TIMEOUT, "Amp's upstream did not answer in time") from exc
    except aiohttp.ClientError as exc:
        raise ProxyError(
            ErrorKind.UPSTREAM, f"cannot reach Amp's upstream: {exc.__class__.__name__}"
        ) from exc
    log.info("amp upstream: %s %s -> %d", method, path_and_query.split("?", 1)[0], reply.status)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in reply.content.iter_any():
                yield chunk
        finally:
            reply.release()

    response = StreamingResponse(relay(), status_code=reply.status)
    response.raw_headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in reply_headers(reply.headers.items())
    ]
    return response
