"""Running the server: start-up checks, the banner, uvicorn."""

from __future__ import annotations

import gc
import logging
import os
import socket
import sys
from multiprocessing.synchronize import Event
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from cliproxy.app import build_app
from cliproxy.auth.catalog import catalog
from cliproxy.config import ConfigError, load_config
from cliproxy.config.schema import Config
from cliproxy.management.log_file import file_logging
from cliproxy.server.access import is_loopback
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


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def binds_loopback_only(host: str) -> bool:
    return host == "localhost" or is_loopback(host)


def banner(
    config: Config,
    path: Path | None,
    models: list[str],
    accounts: int = 0,
    state_store: str = "memory (this process only)",
) -> str:
    """What `serve` prints: where to point clients, and a request that works as it stands."""
    scheme = "https" if config.tls.enable else "http"
    base = f"{scheme}://{_display_host(config.host)}:{config.port}"
    demo = "demo-echo" in models
    example = "demo-echo" if demo else (models[0] if models else "<model>")
    keys = config.client_key_values
    key = f' -H "Authorization: Bearer {keys[0][:4]}…"' if keys else ""
    lines = [
        f"cliproxy listening on {base}  (config: {path or 'embedded default'})",
        f"  OpenAI base URL:     {base}/v1",
        f"  Anthropic base URL:  {base}",
        f"  Gemini base URL:     {base}",
        "  Try it:",
        f"  curl -s {base}/v1/chat/completions{key} -H 'content-type: application/json' \\",
        f'    -d \'{{"model": "{example}", "messages": [{{"role": "user", "content": "hello"}}]}}\'',
    ]
    lines.insert(1, f"  pool state:          {state_store}")
    if accounts:
        lines.insert(1, f"  {accounts} subscription account(s) from {config.auth_dir}")
    for plugin in catalog().plugins:
        if plugin.problem:
            lines.insert(1, f"  provider plug-in {plugin.name} skipped: {plugin.problem}")
        else:
            lines.insert(1, f"  provider plug-in {plugin.name}: {', '.join(plugin.kinds)}")
    if config.workers > 1:
        lines.insert(1, f"  workers:             {config.workers} processes on this port")
    if demo:
        lines.insert(1, "  demo provider on: models demo-echo, demo-tools (offline)")
    return "\n".join(lines)


def run_server(config: Config, path: Path | None) -> int:
    logging.basicConfig(
        level=logging.DEBUG if config.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log_path = file_logging.configure(config)  # logging-to-file: logs/main.log, rotated
    if log_path is not None:
        log.info("logging to %s", log_path)
    if not config.client_key_values and not binds_loopback_only(config.host):
        print(
            f"refusing to listen on {config.host}: no api-keys are configured, so anyone on the "
            "network could use your accounts. Add api-keys to the config or listen on 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    for key, line in config.unsupported_key_lines():
        where = f" (line {line})" if line else ""
        log.warning("config key %s%s is not supported yet and is ignored", key, where)
    for warning in config.warnings:
        log.warning("%s", warning)
    if config.workers > 1:
        return run_workers(config, path)
    app = build_app(config, path)
    print_banner(app, config, path)
    server = uvicorn.Server(server_config_for(app, config, loop="uvloop"))
    settle(app, config)
    server.run()
    return 0


def print_banner(app: Starlette, config: Config, path: Path | None) -> None:
    state = app.state.cliproxy
    models = [m.id for m in state.runtime.registry.models()]
    accounts = len(state.auth_store.records())
    text = banner(config, path, models, accounts, state.pool.describe())
    print(text, flush=True)


def settle(app: Starlette, config: Config) -> None:
    """The last steps before serving."""
    if config.usage_statistics_enabled:
        app.state.cliproxy.ledger.prices.warm()
    # Everything loaded so far (modules, the config, the price table) lives as long as the
    # process: keep it out of the collector's way, so that the collections every request's
    # garbage sets off stay short (a few percent of throughput under load).
    gc.freeze()


# ----- workers: N > 1 (server/workers.py supervises) -------------------------------------------

WORKER_HEADER = "x-cliproxy-worker"
STARTUP_FAILURE = 3  # as uvicorn.main's


def run_workers(config: Config, path: Path | None) -> int:
    """Bind the port, then start and watch `workers` processes serving it."""
    if not config.state_store.redis_url:
        log.warning(
            "workers: %d without state-store: each worker keeps its own cooldowns, rotation "
            "counters and session bindings; set state-store.redis-url to share them "
            "(docs/scaling.md)",
            config.workers,
        )
    try:
        sockets = listening_sockets(config.host, config.port, config.workers, backlog=2048)
    except ListenError as error:
        print(str(error), file=sys.stderr)
        return 1
    supervisor = Supervisor(config.workers, sockets, _worker_main(config, path), forget_process)
    return supervisor.run()


class _ReadyServer(uvicorn.Server):
    """uvicorn's server, telling the supervisor once it serves."""

    def __init__(self, config: uvicorn.Config, ready: Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()


def _worker_main(start_config: Config, path: Path | None) -> WorkerMain:
    def serve(launch: WorkerLaunch) -> int:
        config = _current_config(start_config, path)
        app = build_app(config, path)
        if launch.index == 1 and not launch.again:
            print_banner(app, config, path)
        # A default response header (uvicorn adds it to every reply, at no per-request
        # cost): which worker answered, for operators and for the tests.
        identity = (WORKER_HEADER, f"{launch.index}; pid={os.getpid()}")
        settings = server_config_for(app, config, loop="uvloop", headers=[identity])
        server = _ReadyServer(settings, launch.ready)
        settle(app, config)
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
