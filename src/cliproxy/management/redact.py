"""Redaction for request log files: no secret reaches a file in full.

Three passes. Header values that carry credentials, query parameters and form or JSON fields
named like secrets are masked by name; then the whole text goes through the main log's mask
(log_file.MaskingFormatter: every secret the config holds, the accounts' tokens the caller
adds, and common token shapes), so a key echoed anywhere in a body is masked as well. Masked
values look as keys do in listings (``sk-a…cdef``; short ones all stars).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

from cliproxy.management.log_file import MaskingFormatter
from cliproxy.providers.base import mask_secret

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "cookie",
        "set-cookie",
        "chatgpt-account-id",
        "x-management-key",
        "x-local-password",
    }
)
# Query and form parameters (`?key=`, `refresh_token=` in an OAuth form body).
_PARAMS = re.compile(
    r"(?i)(?<![\w-])(key|api_key|apikey|access_token|refresh_token|id_token|client_secret"
    r"|code|code_verifier|password|token)=([^&\s\"']+)"
)
# JSON string fields, however the body is laid out (a reply, an SSE frame, an error).
_JSON_FIELDS = re.compile(
    r'(?i)"(access[_-]?token|refresh[_-]?token|id[_-]?token|api[_-]?key|client[_-]?secret'
    r'|code[_-]?verifier|password|token|secret|code)"(\s*:\s*)"((?:[^"\\]|\\.)*)"'
)
# An error code ("invalid_api_key") is not a secret; an OAuth code is long and random.
_WORDS = re.compile(r"[a-z0-9_.\-]*")


def _header_value(value: str) -> str:
    scheme, space, rest = value.partition(" ")
    if space and rest and scheme.isalpha() and len(scheme) < 12:
        return f"{scheme} {mask_secret(rest.strip())}"  # "Bearer sk-a…cdef"
    return mask_secret(value)


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [
        (name, _header_value(value) if name.lower() in SECRET_HEADERS else value)
        for name, value in headers
    ]


def _param(match: re.Match[str]) -> str:
    return f"{match.group(1)}={mask_secret(unquote(match.group(2)))}"


def _json_field(match: re.Match[str]) -> str:
    name, colon, value = match.groups()
    if name.lower() == "code" and (len(value) < 16 or _WORDS.fullmatch(value)):
        return match.group(0)
    return f'"{name}"{colon}"{mask_secret(value)}"'


class Redactor:
    """Masks one file's text; built for a set of secrets (the config's and the accounts')."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = frozenset(s for s in secrets if len(s) >= 6)
        # Longest first, so no secret is masked piecemeal by a shorter one inside it.
        self._mask = MaskingFormatter(sorted(self.secrets, key=len, reverse=True))

    def text(self, text: str) -> str:
        text = _PARAMS.sub(_param, text)
        text = _JSON_FIELDS.sub(_json_field, text)
        return self._mask.mask(text)
