"""The ledger's first schema: one table of records, de-duplicated by ``dedup``.

It is the table cliproxy created before it used Alembic, so a SQLite ledger of those days is
adopted by stamping it at this revision (usage/ledger_migrations.py), rows untouched. Token
counts and the id are 64-bit (an import may carry counts up to 2**53); SQLite stores every
integer that way anyway, and its id stays INTEGER, the rowid.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_COUNT = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        *(
            sa.Column(name, sa.String(), nullable=False)
            for name in (
                "api_key",
                "auth_index",
                "source",
                "provider",
                "model",
                "upstream_model",
                "client_protocol",
                "upstream_protocol",
            )
        ),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_kind", sa.String(), nullable=True),
        sa.Column("stream", sa.Boolean(), nullable=False),
        *(
            sa.Column(f"{name}_tokens", _COUNT, nullable=False)
            for name in ("input", "output", "cached", "reasoning", "total")
        ),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("subscription", sa.Boolean(), nullable=False),
        sa.Column("dedup", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("usage_records_ts", "usage_records", ["ts"])


def downgrade() -> None:
    op.drop_index("usage_records_ts", table_name="usage_records")
    op.drop_table("usage_records")
