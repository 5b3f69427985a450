"""Small helpers the subscription-account providers (codex, claude, gemini_cli) share."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Mapping

from cliproxy.model.ids import random_uuid4


def client_header(headers: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` the client sent with a non-blank value (names are lower-case)."""
    for name in names:
        value = headers.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


def merge_csv(*groups: Iterable[str] | str | None) -> str:
    """Comma-separated values from every group, in order, each once (e.g. anthropic-beta)."""
    seen: dict[str, None] = {}
    for group in groups:
        if group is None:
            continue
        values = group.split(",") if isinstance(group, str) else group
        for value in values:
            value = value.strip()
            if value:
                seen.setdefault(value, None)
    return ",".join(seen)


def header_float(headers: Mapping[str, str], name: str) -> float | None:
    """A numeric response header, or None when it is absent or not a finite number."""
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# Never relayed from a client to a subscription backend: hop-by-hop and framing headers (the
# transport writes its own), the client's credentials for cliproxy, which the account's
# replace, and encodings cliproxy does not reproduce (it re-serialises the body and decodes the
# reply itself).
NOT_RELAYED = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
        "authorization",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "accept-encoding",
        "content-encoding",
        "chatgpt-account-id",
    }
)


def relayed_headers(
    client: Mapping[str, str], also_drop: frozenset[str] = frozenset()
) -> dict[str, str]:
    """A genuine vendor client's own headers, as sent, for relaying to its backend."""
    return {
        name: value
        for name, value in client.items()
        if name not in NOT_RELAYED and name not in also_drop and not name.startswith("x-forwarded-")
    }


def conversation_id(salt: str, key: str | None) -> str:
    """A UUID that stays the same for the same conversation (``key``, from
    protocols/conversation.py) and ``salt`` (the account, so two accounts never share one);
    a fresh one when the request shows no conversation."""
    if key is None:
        return str(random_uuid4())
    digest = hashlib.blake2b(f"{salt}\n{key}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
