"""`serve` with `workers: N` above 1: the supervisor (server/workers.py) binds the port and
starts N workers, each of which builds and serves the whole app (docs/scaling.md)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from multiprocessing.synchronize import Event
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from cliproxy.app import build_app
from cliproxy.config import ConfigError, load_config
from cliproxy.config.schema import Config
from cliproxy.server.listener import server_config as server_config_for
from cliproxy.server.workers import (
    ListenError,
    Supervisor,
    WorkerLaunch,
    WorkerMain,
    listening_sockets,
)
from cliproxy.usage.metrics import forget_process

log = logging.getLogger("cliproxy")

# serve.prepare_to_serve, handed in (serve imports this module): (app, config, config path,
# whether to print the banner).
Prepare = Callable[[Starlette, Config, Path | None, bool], None]

WORKER_HEADER = "x-cliproxy-worker"
STARTUP_FAILURE = 3  # as uvicorn.main's


def run_workers(config: Config, path: Path | None, prepare: Prepare) -> int:
    """Bind the port, then start and watch `workers` processes serving it."""
    if not config.state_store.redis_url:
        log.warning(
            "workers: %d without state-store: each worker keeps its own cooldowns, rotation "
            "counters, session bindings, client-key counts, management lockouts and OAuth "
            "logins; set state-store.redis-url to share them (docs/scaling.md)",
            config.workers,
        )
    try:
        sockets = listening_sockets(config.host, config.port, config.workers, backlog=2048)
    except ListenError as error:
        print(str(error), file=sys.stderr)
        return 1
    worker_main = _worker_main(config, path, prepare)
    supervisor = Supervisor(config.workers, sockets, worker_main, forget_process)
    return supervisor.run()


class _ReadyServer(uvicorn.Server):
    """uvicorn's server, telling the supervisor once it serves (after ``before_ready``)."""

    def __init__(
        self,
        config: uvicorn.Config,
        ready: Event,
        before_ready: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(config)
        self.ready = ready
        self.before_ready = before_ready

    async def on_tick(self, counter: int) -> bool:
        # The first tick comes once start-up is done, and sets the headers every reply carries
        # (the date, the worker's name): only then may ``before_ready`` let the loop serve.
        should_exit = await super().on_tick(counter)
        if not self.ready.is_set():
            if self.before_ready is not None:
                await self.before_ready()
            self.ready.set()
        return should_exit


def _make_shared_files(app: Starlette) -> Callable[[], Awaitable[None]]:
    """The first worker's last step before the others start: create the SQLite ledger file.
    One process makes it with its first record; two workers doing that at once collide on
    creating its table, and the loser took the file for a broken one and moved it aside."""

    async def make() -> None:
        state = app.state.cliproxy
        store = state.ledger.store
        if not state.ledger.available or store.path is None or store.path.exists():
            return
        with contextlib.suppress(Exception):  # the ledger reports its own failure to open
            await store.open()
        await store.close()

    return make


def _worker_main(start_config: Config, path: Path | None, prepare: Prepare) -> WorkerMain:
    def serve(launch: WorkerLaunch) -> int:
        config = _current_config(start_config, path)
        app = build_app(config, path)
        first = launch.index == 1 and not launch.again
        # A default response header (uvicorn adds it to every reply, at no per-request
        # cost): which worker answered, for operators and for the tests.
        identity = (WORKER_HEADER, f"{launch.index}; pid={os.getpid()}")
        settings = server_config_for(app, config, loop="uvloop", headers=[identity])
        server = _ReadyServer(settings, launch.ready, _make_shared_files(app) if first else None)
        prepare(app, config, path, first)
        server.run(sockets=[launch.sock])
        # uvicorn returns, rather than raising, when the app's start-up failed (it logged why):
        # its own exit status for that, so the supervisor sees a failure.
        return 0 if server.started else STARTUP_FAILURE

    return serve


def _current_config(start_config: Config, path: Path | None) -> Config:
    """The config file as it is now (a restarted worker must not come back with the config of
    the supervisor's start); the listen address and worker count stay the start's, since the
    port is bound. A file that no longer loads leaves the start's config in force."""
    if path is None:
        return start_config
    try:
        current = load_config(path)
    except ConfigError as error:
        log.error("%s\nthis worker starts with the config read at start instead", error)
        return start_config
    kept = {"host": start_config.host, "port": start_config.port, "workers": start_config.workers}
    return current.model_copy(update=kept)
