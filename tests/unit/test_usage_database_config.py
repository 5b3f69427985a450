"""`usage-database` (config/usage_database.py): SQLite paths and URLs, PostgreSQL URLs in their
three spellings run on asyncpg, anything else refused naming the key; the password never shows
in an error, the banner, `cliproxy config check` or GET /config."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliproxy.config import ConfigError, check_config, default_config, parse_config_text
from cliproxy.management.routes_config import config_json
from cliproxy.serve import banner

SECRET = "hunter2-pg-password"


def _url(value: str) -> str:
    return parse_config_text(
        f"auth-dir: /tmp/a\nusage-database: {value!r}\n", "t"
    ).usage_database_url


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+asyncpg", "POSTGRES"])
def test_postgres_spellings_run_on_asyncpg(scheme: str) -> None:
    url = _url(f"{scheme}://ledger:{SECRET}@db.internal:5433/usage")
    assert url == f"postgresql+asyncpg://ledger:{SECRET}@db.internal:5433/usage"


def test_libpq_sslmode_becomes_asyncpgs_ssl() -> None:
    url = _url("postgresql://u@db/usage?sslmode=require&application_name=gw")
    assert url == "postgresql+asyncpg://u@db/usage?ssl=require&application_name=gw"


def test_sqlite_paths_and_urls() -> None:
    assert _url("") == "sqlite+aiosqlite:////tmp/a/usage.sqlite"
    assert _url("/var/lib/u.db") == "sqlite+aiosqlite:////var/lib/u.db"
    assert _url("sqlite:////var/lib/u.db") == "sqlite+aiosqlite:////var/lib/u.db"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (f"mysql://root:{SECRET}@db/usage", "got scheme 'mysql'"),
        (f"postgresql://u:{SECRET}@/usage", "must name the PostgreSQL host"),
        (f"postgresql://u:{SECRET}@db:54x2/usage", "port that is not a number"),
        (f"postgresql://u:{SECRET}@db:5432", "must name the database"),
    ],
)
def test_bad_urls_are_refused_naming_the_key(value: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(f"usage-database: {value!r}\n", "config.yaml")
    text = str(caught.value)
    assert "usage-database" in text and said in text
    assert SECRET not in text


def test_the_password_is_shown_masked(tmp_path: Path) -> None:
    value = f"postgres://ledger:{SECRET}@db.internal:5432/usage"
    path = tmp_path / "config.yaml"
    path.write_text(f"usage-database: {value}\n")
    status, lines = check_config(path)
    assert status == 0, lines
    assert (
        "usage ledger: PostgreSQL postgresql+asyncpg://ledger:***@db.internal:5432/usage" in lines
    )
    config = parse_config_text(f"usage-database: {value}\n", "t")
    shown = banner(config, None, ["demo-echo"])
    assert "usage ledger:        PostgreSQL postgresql+asyncpg://ledger:***@db.internal" in shown
    assert config_json(config)["usage-database"] == "postgres://ledger:***@db.internal:5432/usage"
    assert SECRET not in "\n".join([*lines, shown, str(config_json(config))])


def test_the_banner_names_the_default_file() -> None:
    config = default_config()
    assert f"usage ledger:        SQLite {config.auth_dir / 'usage.sqlite'}" in banner(
        config, None, ["demo-echo"]
    )
