"""One RequestOutcome per client request on the generation routes.

``OutcomeMiddleware`` wraps those routes (outside the error layer, so it sees every reply,
refusals and error replies included). It puts a ``RequestTrack`` in the ASGI scope; the layers
that know something write it there (the access check the masked client key, the forwarding core
the attempts and the candidate, the reply builders the usage or the stream's outcome, the error
layer the error kind), and the middleware itself counts the bytes and times the first of them.
It also keeps the metrics' count of open streams: a streamed request whose reply started with
a status below 400 is open until the route returns.
When the route has returned, the reply has ended (a stream too: its generator is done, by its
end, an error frame or the client's hang-up), and the outcome is emitted exactly once.

With no RequestOutcome observer subscribed nothing is tracked: the routes then write into
``DETACHED``, a track that is never emitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cliproxy.model import ErrorKind, ProxyError, Usage, kind_for_status
from cliproxy.providers.base import mask_secret
from cliproxy.routing.registry import Candidate
from cliproxy.server.errors import protocol_for
from cliproxy.server.relay import StreamOutcome
from cliproxy.state import AppState
from cliproxy.usage.events import AttemptOutcome, Ending, Path, RequestOutcome
from cliproxy.usage.observers import Observers

TRACK = "cliproxy.outcome"  # the scope key
_NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class Tried:
    """One upstream attempt as the request log shows it: the event, the model name walked
    (the requested one, or a fallback of model-fallbacks) and the error's message ("" when
    the upstream answered)."""

    attempt: AttemptOutcome
    model: str
    fallback: bool
    message: str


class RequestTrack:
    """What is known so far about one client request. Written by whichever layer knows it."""

    __slots__ = (
        "attempts",
        "bytes_out",
        "candidate",
        "client_key",
        "client_key_name",
        "client_protocol",
        "error_kind",
        "finished",
        "first_byte",
        "hung_up",
        "model",
        "path",
        "secrets",
        "started",
        "status",
        "stream",
        "stream_outcome",
        "tried",
        "usage",
    )

    def __init__(self, started: float = 0.0) -> None:
        self.started = started
        self.client_key = ""
        self.client_key_name = ""  # its client-keys entry's name, else its api-key-names one
        self.client_protocol = ""
        self.model = ""
        self.stream = False
        self.candidate: Candidate | None = None  # the one of the last attempt
        self.secrets: list[str] = []  # of the credentials tried, kept out of error replies
        self.path: Path = ""
        self.attempts = 0
        self.tried: list[Tried] = []  # every attempt, in order (the request log lists them)
        self.usage = _NO_USAGE
        self.stream_outcome: StreamOutcome | None = None
        self.error_kind: ErrorKind | None = None
        self.status = 0
        self.bytes_out = 0
        self.first_byte: float | None = None
        self.finished = False  # the last body message went out
        self.hung_up = False  # the client went away before that

    def outcome(self, scope: Scope, now: float) -> RequestOutcome:
        status = self.status
        usage = self.usage
        error_kind = self.error_kind
        relayed = self.stream_outcome
        if relayed is not None:
            usage = relayed.usage
            if relayed.error is not None:
                error_kind = relayed.error.kind
        ending: Ending
        if self.hung_up or not self.finished:
            ending = "hung_up"
        elif error_kind is not None or status >= 400:
            ending = "error"
            error_kind = error_kind or kind_for_status(status)
        else:
            ending = "completed"
        candidate = self.candidate
        provider = candidate.provider if candidate is not None else None
        credential = candidate.credential if candidate is not None else None
        first_byte = self.first_byte
        streamed = relayed is not None
        return RequestOutcome(
            client_key=self.client_key,
            client_protocol=self.client_protocol or protocol_for(scope["path"], {}).name,
            upstream_protocol="" if provider is None else provider.protocol.name,
            requested_model=self.model,
            upstream_model=candidate.upstream_model if candidate is not None else "",
            credential_id=credential.id if credential is not None else "",
            provider=provider.name if provider is not None else "",
            path=self.path,
            stream=self.stream,
            status=status,
            error_kind=error_kind,
            ending=ending,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            latency=now - self.started,
            first_token=first_byte - self.started if streamed and first_byte is not None else None,
            attempts=self.attempts,
            bytes_out=self.bytes_out,
            client_key_name=self.client_key_name,
        )


class AttemptBook:
    """Books each upstream attempt of one client request as an AttemptOutcome, and notes the
    count, the latest candidate and the attempt itself on the request's track. ``fallback``:
    the model-fallbacks model being walked (the forwarding core sets it per step), "" while
    the requested model's own credentials are asked."""

    __slots__ = ("count", "fallback", "model", "observers", "track")

    def __init__(self, observers: Observers, track: RequestTrack, model: str) -> None:
        self.observers = observers
        self.track = track
        self.model = model
        self.fallback = ""
        self.count = 0

    def book(
        self,
        candidate: Candidate,
        status: int,
        error: ProxyError | None,
        latency: float,
        *,
        sent: bool = True,
        refused: bool = False,
        rested: bool = False,
        reauthorized: bool = False,
    ) -> None:
        self.count += 1
        track = self.track
        track.attempts = self.count
        track.candidate = candidate
        credential = candidate.credential
        outcome = AttemptOutcome(
            credential_id=credential.id,
            provider=candidate.provider.name,
            upstream_model=candidate.upstream_model,
            requested_model=self.model,
            status=status,
            error_kind=error.kind if error is not None else None,
            latency=latency,
            number=self.count,
            sent=sent,
            refused=refused,
            rested=rested,
            reauthorized=reauthorized,
            client_key=track.client_key,
            client_key_name=track.client_key_name,
        )
        if track is not DETACHED:
            track.secrets.append(credential.secret)
            message = error.message if error is not None else ""
            fallback = self.fallback
            track.tried.append(Tried(outcome, fallback or self.model, bool(fallback), message))
        self.observers.emit(outcome)


# Written by requests nobody tracks; never read.
DETACHED = RequestTrack()


def track_of(scope: Scope) -> RequestTrack:
    track: RequestTrack = scope.get(TRACK, DETACHED)
    return track


def note_client_key(scope: Scope, key: str, name: str = "") -> None:
    """The presented key (kept masked) and the name of its client-keys entry, if any: the
    ledger and the logs then show the name."""
    track = scope.get(TRACK)
    if track is not None:
        track.client_key = mask_secret(key)
        track.client_key_name = name


def note_error(scope: Scope, error: ProxyError) -> None:
    track = scope.get(TRACK)
    if track is not None:
        track.error_kind = error.kind


class OutcomeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        state_getter: Callable[[], AppState],
        applies: Callable[[Scope], bool],
    ) -> None:
        self.app = app
        self.state_getter = state_getter
        self.applies = applies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        state = self.state_getter()
        observers = state.observers
        if not observers.wants(RequestOutcome):
            await self.app(scope, receive, send)
            return
        track = RequestTrack(perf_counter())
        scope[TRACK] = track
        metrics = state.metrics
        streaming = False

        async def watched_send(message: Message) -> None:
            nonlocal streaming
            kind = message["type"]
            if kind == "http.response.body":
                body = message.get("body", b"")
                if body:
                    if track.first_byte is None:
                        track.first_byte = perf_counter()
                    track.bytes_out += len(body)
                if not message.get("more_body", False):
                    track.finished = not track.hung_up
            elif kind == "http.response.start":
                track.status = message["status"]
                if track.stream and track.status < 400:
                    streaming = True
                    metrics.active_streams += 1
            await send(message)

        async def watched_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not track.finished:
                track.hung_up = True
            return message

        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            if streaming:
                metrics.active_streams -= 1
            observers.emit(track.outcome(scope, perf_counter()))
