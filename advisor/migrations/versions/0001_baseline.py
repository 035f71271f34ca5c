"""Baseline: the entries and feedback tables as the release before Alembic made them.

A SQLite file from that release already has both (and its own ``schema_version`` table,
left in place): nothing is changed and every row is kept. A new database gets them here.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Text on SQLite (the earlier release's layout); native types on PostgreSQL.
TIME = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.Text().with_variant(postgresql.JSON(), "postgresql")
ID = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "entries" not in tables:
        op.create_table(
            "entries",
            sa.Column("id", ID, sa.Identity(), primary_key=True),
            sa.Column("uid", sa.Text(), nullable=False, unique=True),
            sa.Column("created_at", TIME, nullable=False),
            sa.Column("question", sa.Text(), nullable=False),
            sa.Column("answer", sa.Text(), nullable=False),
            sa.Column("codes", JSON, nullable=False),
            sa.Column("findings", JSON, nullable=False),
            sa.Column("ruleset", sa.Text(), nullable=False),
            sa.Column("backend", sa.Text(), nullable=False),
            sa.Column("model", sa.Text(), nullable=False),
            sa.Column("passage_ids", JSON, nullable=False),
            sa.Column("timings", JSON, nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sqlite_autoincrement=True,
        )
        op.create_index("entries_created_at", "entries", ["created_at"])
    if "feedback" not in tables:
        op.create_table(
            "feedback",
            sa.Column("id", ID, sa.Identity(), primary_key=True),
            sa.Column("entry_uid", sa.Text(), nullable=False),
            sa.Column("rating", sa.Text(), nullable=False),
            sa.Column("comment", sa.Text(), nullable=False, server_default=""),
            sa.Column("created_at", TIME, nullable=False),
            sa.CheckConstraint("rating IN ('up', 'down')", name="feedback_rating"),
            sqlite_autoincrement=True,
        )
        op.create_index("feedback_entry", "feedback", ["entry_uid"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("entries")
