"""Command line: `cliproxy serve`, `cliproxy config check`, `cliproxy usage`, `cliproxy --version`."""

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
) -> None:
    """Start the proxy. Without a config file it serves the offline demo models."""
    from cliproxy.config import ConfigError, default_config, load_config

    path = _find_config(config)
    try:
        cfg = load_config(path) if path is not None else default_config()
    except ConfigError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    # Imported only now: the server stack is slow to import and a bad config needs none of it.
    from cliproxy.serve import run_server

    updates = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if updates:
        cfg = cfg.model_copy(update=updates)
    raise typer.Exit(run_server(cfg, path))


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


def main() -> None:
    app(prog_name="cliproxy")


if __name__ == "__main__":
    main()
