"""Reasoning signatures that ride through a client of another protocol.

A thinking signature (Anthropic, Gemini) or an encrypted reasoning blob (OpenAI Responses,
Anthropic redacted_thinking) is only valid when sent back to the vendor that issued it. When the
client speaks another protocol, the blob still has to survive the client's history so that the
next turn can hand it back to the issuer. Protocols with an opaque field for it (Anthropic
``signature``, Responses ``encrypted_content``, Gemini ``thoughtSignature``) carry it *wrapped*:

    standard base64 of b"cpx1:" + compact JSON {"i": issuer, "s"|"e": value, ...}

Optional keys: ``"r": 1`` (the blob is Anthropic redacted_thinking data), ``"id"`` (the Responses
reasoning item id), ``"t"`` (the reasoning text, for carriers whose clients drop thought text:
Gemini CLI keeps the thoughtSignature of a part but not the thought parts). The result is valid
base64 because google-genai decodes thoughtSignature as bytes; the other vendors' fields are opaque
strings. Parsers unwrap a tagged value back into a ReasoningPart of the original issuer; a value
without the tag is the parsing protocol's own and stays untouched. Request renderers never wrap:
they send a protocol only what it issued itself (see the protocol modules).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from cliproxy.model import ReasoningPart

_MAGIC = b"cpx1:"
# Every wrapped value starts with these characters: base64 of b'cpx1:{"i"' (9 bytes, so the
# encoding of that prefix does not depend on what follows). Checked before decoding anything.
WRAPPED_PREFIX = base64.b64encode(_MAGIC + b'{"i"').decode()
_PREFIX_BYTES = WRAPPED_PREFIX.encode()


def wrap(
    issuer: str,
    value: str,
    *,
    encrypted: bool = False,
    redacted: bool = False,
    item_id: str | None = None,
    text: str | None = None,
) -> str:
    """``value`` (a signature, or with ``encrypted`` an encrypted blob) tagged with its issuer."""
    payload: dict[str, Any] = {"i": issuer, "e" if encrypted else "s": value}
    if redacted:
        payload["r"] = 1
    if item_id:
        payload["id"] = item_id
    if text:
        payload["t"] = text
    return base64.b64encode(_MAGIC + orjson.dumps(payload)).decode()


def _payload(value: str) -> dict[str, Any] | None:
    if not value.startswith(WRAPPED_PREFIX):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
        payload = orjson.loads(raw[len(_MAGIC) :]) if raw.startswith(_MAGIC) else None
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("i"), str):
        return None
    if not isinstance(payload.get("s", payload.get("e")), str):
        return None
    return payload


def unwrap(value: str) -> tuple[str | None, str]:
    """(issuer, original value) of a wrapped value; (None, value) unchanged for any other."""
    payload = _payload(value)
    if payload is None:
        return None, value
    original: str = payload["s"] if "s" in payload else payload["e"]
    return payload["i"], original


def is_wrapped(value: Any) -> bool:
    return isinstance(value, str) and _payload(value) is not None


def mentions_wrapped(raw: bytes) -> bool:
    """Whether a raw request body holds a wrapped value anywhere. The same-protocol pass-through
    path must not forward such a body untouched (the upstream would reject a signature it did not
    issue); through the canonical model the value is unwrapped and dropped for that upstream."""
    return _PREFIX_BYTES in raw


def carried_part(value: Any, text: str = "") -> ReasoningPart | None:
    """The reasoning a wrapped value carries, with its original issuer and fields; None when
    ``value`` is not wrapped (then it is the parsing protocol's own). ``text`` is the reasoning
    text the carrier showed, used unless the wrapper holds the text itself."""
    if not isinstance(value, str):
        return None
    payload = _payload(value)
    if payload is None:
        return None
    carried_text = payload.get("t")
    item_id = payload.get("id")
    signature = payload.get("s")
    encrypted = payload.get("e")
    return ReasoningPart(
        text=carried_text if isinstance(carried_text, str) else text,
        signature=signature if isinstance(signature, str) else None,
        encrypted=encrypted if isinstance(encrypted, str) else None,
        redacted=payload.get("r") == 1,
        issuer=payload["i"],
        id=item_id if isinstance(item_id, str) else None,
    )


def wrap_part(part: ReasoningPart, *, with_text: bool = False) -> str | None:
    """The wrapped form of another issuer's signature/blob on ``part`` (None when it has none or
    its issuer is unknown: an untagged value could not be routed back, so it is not carried)."""
    if not part.issuer:
        return None
    text = part.text if with_text else None
    if part.signature:
        return wrap(part.issuer, part.signature, item_id=part.id, text=text)
    if part.encrypted:
        return wrap(
            part.issuer,
            part.encrypted,
            encrypted=True,
            redacted=part.redacted,
            item_id=part.id,
            text=text,
        )
    return None


def foreign(issuer: str | None, own: str) -> bool:
    """Whether a blob of ``issuer`` must be wrapped by protocol ``own`` (an unknown issuer is
    treated as the protocol's own, the behaviour of values that were never tagged)."""
    return issuer is not None and issuer != own


__all__ = [
    "WRAPPED_PREFIX",
    "carried_part",
    "foreign",
    "is_wrapped",
    "mentions_wrapped",
    "unwrap",
    "wrap",
    "wrap_part",
]
