"""The provider interface: how one kind of upstream is reached.

A provider knows which wire protocol its upstream speaks, builds the HTTP request for a credential
and a model, and classifies upstream failures. Routing decides which provider/credential serves a
request; the server does the HTTP and the protocol translation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cliproxy.model import ProxyError
from cliproxy.protocols.base import WireProtocol
from cliproxy.protocols.sse import SSEEvent


def mask_secret(secret: str) -> str:
    """A key as it may appear in logs and listings: enough to recognise, never enough to use."""
    if len(secret) <= 8:
        return "*" * len(secret)
    return f"{secret[:4]}…{secret[-4:]}"


@dataclass(frozen=True, slots=True)
class Credential:
    """One way to authenticate to one upstream: an API key (or, later, an OAuth token)."""

    id: str  # stable and unique, e.g. "claude-api-key[0]"
    secret: str
    base_url: str
    proxy_url: str | None = None  # None: use the global proxy; "direct": bypass it
    headers: Mapping[str, str] = field(default_factory=dict)
    # Account facts an OAuth provider needs besides the token (codex: account_id; gemini:
    # project_id; all: email). Empty for API keys.
    account: Mapping[str, str] = field(default_factory=dict)
    # Routing: a higher priority is tried before a lower one; weight shares requests under
    # weighted-round-robin.
    weight: int = 1
    priority: int = 0

    @property
    def label(self) -> str:
        return f"{self.id} ({mask_secret(self.secret)})"


class ReplyBody(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]: ...


class UpstreamReply(Protocol):
    """What the server reads of an upstream's answer: aiohttp's ClientResponse, or a reply
    made inside the proxy (providers/in_process.py). The status and headers are in; the body
    is read (``read()``, or ``content.iter_any()`` for a stream) and then released."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content_type(self) -> str: ...

    @property
    def content(self) -> ReplyBody: ...

    async def read(self) -> bytes: ...

    def release(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    # Other hosts of the same API, tried in this order when the one at ``url`` cannot take the
    # request: it is unreachable, or ``moves_on(status, body)`` says so of its error reply
    # (Antigravity's daily host, then its prod host). The last host's answer is the answer.
    fallback_urls: tuple[str, ...] = ()
    moves_on: Callable[[int, bytes], bool] | None = None
    # An upstream answered inside the proxy (the offline demo): the transport hands the
    # request to this instead of sending it over HTTP.
    in_process: Callable[[UpstreamRequest], Awaitable[UpstreamReply]] | None = None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a provider may need to know about the client call besides the body."""

    stream: bool
    client_headers: Mapping[str, str]  # lower-case names
    client_query: Mapping[str, str]
    # Name of the client's wire protocol; equal to the provider's protocol on the pass-through path.
    client_protocol: str


def resolve_headers(
    configured: Mapping[str, str], client_headers: Mapping[str, str]
) -> dict[str, str]:
    """Configured extra headers; a value "$name" copies header ``name`` from the client request."""
    out: dict[str, str] = {}
    for name, value in configured.items():
        if value.startswith("$"):
            copied = client_headers.get(value[1:].lower())
            if copied is not None:
                out[name] = copied
        else:
            out[name] = value
    return out


class Provider(ABC):
    """One configured upstream family (e.g. all claude-api-key entries, or one
    openai-compatibility entry)."""

    name: str  # shown in logs and listings
    protocol: WireProtocol

    @abstractmethod
    def build_request(
        self, credential: Credential, model: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        """The upstream HTTP request. ``body`` is already in this provider's protocol; the
        provider sets the model (in the body or the URL) and adds what its upstream requires."""

    def for_client(self, client_protocol: WireProtocol) -> Provider:
        """The provider that serves a client of ``client_protocol`` on this credential: itself,
        unless the upstream speaks several protocols (Kimi: Anthropic Messages for Messages
        clients, Chat Completions for the rest) and one of them saves a translation."""
        return self

    def models(self) -> list[str]:
        """Model names this provider lists in /v1/models when no config names them."""
        return []

    def refusal(
        self, credential: Credential, ctx: RequestContext, body: Mapping[str, object]
    ) -> ProxyError | None:
        """Why this credential must not be asked for this request at all (checked before
        sending; the pool moves on to the next credential), or None."""
        return None

    def explain_refusal(
        self, credential: Credential, ctx: RequestContext, status: int, message: str
    ) -> ProxyError | None:
        """An upstream error that means "not for this kind of client on this credential":
        the clearer error to answer instead (the provider also rests the credential for that
        client kind), or None for an ordinary error."""
        return None

    def models_for(self, credential_id: str) -> list[str]:
        """The models one credential serves (an account's own list, once its vendor said)."""
        return self.models()

    def should_retry(self, status: int) -> bool:
        """Whether another credential may succeed where this one got ``status``."""
        return status in (401, 403, 408, 429) or status >= 500

    # --- optional capabilities; the defaults describe a plain upstream -------------------------

    # A rate limit rests the whole credential, not only the model it hit: the vendor's limits
    # are the account's, shared by every model (Codex's 5-hour and weekly windows).
    rests_whole_credential: bool = False
    # The upstream only answers with a stream (the Codex backend): the server asks for one even
    # when the client did not, and collects it into a JSON reply for that client.
    stream_only: bool = False
    # The upstream wraps every reply and stream chunk in an envelope (Code Assist's
    # {"response": ...}); the server passes upstream bytes through the two unwrap hooks below
    # before anything else reads them. False keeps the byte-for-byte pass-through relay.
    wraps_replies: bool = False

    def unwrap_json(self, data: dict[str, Any]) -> dict[str, Any]:
        """A complete upstream reply as its protocol's plain JSON."""
        return data

    def unwrap_stream_event(self, event: SSEEvent) -> SSEEvent:
        """One upstream SSE event as its protocol's plain event."""
        return event

    def observe_reply(
        self, credential: Credential, status: int, headers: Mapping[str, str]
    ) -> None:
        """Called with every upstream reply's status and headers (success or error) before the
        body is read, e.g. to keep the account's usage-limit headers. Must not raise."""
        return None
