"""Command line: `cliproxy serve`, `cliproxy config check|migrate`, `cliproxy usage`,
`cliproxy --version`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from cliproxy import __version__
from cliproxy.cli_auth import auth_app
from cliproxy.cli_usage import usage

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
config_app = typer.Typer(no_args_is_help=True, help="Work with config files.")
app.add_typer(config_app, name="config")
app.add_typer(auth_app)  # login, accounts
app.command("usage")(usage)

log = logging.getLogger("cliproxy")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cliproxy {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """One local API over your AI subscriptions and API keys."""


def _find_config(explicit: Path | None) -> Path | None:
    """--config, else $CLIPROXY_CONFIG, else ./config.yaml if present, else the embedded default."""
    if explicit is not None:
        return explicit
    env = os.environ.get("CLIPROXY_CONFIG")
    if env:
        return Path(env)
    local = Path("config.yaml")
    return local if local.is_file() else None


@app.command()
def serve(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Path to config.yaml (hot reloaded).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Listen address (overrides config).")] = None,
    # Range checked here because the override skips the config validator; uvicorn would
    # otherwise bind port 70000 as 70000 % 65536 and print a banner with the wrong port.
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Listen port (overrides config).")
    ] = None,
    # 64: config.schema.MAX_WORKERS (not imported here: the CLI starts without the schema).
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Processes serving the port (overrides the config's workers)."
        ),
    ] = None,
) -> None:
    """Start the proxy. Without a config file it serves the offline demo models."""
    from cliproxy.config import ConfigError, default_config, load_config

    path = _find_config(config)
    try:
        cfg = load_config(path) if path is not None else default_config()
    except ConfigError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    overrides = (("host", host), ("port", port), ("workers", workers))
    updates = {k: v for k, v in overrides if v is not None}
    if updates:
        cfg = cfg.model_copy(update=updates)
    from cliproxy.usage import metrics_dir

    # Several workers sum their metrics through files: set up before the server stack (and
    # prometheus-client with it) is imported.
    shared = metrics_dir.share_between_processes() if cfg.workers > 1 else None
    try:
        # Imported only now: the server stack is slow to import and a bad config needs none.
        from cliproxy.serve import run_server

        status = run_server(cfg, path)
    finally:
        if shared is not None:
            metrics_dir.stop_sharing(shared)
    raise typer.Exit(status)


@config_app.command("check")
def config_check(
    path: Annotated[Path, typer.Argument(help="The config file to validate.")],
) -> None:
    """Validate a config file and print every problem with its key path and line."""
    from cliproxy.config import check_config

    status, lines = check_config(path)
    for line in lines:
        typer.echo(line, err=status != 0)
    if status == 0 and not lines:
        typer.echo(f"{path}: ok")
    raise typer.Exit(status)


@config_app.command("migrate")
def config_migrate(
    to: Annotated[str, typer.Option("--to", help="The layout to write: v8.")],
    path: Annotated[
        Path | None,
        typer.Argument(help="The config file (default: $CLIPROXY_CONFIG, else ./config.yaml)."),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Replace the file (atomically) instead of printing.")
    ] = False,
) -> None:
    """Print the config in CLIProxyAPI's v8 layout (config-version 8), comments kept; with
    --write, replace the file. The result is checked to read to the same config first."""
    from cliproxy.config import ConfigError
    from cliproxy.config.v8_migrate import MigrationError, migrate_text

    if to.strip().lower() not in ("v8", "8"):
        typer.echo(f"--to {to}: only v8 is known", err=True)
        raise typer.Exit(2)
    found = _find_config(path)
    if found is None:
        typer.echo("no config file: give its path (or set CLIPROXY_CONFIG)", err=True)
        raise typer.Exit(2)
    try:
        text = found.read_text(encoding="utf-8")
        result = migrate_text(text, str(found), base_dir=found.parent)
    except (OSError, UnicodeDecodeError) as error:
        typer.echo(f"{found}: cannot be read: {error}", err=True)
        raise typer.Exit(2) from None
    except ConfigError as error:
        typer.echo(f"{error}\n{found}: not migrated; fix the config first", err=True)
        raise typer.Exit(2) from None
    except MigrationError as error:
        typer.echo(f"{found}: not migrated: {error}", err=True)
        raise typer.Exit(1) from None
    for legacy, v8 in result.migration.dropped:
        typer.echo(f"dropped {legacy}: {v8} is set too and wins", err=True)
    if not write:
        typer.echo(result.text, nl=False)
        return
    if result.text == text:
        typer.echo(f"{found}: already in the v8 layout")
        return
    from cliproxy.auth.files import AuthWriteError, write_atomic

    try:
        write_atomic(found, result.text.encode("utf-8"), keep_mode=True)
    except AuthWriteError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    moved = len(result.migration.moved)
    typer.echo(f"{found}: written in the v8 layout ({moved} key{'s' if moved != 1 else ''} moved)")


def main() -> None:
    app(prog_name="cliproxy")


if __name__ == "__main__":
    main()
