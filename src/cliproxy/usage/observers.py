"""The observer hub: outcome events go to whoever subscribed, in the style of mitmproxy's
addons. An observer is any object with hook methods named after the events it wants:

    on_attempt(event: AttemptOutcome)   one upstream attempt ended
    on_request(event: RequestOutcome)   one client request's reply ended
    on_refresh(event: RefreshOutcome)   one account's token refresh ended

Hooks run inline on the event loop, right where the event happens, so they must be quick and do
no I/O (the request counters are such an observer). A slow observer (a database, a remote
metrics sink) is wrapped in ``QueuedObserver``: its hooks may be coroutines and read their
events from a bounded queue, so a response never waits for them.

Failure policy: a hook that raises is logged once, with its traceback, per observer; later
failures are only counted (``failures(observer)``), and the observer keeps being called, since
a failure is often passing (a full disk, a restarting database). It never changes a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

from cliproxy.usage.events import AttemptOutcome, Outcome, RefreshOutcome, RequestOutcome

log = logging.getLogger(__name__)

HOOKS: dict[type, str] = {
    AttemptOutcome: "on_attempt",
    RequestOutcome: "on_request",
    RefreshOutcome: "on_refresh",
}
DEFAULT_QUEUE_SIZE = 1024


class _Subscription:
    """One observer's hook for one event type, with its failure count."""

    __slots__ = ("counter", "hook", "observer")

    def __init__(self, observer: object, hook: Callable[[Any], object], counter: list[int]):
        self.observer = observer
        self.hook = hook
        self.counter = counter  # shared by the observer's hooks: [failures]

    def failed(self) -> None:
        self.counter[0] += 1
        if self.counter[0] == 1:
            log.exception(
                "observer %s failed; it stays subscribed, later failures are only counted",
                _name(self.observer),
            )


class Observers:
    """The hub the application state owns. ``emit`` costs one dict lookup and one call per
    interested hook; subscribing swaps in new tuples, so it is safe while events flow."""

    def __init__(self) -> None:
        self._hooks: dict[type, tuple[_Subscription, ...]] = {kind: () for kind in HOOKS}
        self._failures: dict[int, list[int]] = {}
        self._queued: list[QueuedObserver] = []

    def subscribe(self, observer: object) -> None:
        found = {kind: getattr(observer, name, None) for kind, name in HOOKS.items()}
        hooks = {kind: hook for kind, hook in found.items() if callable(hook)}
        if not hooks:
            raise TypeError(f"{_name(observer)} has none of the hooks {sorted(HOOKS.values())}")
        if not isinstance(observer, QueuedObserver) and any(
            inspect.iscoroutinefunction(hook) for hook in hooks.values()
        ):
            raise TypeError(f"{_name(observer)} has async hooks: subscribe QueuedObserver(it)")
        counter = self._failures.setdefault(id(observer), [0])
        for kind, hook in hooks.items():
            self._hooks[kind] = (*self._hooks[kind], _Subscription(observer, hook, counter))
        if isinstance(observer, QueuedObserver):
            self._queued.append(observer)

    def unsubscribe(self, observer: object) -> None:
        for kind, subscriptions in self._hooks.items():
            self._hooks[kind] = tuple(s for s in subscriptions if s.observer is not observer)
        self._failures.pop(id(observer), None)
        if isinstance(observer, QueuedObserver):
            self._queued.remove(observer)

    def wants(self, kind: type) -> bool:
        """Whether anyone listens to ``kind`` (so an emitter can skip building the event)."""
        return bool(self._hooks[kind])

    def emit(self, event: Outcome) -> None:
        for subscription in self._hooks[type(event)]:
            try:
                subscription.hook(event)
            except Exception:
                subscription.failed()

    def failures(self, observer: object) -> int:
        counter = self._failures.get(id(observer))
        return counter[0] if counter else 0

    async def close(self, timeout: float = 2.0) -> None:
        """Let the queued observers finish what they hold (up to ``timeout``), then stop them."""
        for queued in list(self._queued):
            await queued.close(timeout)


class QueuedObserver:
    """Hands ``inner``'s events over through a bounded queue to a worker task on the event
    loop. ``inner``'s hooks may be plain or async. A full queue drops the event: it is counted
    (``dropped``) and logged the first time, and the response goes on unhindered. Events must
    be emitted on the event loop (the worker starts there with the first event)."""

    def __init__(self, inner: object, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self.inner = inner
        self.dropped = 0
        self.handled = 0
        self.failures = 0
        self._queue: asyncio.Queue[Outcome] = asyncio.Queue(maxsize)
        self._worker: asyncio.Task[None] | None = None
        self._calls: dict[type, Callable[[Any], object]] = {}
        for kind, name in HOOKS.items():
            hook = getattr(inner, name, None)
            if callable(hook):
                self._calls[kind] = hook
                setattr(self, name, self._put)

    def __repr__(self) -> str:
        return f"QueuedObserver({_name(self.inner)})"

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _put(self, event: Outcome) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1:
                log.warning(
                    "observer %s falls behind: its queue of %d is full; events are dropped "
                    "(and counted) until it catches up",
                    _name(self.inner),
                    self._queue.maxsize,
                )
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._drain(), name=f"observer {_name(self.inner)}"
            )

    async def _drain(self) -> None:
        queue = self._queue
        while True:
            event = await queue.get()
            try:
                result = self._calls[type(event)](event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.failures += 1
                if self.failures == 1:
                    log.exception(
                        "observer %s failed; it stays subscribed, later failures are only counted",
                        _name(self.inner),
                    )
            finally:
                self.handled += 1
                queue.task_done()

    async def close(self, timeout: float = 2.0) -> None:
        worker = self._worker
        if worker is None:
            return
        if not worker.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._worker = None


def _name(observer: object) -> str:
    return repr(observer) if isinstance(observer, QueuedObserver) else type(observer).__name__
