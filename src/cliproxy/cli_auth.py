"""`cliproxy login codex|claude|gemini|kimi|xai` and `cliproxy accounts`.

Mounted into the main CLI with ``app.add_typer(auth_app)`` (no name: the commands join the top
level). Heavy imports wait until a command runs, so `cliproxy --help` stays fast.
"""

from __future__ import annotations

import asyncio
import os
import sys
import webbrowser
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cliproxy.auth.store import AuthStore
    from cliproxy.config.schema import Config
    from cliproxy.providers.vendor_reads import QuotaReading

auth_app = typer.Typer(no_args_is_help=True)

PROVIDER_HELP = (
    "codex (ChatGPT), claude (Claude Pro/Max), gemini (Google account), antigravity "
    "(Google account, Antigravity IDE), kimi (Kimi Code, device code), xai (Grok, device code) "
    "or vertex (a service-account key, with --service-account)."
)
AuthDirOption = Annotated[
    Path | None,
    typer.Option("--auth-dir", help="Auth directory (default: the config's auth-dir)."),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config file that names the auth-dir.")
]


def _config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    if env := os.environ.get("CLIPROXY_CONFIG"):
        return Path(env)
    local = Path("config.yaml")
    return local if local.is_file() else None


def _settings(auth_dir: Path | None, config: Path | None, console: Console) -> tuple[Path, str]:
    """(auth directory, global proxy-url) from the options and the config file."""
    cfg = _load_config(auth_dir, config, console)
    return cfg.auth_dir, cfg.proxy_url


def _load_config(auth_dir: Path | None, config: Path | None, console: Console) -> Config:
    from cliproxy.config import ConfigError, default_config, load_config

    path = _config_path(config)
    try:
        cfg = load_config(path) if path is not None else default_config()
    except ConfigError as error:
        console.print(str(error), markup=False, highlight=False)
        raise typer.Exit(2) from None
    if auth_dir is not None:
        cfg = cfg.model_copy(update={"auth_dir": auth_dir.expanduser()})
    return cfg


class RichLoginUI:
    def __init__(self, console: Console) -> None:
        self.console = console

    def info(self, message: str) -> None:
        self.console.print(f"[dim]>[/] {message}", highlight=False)

    def show_url(self, url: str, *, paste: bool) -> None:
        self.console.print("Open this URL in a browser to log in:")
        # Unwrapped and unstyled so it can be copied (and clicked) as one piece.
        self.console.print(url, markup=False, highlight=False, soft_wrap=True)
        if paste:
            self.console.print(
                "After approving, the browser lands on a localhost page that may not load. "
                "Copy that page's full address (or, for Claude, the code#state shown) and "
                "paste it below."
            )

    def prompt(self, message: str) -> str:
        try:
            return self.console.input(f"[bold]{message}[/]: ")
        except EOFError:
            return ""

    def open_browser(self, url: str) -> bool:
        # Without a display webbrowser may start a text browser in this very terminal.
        headless = sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY")
            or os.environ.get("WAYLAND_DISPLAY")
            or os.environ.get("BROWSER")
        )
        if headless:
            return False
        try:
            return webbrowser.open(url)
        except webbrowser.Error:
            return False


@auth_app.command()
def login(
    provider: Annotated[str, typer.Argument(help=PROVIDER_HELP, show_default=False)],
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL and paste the callback URL.")
    ] = False,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Callback port (default: the provider's own)."),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="gemini: the Google Cloud project to use.")
    ] = None,
    auth_dir: AuthDirOption = None,
    config: ConfigOption = None,
    service_account: Annotated[
        Path | None,
        typer.Option("--service-account", help="vertex: the service-account key JSON to import."),
    ] = None,
    location: Annotated[
        str, typer.Option(help="vertex: the region requests go to (or global).")
    ] = "us-central1",
    prefix: Annotated[str, typer.Option(help="vertex: a model-name prefix for it.")] = "",
) -> None:
    """Log in to a subscription account and store its tokens in the auth directory."""
    from cliproxy.auth.files import AuthWriteError
    from cliproxy.auth.flows import login_providers, oauth_flow
    from cliproxy.auth.login import run_login
    from cliproxy.auth.oauth import OAuthError
    from cliproxy.auth.store import AuthStore

    console = Console(highlight=False)
    name = provider.strip().lower()
    if name == "vertex" or service_account is not None:
        _import_vertex(name, service_account, location, prefix, auth_dir, config, console)
        return
    if name not in login_providers():
        choices = ", ".join(login_providers())
        console.print(f"[red]Unknown provider {provider!r}[/]: choose {choices}.")
        raise typer.Exit(2)
    directory, proxy_url = _settings(auth_dir, config, console)
    flow = oauth_flow(name)
    console.print(f"[bold]Logging in to {flow.display_name}[/]")
    try:
        result = asyncio.run(
            run_login(
                name,
                AuthStore(directory),
                RichLoginUI(console),
                flow=flow,
                no_browser=no_browser,
                port=port,
                project=project,
                proxy_url=proxy_url or None,
            )
        )
    except (OAuthError, AuthWriteError) as exc:
        console.print(f"[red]Login failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    record = result.record
    verb = "Updated" if result.replaced else "Wrote"
    # Kimi names no account: its file name stands for it.
    console.print(f"[green]Logged in as[/] [bold]{escape(record.email or record.id)}[/]")
    details = [f"plan {result.identity.plan}"] if result.identity.plan else []
    if record.project_id:
        details.append(f"project {record.project_id}")
    if details:
        console.print("  " + ", ".join(details))
    console.print(f"{verb} {escape(str(record.path))}")
    if record.disabled:
        console.print("[yellow]Note:[/] this account is disabled in its file (disabled: true).")


def _import_vertex(
    name: str,
    key_file: Path | None,
    location: str,
    prefix: str,
    auth_dir: Path | None,
    config: Path | None,
    console: Console,
) -> None:
    """`cliproxy login vertex --service-account FILE`: a key is imported, not logged in to."""
    from cliproxy.auth.files import AuthWriteError
    from cliproxy.auth.store import AuthStore
    from cliproxy.auth.vertex_account import ServiceAccountError
    from cliproxy.auth.vertex_import import import_service_account

    if name != "vertex":
        console.print("[red]--service-account[/] is for vertex only.")
        raise typer.Exit(2)
    if key_file is None:
        console.print("[red]vertex needs a key:[/] cliproxy login vertex --service-account FILE")
        raise typer.Exit(2)
    try:
        data = key_file.expanduser().read_bytes()
    except OSError as exc:
        console.print(f"[red]Cannot read {escape(str(key_file))}:[/] {escape(exc.strerror or '')}")
        raise typer.Exit(1) from None
    directory, _ = _settings(auth_dir, config, console)
    store = AuthStore(directory)
    store.load()  # an earlier import of the project keeps the user's settings
    try:
        record, replaced = import_service_account(
            store, data, location=location, prefix=prefix, where=str(key_file)
        )
    except ServiceAccountError as exc:
        console.print(f"[red]Not imported:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except AuthWriteError as exc:
        console.print(f"[red]Import failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    console.print(
        f"[green]Imported[/] service account [bold]{escape(record.email)}[/] "
        f"(project {escape(record.project_id)}, {escape(location or 'us-central1')})"
    )
    console.print(f"{'Updated' if replaced else 'Wrote'} {escape(str(record.path))}")


QuotaOption = Annotated[
    bool,
    typer.Option(
        "--quota", help="Also ask each account's vendor for its usage windows now (network)."
    ),
]


@auth_app.command()
def accounts(
    auth_dir: AuthDirOption = None, config: ConfigOption = None, quota: QuotaOption = False
) -> None:
    """List the accounts in the auth directory with their state and token expiry."""
    from cliproxy.auth.store import AuthStore

    console = Console(highlight=False)
    cfg = _load_config(auth_dir, config, console)
    directory = cfg.auth_dir
    store = AuthStore(directory)
    store.load()
    console.print(f"Auth directory: {directory}")
    if not store.records() and not store.errors():
        console.print("No accounts yet. Add one with: cliproxy login codex|claude|gemini")
        return
    if store.records():
        readings = asyncio.run(read_vendor_quotas(cfg)) if quota else None
        console.print(accounts_table(store, quotas=readings))
    for problem in store.errors():
        console.print(f"[red]error[/] {escape(problem.name)}: {escape(problem.reason)}")
    for problem in store.warnings():
        console.print(f"[yellow]warning[/] {escape(problem.name)}: {escape(problem.reason)}")
    if store.errors():
        raise typer.Exit(1)


async def read_vendor_quotas(cfg: Config) -> dict[str, QuotaReading]:
    """Every account's usage windows as its vendor reports them now."""
    from cliproxy.providers.vendor_reads import VendorReads
    from cliproxy.server.account_watch import AccountWatch
    from cliproxy.state import AppState

    state = AppState(cfg)
    try:
        await AccountWatch(state).pass_once(force=True)
        readings: dict[str, QuotaReading] = {}
        for record in state.auth_store.records():
            provider = state.account_providers.get(record.type)
            reading = provider.quota(record.id) if isinstance(provider, VendorReads) else None
            if reading is not None:
                readings[record.id] = reading
        return readings
    finally:
        await state.close()


def quota_text(reading: QuotaReading | None, now: datetime) -> str:
    if reading is None:
        return "-"
    parts = []
    for window in reading.windows:
        used = "?" if window.used_percent is None else f"{window.used_percent:.0f}%"
        reset = ""
        if window.resets_at is not None:
            reset = ", resets " + relative_time(datetime.fromtimestamp(window.resets_at, UTC), now)
        parts.append(f"{window.name} {used}{reset}")
    return "\n".join(parts) or "-"


def accounts_table(
    store: AuthStore,
    now: datetime | None = None,
    quotas: Mapping[str, QuotaReading] | None = None,
) -> Table:
    from cliproxy.auth.records import AccountState

    moment = now or datetime.now(UTC)
    table = Table(show_lines=quotas is not None)
    columns = ["Provider", "Email", "State", "Token expires", "Refresh token", "File"]
    if quotas is not None:
        columns.insert(3, "Vendor quota")
    for column in columns:
        table.add_column(column, overflow="fold")
    for record in store.records():
        status = store.status(record, now=moment)
        if (
            status.state is AccountState.ACTIVE
            and not record.refresh_token
            and (record.expires_within(0, now=moment))
        ):
            state = "[red]needs login[/] (token expired, no refresh token)"
        elif status.state is AccountState.ACTIVE:
            state = "[green]active[/]"
        elif status.state is AccountState.DISABLED:
            state = "[dim]disabled[/]"
        elif status.state is AccountState.NEEDS_LOGIN:
            state = f"[red]needs login[/] ({escape(status.reason)})"
        else:
            until = status.cooling_until
            state = f"[yellow]cooling down until {until:%H:%M:%S}[/]" if until else "cooling down"
        cells = [
            record.type,
            escape(record.email or "-"),
            state,
            relative_time(record.expires_at, moment),
            "yes" if record.refresh_token else "[red]no[/]",
            escape(record.id),
        ]
        if quotas is not None:
            cells.insert(3, escape(quota_text(quotas.get(record.id), moment)))
        table.add_row(*cells)
    return table


def relative_time(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "unknown"
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    if span < 60:
        text = f"{int(span)} s"
    elif span < 3600:
        text = f"{int(span // 60)} min"
    elif span < 86400 * 2:
        text = f"{span / 3600:.1f} h"
    else:
        text = f"{int(span // 86400)} days"
    return f"in {text}" if seconds >= 0 else f"expired {text} ago"


if __name__ == "__main__":
    auth_app(prog_name="cliproxy")
