"""Running the server: start-up checks, the banner, uvicorn."""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from cliproxy.app import build_app
from cliproxy.auth.catalog import catalog
from cliproxy.config.schema import Config
from cliproxy.config.usage_database import describe_usage_database
from cliproxy.management.log_file import file_logging
from cliproxy.server.access import is_loopback
from cliproxy.server.listener import server_config as server_config_for

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
    if config.usage_statistics_enabled:
        ledger = describe_usage_database(config.usage_database, config.auth_dir)
        lines.insert(2, f"  usage ledger:        {ledger}")
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
        from cliproxy.serve_workers import run_workers

        return run_workers(config, path, prepare_to_serve)
    app = build_app(config, path)
    print_banner(app, config, path)
    server = uvicorn.Server(server_config_for(app, config, loop="uvloop"))
    settle(app, config)
    server.run()
    return 0


def prepare_to_serve(app: Starlette, config: Config, path: Path | None, announce: bool) -> None:
    """What a worker does before it serves: the banner (the first worker, once), settling."""
    if announce:
        print_banner(app, config, path)
    settle(app, config)


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
    # The request path builds no reference cycles (tests/e2e/test_no_cycles.py): its objects
    # are freed by reference counting as each request ends. At the default threshold (700
    # allocations) the collector still ran every few requests, only to promote the objects of
    # the requests in flight, and took about a tenth of the CPU at full load; at 10,000 it
    # runs a few times a minute, for a millisecond or two, and still clears the cycles error
    # paths leave (a caught exception's traceback) long before they add up.
    gc.set_threshold(10_000, 20, 20)
