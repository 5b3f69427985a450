"""The management API's refusals: a status and the reference's `{"error": ...}` body.

Its own module so that the config editor, which the routes' context refers to, can raise them
without importing the routes' helpers.
"""

from __future__ import annotations

import re
from typing import Any

# "claude-api-key[0].models[1].alias", "value", "client-keys[2].requests-per-minute": the
# path a refusal's message starts with ("<path>: <problem>"), when it names one.
_FIELD_PATH = re.compile(r"[A-Za-z][\w-]*(?:\[\d+\])*(?:\.[\w-]+(?:\[\d+\])*)*")


def field_of(message: str) -> str | None:
    """The field path a `"<path>: <problem>"` message names, or None."""
    head, sep, _ = message.partition(": ")
    return head if sep and _FIELD_PATH.fullmatch(head) else None


class ApiError(Exception):
    """A refusal with its status. The body is `{"error": message}`, or with `code` set,
    `{"error": code, "message": message}` (the newer handlers of the reference do that).

    cliproxy adds, and only adds: `field`, the path of the value refused in the config's names
    (`"claude-api-key[0].base-url"`), when the refusal is about one value; `problems`, each
    `{"field", "key", "message", "line"}`, when a whole-config check found several; and, on a
    coded body, any `details` (config.yaml refusals: `line`, and `column` for YAML syntax)."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        field: str | None = None,
        problems: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.field = field
        self.problems = problems

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = (
            {"error": self.code, "message": self.message, **self.details}
            if self.code
            else {"error": self.message}
        )
        if self.field:
            body["field"] = self.field
        if self.problems:
            body["problems"] = self.problems
        return body


def invalid(message: str, field: str | None = None) -> ApiError:
    """A payload that is JSON but not what the route takes: 422 naming the field (`field`, or
    the path the message starts with)."""
    return ApiError(422, None, message, field=field or field_of(message))
