"""Token counts for any text a client can send: runs without spaces longer than the encoder
takes, text past its token cap, special-token spellings, lone surrogates."""

from __future__ import annotations

import random
import time

from cliproxy.usage.tokens import CHUNK_CHARS, _encoding, count_text


def test_a_million_characters_without_a_space_are_counted() -> None:
    started = time.perf_counter()
    assert count_text("a" * 1_000_000) == 125_000  # "aaaaaaaa" is one token
    assert count_text("7" * 3_000_000) > 900_000
    assert time.perf_counter() - started < 10  # linear, not a pathological case


def test_text_past_the_encoders_token_cap_is_counted() -> None:
    # bpe-openai refuses more than 200,000 tokens in one call; CJK is about a token a character.
    assert count_text("字" * 300_000) == 300_000
    assert count_text("\U0001f600" * 250_000) == 250_000


def test_long_text_counts_as_one_encode_of_the_whole() -> None:
    rng = random.Random(3)
    words = ["".join(rng.choices("abcdefghij", k=rng.randint(1, 9))) for _ in range(500)]
    text = " ".join(rng.choices(words, k=40_000))
    assert len(text) > 5 * CHUNK_CHARS
    assert count_text(text) == len(_encoding().encode_ordinary(text))


def test_special_token_spellings_count_as_the_text_they_are() -> None:
    assert count_text("<|endoftext|>") > 1
    assert count_text("say <|im_start|>system hi") > 3


def test_lone_surrogates_are_counted() -> None:
    assert count_text("\ud800" * 10) > 0
    assert count_text("a\udfffb" * 50_000) > 0
