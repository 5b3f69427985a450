"""`usage-database`: where the usage ledger lives (docs/usage.md, docs/scaling.md).

Empty, it is ``<auth-dir>/usage.sqlite``; a path or a ``sqlite://`` URL names another SQLite
file (several processes on one host may share it); a ``postgresql://`` URL (also
``postgres://`` and ``postgresql+asyncpg://``) puts it on PostgreSQL, through asyncpg, so every
instance writes one ledger. The URL may hold a password: it is only ever shown masked.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .state_store import check_address, masked_url

SQLITE_SCHEMES = ("sqlite", "sqlite+aiosqlite")
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
ASYNC_SQLITE = "sqlite+aiosqlite"
ASYNC_POSTGRES = "postgresql+asyncpg"


def check_usage_database(value: str) -> str:
    """The setting as written, or ValueError saying what is wrong (never echoing a password)."""
    value = value.strip()
    if "://" not in value:
        return value  # "" (the default file) or a path
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in (*SQLITE_SCHEMES, *POSTGRES_SCHEMES):
        raise ValueError(
            "must be a SQLite file (a path or sqlite:///path) or a postgresql:// URL "
            f"(got scheme {scheme!r})"
        )
    if scheme in POSTGRES_SCHEMES:
        check_address(parts, "must name the PostgreSQL host (postgresql://user:pass@host/db)")
        if not parts.path.strip("/"):
            raise ValueError("must name the database (postgresql://user:pass@host:5432/db)")
    return value


def usage_database_url(value: str, auth_dir: Path) -> str:
    """The SQLAlchemy async URL for the setting: aiosqlite for SQLite, asyncpg for PostgreSQL."""
    if "://" not in value:
        path = Path(value).expanduser() if value else auth_dir / "usage.sqlite"
        return f"{ASYNC_SQLITE}:///{path}"
    scheme, rest = value.split("://", 1)
    scheme = scheme.lower()
    if scheme in SQLITE_SCHEMES:
        return f"{ASYNC_SQLITE}://{rest}"
    if scheme in POSTGRES_SCHEMES:
        return _asyncpg_query(f"{ASYNC_POSTGRES}://{rest}")
    return value


def _asyncpg_query(url: str) -> str:
    """libpq's ``sslmode=`` (what a PostgreSQL URL usually carries) as asyncpg's ``ssl=``,
    which takes the same words; asyncpg refuses ``sslmode`` as an unknown argument."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [("ssl" if key == "sslmode" else key, item) for key, item in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def masked_database(value: str) -> str:
    """The setting fit for logs and the management API."""
    return masked_url(value) if "://" in value else value


def describe_usage_database(value: str, auth_dir: Path) -> str:
    """Where the ledger is, for the banner: the SQLite file, or the masked PostgreSQL URL."""
    url = usage_database_url(value, auth_dir)
    if url.startswith(f"{ASYNC_SQLITE}:///"):
        return f"SQLite {url.removeprefix(f'{ASYNC_SQLITE}:///')}"
    return f"PostgreSQL {masked_url(url)}"
