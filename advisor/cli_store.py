"""The `advisor audit` and `advisor db` commands: the audit log (export, replay of answers
kept while the store was down) and its database (schema upgrade and status).

Registered on the `advisor` app by :mod:`advisor.cli`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from advisor.cli import JsonOpt, _emit_json, _fail, app

audit_app = typer.Typer(
    help="The audit log: questions and answers (PHI masked), verdicts, feedback.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")


@audit_app.command("export")
def audit_export(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only entries on or after DATE (YYYY-MM-DD or ISO time)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array (the default).")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV, one row per answer.")] = False,
) -> None:
    """Print the audit log as JSON or CSV: masked questions, answers, verdicts, feedback.

    Reads ADVISOR_DATABASE_URL (the database several replicas share) or, when it is unset,
    audit.sqlite3 in the data dir. Records this data dir's spool holds (written while the
    database was down) are written first. Examples:

      advisor audit export --since 2026-11-01 --csv > november.csv

      ADVISOR_DATABASE_URL=postgresql://audit@db/advisor advisor audit export --json

    Exit status: 0 done, 1 the log cannot be read, 2 bad option.
    """
    from advisor.audit import AuditError, parse_since

    if as_json and as_csv:
        _fail("Give either --json or --csv, not both.", 2)
    start = None
    if since is not None:
        try:
            start = parse_since(since)
        except ValueError as exc:
            _fail(str(exc), 2)
    audit = _open_audit()
    try:
        sys.stdout.write(audit.export(start, "csv" if as_csv else "json"))
    except AuditError as exc:
        _fail(str(exc), 1)
    finally:
        audit.close()


@audit_app.command("replay")
def audit_replay(as_json: JsonOpt = False) -> None:
    """Write the records waiting in this data dir's spool to the database now.

    The app replays its spool by itself once the database is back; this is for a replica
    that was stopped while it was down, or to check that nothing waits.

    Exit status: 0 nothing left waiting, 1 records still wait (the database cannot be
    written; the message says why).
    """
    audit = _open_audit()
    before = audit.pending
    done = audit.flush()
    left = audit.pending
    error = str(audit.last_error) if audit.last_error else None
    audit.close()
    if as_json:
        _emit_json({"where": audit.where, "waiting_before": before, "written": before - left,
                    "waiting": left, "error": error})
    else:
        typer.echo(f"{before - left} record(s) written to {audit.where}; {left} waiting.")
        if error:
            typer.echo(error, err=True)
    raise typer.Exit(0 if done else 1)


def _open_audit() -> Any:
    from advisor.audit import open_audit
    from advisor.db import DatabaseError
    from advisor.settings import load_settings

    try:
        return open_audit(load_settings())
    except DatabaseError as exc:  # a malformed ADVISOR_DATABASE_URL
        _fail(str(exc), 2)


db_app = typer.Typer(
    help=(
        "The database of the audit log, feedback and the shared question limit.\n\n"
        "SQLite (audit.sqlite3 in the data dir) unless ADVISOR_DATABASE_URL names another, "
        "e.g. postgresql://advisor:PASSWORD@db-host:5432/advisor for replicas that share "
        "one. The app brings the schema up to date by itself on start; run `advisor db "
        "upgrade` to do it beforehand (say, once before starting several replicas)."
    ),
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Bring the database's schema to this release (versioned migrations); keeps every row.

    Safe to run again (nothing to do then) and from several machines at once (one
    migrates, the others wait). A SQLite file from the release before versioned
    migrations is upgraded in place. Examples:

      advisor db upgrade

      ADVISOR_DATABASE_URL=postgresql://advisor@db-host/advisor advisor db upgrade --json

    Exit status: 0 up to date, 1 the database cannot be reached or was written by a newer
    release, 2 bad ADVISOR_DATABASE_URL.
    """
    from advisor.db import DatabaseError, database_url, make_engine, redact, upgrade
    from advisor.settings import load_settings

    try:
        url = database_url(load_settings())
    except DatabaseError as exc:
        _fail(str(exc), 2)
    engine = make_engine(url)
    try:
        before, after = upgrade(engine)
    except DatabaseError as exc:
        _fail(str(exc), 1)
    finally:
        engine.dispose()
    if as_json:
        _emit_json({"database": redact(url), "from": before, "to": after,
                    "changed": before != after})
    elif before == after:
        typer.echo(f"{redact(url)}: schema already at revision {after}.")
    else:
        typer.echo(f"{redact(url)}: schema upgraded from {before or 'none'} to {after}.")


@db_app.command("status")
def db_status(as_json: JsonOpt = False) -> None:
    """Where the database is, its schema revision, row counts and the local spool.

    Changes nothing (a database that is behind is reported, not upgraded). Exit status:
    0 reachable and up to date, 1 unreachable or behind (run `advisor db upgrade`), 2 bad
    ADVISOR_DATABASE_URL.
    """
    from sqlalchemy import func, inspect, select

    from advisor.db import (
        DatabaseError,
        current_revision,
        database_url,
        describe_error,
        entries,
        feedback,
        head_revision,
        make_engine,
        redact,
    )
    from advisor.settings import load_settings
    from advisor.spool import Spool

    settings = load_settings()
    try:
        url = database_url(settings)
    except DatabaseError as exc:
        _fail(str(exc), 2)
    info: dict[str, Any] = {
        "database": redact(url),
        "backend": url.get_backend_name(),
        "head": head_revision(),
        "revision": None,
        "entries": None,
        "feedback": None,
        "spool": str(settings.audit_spool_dir),
        "spool_waiting": len(Spool(settings.audit_spool_dir, settings.audit_spool_max)),
        "error": None,
    }
    engine = make_engine(url)
    try:
        info["revision"] = current_revision(engine)
        with engine.connect() as conn:
            if inspect(conn).has_table("entries"):
                info["entries"] = conn.execute(select(func.count()).select_from(entries)).scalar()
                info["feedback"] = conn.execute(
                    select(func.count()).select_from(feedback)
                ).scalar()
    except Exception as exc:
        info["error"] = str(describe_error(url, exc))
    finally:
        engine.dispose()
    ok = info["error"] is None and info["revision"] == info["head"]
    if as_json:
        _emit_json(info)
    else:
        for key, value in info.items():
            if value is not None:
                typer.echo(f"{key:>14}: {value}")
        if info["error"] is None and not ok:
            typer.echo("The schema is behind this release: run `advisor db upgrade`.", err=True)
    raise typer.Exit(0 if ok else 1)

