"""The management API's refusals: a status and the reference's `{"error": ...}` body.

Its own module so that the config editor, which the routes' context refers to, can raise them
without importing the routes' helpers.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refusal with its status. The body is `{"error": message}`, or with `code` set,
    `{"error": code, "message": message}` (the newer handlers of the reference do that) plus
    any `details`."""

    def __init__(
        self, status: int, code: str | None, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # Fields a coded body carries besides error and message (config.yaml refusals: `line`).
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        if self.code:
            return {"error": self.code, "message": self.message, **self.details}
        return {"error": self.message}


def invalid(message: str) -> ApiError:
    """A payload that is JSON but not what the route takes: 422 naming the field."""
    return ApiError(422, None, message)
