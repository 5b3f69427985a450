"""Payload rules: `payload:` in config.yaml edits the upstream body per model and protocol."""

from __future__ import annotations

import copy
import logging
import textwrap
from typing import Any

import pytest

from cliproxy.config import ConfigError, parse_config_text
from cliproxy.config.payload import APPEND, PathSegment, PayloadConfig, parse_path
from cliproxy.routing.payload import PayloadRules


def rules(yaml: str) -> PayloadRules:
    config = parse_config_text(textwrap.dedent(yaml), "test.yaml")
    return PayloadRules.from_config(config.payload)


def run(
    compiled: PayloadRules,
    body: dict[str, Any],
    *,
    models: tuple[str, ...] = ("client-model", "up-model"),
    target: str = "gemini",
    source: str = "openai_chat",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    return compiled.apply(body, models=models, target=target, source=source, headers=headers or {})


def config_errors(yaml: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config_text(textwrap.dedent(yaml), "test.yaml")
    return [str(problem) for problem in info.value.problems]


# --- the rule kinds ---------------------------------------------------------------------------


def test_empty_section_is_falsy_and_a_rule_is_truthy() -> None:
    assert not PayloadRules.from_config(PayloadConfig())
    assert not rules("payload: {}\n")
    # A rule that names no model can never apply.
    assert not rules("payload:\n  override: [{params: {a: 1}}]\n")
    assert rules("payload:\n  override: [{models: [{name: '*'}], params: {a: 1}}]\n")


def test_default_sets_only_missing_paths_and_creates_objects() -> None:
    compiled = rules(
        """
        payload:
          default:
            - models: [{name: up-model}]
              params:
                "generationConfig.thinkingConfig.thinkingBudget": 32768
                "temperature": 0.5
        """
    )
    body = {"temperature": 0.9, "contents": []}
    out = run(compiled, body)
    assert out == {
        "temperature": 0.9,
        "contents": [],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 32768}},
    }


def test_default_treats_an_explicit_null_as_present() -> None:
    compiled = rules("payload:\n  default: [{models: [{name: '*'}], params: {top_p: 1}}]\n")
    assert run(compiled, {"top_p": None}) == {"top_p": None}


def test_first_matching_default_wins_and_last_override_wins() -> None:
    compiled = rules(
        """
        payload:
          default:
            - {models: [{name: '*'}], params: {a: first}}
            - {models: [{name: '*'}], params: {a: second}}
          override:
            - {models: [{name: '*'}], params: {b: first}}
            - {models: [{name: '*'}], params: {b: second}}
        """
    )
    assert run(compiled, {}) == {"a": "first", "b": "second"}


def test_override_replaces_existing_values_and_containers() -> None:
    compiled = rules(
        """
        payload:
          override:
            - models: [{name: gpt-*}]
              params: {"reasoning.effort": high, "metadata": {tier: gold}}
        """
    )
    body = {"reasoning": {"effort": "low", "summary": "auto"}, "metadata": {"x": 1}}
    out = run(compiled, body, models=("gpt-5",))
    assert out == {"reasoning": {"effort": "high", "summary": "auto"}, "metadata": {"tier": "gold"}}


def test_raw_rules_parse_their_json_strings() -> None:
    compiled = rules(
        """
        payload:
          default-raw:
            - models: [{name: '*'}]
              params: {"generationConfig.responseJsonSchema": '{"type":"object"}'}
          override-raw:
            - models: [{name: '*'}]
              params: {"tools": '[{"type":"web_search"}]', "n": "3", "s": '"text"'}
        """
    )
    out = run(compiled, {"tools": [{"type": "function"}]})
    assert out == {
        "generationConfig": {"responseJsonSchema": {"type": "object"}},
        "tools": [{"type": "web_search"}],
        "n": 3,
        "s": "text",
    }


def test_default_raw_does_not_overwrite_and_is_checked_after_plain_defaults() -> None:
    compiled = rules(
        """
        payload:
          default: [{models: [{name: '*'}], params: {x: plain}}]
          default-raw: [{models: [{name: '*'}], params: {x: '"raw"', y: '{"k": 1}'}}]
        """
    )
    assert run(compiled, {"y": 0}) == {"x": "plain", "y": 0}


def test_filter_runs_last_and_removes_keys_and_array_items() -> None:
    compiled = rules(
        """
        payload:
          override: [{models: [{name: '*'}], params: {"generationConfig.seed": 7}}]
          filter:
            - models: [{name: '*'}]
              params: ["generationConfig.seed", "tools.0", "absent.path", "safetySettings"]
        """
    )
    body = {"generationConfig": {"topK": 3}, "tools": [{"a": 1}, {"b": 2}], "safetySettings": []}
    assert run(compiled, body) == {"generationConfig": {"topK": 3}, "tools": [{"b": 2}]}


def test_rule_values_are_not_shared_between_requests() -> None:
    compiled = rules("payload:\n  override: [{models: [{name: '*'}], params: {meta: {a: 1}}}]\n")
    first = run(compiled, {})
    first["meta"]["a"] = 99
    assert run(compiled, {}) == {"meta": {"a": 1}}


def test_the_input_body_and_its_nested_objects_are_left_untouched() -> None:
    compiled = rules(
        """
        payload:
          override: [{models: [{name: '*'}], params: {"a.b.c": 1, "list.0.x": 2}}]
          filter: [{models: [{name: '*'}], params: ["a.keep", "list.1"]}]
        """
    )
    body = {"a": {"b": {"c": 0}, "keep": True}, "list": [{"x": 0}, {"y": 1}]}
    before = copy.deepcopy(body)
    out = run(compiled, body)
    assert body == before
    assert out == {"a": {"b": {"c": 1}}, "list": [{"x": 2}]}


# --- which requests a rule applies to ---------------------------------------------------------


def test_model_wildcards_are_case_insensitive_and_match_either_name() -> None:
    compiled = rules(
        """
        payload:
          override:
            - models: [{name: "gemini-*"}, {name: "*-preview"}, {name: "exact"}]
              params: {hit: true}
        """
    )
    assert run(compiled, {}, models=("Gemini-2.5-Pro",)) == {"hit": True}
    assert run(compiled, {}, models=("claude-x-PREVIEW",)) == {"hit": True}
    assert run(compiled, {}, models=("alias", "EXACT")) == {"hit": True}
    assert run(compiled, {}, models=("exactly",)) == {}
    assert run(compiled, {}, models=("my-gemini-2",)) == {}
    assert run(compiled, {}, models=()) == {}


def test_only_star_is_a_wildcard() -> None:
    compiled = rules("payload:\n  override: [{models: [{name: 'gpt-?.[1]'}], params: {hit: 1}}]\n")
    assert run(compiled, {}, models=("gpt-5.1",)) == {}
    assert run(compiled, {}, models=("gpt-?.[1]",)) == {"hit": 1}


@pytest.mark.parametrize(
    ("written", "target", "hits"),
    [
        ("gemini", "gemini", True),
        ("gemini", "anthropic", False),
        ("claude", "anthropic", True),
        ("anthropic", "anthropic", True),
        ("codex", "openai_responses", True),
        ("codex", "openai_chat", False),
        ("openai", "openai_chat", True),
        ("openai_chat", "openai_chat", True),
        ("OpenAI", "openai_chat", True),
        ("antigravity", "gemini", False),
    ],
)
def test_protocol_restricts_the_upstream_protocol(written: str, target: str, hits: bool) -> None:
    compiled = rules(
        f"payload:\n  override: [{{models: [{{name: '*', protocol: {written}}}], params: {{x: 1}}}}]\n"
    )
    assert run(compiled, {}, target=target) == ({"x": 1} if hits else {})


@pytest.mark.parametrize(
    ("written", "source", "hits"),
    [
        ("openai", "openai_chat", True),
        ("openai", "openai_completions", True),
        ("openai", "openai_responses", False),
        ("responses", "openai_responses", True),
        ("openai-responses", "openai_responses", True),
        ("claude", "anthropic", True),
        ("gemini", "gemini", True),
        ("gemini", "anthropic", False),
    ],
)
def test_from_protocol_restricts_the_client_protocol(written: str, source: str, hits: bool) -> None:
    compiled = rules(
        "payload:\n  override:\n"
        f"    - {{models: [{{name: '*', from-protocol: {written}}}], params: {{x: 1}}}}\n"
    )
    assert run(compiled, {}, source=source) == ({"x": 1} if hits else {})


def test_any_models_entry_may_match_but_each_entry_needs_all_its_conditions() -> None:
    compiled = rules(
        """
        payload:
          override:
            - models:
                - {name: "a-*", protocol: claude}
                - {name: "b-*", from-protocol: gemini}
              params: {x: 1}
        """
    )
    assert run(compiled, {}, models=("a-1",), target="anthropic") == {"x": 1}
    assert run(compiled, {}, models=("a-1",), target="gemini") == {}
    assert run(compiled, {}, models=("b-1",), source="gemini") == {"x": 1}
    assert run(compiled, {}, models=("b-1",), source="anthropic") == {}


def test_header_conditions_match_any_case_name_and_wildcard_values() -> None:
    compiled = rules(
        """
        payload:
          override:
            - models: [{name: '*', headers: {X-Client-Tier: "tenant-*", X-Env: prod}}]
              params: {x: 1}
        """
    )
    good = {"x-client-tier": "tenant-42", "X-ENV": "prod"}
    assert run(compiled, {}, headers=good) == {"x": 1}
    assert run(compiled, {}, headers={"x-client-tier": "tenant-42"}) == {}
    assert run(compiled, {}, headers={"x-client-tier": "other", "x-env": "prod"}) == {}
    # Header values compare case-sensitively, as in CLIProxyAPI.
    assert run(compiled, {}, headers={"x-client-tier": "TENANT-1", "x-env": "prod"}) == {}


def test_header_conditions_see_every_value_of_a_repeated_header() -> None:
    from starlette.datastructures import Headers

    compiled = rules(
        "payload:\n  override: [{models: [{name: '*', headers: {x-tag: beta}}], params: {x: 1}}]\n"
    )
    headers = Headers(raw=[(b"x-tag", b"alpha"), (b"x-tag", b"beta")])
    assert compiled.apply({}, models=("m",), target="gemini", source="gemini", headers=headers) == {
        "x": 1
    }


def test_body_conditions() -> None:
    compiled = rules(
        """
        payload:
          override:
            - models:
                - name: '*'
                  match: [{"metadata.client": codex}, {"n": 1}]
                  not-match: [{"metadata.mode": dev}]
                  exist: ["tools.0.type"]
                  not-exist: ["metadata.disable_payload"]
              params: {applied: true}
        """
    )
    base = {"metadata": {"client": "codex"}, "n": 1.0, "tools": [{"type": "function"}]}
    assert run(compiled, copy.deepcopy(base))["applied"] is True
    cases = [
        {**base, "metadata": {"client": "other"}},
        {**base, "metadata": {"client": "codex", "mode": "dev"}},
        {**base, "tools": []},
        {**base, "tools": [{"type": None}]},  # exist: null counts as absent
        {**base, "metadata": {"client": "codex", "disable_payload": False}},
        {**base, "n": True},  # true is not 1
    ]
    for body in cases:
        assert "applied" not in run(compiled, body), body
    # not-exist is satisfied by an explicit null.
    nulled = {**base, "metadata": {"client": "codex", "disable_payload": None}}
    assert run(compiled, nulled)["applied"] is True


def test_match_compares_whole_json_values() -> None:
    compiled = rules(
        """
        payload:
          filter:
            - models: [{name: '*', match: [{"tool_choice": {type: function, name: f}}]}]
              params: [tool_choice]
        """
    )
    assert run(compiled, {"tool_choice": {"name": "f", "type": "function"}}) == {}
    assert run(compiled, {"tool_choice": {"type": "function"}}) == {
        "tool_choice": {"type": "function"}
    }


def test_conditions_see_the_body_as_edited_by_earlier_rules() -> None:
    compiled = rules(
        """
        payload:
          default: [{models: [{name: '*'}], params: {"metadata.mode": dev}}]
          override: [{models: [{name: '*', match: [{"metadata.mode": dev}]}], params: {x: 1}}]
        """
    )
    assert run(compiled, {}) == {"metadata": {"mode": "dev"}, "x": 1}


# --- paths ------------------------------------------------------------------------------------


def test_parse_path_segments_escapes_and_indexes() -> None:
    assert parse_path("a.0.b") == (
        PathSegment("a", None),
        PathSegment("0", 0),
        PathSegment("b", None),
    )
    assert parse_path(r"labels.app\.kubernetes\.io/name") == (
        PathSegment("labels", None),
        PathSegment("app.kubernetes.io/name", None),
    )
    assert parse_path("tools.-1") == (PathSegment("tools", None), PathSegment("-1", APPEND))
    assert parse_path(r"a.\12") == (PathSegment("a", None), PathSegment("12", None))
    for bad in ("", "a..b", ".a", "a.", "a\\", "tools.#.name", "a|b", "x.*"):
        with pytest.raises(ValueError):
            parse_path(bad)


def test_escaped_dot_names_a_single_key() -> None:
    compiled = rules(
        r"""
        payload:
          override: [{models: [{name: '*'}], params: {'metadata.a\.b': 1}}]
          filter: [{models: [{name: '*'}], params: ['labels.x\.y']}]
        """
    )
    out = run(compiled, {"labels": {"x.y": 1, "x": {"y": 2}}})
    assert out == {"labels": {"x": {"y": 2}}, "metadata": {"a.b": 1}}


def test_array_paths() -> None:
    compiled = rules(
        """
        payload:
          override:
            - models: [{name: '*'}]
              params:
                "messages.0.role": system        # index into an existing array
                "fresh.0.text": hi                # index 0 on nothing creates an array
                "tools.-1": {type: web_search}    # append
                "appended.-1": 1                  # append to nothing creates an array
                "obj.3": three                    # a digit key on an object is a key
        """
    )
    body = {"messages": [{"role": "user"}], "tools": [{"type": "function"}], "obj": {}}
    assert run(compiled, body) == {
        "messages": [{"role": "system"}],
        "tools": [{"type": "function"}, {"type": "web_search"}],
        "obj": {"3": "three"},
        "fresh": [{"text": "hi"}],
        "appended": [1],
    }


def test_paths_that_do_not_fit_are_skipped_without_leaving_anything_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    compiled = rules(
        """
        payload:
          override:
            - models: [{name: '*'}]
              params:
                "model.name": x            # through a string
                "messages.5.role": x       # past the end of an array
                "messages.role": x         # a key on an array
                "made.up.2.x": x           # index 2 on nothing: no array of nulls
                "ok": fine
          filter:
            - models: [{name: '*'}]
              params: ["model.name", "messages.9", "messages.key"]
        """
    )
    body = {"model": "m", "messages": [{"role": "user"}]}
    with caplog.at_level(logging.DEBUG, logger="cliproxy.routing.payload"):
        out = run(compiled, body)
    assert out == {"model": "m", "messages": [{"role": "user"}], "ok": "fine"}
    skipped = [r.getMessage() for r in caplog.records]
    assert any("'made.up.2.x'" in message for message in skipped)
    assert len(skipped) == 4


def test_writing_through_null_replaces_it() -> None:
    compiled = rules("payload:\n  override: [{models: [{name: '*'}], params: {'a.b': 1}}]\n")
    assert run(compiled, {"a": None}) == {"a": {"b": 1}}


# --- config validation ------------------------------------------------------------------------


def test_bad_raw_json_names_the_rule_and_param() -> None:
    errors = config_errors(
        """
        payload:
          override-raw:
            - models: [{name: '*'}]
              params:
                "generationConfig.responseJsonSchema": '{"type": object}'
        """
    )
    assert len(errors) == 1
    assert errors[0].startswith(
        "test.yaml:6: payload.override-raw[0].params.generationConfig.responseJsonSchema: "
        "is not valid JSON"
    )


def test_bad_default_raw_json_is_also_rejected() -> None:
    errors = config_errors(
        "payload:\n  default-raw: [{models: [{name: '*'}], params: {a: 'nope'}}]\n"
    )
    assert errors[0].startswith("test.yaml:2: payload.default-raw[0].params.a: is not valid JSON")


def test_empty_model_name_is_rejected() -> None:
    errors = config_errors("payload:\n  default: [{models: [{name: '  '}], params: {a: 1}}]\n")
    assert errors == [
        "test.yaml:2: payload.default[0].models[0].name: must not be empty (use '*' for every model)"
    ]


def test_unknown_protocol_names_are_rejected() -> None:
    errors = config_errors(
        """
        payload:
          override:
            - models: [{name: '*', protocol: grok}, {name: '*', from-protocol: codex}]
              params: {a: 1}
        """
    )
    assert len(errors) == 2
    assert "payload.override[0].models[0].protocol: unknown protocol 'grok'" in errors[0]
    assert "payload.override[0].models[1].from-protocol: unknown protocol 'codex'" in errors[1]


def test_filter_params_must_be_a_list_of_paths() -> None:
    errors = config_errors("payload:\n  filter: [{models: [{name: '*'}], params: {a: 1}}]\n")
    assert "payload.filter[0].params: must be a list" in errors[0]
    errors = config_errors("payload:\n  filter: [{models: [{name: '*'}], params: ['a..b']}]\n")
    assert "payload.filter[0].params: path 'a..b' has an empty segment" in errors[0]


def test_bad_param_and_condition_paths_are_rejected_at_load() -> None:
    errors = config_errors(
        """
        payload:
          override:
            - models: [{name: '*', exist: ['tools.#.name']}]
              params: {"a.": 1}
        """
    )
    assert any("models[0].exist" in e and "'#' is not supported" in e for e in errors)
    assert any("payload.override[0].params: path 'a.' has an empty segment" in e for e in errors)


def test_cliproxyapi_example_loads() -> None:
    compiled = rules(
        """
        payload:
          default:
            - models:
                - name: "gemini-2.5-pro"
                  protocol: "gemini"
                  from-protocol: "responses"
                  headers: {X-Client-Tier: "tenant-*"}
                  match: [{"metadata.client": "codex"}]
                  not-match: [{"metadata.mode": "dev"}]
                  exist: ["tools.0.type"]
                  not-exist: ["metadata.disable_payload"]
              params:
                "generationConfig.thinkingConfig.thinkingBudget": 32768
          default-raw:
            - models: [{name: "gemini-2.5-pro", protocol: "gemini"}]
              params: {"generationConfig.responseJsonSchema": "{\\"type\\":\\"object\\"}"}
          override:
            - models: [{name: "gpt-*", protocol: "codex"}]
              params: {"reasoning.effort": "high"}
          filter:
            - models: [{name: "gemini-2.5-pro", protocol: "gemini"}]
              params: ["generationConfig.thinkingConfig.thinkingBudget"]
        """
    )
    assert compiled
    body = {"metadata": {"client": "codex"}, "tools": [{"type": "function"}]}
    out = run(
        compiled,
        body,
        models=("gemini-2.5-pro",),
        target="gemini",
        source="openai_responses",
        headers={"x-client-tier": "tenant-a"},
    )
    # The default set the budget, filter removed it again (leaving its emptied parent, as
    # sjson does); default-raw's schema stays.
    assert out["generationConfig"] == {
        "thinkingConfig": {},
        "responseJsonSchema": {"type": "object"},
    }
    out = run(compiled, {"reasoning": {}}, models=("gpt-5",), target="openai_responses")
    assert out == {"reasoning": {"effort": "high"}}


def test_a_typo_inside_a_rule_is_reported_and_params_are_not() -> None:
    config = parse_config_text(
        "payload:\n  override:\n    - models: [{name: x, protocl: claude}]\n"
        "      params: {a.b: 1}\n",
        "c.yaml",
    )
    assert config.warnings == [
        "c.yaml:3: payload.override[0].models[0].protocl: unknown key, ignored "
        "(did you mean 'protocol'?)"
    ]
