"""`workers: N`: N processes serving one port, started and watched by the process that was run.

The port is bound here, in the supervisor, once per worker with SO_REUSEPORT: each worker gets
a listening socket of its own in one reuse-port group, so the kernel spreads new connections
evenly over the workers (a single shared socket hands most of them to whichever worker happens
to wake first, which under light load is the same one every time). The sockets stay open in
the supervisor, so a worker that dies leaves its socket in the group: connections the kernel
queued on it wait for the restarted worker, which inherits the same socket, instead of being
reset. TLS needs nothing special: each worker's uvicorn wraps the connections it accepts.
Where SO_REUSEPORT does not exist, every worker shares one socket.

Workers are forked from the supervisor, which has loaded the code but built nothing (no event
loop, no threads, no connections), so each worker builds the whole app for itself. The first
worker starts alone and the others once it is serving, so that first-time work on shared files
(the usage database, the auth directory) is done by one process. A worker that exits is
restarted after a pause that doubles while it keeps dying young; SIGTERM or SIGINT to the
supervisor sends SIGTERM to every worker and waits for them to finish what they are serving (a
second signal kills them). Workers ask the kernel for SIGTERM should the supervisor die without
stopping them, so none is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.context import ForkProcess
from multiprocessing.synchronize import Event

log = logging.getLogger("cliproxy.workers")

# Pauses before restarting a worker that died: the first, and the longest.
FIRST_RESTART_PAUSE = 0.5
LONGEST_RESTART_PAUSE = 30.0
# A worker that served this long before dying is restarted after the first pause again.
STABLE_AFTER_SECONDS = 30.0
# How long the first worker may take to start serving before the others start anyway.
FIRST_START_WAIT = 60.0
# Linux: prctl(PR_SET_PDEATHSIG, signal) sends the signal when the parent exits.
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerLaunch:
    """What a worker is given: its number (1..N), its listening socket, an event to set once
    it serves, and whether this slot has run a worker before (a restart)."""

    index: int
    sock: socket.socket
    ready: Event
    again: bool


# A worker runs until told to stop and returns its exit status.
WorkerMain = Callable[[WorkerLaunch], int]


class ListenError(Exception):
    """The port cannot be bound (in use, not permitted, no such address)."""


def listening_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """One listening socket per worker in a SO_REUSEPORT group, or one shared by all."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if reuse_port else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.set_inheritable(True)
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sockets if reuse_port else sockets * count


@dataclass
class _Slot:
    """One worker's place: its socket stays, its process comes and goes."""

    index: int
    sock: socket.socket
    process: ForkProcess | None = None
    ready: Event | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    history: list[int] = field(default_factory=list)  # pids, oldest first


class Supervisor:
    def __init__(
        self,
        count: int,
        sockets: list[socket.socket],
        worker_main: WorkerMain,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        """``on_exit`` is told the pid of each worker that ended (its leftovers to clear)."""
        self.context = multiprocessing.get_context("fork")
        self.slots = [_Slot(index + 1, sock) for index, sock in enumerate(sockets[:count])]
        self.worker_main = worker_main
        self.on_exit = on_exit
        self.stopping = False
        self.signals: list[int] = []
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    # ----- running -------------------------------------------------------------------------

    def run(self) -> int:
        """Start the workers, keep them running until a signal, stop them; the exit status."""
        previous = self._catch_signals()
        try:
            first = self.slots[0]
            self._start(first)
            assert first.ready is not None and first.process is not None
            self._wait_ready(first.ready)
            if not self.stopping and not first.process.is_alive() and not first.ready.is_set():
                # It never served: whatever stopped it will stop every restart too (the
                # config is checked before this, so it is the host: a file, a permission).
                log.error(
                    "worker 1 (pid %s) %s before it served; not starting the others",
                    first.process.pid,
                    _describe_exit(first.process.exitcode),
                )
                self._ended(first)
                self._close_sockets()
                return 1
            for slot in self.slots[1:]:
                if not self.stopping:
                    self._start(slot)
            while not self.stopping:
                self._watch_once()
            return self._stop_all()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(-1)
            os.close(self._wake_read)
            os.close(self._wake_write)

    def _wait_ready(self, ready: Event) -> None:
        deadline = time.monotonic() + FIRST_START_WAIT
        process = self.slots[0].process
        while not self.stopping and not ready.is_set() and time.monotonic() < deadline:
            assert process is not None
            if not process.is_alive():
                return  # _watch_once logs it and schedules the restart
            wait([process.sentinel, self._wake_read], timeout=0.1)
            self._drain_wakeups()

    def _watch_once(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is not None and not slot.process.is_alive():
                self._note_exit(slot, now)
            if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
                self._start(slot)
        waits: list[object] = [self._wake_read]
        waits += [slot.process.sentinel for slot in self.slots if slot.process is not None]
        pending = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        timeout = max(0.0, min(pending) - now) if pending else None
        wait(waits, timeout=timeout)  # type: ignore[arg-type]
        self._drain_wakeups()

    def _start(self, slot: _Slot) -> None:
        slot.ready = self.context.Event()
        process = self.context.Process(
            target=_worker_entry,
            args=(
                self.worker_main,
                WorkerLaunch(slot.index, slot.sock, slot.ready, again=bool(slot.history)),
                os.getpid(),
            ),
            name=f"cliproxy worker {slot.index}",
        )
        process.start()
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None
        slot.history.append(process.pid or 0)
        again = " again" if len(slot.history) > 1 else ""
        log.info("worker %d started%s (pid %s)", slot.index, again, process.pid)

    def _note_exit(self, slot: _Slot, now: float) -> None:
        assert slot.process is not None
        code, pid = slot.process.exitcode, slot.process.pid
        self._ended(slot)
        if self.stopping:
            return
        lived = now - slot.started_at
        slot.quick_deaths = 1 if lived >= STABLE_AFTER_SECONDS else slot.quick_deaths + 1
        pause = min(FIRST_RESTART_PAUSE * 2 ** (slot.quick_deaths - 1), LONGEST_RESTART_PAUSE)
        slot.restart_at = now + pause
        log.error(
            "worker %d (pid %s) %s after %.1f s; restarting it in %.1f s",
            slot.index,
            pid,
            _describe_exit(code),
            lived,
            pause,
        )

    def _ended(self, slot: _Slot) -> None:
        assert slot.process is not None
        pid = slot.process.pid
        slot.process.close()
        slot.process = None
        if self.on_exit is not None and pid:
            try:
                self.on_exit(pid)
            except Exception:
                log.exception("clearing up after worker %d (pid %s) failed", slot.index, pid)

    # ----- stopping ------------------------------------------------------------------------

    def _catch_signals(self) -> dict[int, Callable[..., object] | int | None]:
        signal.set_wakeup_fd(self._wake_write, warn_on_full_buffer=False)
        previous: dict[int, Callable[..., object] | int | None] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.signals.append(signum)
        if self.stopping:
            # The second signal: the operator does not want to wait for streams to end.
            for slot in self.slots:
                if slot.process is not None and slot.process.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(slot.process.pid, signal.SIGKILL)
        self.stopping = True

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 64):
                pass

    def _stop_all(self) -> int:
        running = [slot for slot in self.slots if slot.process is not None]
        log.info("stopping %d worker(s)", len(running))
        for slot in running:
            assert slot.process is not None and slot.process.pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.process.pid, signal.SIGTERM)
        for slot in running:
            assert slot.process is not None
            while slot.process.is_alive():
                wait([slot.process.sentinel, self._wake_read])
                self._drain_wakeups()
            self._ended(slot)
        self._close_sockets()
        log.info("all workers stopped")
        return 0

    def _close_sockets(self) -> None:
        for slot in self.slots:
            with contextlib.suppress(OSError):
                slot.sock.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _worker_entry(worker_main: WorkerMain, launch: WorkerLaunch, parent: int) -> None:
    # The supervisor's handlers and wake-up pipe came along with the fork; the worker's
    # server installs its own handlers as it starts.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _die_with(parent)
    sys.exit(worker_main(launch))


def _die_with(parent: int) -> None:
    """Get SIGTERM if the supervisor goes away (killed, so it could not stop us)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # it died before the request was made
                os.kill(os.getpid(), signal.SIGTERM)
            return

    def watch() -> None:  # elsewhere: look every second
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor watch", daemon=True).start()
