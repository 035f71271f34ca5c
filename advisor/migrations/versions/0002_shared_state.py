"""Shared state for replicas: feedback ids (a replayed write is not stored twice) and the
per-session question limit.

Feedback rows from earlier releases get the id ``legacy-<row id>``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feedback", sa.Column("uid", sa.Text(), nullable=True))
    op.execute("UPDATE feedback SET uid = 'legacy-' || CAST(id AS TEXT) WHERE uid IS NULL")
    op.create_index("feedback_uid", "feedback", ["uid"], unique=True)
    op.create_table(
        "question_windows",
        sa.Column("session_key", sa.Text(), primary_key=True),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("question_windows_updated", "question_windows", ["updated_at"])


def downgrade() -> None:
    op.drop_table("question_windows")
    op.drop_index("feedback_uid", table_name="feedback")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("uid")
