"""Reading an upstream's error reply: its body, the protocol's error, and the reset hint."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import aiohttp
import orjson

from cliproxy.model import ProxyError
from cliproxy.providers.base import Provider, UpstreamReply
from cliproxy.providers.exchanges import note_error_body
from cliproxy.routing.reset_hints import seconds_from_headers


async def read_error(
    provider: Provider, upstream: UpstreamReply, now: float
) -> tuple[ProxyError, bytes]:
    """The error an upstream answered, and its raw body (released either way)."""
    try:
        raw = await upstream.read()
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        raw = b""
    finally:
        upstream.release()
    note_error_body(raw)  # the request log's copy, when it records this request
    error = provider.protocol.parse_error(upstream.status, raw)
    if error.retry_after is None:
        # The body's own hint wins; then Retry-After (seconds or an HTTP date); then the
        # vendor's per-limit reset headers.
        error.retry_after = retry_after(upstream.headers.get("retry-after", ""), now)
    if error.retry_after is None and upstream.status == 429:
        error.retry_after = seconds_from_headers(upstream.headers, now)
    return error, raw


def retry_after(value: str, now: float) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), or None."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return None


def is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False
