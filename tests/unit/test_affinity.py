"""Session affinity: session keys, the binding book (fake clock), and bound-first ordering."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import Headers

from cliproxy.config import parse_config_text
from cliproxy.config.durations import parse_duration
from cliproxy.config.errors import ConfigError
from cliproxy.providers.api_keys import ClaudeApiKeyProvider
from cliproxy.providers.base import Credential
from cliproxy.routing.affinity import MemoryAffinityBook, session_key
from cliproxy.routing.cooldown import MemoryCooldownBook
from cliproxy.routing.registry import Candidate, RoundRobin, prefer_bound

T0 = 1_700_000_000.0
PROVIDER = ClaudeApiKeyProvider()


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def cand(name: str) -> Candidate:
    return Candidate(PROVIDER, Credential(name, "secret-" + name, "http://x"), "up-model")


def ids(order: list[Candidate]) -> list[str]:
    return [c.credential.id for c in order if c.credential is not None]


CHAT = {
    "messages": [{"role": "user", "content": "plan a trip"}, {"role": "assistant", "content": "ok"}]
}


# --- session keys -------------------------------------------------------------------------


def test_session_key_first_match_wins() -> None:
    body: dict[str, Any] = {
        **CHAT,
        "prompt_cache_key": "pck",
        "previous_response_id": "resp_1",
    }
    every = Headers({"X-Claude-Code-Session-Id": "cc", "session_id": "u", "session-id": "d"})
    assert session_key(every, body) == "claude-code:cc"
    assert session_key(Headers({"session_id": "u", "session-id": "d"}), body) == "codex:u"
    assert session_key(Headers({"Session-Id": "d"}), body) == "codex:d"
    assert session_key(Headers({}), body) == "prompt-cache:pck"
    del body["prompt_cache_key"]
    assert session_key(Headers({}), body) == "response:resp_1"
    del body["previous_response_id"]
    assert session_key(Headers({}), body).startswith("first-message:")  # type: ignore[union-attr]


def test_blank_or_non_string_values_are_skipped() -> None:
    headers = Headers({"x-claude-code-session-id": "  ", "session_id": "codex-1"})
    assert session_key(headers, {"prompt_cache_key": 5}) == "codex:codex-1"
    assert session_key(Headers({}), {"prompt_cache_key": "", "previous_response_id": 1}) is None


def test_first_message_hash_needs_a_conversation() -> None:
    one_shot = {"messages": [{"role": "user", "content": "plan a trip"}]}
    assert session_key(Headers({}), one_shot) is None
    # The same first user turn gives the same key as the conversation grows; another differs.
    longer = {"messages": [*CHAT["messages"], {"role": "user", "content": "to Rome"}]}
    assert session_key(Headers({}), CHAT) == session_key(Headers({}), longer)
    other = {"messages": [{"role": "user", "content": "write a poem"}, *CHAT["messages"][1:]]}
    assert session_key(Headers({}), other) != session_key(Headers({}), CHAT)


def test_first_message_across_protocol_shapes() -> None:
    with_system = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "plan a trip"}]},
        ]
    }
    gemini = {
        "contents": [
            {"role": "user", "parts": [{"text": "plan a trip"}]},
            {"role": "model", "parts": [{"text": "ok"}]},
        ]
    }
    responses = {
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "plan a trip"}],
            },
            {"type": "message", "role": "assistant", "content": "ok"},
        ]
    }
    expected = session_key(Headers({}), CHAT)
    assert expected is not None
    for body in (with_system, gemini, responses):
        assert session_key(Headers({}), body) == expected
    # A Responses string input is one message; image-only user turns carry no text.
    assert session_key(Headers({}), {"input": "plan a trip"}) is None
    image_only = {
        "messages": [{"role": "user", "content": [{"type": "image"}]}, {"role": "assistant"}]
    }
    assert session_key(Headers({}), image_only) is None


# --- the book -----------------------------------------------------------------------------


def test_binding_expires_after_ttl_and_each_use_extends_it() -> None:
    clock = FakeClock()
    book = MemoryAffinityBook(clock)
    book.bind("s", "m", "key-a", 60)
    assert book.bound("s", "m") == "key-a"
    assert book.bound("s", "other-model") is None
    assert book.bound("t", "m") is None
    clock.now = T0 + 59.9
    assert book.bound("s", "m") == "key-a"
    book.bind("s", "m", "key-a", 60)  # a served turn refreshes the binding
    clock.now = T0 + 119.8
    assert book.bound("s", "m") == "key-a"
    clock.now = T0 + 119.9
    assert book.bound("s", "m") is None
    assert len(book) == 0


def test_book_stays_bounded() -> None:
    clock = FakeClock()
    book = MemoryAffinityBook(clock, max_entries=3)
    for n in range(5):
        book.bind(f"s{n}", "m", "key", 60)
    assert len(book) == 3
    assert book.bound("s0", "m") is None and book.bound("s4", "m") == "key"
    # Expired entries are swept on a later bind even if nobody reads them.
    big = MemoryAffinityBook(clock)
    for n in range(10):
        big.bind(f"old{n}", "m", "key", 1)
    clock.now = T0 + 2
    for n in range(MemoryAffinityBook.SWEEP_EVERY):
        big.bind(f"new{n}", "m", "key", 60)
    assert len(big) == MemoryAffinityBook.SWEEP_EVERY


def test_book_follows_the_cooldown_clock() -> None:
    clock = FakeClock()
    cooldowns = MemoryCooldownBook(clock)
    book = MemoryAffinityBook(cooldowns.now)
    book.bind("s", "m", "key-a", 10)
    swapped = FakeClock()
    swapped.now = T0 + 10
    cooldowns.clock = swapped  # what e2e tests do
    assert book.bound("s", "m") is None


# --- ordering -----------------------------------------------------------------------------


def test_bound_credential_goes_first() -> None:
    a, b, c = cand("a"), cand("b"), cand("c")
    book = MemoryAffinityBook(FakeClock())
    book.bind("s", "m", "c", 60)
    assert ids(prefer_bound(book, "s", "m", [a, b, c], [a, b, c, a])) == ["c", "a", "b", "a"]
    # With fewer attempts than candidates the bound one still takes the first attempt.
    assert ids(prefer_bound(book, "s", "m", [a, b, c], [a])) == ["c"]
    assert ids(prefer_bound(book, "s", "m", [a, b, c], [b, a])) == ["c", b.credential.id]  # type: ignore[union-attr]
    # Unbound sessions keep the selector's order.
    assert ids(prefer_bound(book, "other", "m", [a, b, c], [b, c, a])) == ["b", "c", "a"]


def test_fails_over_when_the_bound_credential_cools_or_disappears() -> None:
    clock = FakeClock()
    cooldowns = MemoryCooldownBook(clock)
    book = MemoryAffinityBook(cooldowns.now)
    a, b = cand("a"), cand("b")
    selector = RoundRobin()
    book.bind("s", "m", "b", 3600)

    def first(pool: list[Candidate]) -> str:
        ready = _not_cooling_in(cooldowns, pool)
        return ids(prefer_bound(book, "s", "m", ready, selector.order("m", ready, 2)))[0]

    assert [first([a, b]) for _ in range(4)] == ["b"] * 4
    cooldowns.cool("b", "m", T0 + 30, "rate-limit (429)")
    assert first([a, b]) == "a"
    # The binding itself is untouched until another credential answers (forward binds then);
    # once b has rested it would lead again unless the session moved.
    book.bind("s", "m", "a", 3600)
    clock.now = T0 + 30
    assert [first([a, b]) for _ in range(3)] == ["a"] * 3
    # Removed from the pool (config reload): the normal order decides.
    book.bind("s", "m", "gone", 3600)
    assert sorted(first([a, b]) for _ in range(2)) == ["a", "b"]


def _not_cooling_in(cooldowns: MemoryCooldownBook, pool: list[Candidate]) -> list[Candidate]:
    # What the forwarding core does before ordering: resting pairs are left out.
    return [
        c
        for c in pool
        if c.credential is None or cooldowns.available_at(c.credential.id, "m") is None
    ]


# --- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1h", 3600), ("30m", 1800), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("500ms", 0.5)],
)
def test_go_durations(value: str, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


def test_durations_as_numbers_and_bad_values() -> None:
    assert parse_duration(120) == 120
    assert parse_duration("120") == 120
    for bad in ("soon", "1d", "h", "", "-5m", -1, True, [1]):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_routing_config_reads_affinity_keys() -> None:
    default = parse_config_text("port: 8317\n", "config.yaml")
    assert default.routing.session_affinity is False
    assert default.routing.session_affinity_ttl == 3600
    cfg = parse_config_text(
        'routing:\n  session-affinity: true\n  session-affinity-ttl: "30m"\n'
        "  session-affinity-subagents: true\n",
        "config.yaml",
    )
    assert cfg.routing.session_affinity is True
    assert cfg.routing.session_affinity_ttl == 1800
    assert "routing.session-affinity" not in cfg.unsupported_keys()
    assert "routing.session-affinity-ttl" not in cfg.unsupported_keys()
    assert cfg.unsupported_keys() == []
    assert cfg.routing.session_affinity_subagents is True
    # 0 means the default hour, as in CLIProxyAPI; seconds as a number work too.
    zero = parse_config_text("routing:\n  session-affinity-ttl: 0\n", "config.yaml")
    assert zero.routing.session_affinity_ttl == 3600
    assert (
        parse_config_text(
            "routing:\n  session-affinity-ttl: 90\n", "config.yaml"
        ).routing.session_affinity_ttl
        == 90
    )
    with pytest.raises(ConfigError) as caught:
        parse_config_text("routing:\n  session-affinity-ttl: whenever\n", "config.yaml")
    assert "session-affinity-ttl" in str(caught.value)
