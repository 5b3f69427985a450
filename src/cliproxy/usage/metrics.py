"""Prometheus metrics, fed by the outcome events (an observer on the AppState's hub).

Each application has its own CollectorRegistry (never prometheus-client's global one), so
several apps in one process (tests, an embedding program) keep separate counts. The hooks run
inline on the event loop: a request's outcome is kept and counted with the others in one batch
(each a dict lookup for the pre-bound label children and a few increments), before any scrape
and at least once a second. Label values are bounded: ``model`` is the name the client asked for when the
registry lists it, else ``other``, so a flood of odd model names cannot grow the label set;
protocol, provider and status come from small fixed or configured sets.

Two families are read at scrape time rather than counted: ``cliproxy_active_streams`` (the
server's open streams, ``active_streams``) and ``cliproxy_credentials``, whose counts the caller
computes from the registry, the cooldowns and the auth store and hands to ``exposition``.

Several worker processes (``workers: N``) answer /metrics on one port, so any of them may
take a scrape: serve then sets ``PROMETHEUS_MULTIPROC_DIR`` before prometheus-client is first
imported (``share_between_processes``), every counter and histogram is kept in a per-process
file there, and a scrape sums the files of all workers (prometheus-client's multiprocess mode).
Open streams become a gauge summed over the live workers; the credential counts are the
answering worker's view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cliproxy.usage.events import AttemptOutcome, RefreshOutcome, RequestOutcome
from cliproxy.usage.metrics_dir import shared_between_processes

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"  # a model the registry does not list, or none read
NONE = "none"  # no provider answered (refused before routing, or nothing served the model)
TOKEN_KINDS = ("input", "output", "cached", "reasoning")
CREDENTIAL_STATES = ("ready", "cooling", "disabled", "needs_login")
# Seconds. Generation calls run from well under a second to many minutes.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60)
# Distinct requested names remembered per registry (known and unknown alike); past it a name
# is looked up each time, which costs a dict lookup in the registry.
_LABEL_CACHE_SIZE = 4096

# Requests are counted in batches (Metrics.on_request): within this many seconds of the first
# one kept, or once this many wait. A worker whose /metrics another worker answers (workers:
# N) shows its requests there within that time.
CATCH_UP_AFTER = 1.0
CATCH_UP_AT = 256

CredentialCounts = Mapping[tuple[str, str], int]  # (provider, state) -> credentials
ACTIVE_STREAMS = "cliproxy_active_streams"
ACTIVE_STREAMS_HELP = "Streamed replies currently open to clients."


def forget_process(pid: int) -> None:
    """A worker ended: its open streams no longer count (its counters still do)."""
    if shared_between_processes():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class ModelListing(Protocol):
    """What the metrics need from the model registry: whether it lists a name."""

    def model(self, name: str) -> object | None: ...


class Metrics:
    """The application's metrics. ``models`` returns the current model registry (it changes
    on reload); ``provider_names`` maps an auth-file type to its provider's name, so refresh
    counts carry the same provider label as the request counts."""

    def __init__(
        self,
        models: Callable[[], ModelListing],
        provider_names: Mapping[str, str] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._models = models
        self._provider_names = dict(provider_names or {})
        self.shared = shared_between_processes()
        # Open streams of this process; with several, also kept in the shared files.
        self._active_gauge = (
            Gauge(ACTIVE_STREAMS, ACTIVE_STREAMS_HELP, multiprocess_mode="livesum", registry=None)
            if self.shared
            else None
        )
        self._active_streams = 0
        self._credentials: CredentialCounts = {}
        registry = self.registry
        self._requests_total = Counter(
            "cliproxy_requests",
            "Client requests on the generation routes, by the status sent to the client.",
            ["protocol", "model", "provider", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "cliproxy_request_duration_seconds",
            "Seconds from a request's arrival until its reply ended.",
            ["model", "provider"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._first_token = Histogram(
            "cliproxy_time_to_first_token_seconds",
            "Seconds from a streamed request's arrival to its first bytes (streams only).",
            ["model", "provider"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self._tokens_total = Counter(
            "cliproxy_tokens",
            "Tokens the upstreams reported, by kind (input, output, cached, reasoning).",
            ["model", "kind"],
            registry=registry,
        )
        self._upstream_errors_total = Counter(
            "cliproxy_upstream_errors",
            "Upstream attempts answered with a status of 400 or more, or status 0 when no "
            "answer came (connection failure, timeout).",
            ["provider", "status"],
            registry=registry,
        )
        self._refreshes_total = Counter(
            "cliproxy_token_refreshes",
            "Calls to an account's token endpoint, by result (ok, failed, needs_login).",
            ["provider", "result"],
            registry=registry,
        )
        registry.register(_ReadAtScrape(self))
        # Pre-bound label children: the hooks look them up by their label values.
        self._request_children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}
        self._first_token_children: dict[tuple[str, str], Any] = {}
        self._token_children: dict[str, tuple[Any, Any, Any, Any]] = {}
        self._error_children: dict[tuple[str, int], Any] = {}
        self._refresh_children: dict[tuple[str, str], Any] = {}
        self._labels: dict[str, str] = {}
        self._labels_of: object = None  # the registry the cached labels were read from
        self._pending: list[RequestOutcome] = []  # requests not counted yet (catch_up)
        self._catch_up_armed = False

    @property
    def active_streams(self) -> int:
        """Written by the server as streams open and close."""
        return self._active_streams

    @active_streams.setter
    def active_streams(self, value: int) -> None:
        self._active_streams = value
        if self._active_gauge is not None:
            self._active_gauge.set(value)

    # ----- observer hooks (inline, on the event loop) -------------------------------------------

    def on_request(self, event: RequestOutcome) -> None:
        """Kept, and counted with the others in one go (``catch_up``): a scrape first, else
        after ``CATCH_UP_AFTER`` seconds or ``CATCH_UP_AT`` events. A loop over a batch of
        events costs about half of counting each in place between two requests' work."""
        pending = self._pending
        pending.append(event)
        if len(pending) >= CATCH_UP_AT:
            self.catch_up()
        elif not self._catch_up_armed:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside the server (a test, an embedding program)
                self.catch_up()
                return
            self._catch_up_armed = True
            loop.call_later(CATCH_UP_AFTER, self._timed_catch_up)

    def _timed_catch_up(self) -> None:
        self._catch_up_armed = False
        self.catch_up()

    def catch_up(self) -> None:
        """Count the requests kept since the last time."""
        pending, self._pending = self._pending, []
        for event in pending:
            self._count(event)

    def _count(self, event: RequestOutcome) -> None:
        model = self.model_label(event.requested_model)
        provider = event.provider or NONE
        key = (event.client_protocol, model, provider, event.status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self._requests_total.labels(event.client_protocol, model, provider, event.status),
                self._duration.labels(model, provider),
            )
        children[0].inc()
        children[1].observe(event.latency)
        if event.stream and event.first_token is not None:
            first_token = self._first_token_children.get((model, provider))
            if first_token is None:
                first_token = self._first_token.labels(model, provider)
                self._first_token_children[(model, provider)] = first_token
            first_token.observe(event.first_token)
        if event.input_tokens or event.output_tokens:
            tokens = self._token_children.get(model)
            if tokens is None:
                tokens = self._token_children[model] = (
                    self._tokens_total.labels(model, "input"),
                    self._tokens_total.labels(model, "output"),
                    self._tokens_total.labels(model, "cached"),
                    self._tokens_total.labels(model, "reasoning"),
                )
            tokens[0].inc(event.input_tokens)
            tokens[1].inc(event.output_tokens)
            if event.cached_tokens:
                tokens[2].inc(event.cached_tokens)
            if event.reasoning_tokens:
                tokens[3].inc(event.reasoning_tokens)

    def on_attempt(self, event: AttemptOutcome) -> None:
        status = event.status
        if not event.sent or 0 < status < 400:
            return
        key = (event.provider, status)
        child = self._error_children.get(key)
        if child is None:
            child = self._error_children[key] = self._upstream_errors_total.labels(*key)
        child.inc()

    def on_refresh(self, event: RefreshOutcome) -> None:
        provider = self._provider_names.get(event.account_type, event.account_type)
        key = (provider, event.result)
        child = self._refresh_children.get(key)
        if child is None:
            child = self._refresh_children[key] = self._refreshes_total.labels(*key)
        child.inc()

    # ----- labels, scraping ---------------------------------------------------------------------

    def model_label(self, requested: str) -> str:
        """``requested`` itself when the current registry lists it, else ``other``."""
        listing = self._models()
        labels = self._labels
        if listing is not self._labels_of:
            labels.clear()
            self._labels_of = listing
        label = labels.get(requested)
        if label is None:
            label = requested if requested and listing.model(requested) is not None else OTHER
            if len(labels) < _LABEL_CACHE_SIZE:
                labels[requested] = label
        return label

    def exposition(self, credentials: CredentialCounts | None = None) -> bytes:
        """The text exposition format; ``credentials`` are this scrape's credential counts."""
        self._credentials = credentials or {}
        self.catch_up()
        if not self.shared:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        every_worker = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(every_worker)
        every_worker.register(_ReadAtScrape(self, streams=False))
        return generate_latest(every_worker)


class _ReadAtScrape(Collector):
    """The gauges read when scraped: open streams, and credentials by provider and state."""

    def __init__(self, metrics: Metrics, *, streams: bool = True) -> None:
        self.metrics = metrics
        self.streams = streams  # False: the shared files have them

    def collect(self) -> Iterator[Metric]:
        if self.streams:
            yield GaugeMetricFamily(
                ACTIVE_STREAMS, ACTIVE_STREAMS_HELP, value=self.metrics.active_streams
            )
        family = GaugeMetricFamily(
            "cliproxy_credentials",
            "Credentials (config API keys and account files) by provider and state "
            "(ready, cooling, disabled, needs_login).",
            labels=["provider", "state"],
        )
        for (provider, state), count in sorted(self.metrics._credentials.items()):
            family.add_metric([provider, state], count)
        yield family
