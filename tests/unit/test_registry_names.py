"""Which client model names reach which (credential, upstream model): aliases, forks, exclusions,
prefixes and alias pools, for API keys and accounts alike. /v1/models must list exactly the
names that route."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cliproxy.auth.records import AuthRecord, parse_record
from cliproxy.config import parse_config_text
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.base import Provider
from cliproxy.providers.claude import ClaudeOAuthProvider
from cliproxy.providers.codex import CodexProvider
from cliproxy.providers.gemini_cli import GeminiCLIProvider
from cliproxy.routing.build import build_registry
from cliproxy.routing.registry import (
    ModelRegistry,
    RoundRobin,
    WeightedRoundRobin,
    selection_key,
)

PROVIDERS: dict[str, Provider] = {
    "codex": CodexProvider(),
    "claude": ClaudeOAuthProvider(),
    "gemini": GeminiCLIProvider(),
}


def account(kind: str, name: str = "", **extra: Any) -> AuthRecord:
    raw: dict[str, Any] = {"type": kind, "email": f"{kind}@example.com"}
    if kind == "gemini":
        raw["token"] = {"access_token": f"at-{kind}"}
        raw["project_id"] = "p"
    else:
        raw["access_token"] = f"at-{kind}"
    raw.update(extra)
    return parse_record(Path(name or f"{kind}-account.json"), raw)


def registry(yaml: str, *accounts: AuthRecord) -> ModelRegistry:
    return build_registry(parse_config_text(yaml, "c.yaml"), accounts, PROVIDERS)


def listed(reg: ModelRegistry) -> set[str]:
    return {m.id for m in reg.models()}


def routes(reg: ModelRegistry, model: str) -> list[tuple[str, str]]:
    """(credential id, upstream model) per candidate; [] when the name is not served."""
    try:
        found = reg.candidates(model)
    except ProxyError as error:
        assert error.kind is ErrorKind.NOT_FOUND
        return []
    return [selection_key(c) for c in found]


def assert_listing_matches_routing(reg: ModelRegistry) -> None:
    for info in reg.models():
        assert routes(reg, info.id), f"{info.id} is listed but does not route"


# ----- oauth-model-alias --------------------------------------------------------------------


def test_channel_alias_replaces_the_upstream_name_for_that_channel() -> None:
    reg = registry(
        "oauth-model-alias:\n  codex: [{name: gpt-5.5, alias: g5}]\n",
        account("codex"),
        account("claude"),
    )
    assert routes(reg, "g5") == [("codex-account.json", "gpt-5.5")]
    names = listed(reg)
    assert "g5" in names and "gpt-5.5" not in names
    # Not listed and not routable through this account either, even via the gpt- family.
    assert routes(reg, "gpt-5.5") == []
    # The channel's other models and other channels are untouched.
    assert routes(reg, "gpt-6-codex") == [("codex-account.json", "gpt-6-codex")]
    assert routes(reg, "claude-sonnet-4-6") == [("claude-account.json", "claude-sonnet-4-6")]
    assert reg.model("g5") is not None and reg.model("g5").owned_by == "codex"  # type: ignore[union-attr]
    assert_listing_matches_routing(reg)


def test_fork_keeps_the_original_and_one_name_may_have_several_aliases() -> None:
    reg = registry(
        """
oauth-model-alias:
  codex:
    - {name: gpt-5.5, alias: g5, fork: true}
    - {name: gpt-5.5, alias: five}
""",
        account("codex"),
    )
    for name in ("g5", "five", "gpt-5.5"):
        assert routes(reg, name) == [("codex-account.json", "gpt-5.5")], name
        assert name in listed(reg)
    assert_listing_matches_routing(reg)


def test_aliases_do_not_touch_api_keys_and_other_credentials_keep_the_name() -> None:
    reg = registry(
        """
codex-api-key: [{api-key: k}]
oauth-model-alias:
  codex: [{name: gpt-5.5, alias: g5}]
""",
        account("codex"),
    )
    # The key still serves gpt-5.5; only the account moved to the alias.
    assert routes(reg, "gpt-5.5") == [("codex-api-key[0]", "gpt-5.5")]
    assert routes(reg, "g5") == [("codex-account.json", "gpt-5.5")]
    assert {"gpt-5.5", "g5"} <= listed(reg)


def test_gemini_cli_is_a_synonym_of_the_gemini_channel() -> None:
    reg = registry(
        """
oauth-model-alias:
  Gemini-CLI: [{name: gemini-2.5-pro, alias: pro}]
oauth-excluded-models:
  gemini-cli: [gemini-2.5-flash-lite]
""",
        account("gemini"),
    )
    assert routes(reg, "pro") == [("gemini-account.json", "gemini-2.5-pro")]
    assert routes(reg, "gemini-2.5-pro") == []
    assert routes(reg, "gemini-2.5-flash-lite") == []
    assert routes(reg, "gemini-2.5-flash") == [("gemini-account.json", "gemini-2.5-flash")]


def test_file_aliases_win_over_the_channel_for_the_same_alias() -> None:
    own = account(
        "codex",
        "own.json",
        model_aliases=[{"name": "gpt-6.1", "alias": "g5"}, {"name": "gpt-6.1-codex", "alias": "x"}],
    )
    legacy = account(
        "codex", "legacy.json", **{"model-aliases": [{"name": "gpt-5.5", "alias": "y"}]}
    )
    plain = account("codex", "plain.json")
    reg = registry(
        "oauth-model-alias:\n  codex: [{name: gpt-5.5, alias: g5}]\n", own, legacy, plain
    )
    assert routes(reg, "g5") == [
        ("own.json", "gpt-6.1"),
        ("legacy.json", "gpt-5.5"),
        ("plain.json", "gpt-5.5"),
    ]
    assert routes(reg, "x") == [("own.json", "gpt-6.1-codex")]
    assert routes(reg, "y") == [("legacy.json", "gpt-5.5")]
    # own.json kept gpt-5.5 (its alias for g5 points elsewhere); the others replaced it.
    assert routes(reg, "gpt-5.5") == [("own.json", "gpt-5.5")]


def test_bad_file_alias_entries_are_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = account(
        "claude",
        model_aliases=[
            "not an object",
            {"alias": "no-name"},
            {"name": "claude-opus-4-5", "alias": 7},
            {"name": "claude-opus-4-5", "alias": "o", "fork": "yes"},
            {"name": "claude-sonnet-4-6", "alias": "s"},
        ],
    )
    with caplog.at_level(logging.WARNING):
        reg = registry("", record)
    assert routes(reg, "s") == [("claude-account.json", "claude-sonnet-4-6")]
    assert routes(reg, "o") == [] and routes(reg, "no-name") == []
    assert routes(reg, "claude-opus-4-5") == [("claude-account.json", "claude-opus-4-5")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert all("claude-account.json" in w and "model_aliases[" in w for w in warnings)


def test_file_aliases_as_an_object() -> None:
    record = account("claude", model_aliases={"claude-opus-4-5": ["big", "opus"], "x": 3})
    reg = registry("", record)
    assert routes(reg, "big") == routes(reg, "opus") == [("claude-account.json", "claude-opus-4-5")]


# ----- exclusions ---------------------------------------------------------------------------


def test_channel_and_file_exclusions_remove_listing_and_routing() -> None:
    reg = registry(
        """
oauth-excluded-models:
  codex: ["GPT-6.1*"]
oauth-model-alias:
  codex: [{name: gpt-6.1, alias: hidden-alias}, {name: gpt-5.5, alias: EXCLUDED-too}]
""",
        account("codex", excluded_models=["*-Mini", "excluded-*"]),
    )
    names = listed(reg)
    assert not any(n.startswith("gpt-6.1") for n in names)
    assert "gpt-6.1-mini" not in names and "gpt-6-codex" in names
    for name in ("gpt-6.1", "gpt-6.1-codex", "gpt-6.1-anything", "gpt-6.1-mini", "o4-mini"):
        assert routes(reg, name) == [], name  # listed or not, the family refuses it
    # An alias of an excluded model, or an excluded alias, is not served either.
    assert routes(reg, "hidden-alias") == [] and routes(reg, "EXCLUDED-too") == []
    assert routes(reg, "o3") == [("codex-account.json", "o3")]  # unlisted, family-routed
    assert_listing_matches_routing(reg)


def test_key_entry_exclusions_apply_to_routing_for_families_and_exact_names() -> None:
    reg = registry(
        """
claude-api-key:
  - {api-key: fam, excluded-models: ["claude-3-*", Claude-Haiku-4-5]}
  - api-key: exact
    models: [{name: up-a, alias: a}, {name: up-b, alias: b}]
    excluded-models: [up-b]
"""
    )
    assert routes(reg, "claude-3-opus-20240229") == []
    assert routes(reg, "claude-haiku-4-5") == []
    assert "claude-haiku-4-5" not in listed(reg)
    assert routes(reg, "claude-opus-4-1") == [("claude-api-key[0]", "claude-opus-4-1")]
    assert routes(reg, "a") == [("claude-api-key[1]", "up-a")]
    assert routes(reg, "b") == [] and "b" not in listed(reg)
    assert_listing_matches_routing(reg)


# ----- prefixes -----------------------------------------------------------------------------

PREFIXED = """
force-model-prefix: {force}
claude-api-key:
  - {{api-key: fam, prefix: team}}
  - {{api-key: exact, prefix: team, models: [{{name: up, alias: m}}]}}
"""


def test_prefixed_credentials_also_serve_plain_names_by_default() -> None:
    acct = account("gemini", prefix="me")
    reg = registry(PREFIXED.format(force="false"), acct)
    for name in ("team/claude-sonnet-4-6", "claude-sonnet-4-6", "team/claude-any", "claude-any"):
        assert routes(reg, name) == [("claude-api-key[0]", name.removeprefix("team/"))], name
    assert routes(reg, "m") == routes(reg, "team/m") == [("claude-api-key[1]", "up")]
    assert routes(reg, "gemini-2.5-pro") == routes(reg, "me/gemini-2.5-pro")
    assert {"claude-sonnet-4-6", "team/claude-sonnet-4-6", "m", "team/m"} <= listed(reg)
    assert {"gemini-2.5-pro", "me/gemini-2.5-pro"} <= listed(reg)
    # Another prefix is not this credential's, whatever follows it.
    assert routes(reg, "other/claude-sonnet-4-6") == []
    assert_listing_matches_routing(reg)


def test_force_model_prefix_keeps_prefixed_credentials_to_prefixed_names() -> None:
    reg = registry(PREFIXED.format(force="true"), account("gemini", prefix="me"), account("claude"))
    for name in ("m", "gemini-2.5-pro", "gemini-any"):
        assert routes(reg, name) == [], name
    # The unprefixed claude account answers "claude-any" alone: the prefixed key does not.
    assert routes(reg, "claude-any") == [("claude-account.json", "claude-any")]
    assert routes(reg, "team/claude-any") == [("claude-api-key[0]", "claude-any")]
    assert routes(reg, "team/m") == [("claude-api-key[1]", "up")]
    assert routes(reg, "me/gemini-2.5-pro") == [("gemini-account.json", "gemini-2.5-pro")]
    # The unprefixed account still answers the plain names.
    assert routes(reg, "claude-sonnet-4-6") == [("claude-account.json", "claude-sonnet-4-6")]
    names = listed(reg)
    assert "m" not in names and "gemini-2.5-pro" not in names and "team/m" in names
    assert_listing_matches_routing(reg)


# ----- alias pools --------------------------------------------------------------------------

POOL = """
openai-compatibility:
  - name: gw
    base-url: http://127.0.0.1:1
    api-key-entries: [{api-key: k}]
    models: [{name: deepseek-v3.1, alias: big}, {name: glm-5, alias: big}]
"""


def test_one_alias_on_several_upstream_models_is_one_listed_pool() -> None:
    reg = registry(POOL)
    assert [m.id for m in reg.models()] == ["big"]
    assert reg.models()[0].owned_by == "openai-compatibility:gw"
    assert routes(reg, "big") == [
        ("openai-compatibility[gw][0]", "deepseek-v3.1"),
        ("openai-compatibility[gw][0]", "glm-5"),
    ]


@pytest.mark.parametrize("selector_cls", [RoundRobin, WeightedRoundRobin])
def test_selectors_rotate_across_the_upstream_models_of_one_credential(
    selector_cls: type,
) -> None:
    reg = registry(POOL)
    selector = selector_cls()
    firsts = [selector.order("big", reg.candidates("big"), 2)[0].upstream_model for _ in range(10)]
    assert Counter(firsts) == {"deepseek-v3.1": 5, "glm-5": 5}
    # Each order offers the other upstream model as the retry.
    order = selector.order("big", reg.candidates("big"), 2)
    assert {c.upstream_model for c in order} == {"deepseek-v3.1", "glm-5"}


def test_account_and_key_serving_one_listed_name_pool_together() -> None:
    reg = registry(
        "claude-api-key: [{api-key: k, models: [claude-sonnet-4-6]}]\n", account("claude")
    )
    assert routes(reg, "claude-sonnet-4-6") == [
        ("claude-api-key[0]", "claude-sonnet-4-6"),
        ("claude-account.json", "claude-sonnet-4-6"),
    ]
