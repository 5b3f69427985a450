"""Build the model registry from a loaded config (called at start and on every reload)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from cliproxy.auth.catalog import catalog
from cliproxy.auth.records import AuthRecord
from cliproxy.config.schema import Config
from cliproxy.config.upstreams import ModelAlias, OpenAICompatibility, OpenAIKeyEntry
from cliproxy.providers.api_keys import OpenAICompatProvider
from cliproxy.providers.base import Credential, Provider
from cliproxy.providers.demo import DEMO_CREDENTIAL, DemoProvider
from cliproxy.routing.account_names import ChannelNames, account_names
from cliproxy.routing.policy import CredentialPolicy, compile_rules
from cliproxy.routing.registry import Candidate, ModelRegistry, excluded


@dataclass(frozen=True, slots=True)
class RuntimeCredential:
    """A credential that lives outside config and the auth dir, for as long as its source does
    (an AI Studio relay's socket): kept by the application state across rebuilds."""

    provider: Provider
    credential: Credential
    model_prefixes: tuple[str, ...]
    listed_models: tuple[str, ...]


def build_registry(
    config: Config,
    accounts: Sequence[AuthRecord] = (),
    account_providers: Mapping[str, Provider] | None = None,
    runtime_credentials: Sequence[RuntimeCredential] = (),
) -> ModelRegistry:
    registry = ModelRegistry()
    # force-model-prefix: a credential with a prefix answers only "prefix/model" names.
    plain = not config.force_model_prefix
    usable = [a for a in accounts if account_providers and a.type in account_providers]
    if config.demo and (config.demo_explicit or not usable):
        demo = DemoProvider()
        for model in demo.models():
            registry.add(model, Candidate(demo, DEMO_CREDENTIAL, model))
    for kind in catalog().api_key_entries():
        family, entries, provider = kind.kind, kind.api_keys(config), kind.api_key_provider()
        for index, entry in enumerate(entries):
            if not entry.api_key:
                continue
            credential = Credential(
                id=f"{family}-api-key[{index}]",
                secret=entry.api_key,
                base_url=entry.base_url or kind.api_key_base_url,
                proxy_url=entry.proxy_url or None,
                headers=dict(entry.headers),
                weight=entry.weight,
                priority=entry.priority,
            )
            registry.policies[credential.id] = CredentialPolicy(
                entry.disable_cooling,
                entry.request_retry,
                compile_rules(entry.request_scoped_errors),
            )
            if entry.models:
                _add_models(
                    registry,
                    provider,
                    credential,
                    entry.models,
                    entry.prefix,
                    entry.excluded_models,
                    plain,
                )
            else:
                # The kind's family: names with its prefixes, listing its current models.
                registry.add_family(
                    kind.model_prefixes,
                    provider,
                    credential,
                    route_prefix=entry.prefix,
                    listed_models=kind.listed_models,
                    excluded_models=entry.excluded_models,
                    plain=plain,
                )
    for compat in config.openai_compatibility:
        if not compat.disabled:
            _add_openai_compat(registry, compat, plain)
    channels = ChannelNames.from_config(config)
    for record in usable:
        assert account_providers is not None
        _add_account(registry, record, account_providers[record.type], channels, plain)
        registry.policies[record.id] = _account_policy(config, record)
    for extra in runtime_credentials:
        registry.add_family(
            extra.model_prefixes,
            extra.provider,
            extra.credential,
            listed_models=extra.listed_models,
        )
    return registry


def _account_policy(config: Config, record: AuthRecord) -> CredentialPolicy:
    """An account's overrides: `disable_cooling` / `request_retry` in its auth file (as
    CLIProxyAPI writes them), and its channel's `oauth-request-scoped-errors`."""
    raw = record.raw
    disable = raw.get("disable_cooling")
    retry = raw.get("request_retry")
    return CredentialPolicy(
        disable if isinstance(disable, bool) else None,
        retry if isinstance(retry, int) and not isinstance(retry, bool) and retry >= 0 else None,
        compile_rules(config.oauth_request_scoped_errors.get(record.type, [])),
    )


def account_base_url(record: AuthRecord) -> str:
    """An account's upstream: the file's own base_url, else $CLIPROXY_<TYPE>_BASE_URL (tests,
    gateways), else the provider's default (empty)."""
    own = record.raw.get("base_url")
    if isinstance(own, str) and own:
        return own
    return os.environ.get(f"CLIPROXY_{record.type.upper()}_BASE_URL", "")


def _add_account(
    registry: ModelRegistry,
    record: AuthRecord,
    provider: Provider,
    channels: ChannelNames,
    plain: bool,
) -> None:
    credential = record.credential(account_base_url(record))
    # Auth files leave weight/priority unset unless the user wrote them (0 weight = default).
    credential = replace(credential, weight=record.weight or 1, priority=record.priority or 0)
    names = account_names(record, channels)
    prefix = record.prefix.strip().strip("/")
    # A family, like API keys without a models list, so accounts and keys of one vendor pool:
    # the kind's model prefixes answer beyond the listed models.
    registry.add_family(
        catalog().entry(record.type).model_prefixes,
        provider,
        credential,
        route_prefix=prefix,
        listed_models=provider.models_for(record.id),
        excluded_models=names.excluded,
        hidden=names.hidden,
        plain=plain,
    )
    for rule in names.aliases:
        _add_name(registry, rule.alias, Candidate(provider, credential, rule.name), prefix, plain)


def _add_openai_compat(registry: ModelRegistry, compat: OpenAICompatibility, plain: bool) -> None:
    provider = OpenAICompatProvider(compat.name)
    entries = compat.api_key_entries or []
    for index, entry in enumerate(entries or [OpenAIKeyEntry()]):
        credential = Credential(
            id=f"openai-compatibility[{compat.name}][{index}]",
            secret=entry.api_key,
            base_url=compat.base_url,
            proxy_url=entry.proxy_url or None,
            headers=dict(compat.headers),
            weight=entry.weight,
            priority=compat.priority if entry.priority is None else entry.priority,
        )
        registry.policies[credential.id] = CredentialPolicy(
            compat.disable_cooling,
            compat.request_retry,
            compile_rules(compat.request_scoped_errors),
        )
        _add_models(registry, provider, credential, compat.models, compat.prefix, [], plain)


def _add_models(
    registry: ModelRegistry,
    provider: Provider,
    credential: Credential,
    models: list[ModelAlias],
    prefix: str,
    excluded_models: list[str],
    plain: bool,
) -> None:
    for model in models:
        if excluded(model.client_name, excluded_models) or excluded(model.name, excluded_models):
            continue
        _add_name(
            registry, model.client_name, Candidate(provider, credential, model.name), prefix, plain
        )


def _add_name(
    registry: ModelRegistry, name: str, candidate: Candidate, prefix: str, plain: bool
) -> None:
    """``name`` for clients: as "prefix/name" when the credential has a prefix, and bare unless
    force-model-prefix keeps prefixed credentials to prefixed names."""
    if plain or not prefix:
        registry.add(name, candidate)
    if prefix:
        registry.add(f"{prefix}/{name}", candidate)
