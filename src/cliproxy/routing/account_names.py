"""Which model names an account (an auth file) answers to.

Two sources shape them: its channel's `oauth-model-alias` / `oauth-excluded-models` in the
config, and the file's own `model_aliases` / `excluded_models`. An alias makes the account
serve a client name as an upstream model; without `fork` the upstream name itself is then no
longer listed nor routed through this account (CLIProxyAPI does not expose it either).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cliproxy.auth.catalog import catalog
from cliproxy.auth.records import AuthRecord
from cliproxy.config.schema import Config
from cliproxy.routing.registry import excluded

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AliasRule:
    name: str  # the upstream model
    alias: str  # the name clients ask for
    fork: bool = False  # keep the upstream name listed and routable beside the alias


@dataclass(frozen=True, slots=True)
class AccountNames:
    aliases: tuple[AliasRule, ...]  # the rules that survive the exclusions
    excluded: tuple[str, ...]  # lower-cased patterns
    hidden: frozenset[str]  # names the account's family must not serve itself


def channel_of(key: str) -> str:
    """The auth-file type a config channel key names (the catalog knows its other spellings)."""
    return catalog().channel(key)


@dataclass(frozen=True, slots=True)
class ChannelNames:
    """The config's per-channel maps with channel spellings folded together."""

    aliases: Mapping[str, tuple[AliasRule, ...]]
    excluded: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_config(cls, config: Config) -> ChannelNames:
        aliases: dict[str, list[AliasRule]] = {}
        for key, entries in config.oauth_model_alias.items():
            rules = aliases.setdefault(channel_of(key), [])
            rules.extend(AliasRule(e.name, e.client_name, e.fork) for e in entries)
        patterns: dict[str, list[str]] = {}
        for key, items in config.oauth_excluded_models.items():
            patterns.setdefault(channel_of(key), []).extend(p.lower() for p in items)
        return cls(
            {channel: tuple(rules) for channel, rules in aliases.items()},
            {channel: tuple(dict.fromkeys(items)) for channel, items in patterns.items()},
        )


def account_names(record: AuthRecord, channels: ChannelNames) -> AccountNames:
    own = file_aliases(record)
    # The file's own alias wins over the channel's rules for the same client name.
    claimed = {rule.alias for rule in own}
    shared = [r for r in channels.aliases.get(record.type, ()) if r.alias not in claimed]
    patterns = tuple(
        dict.fromkeys(
            [*channels.excluded.get(record.type, ()), *(p.lower() for p in record.excluded_models)]
        )
    )
    rules = tuple(
        rule
        for rule in [*own, *shared]
        if not excluded(rule.name, patterns) and not excluded(rule.alias, patterns)
    )
    replaced = {rule.name for rule in rules if not rule.fork}
    forked = {rule.name for rule in rules if rule.fork}
    # An alias also takes its client name over from the family: one name, one upstream model.
    hidden = frozenset((replaced - forked) | {rule.alias for rule in rules})
    return AccountNames(rules, patterns, hidden)


def file_aliases(record: AuthRecord) -> list[AliasRule]:
    """The auth file's `model_aliases` (or legacy `model-aliases`): a list of
    {name, alias, fork?}, or an object {upstream name: alias or [aliases]}. Bad entries are
    skipped with a warning; the account still serves everything else."""
    raw = record.raw
    value = raw.get("model_aliases", raw.get("model-aliases"))
    if value is None:
        return []
    if isinstance(value, list):
        return [rule for i, item in enumerate(value) if (rule := _list_item(record, i, item))]
    if isinstance(value, dict):
        return list(_object_items(record, value))
    _warn(record, "model_aliases", f"expected a list or an object, got {type(value).__name__}")
    return []


def _list_item(record: AuthRecord, index: int, item: Any) -> AliasRule | None:
    where = f"model_aliases[{index}]"
    if not isinstance(item, dict):
        _warn(record, where, "expected an object {name, alias, fork}")
        return None
    name, alias, fork = item.get("name"), item.get("alias", ""), item.get("fork", False)
    if not isinstance(name, str) or not name.strip():
        _warn(record, f"{where}.name", "expected a model name")
        return None
    if alias is None:
        alias = ""
    if not isinstance(alias, str):
        _warn(record, f"{where}.alias", "expected a string")
        return None
    if not isinstance(fork, bool):
        _warn(record, f"{where}.fork", "expected true or false")
        return None
    return AliasRule(name.strip(), alias.strip() or name.strip(), fork)


def _object_items(record: AuthRecord, value: dict[Any, Any]) -> Iterable[AliasRule]:
    for name, aliases in value.items():
        where = f"model_aliases.{name}"
        if not isinstance(name, str) or not name.strip():
            _warn(record, "model_aliases", "expected model names as keys")
            continue
        listed = aliases if isinstance(aliases, list) else [aliases]
        for alias in listed:
            if isinstance(alias, str) and alias.strip():
                yield AliasRule(name.strip(), alias.strip())
            else:
                _warn(record, where, "expected an alias (a string) or a list of them")


def _warn(record: AuthRecord, where: str, problem: str) -> None:
    log.warning("auth file %s: %s: %s; entry ignored", record.id, where, problem)
