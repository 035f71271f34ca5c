"""Alembic environment: runs on the connection :func:`advisor.db.upgrade` hands over."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations with `advisor db upgrade` (it connects to ADVISOR_DATABASE_URL)"
    )
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
