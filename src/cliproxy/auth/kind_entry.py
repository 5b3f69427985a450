"""One provider kind as the catalog holds it: everything that differs between codex, claude and
gemini, so that no other module tests a kind's name.

A kind spans both ways of reaching a vendor: its API keys from config.yaml (``<kind>-api-key``)
and its subscription accounts (auth files of ``type: <kind>``). The entry sits in the auth layer
because it holds both the Provider classes (providers/, below) and the OAuth flow and file
format (auth/); routing, the state, server and management read it from above.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cliproxy.config.schema import Config
from cliproxy.config.upstreams import ProviderKey
from cliproxy.providers.base import Provider
from cliproxy.providers.client_profiles import ClientIdentities, HeaderDefaults

from .account_files import AccountFile
from .flow_spec import OAuthFlow


def _leave(provider: Provider, config: Config) -> None:
    """A kind whose account provider takes nothing from the config."""


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    kind: str  # the auth-file `type`, the config channel and API-key family, the flow's name
    display_name: str  # as the management API's documents name it
    owned_by: str  # the vendor its models are "owned by" in model listings

    # ----- names the config and the management API accept for the kind ------------------
    # More spellings of the channel in oauth-model-alias / oauth-excluded-models.
    config_channels: tuple[str, ...]
    # More spellings GET /model-definitions/{channel} takes.
    management_channels: tuple[str, ...]
    login: str  # the management API's login provider name (CLIProxyAPI's)
    login_aliases: tuple[str, ...]  # more names a callback's `provider` field may use
    login_routes: tuple[str, ...]  # /{name}-auth-url routes that start a login
    callback_routes: tuple[str, ...]  # /{name}/callback routes that finish one
    cloud_project: bool  # logins take (and set up) a Google Cloud project

    # ----- models: a family of names its credentials answer for ---------------------------
    model_prefixes: tuple[str, ...]  # any name with one of these is forwarded
    listed_models: tuple[str, ...]  # what an API key without a `models:` list shows

    # ----- API keys (config.yaml) ----------------------------------------------------------
    api_keys: Callable[[Config], list[ProviderKey]]  # the kind's `<kind>-api-key` section
    # The order the router has always added the sections in (config.yaml's: claude, gemini,
    # codex); it decides candidate order when two sections list one model name.
    api_key_rank: int
    api_key_base_url: str
    api_key_provider: Callable[[], Provider]

    # ----- subscription accounts (auth files) ----------------------------------------------
    account_provider: Callable[[ClientIdentities], Provider]
    vendor: str  # its client-identity profile (providers/client_profiles.py)
    header_defaults: Callable[[Config], HeaderDefaults]  # its `*-header-defaults` section
    flow: OAuthFlow
    file: AccountFile
    # Where an account's token may go through the management api-call: the vendor's origin
    # and the paths its quota, profile and model look-ups use.
    vendor_origin: str
    vendor_paths: tuple[str, ...]
    # Settings of the config the account provider takes (on start and on every reload).
    configure: Callable[[Provider, Config], None] = _leave
    # A kind whose accounts mint their own tokens (a Vertex service account signs a JWT grant)
    # instead of an OAuth refresh: (auth-file JSON, proxy url) -> a token reply. Such a kind
    # has no browser login; its files are imported.
    mint_token: Callable[[Mapping[str, Any], str], Awaitable[Mapping[str, Any]]] | None = None
