"""What the login flows share (authorization code in login.py, device code in
device_login.py): the terminal side behind `LoginUI`, the result, and writing the account's
file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .catalog import catalog
from .flow_spec import OAuthFlow
from .identity import Identity, auth_file_name, login_file
from .oauth import OAuthError
from .records import AuthRecord
from .store import AuthStore


class LoginUI(Protocol):
    def info(self, message: str) -> None: ...

    def show_url(self, url: str, *, paste: bool) -> None: ...

    def prompt(self, message: str) -> str:
        """Blocking; runs in a worker thread."""
        ...

    def open_browser(self, url: str) -> bool:
        """Blocking; runs in a worker thread. False when no browser could be started."""
        ...


@dataclass(frozen=True, slots=True)
class LoginResult:
    record: AuthRecord
    identity: Identity
    replaced: bool  # an auth file for this account existed and was updated


def save_account(
    flow: OAuthFlow,
    store: AuthStore,
    tokens: dict[str, Any],
    identity: Identity,
    project_id: str = "",
    project_auto: bool = False,
) -> LoginResult:
    """Write (or update) the logged-in account's file. Raises OAuthError or AuthWriteError."""
    # Kinds whose vendor names no email are named by the account id (xai: its sub).
    name_part = identity.email or identity.account_id
    if not name_part or (not identity.email and catalog().entry(flow.provider).file.needs_email):
        raise OAuthError("the provider did not say which account this is (no email)")
    store.load()
    name = auth_file_name(flow.provider, name_part, project_id)
    existing = store.get(name)
    raw = login_file(
        flow,
        tokens,
        identity,
        project_id=project_id,
        project_auto=project_auto,
        existing=existing.raw if existing is not None else None,
    )
    saved = store.create(name, raw)
    return LoginResult(saved.record, identity, replaced=existing is not None)
