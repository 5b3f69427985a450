"""Pass-through streams answer with the model name the client asked for, as translated ones do.

A same-protocol upstream names its own model (``up-chat``) where the client asked for an alias
or a prefixed name (``chat-model``); clients that log usage per model would otherwise see two
names for one model. (A whole JSON reply is parsed anyway and gets its field set in respond.py.)
When the names are equal nothing here runs, so a stream is relayed byte for byte and the hot
path pays nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson

Rename = Callable[[bytes], bytes]


def stream_renamer(key: str, upstream_model: str, client_model: str) -> Rename | None:
    """A rewrite of relayed SSE bytes that turns ``"<key>": "<upstream_model>"`` into the
    client's name, or None when the names are equal (the bytes then stay untouched).

    Only a JSON key can match: the opening quote must follow ``{`` or ``,`` (inside a JSON
    string every quote is escaped, so that sequence never occurs there), and the value must be
    exactly the upstream's name as a JSON string. Whitespace is matched as spaces and tabs only,
    so the rewrite never reaches across a line and SSE framing cannot be touched."""
    if upstream_model == client_model:
        return None
    needle = orjson.dumps(upstream_model)
    pattern = re.compile(
        rb'([{,][ \t]*"' + re.escape(key.encode()) + rb'"[ \t]*:[ \t]*)' + re.escape(needle)
    )
    replacement = orjson.dumps(client_model)

    def renamed(match: re.Match[bytes]) -> bytes:
        # A callable, not a template: re expands a template in Python code at every match,
        # which cost twice this per Chat chunk (each one names the model).
        return match[1] + replacement

    # The compact spelling most upstreams write, replaced without re when it is the only
    # mention and sits where a key does (after "{" or ","): what the pattern would match.
    compact = b'"' + key.encode() + b'":' + needle
    compact_renamed = b'"' + key.encode() + b'":' + replacement

    def rename(raw: bytes) -> bytes:
        # Most events (text deltas in Responses and Anthropic streams) never name the model.
        if needle not in raw:
            return raw
        at = raw.find(compact)
        if at > 0 and raw[at - 1] in b"{," and raw.count(needle) == 1:
            return raw[:at] + compact_renamed + raw[at + len(compact) :]
        return pattern.sub(renamed, raw)

    return rename
