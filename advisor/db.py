"""The database of the audit log, the feedback and the shared question limit.

SQLite by default (``audit.sqlite3`` in the data dir, WAL mode, embedded), PostgreSQL when
``ADVISOR_DATABASE_URL`` names one: a SQLAlchemy URL, ``postgresql://user:pw@host/db`` (the
psycopg 3 driver is used whatever driver the URL names). Several app replicas given the same
URL share one audit log, one feedback table and one per-session question limit.

The schema is versioned with Alembic (``advisor/migrations``). :func:`upgrade` runs before
the first read or write of a process and as ``advisor db upgrade``; replicas starting
together take a lock (PostgreSQL advisory lock, a lock file beside a SQLite file), so one
migrates and the others find the work done. A file made by the release before Alembic
(its own ``schema_version`` table) is adopted with every row kept.

Table definitions here mirror what the migrations create; queries use these, migrations
never import them (a migration must stay as it was written).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Engine, make_url

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import Dialect

    from advisor.settings import Settings

__all__ = [
    "DatabaseError",
    "current_revision",
    "database_url",
    "head_revision",
    "make_engine",
    "redact",
    "upgrade",
]

SQLITE_FILE = "audit.sqlite3"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The highest schema_version the release before Alembic wrote (entries, then feedback).
LEGACY_SCHEMA_VERSION = 2
_PG_MIGRATION_LOCK = 727_020  # pg_advisory_lock key: "only one replica migrates at a time"


class DatabaseError(Exception):
    """The database cannot be read or written; the message says what to do."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        """Keep whether trying again later can help (a lock can clear, a bad path cannot)."""
        super().__init__(message)
        self.retryable = retryable


# -- URL ----------------------------------------------------------------------------------
def database_url(settings: Settings) -> URL:
    """The URL the settings name: ADVISOR_DATABASE_URL, else the SQLite file in the data dir."""
    if settings.database_url is not None:
        return parse_url(settings.database_url.get_secret_value())
    return make_url(f"sqlite:///{settings.audit_path}")


def parse_url(value: str | URL | Path) -> URL:
    """A URL (or a SQLite file path), with PostgreSQL pointed at the psycopg 3 driver."""
    if isinstance(value, Path) or (isinstance(value, str) and "://" not in value):
        return make_url(f"sqlite:///{value}")
    try:
        url = make_url(value)
    except sa_exc.ArgumentError:
        raise DatabaseError(
            f"ADVISOR_DATABASE_URL {_redact_text(str(value))!r} is not a database URL: use "
            "postgresql://USER:PASSWORD@HOST:5432/DB or sqlite:////path/to/audit.sqlite3",
            retryable=False,
        ) from None
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend != "sqlite":
        raise DatabaseError(
            f"ADVISOR_DATABASE_URL names {backend!r}: the advisor stores its audit log in "
            "PostgreSQL (postgresql://...) or SQLite (sqlite:///...)",
            retryable=False,
        )
    return url


def redact(url: URL) -> str:
    """The URL as it may be shown or logged: the password replaced by ***."""
    return url.render_as_string(hide_password=True)


def _redact_text(value: str) -> str:
    # user:password@ -> user:***@ in something that did not even parse as a URL
    head, sep, tail = value.partition("@")
    if sep and ":" in head.rsplit("/", 1)[-1]:
        scheme_user, _, _ = head.rpartition(":")
        return f"{scheme_user}:***@{tail}"
    return value


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


# -- engine -------------------------------------------------------------------------------
def make_engine(url: URL, *, timeout_s: float = 2.0) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with a lock wait, PostgreSQL pre-pinged.

    ``timeout_s`` bounds how long a write waits for a SQLite lock, for a PostgreSQL
    connection and for a pooled connection. SQL parameters never appear in error messages
    (they hold what people asked, masked or not).
    """
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"timeout": timeout_s, "check_same_thread": False},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Transactions are begun by us (below), so DDL in a migration is transactional
            # too; WAL lets the app append while an export reads (stored in the file).
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA journal_mode=WAL")

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,  # a restarted server leaves dead pooled connections behind
        pool_size=4,
        max_overflow=4,
        pool_timeout=timeout_s,
        connect_args={"connect_timeout": max(1, round(timeout_s)), "application_name": "advisor"},
        hide_parameters=True,
    )


def describe_error(url: URL, exc: BaseException, *, what: str = "the audit log") -> DatabaseError:
    """A DatabaseError whose message says what failed and which command fixes it."""
    if isinstance(exc, DatabaseError):
        return exc
    orig = getattr(exc, "orig", None) or exc
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    lowered = detail.lower()
    path = sqlite_file(url)
    what_ = what[:1].upper() + what[1:]
    if path is not None:
        folder = path.parent
        if "locked" in lowered or "busy" in lowered:
            return DatabaseError(
                f"{what_} {path} is locked by another process ({detail}). Entries wait in "
                f"the spool and are written when it is free; `fuser {path}` shows who holds it.",
                retryable=True,
            )
        if "full" in lowered:
            return DatabaseError(
                f"The disk holding {what} {path} is full ({detail}). Free space "
                f"(`df -h {folder}` shows how much is left); entries wait meanwhile.",
                retryable=True,
            )
        if "not a database" in lowered or "malformed" in lowered:
            return DatabaseError(
                f"{what_} {path} is not a readable SQLite database ({detail}). Move it aside "
                f"(`mv {path} {path}.bad`) and a new one is made on the next write.",
                retryable=False,
            )
        return DatabaseError(
            f"Cannot write {what} {path} ({detail}). Make its folder writable with "
            f"`mkdir -p {folder} && chmod u+w {folder}`, or point ADVISOR_DATA_DIR at a "
            f"writable folder (`export ADVISOR_DATA_DIR=~/advisor-data`).",
            retryable="readonly" not in lowered and "unable to open" not in lowered,
        )
    where = redact(url)
    host = f"-h {url.host or '127.0.0.1'} -p {url.port or 5432}"
    if isinstance(orig, sa_exc.OperationalError | OSError) or "connect" in lowered:
        return DatabaseError(
            f"Cannot reach the database at {where} for {what} ({detail}). Answers go on; "
            f"entries wait in the spool and are written when it is back. Check the server "
            f"(`pg_isready {host}`) and ADVISOR_DATABASE_URL.",
            retryable=True,
        )
    return DatabaseError(
        f"The database at {where} refused a write to {what} ({detail}). Run "
        "`advisor db upgrade` if the schema is behind, and check the user's rights.",
        retryable=not isinstance(orig, sa_exc.ProgrammingError),
    )


# -- column types ---------------------------------------------------------------------------
class UtcTime(TypeDecorator[datetime]):
    """An aware UTC time: timestamptz on PostgreSQL, ISO text on SQLite.

    The SQLite text is the previous release's format (``2026-11-01T09:00:00.000000+00:00``),
    one fixed width, so comparing the text compares the times.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """timestamptz on PostgreSQL, text elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Aware datetime in, stored in UTC."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        return value.isoformat(timespec="microseconds")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Stored value out as an aware UTC datetime."""
        if value is None:
            return None
        stored: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


class JsonValue(TypeDecorator[Any]):
    """JSON: the ``json`` type on PostgreSQL (key order kept), JSON text on SQLite."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """json on PostgreSQL, text elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSON())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Python value in; SQLite gets the JSON text."""
        if dialect.name == "postgresql":
            return value
        return json.dumps(value, ensure_ascii=False)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Stored value out as Python data."""
        if value is None or dialect.name == "postgresql":
            return value
        return json.loads(value)


metadata = MetaData()

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", Text, nullable=False, unique=True),
    Column("created_at", UtcTime, nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("codes", JsonValue, nullable=False),
    Column("findings", JsonValue, nullable=False),
    Column("ruleset", Text, nullable=False),
    Column("backend", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("passage_ids", JsonValue, nullable=False),
    Column("timings", JsonValue, nullable=False),
    Column("path", Text, nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", Text, unique=True),
    Column("entry_uid", Text, nullable=False),
    Column("rating", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
)

# The question limit shared by replicas: per chat session, the times (epoch seconds) of the
# questions accepted in the last minute, as a JSON list.
question_windows = Table(
    "question_windows",
    metadata,
    Column("session_key", Text, primary_key=True),
    Column("events", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

def insert_ignore(table: Table, dialect: str, key: str) -> Any:
    """INSERT that skips a row whose ``key`` is already stored (a replayed write)."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[key])
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing(index_elements=[key])


# -- migrations -----------------------------------------------------------------------------
def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


_HEAD: list[str] = []
_HEAD_LOCK = threading.Lock()


def head_revision() -> str:
    """The newest schema revision this release knows."""
    with _HEAD_LOCK:
        if not _HEAD:
            from alembic.script import ScriptDirectory

            script = ScriptDirectory(str(MIGRATIONS_DIR))
            head = script.get_current_head()
            if head is None:
                raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
            _HEAD.append(head)
        return _HEAD[0]


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: empty, or made before Alembic)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def legacy_version(engine: Engine) -> int | None:
    """The pre-Alembic ``schema_version`` of a SQLite file, if it has one."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_version"):
            return None
        value = conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar()
        return int(value or 0)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One migrating process at a time: advisory lock (PostgreSQL) or a lock file (SQLite)."""
    path = sqlite_file(engine.url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
    elif path is not None:
        with open(path.with_name(path.name + ".migrate-lock"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; (revision before, revision after).

    Raises DatabaseError when the database was written by a newer release (its revision is
    unknown here) or cannot be reached.
    """
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    head = head_revision()
    where = redact(engine.url)
    newer = DatabaseError(
        f"The database at {where} was written by a newer version of the advisor; upgrade "
        "this one with `pip install -U us-coding-advisor` (older releases cannot read it).",
        retryable=False,
    )
    path = sqlite_file(engine.url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        before = current_revision(engine)
        if before == head:
            return before, head
        with _migration_lock(engine):
            before = current_revision(engine)
            if before is None and (legacy_version(engine) or 0) > LEGACY_SCHEMA_VERSION:
                raise newer
            if before is not None:
                try:
                    ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(before)
                except CommandError:
                    raise newer from None
            if before != head:
                with engine.begin() as conn:
                    command.upgrade(_alembic_config(conn), "head")
        return before, head
    except DatabaseError:
        raise
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        raise describe_error(engine.url, exc) from exc
