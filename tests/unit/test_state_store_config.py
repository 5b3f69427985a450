"""state-store: in the config: the URL check (naming the key, never echoing a password), the
masking used in logs and the banner, and the store AppState builds from it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cliproxy.config import ConfigError, default_config, parse_config_text
from cliproxy.config.state_store import masked_url
from cliproxy.routing.redis_state import RedisCooldownBook
from cliproxy.routing.state_store import pool_state_for
from cliproxy.serve import banner
from cliproxy.state import AppState


def _store(lines: str) -> str:
    return "state-store:\n" + "".join(f"  {line}\n" for line in lines.splitlines())


def test_default_is_memory() -> None:
    config = default_config()
    assert not config.state_store.shared
    state = pool_state_for(config.state_store, lambda: 0.0)
    assert state.link is None and state.describe().startswith("memory")


def test_a_redis_url_selects_the_redis_store() -> None:
    config = parse_config_text(
        _store("redis-url: rediss://app:s3cret@redis.lan:6380/2\nkey-prefix: 'team-a:'"), "c.yaml"
    )
    state = pool_state_for(config.state_store, lambda: 0.0)
    assert isinstance(state.cooldowns, RedisCooldownBook)
    assert state.describe() == "redis rediss://app:***@redis.lan:6380/2 (key prefix 'team-a:')"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://:pw@redis.lan:6379", "must be a redis:// or rediss:// URL (got scheme 'http')"),
        ("redis.lan:6379", "must be a redis:// or rediss:// URL"),
        ("redis://", "must name a Redis host"),
        ("redis://:pw@redis.lan:port", "has a port that is not a number"),
    ],
)
def test_a_bad_url_is_refused_naming_the_key(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(_store(f"redis-url: '{url}'"), "c.yaml")
    message = str(caught.value)
    assert "state-store.redis-url" in message and problem in message
    assert "pw" not in message


def test_an_empty_prefix_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"state-store\.key-prefix: must not be empty"):
        parse_config_text(_store("redis-url: redis://127.0.0.1\nkey-prefix: ''"), "c.yaml")


def test_masking_keeps_everything_but_the_password() -> None:
    assert masked_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert masked_url("redis://:hunter2@h/1") == "redis://:***@h/1"
    assert masked_url("rediss://u:p@h:7000/0?ssl_cert_reqs=none") == (
        "rediss://u:***@h:7000/0?ssl_cert_reqs=none"
    )


def test_the_banner_names_the_store() -> None:
    text = banner(default_config(), None, ["demo-echo"], state_store="redis redis://h:6379/0")
    assert "pool state:          redis redis://h:6379/0" in text
    assert "pool state:          memory" in banner(default_config(), None, ["demo-echo"])


def test_a_reload_that_changes_the_store_keeps_the_running_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = parse_config_text(f"auth-dir: {tmp_path}\n", "c.yaml")
    after = parse_config_text(
        f"auth-dir: {tmp_path}\n" + _store("redis-url: redis://127.0.0.1:1/0"), "c.yaml"
    )
    state = AppState(before)
    running = state.pool
    with caplog.at_level(logging.WARNING, logger="cliproxy.state"):
        state.apply(after)
    assert state.pool is running and running.link is None
    assert any("state-store changed" in r.getMessage() for r in caplog.records)
