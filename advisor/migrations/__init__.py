"""Alembic migrations of the advisor's database (audit log, feedback, shared question limit)."""
