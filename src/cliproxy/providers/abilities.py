"""Optional abilities a provider may have beyond the Provider interface, as typing.Protocols
checked with isinstance (not hasattr), so that a provider states them in its type and mypy
checks both sides."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from cliproxy.providers.base import Credential, RequestContext, UpstreamRequest


@runtime_checkable
class CountsTokens(Protocol):
    """The upstream has a token-counting endpoint (Anthropic, Gemini, Code Assist)."""

    def build_count_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest: ...


class JSONable(Protocol):
    def to_json(self) -> dict[str, Any]: ...


@runtime_checkable
class ReportsUsage(Protocol):
    """The provider keeps what the latest reply's headers said about an account's limits."""

    def usage(self, credential_id: str) -> JSONable | dict[str, str] | None: ...
