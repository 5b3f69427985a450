"""Outcome events: what one upstream attempt, one client request and one token refresh came to.

The forwarding core and the server emit them through the application's observer hub
(usage/observers.py); request counters, the usage ledger, metrics and the request log read
them. They are plain frozen values: no I/O, and no secret (a client key appears masked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cliproxy.model import ErrorKind

# How the reply was produced: the body forwarded as is, translated through the canonical
# model, or "" when nothing answered.
Path = Literal["pass-through", "translated", ""]
PASS_THROUGH: Path = "pass-through"
TRANSLATED: Path = "translated"

# How the client's reply ended: in full; with an error (an error reply, or a stream that ended
# with the protocol's error frame, e.g. an upstream cut); or the client went away first.
Ending = Literal["completed", "error", "hung_up"]


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """One try of one credential for one client request."""

    credential_id: str
    provider: str
    upstream_model: str
    requested_model: str  # the model name the client asked for
    # The upstream's HTTP status; 0 when none came (connection failure, timeout, or not sent).
    status: int
    error_kind: ErrorKind | None  # None when the upstream answered below 400
    # Seconds from sending to the upstream's answer headers (to the end of its error body for
    # an error reply; to the failure for a connection error; 0 when not sent).
    latency: float
    number: int  # 1 for the request's first attempt; more means this one is a retry
    sent: bool = True  # False: refused before sending (the credential cannot take this call)
    refused: bool = False  # this credential is not asked again within this request
    rested: bool = False  # this attempt put the credential (for this model) into a cooldown
    # A 401 answered by refreshing the account's token: the same credential is asked again.
    reauthorized: bool = False
    # The client key of the request, masked, and its configured name ("" when it has none);
    # the usage ledger keys its records by them. "" until the forwarding core fills them.
    client_key: str = ""
    client_key_name: str = ""

    @property
    def ok(self) -> bool:
        return 0 < self.status < 400

    @property
    def retried(self) -> bool:
        return self.number > 1


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """One client request on a generation route, when its reply has ended."""

    client_key: str  # the presented client key, masked; "" when none was read
    client_protocol: str  # e.g. "openai_chat"; the path's protocol when the body was refused
    upstream_protocol: str  # "" when no upstream was asked
    requested_model: str  # "" when the request was refused before its model was read
    upstream_model: str
    credential_id: str  # the credential of the last attempt; "" when none was tried
    provider: str
    path: Path
    stream: bool
    status: int  # the HTTP status sent to the client; 0 when it hung up before any was sent
    error_kind: ErrorKind | None  # also set for a stream that ended with an error frame
    ending: Ending
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    latency: float  # seconds from arrival until the reply ended
    first_token: float | None  # seconds from arrival to the first stream bytes; None if no stream
    attempts: int  # upstream attempts (AttemptOutcomes) it took
    bytes_out: int  # response body bytes sent to the client
    # The client key's configured name; "" when it has none (the ledger then uses client_key).
    client_key_name: str = ""


# How one token refresh of an account ended: a new token; a failure for now (network, 5xx),
# retried later; refused for good, so the account needs a new login.
RefreshResult = Literal["ok", "failed", "needs_login"]


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """One call to an account's token endpoint (auth/refresher.py), on demand or ahead of
    expiry in the background."""

    credential_id: str  # the account's file name
    account_type: str  # the auth file's ``type`` (codex, claude, gemini, ...)
    result: RefreshResult
    latency: float  # seconds the token endpoint took


Outcome = AttemptOutcome | RequestOutcome | RefreshOutcome
