"""Optional abilities a provider may have beyond the Provider interface, as typing.Protocols
checked with isinstance (not hasattr), so that a provider states them in its type and mypy
checks both sides."""

from __future__ import annotations

from typing import Any, Protocol, cast, runtime_checkable

from cliproxy.config.schema import QuotaExceeded as Switches
from cliproxy.model import ProxyError
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


@runtime_checkable
class QuotaAlternatives(Protocol):
    """One credential holds several quotas (a Google account's Cloud projects, preview models
    billed on their own): it rests per quota, and after a quota error its other quotas are
    tried before any other credential (config ``quota-exceeded``)."""

    def quota_alternatives(
        self, credential: Credential, model: str, status: int, error: ProxyError, policy: Switches
    ) -> list[tuple[Credential, str]]:
        """(credential, model) pairs to try at once after ``error`` as the config's
        ``quota-exceeded`` switches allow; empty when none apply."""
        ...

    def rest_key(self, credential: Credential, model: str) -> str:
        """The name the pair's cooldown is kept under (one per quota)."""
        ...

    def variants(self, credential: Credential) -> list[Credential]:
        """The credential pinned to each of its quotas in turn (itself alone when it has one)."""
        ...


_HAS_QUOTA_ALTERNATIVES: dict[type, bool] = {}


def quota_alternatives_of(provider: object) -> QuotaAlternatives | None:
    """The provider as QuotaAlternatives, or None. The pool asks this several times per
    candidate on every request, and a runtime Protocol check walks the protocol's members each
    time (microseconds), so the answer is kept per class: abilities are methods of the class."""
    kind = type(provider)
    has = _HAS_QUOTA_ALTERNATIVES.get(kind)
    if has is None:
        has = _HAS_QUOTA_ALTERNATIVES[kind] = isinstance(provider, QuotaAlternatives)
    return cast(QuotaAlternatives, provider) if has else None
