"""The observer hub: hooks by event type, failures logged once and contained, and the bounded
queue for slow observers; the request counters as an observer of attempts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from cliproxy.model import ErrorKind
from cliproxy.usage.events import AttemptOutcome, RequestOutcome
from cliproxy.usage.observers import Observers, QueuedObserver
from cliproxy.usage.request_counts import RequestCounts

ATTEMPT = AttemptOutcome(
    credential_id="claude-api-key[0]",
    provider="claude-api-key",
    upstream_model="up",
    requested_model="m",
    status=200,
    error_kind=None,
    latency=0.1,
    number=1,
)
REQUEST = RequestOutcome(
    client_key="",
    client_protocol="anthropic",
    upstream_protocol="anthropic",
    requested_model="m",
    upstream_model="up",
    credential_id="claude-api-key[0]",
    provider="claude-api-key",
    path="pass-through",
    stream=False,
    status=200,
    error_kind=None,
    ending="completed",
    input_tokens=1,
    output_tokens=2,
    cached_tokens=0,
    reasoning_tokens=0,
    latency=0.2,
    first_token=None,
    attempts=1,
    bytes_out=10,
)
LOGGER = "cliproxy.usage.observers"


class Both:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def on_attempt(self, event: AttemptOutcome) -> None:
        self.seen.append(event)

    def on_request(self, event: RequestOutcome) -> None:
        self.seen.append(event)


class AttemptsOnly:
    def __init__(self) -> None:
        self.seen: list[AttemptOutcome] = []

    def on_attempt(self, event: AttemptOutcome) -> None:
        self.seen.append(event)


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    def on_request(self, event: RequestOutcome) -> None:
        self.calls += 1
        raise ValueError("broken on purpose")


def test_events_go_to_the_hooks_named_after_them() -> None:
    hub = Observers()
    both, attempts = Both(), AttemptsOnly()
    assert not hub.wants(AttemptOutcome) and not hub.wants(RequestOutcome)
    hub.subscribe(both)
    hub.subscribe(attempts)
    assert hub.wants(AttemptOutcome) and hub.wants(RequestOutcome)
    hub.emit(ATTEMPT)
    hub.emit(REQUEST)
    assert both.seen == [ATTEMPT, REQUEST]
    assert attempts.seen == [ATTEMPT]
    hub.unsubscribe(both)
    hub.emit(REQUEST)
    assert both.seen == [ATTEMPT, REQUEST] and not hub.wants(RequestOutcome)


def test_an_observer_without_hooks_or_with_unqueued_async_hooks_is_refused() -> None:
    hub = Observers()
    with pytest.raises(TypeError, match="none of the hooks"):
        hub.subscribe(object())

    class Async:
        async def on_request(self, event: RequestOutcome) -> None: ...

    with pytest.raises(TypeError, match="QueuedObserver"):
        hub.subscribe(Async())
    hub.subscribe(QueuedObserver(Async()))  # queued, it is fine
    assert hub.wants(RequestOutcome) and not hub.wants(AttemptOutcome)


def test_a_failing_observer_is_logged_once_and_keeps_being_called(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Observers()
    broken, after = Broken(), Both()
    hub.subscribe(broken)
    hub.subscribe(after)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            hub.emit(REQUEST)
    assert broken.calls == 3 and hub.failures(broken) == 3
    assert after.seen == [REQUEST] * 3  # the next observer is not deprived
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert "Broken" in record.getMessage() and record.exc_info is not None
    assert hub.failures(after) == 0


async def test_a_queued_observer_gets_its_events_later_in_order() -> None:
    seen: list[object] = []
    release = asyncio.Event()

    class Slow:
        async def on_attempt(self, event: AttemptOutcome) -> None:
            await release.wait()
            seen.append(event)

    hub = Observers()
    queued = QueuedObserver(Slow())
    hub.subscribe(queued)
    events = [replace(ATTEMPT, number=n) for n in range(1, 4)]
    for event in events:
        hub.emit(event)  # returns at once
    hub.emit(REQUEST)  # not a hook of Slow: not queued
    await asyncio.sleep(0.01)
    assert seen == [] and queued.pending == 2  # the worker holds the first
    release.set()
    await hub.close()
    assert seen == events and queued.handled == 3 and queued.dropped == 0


async def test_a_full_queue_drops_and_counts_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[RequestOutcome] = []

    class Plain:
        def on_request(self, event: RequestOutcome) -> None:
            seen.append(event)

    queued = QueuedObserver(Plain(), maxsize=2)
    hub = Observers()
    hub.subscribe(queued)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for n in range(5):  # no await in between: the worker cannot run yet
            hub.emit(replace(REQUEST, attempts=n))
    assert queued.dropped == 3 and queued.pending == 2
    assert len([r for r in caplog.records if "queue of 2 is full" in r.getMessage()]) == 1
    await hub.close()
    assert [e.attempts for e in seen] == [0, 1]


async def test_a_failing_queued_observer_is_logged_once_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        async def on_request(self, event: RequestOutcome) -> None:
            self.calls += 1
            if self.calls < 3:
                raise RuntimeError("not yet")

    flaky = Flaky()
    queued = QueuedObserver(flaky)
    hub = Observers()
    hub.subscribe(queued)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(4):
            hub.emit(REQUEST)
        await hub.close()
    assert flaky.calls == 4 and queued.failures == 2 and queued.handled == 4
    assert len([r for r in caplog.records if r.name == LOGGER]) == 1


async def test_close_stops_an_observer_that_never_finishes() -> None:
    class Stuck:
        async def on_request(self, event: RequestOutcome) -> None:
            await asyncio.Event().wait()

    hub = Observers()
    queued = QueuedObserver(Stuck())
    hub.subscribe(queued)
    hub.emit(REQUEST)
    await asyncio.sleep(0)
    await asyncio.wait_for(hub.close(timeout=0.05), 2.0)
    assert queued.pending == 0


def test_the_request_counters_count_attempts_that_were_sent() -> None:
    counts = RequestCounts(clock=lambda: 1_700_000_000.0)
    hub = Observers()
    hub.subscribe(counts)
    failed = replace(ATTEMPT, status=500, error_kind=ErrorKind.SERVER)
    unreachable = replace(ATTEMPT, status=0, error_kind=ErrorKind.UPSTREAM)
    not_sent = replace(ATTEMPT, status=0, error_kind=ErrorKind.PERMISSION, sent=False)
    refreshed = replace(ATTEMPT, status=401, error_kind=ErrorKind.AUTHENTICATION, reauthorized=True)
    for event in (ATTEMPT, failed, unreachable, not_sent, refreshed, ATTEMPT):
        hub.emit(event)
    assert counts.totals("claude-api-key[0]") == (2, 2)
    hub.emit(REQUEST)  # not a hook of the counters
    assert counts.totals("claude-api-key[0]") == (2, 2)
