"""The audit log on its default store, a SQLite file: WAL, migrations (from the previous
release's file too), record/feedback/export, failed writes, the spool and the CLI.

The same record/feedback/export behaviour against PostgreSQL is in
tests/integration/test_audit_store.py. The masking function is replaced by a marker here
(masking itself is tested in test_privacy.py), so these tests are fast and show where it is
applied.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sqlite3
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from advisor.audit import AuditCode, AuditEntry, AuditError, AuditLog, parse_since
from advisor.cli import app
from advisor.db import head_revision

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Made by the release before Alembic (advisor/audit.py at ada8569): 4 entries, 3 feedback
# rows, schema_version 2; its own JSON and CSV exports beside it.
PREVIOUS_RELEASE = FIXTURES / "audit-previous-release.sqlite3"
# That release's first schema step (entries only): a file it made before feedback existed.
PREVIOUS_V1 = """
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        codes TEXT NOT NULL,
        findings TEXT NOT NULL,
        ruleset TEXT NOT NULL,
        backend TEXT NOT NULL,
        model TEXT NOT NULL,
        passage_ids TEXT NOT NULL,
        timings TEXT NOT NULL,
        path TEXT NOT NULL
    );
    CREATE INDEX entries_created_at ON entries(created_at);
"""


def mark(text: str) -> str:
    return text.replace("Jane Roe", "<PERSON>")


def entry(question: str = "knee injection for Jane Roe?", **kw: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "question": question,
        "answer": "20611 VERIFIED Arthrocentesis, major joint, with ultrasound guidance",
        "codes": [AuditCode(code="20611", status="verified"),
                  AuditCode(code="76942", status="removed")],
        "findings": [{"rule": "pairs.bundled", "message": "76942 is bundled (Jane Roe)"}],
        "ruleset": "builtin-2026.1",
        "backend": "embedded",
        "model": "default",
        "passage_ids": ["aaaa1111", "bbbb2222"],
        "timings_ms": {"retrieve": 5, "draft": 900, "check": 2, "total": 910},
        "path": "draft",
    }
    values.update(kw)
    return AuditEntry(**values)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit.sqlite3"


@pytest.fixture
def audit(log_path: Path) -> Any:
    a = AuditLog(log_path, scrubber=mark, timeout_s=0.1)
    yield a
    a.close()


def test_wal_mode_and_schema_revision(audit: AuditLog, log_path: Path) -> None:
    assert audit.journal_mode() == "wal"
    assert audit.revision() == head_revision()
    with sqlite3.connect(log_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"entries", "feedback", "question_windows", "alembic_version"} <= tables


def test_upgrades_the_previous_release_file_keeping_every_row(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    path.write_bytes(PREVIOUS_RELEASE.read_bytes())
    a = AuditLog(path, scrubber=mark)
    assert a.revision() == head_revision()
    # Every row, every field, exported exactly as the previous release exported them.
    assert a.export() == (FIXTURES / "audit-previous-release.json").read_text()
    assert a.export(fmt="csv") == (FIXTURES / "audit-previous-release.csv").read_text()
    # Old entries take new feedback; new entries go beside them.
    first = a.entries()[0]["id"]
    a.feedback(first, "up", "still right")
    a.record(entry("after the upgrade"))
    rows = a.entries()
    assert len(rows) == 5
    assert [f["rating"] for f in rows[0]["feedback"]] == ["up", "down", "up"]
    a.close()
    with sqlite3.connect(path) as conn:
        uids = [r[0] for r in conn.execute("SELECT uid FROM feedback ORDER BY id")]
    assert uids[:3] == ["legacy-1", "legacy-2", "legacy-3"]
    assert len(set(uids)) == 4


def test_upgrades_a_first_schema_file(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True)
    with sqlite3.connect(log_path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.executescript(PREVIOUS_V1)
        conn.execute("INSERT INTO schema_version VALUES (1)")
    a = AuditLog(log_path, scrubber=mark)
    uid = a.record(entry())
    a.feedback(uid, "up")
    assert a.revision() == head_revision()
    assert a.entries()[0]["feedback"][0]["rating"] == "up"
    a.close()


def test_refuses_a_newer_file(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True)
    with sqlite3.connect(log_path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(AuditError, match=r"newer version.*pip install -U"):
        AuditLog(log_path, scrubber=mark).export()


def test_refuses_a_newer_revision(audit: AuditLog, log_path: Path) -> None:
    audit.record(entry())
    audit.close()
    with sqlite3.connect(log_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(AuditError, match=r"newer version.*pip install -U"):
        AuditLog(log_path, scrubber=mark).export()


def test_record_and_export_json(audit: AuditLog) -> None:
    uid = audit.record(entry())
    rows = json.loads(audit.export())
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == uid
    assert row["question"] == "knee injection for <PERSON>?"
    assert row["findings"][0]["message"] == "76942 is bundled (<PERSON>)"
    assert [(c["code"], c["status"]) for c in row["codes"]] == [
        ("20611", "verified"), ("76942", "removed")]
    assert row["ruleset"] == "builtin-2026.1"
    assert (row["backend"], row["model"]) == ("embedded", "default")
    assert row["passage_ids"] == ["aaaa1111", "bbbb2222"]
    assert row["timings_ms"]["total"] == 910
    assert row["feedback"] == []


def test_export_csv(audit: AuditLog) -> None:
    uid = audit.record(entry())
    audit.feedback(uid, "down", "76942 should stay for Jane Roe")
    rows = list(csv.DictReader(io.StringIO(audit.export(fmt="csv"))))
    assert len(rows) == 1
    r = rows[0]
    assert r["codes"] == "20611:verified 76942:removed"
    assert r["findings"] == "pairs.bundled"
    assert r["passage_ids"] == "aaaa1111 bbbb2222"
    assert (r["feedback"], r["feedback_comment"]) == ("down", "76942 should stay for <PERSON>")


def test_export_since(audit: AuditLog) -> None:
    now = datetime.now(UTC)
    audit.record(entry("old", created_at=now - timedelta(days=10)))
    audit.record(entry("new", created_at=now))
    recent = json.loads(audit.export(since=now - timedelta(days=1)))
    assert [r["question"] for r in recent] == ["new"]
    assert len(json.loads(audit.export(since=date(2000, 1, 1)))) == 2
    assert [r["question"] for r in audit.entries()] == ["old", "new"]


def test_parse_since() -> None:
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T10:00:00+01:00") == datetime(2026, 11, 1, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_since("last week")


def test_feedback(audit: AuditLog) -> None:
    uid = audit.record(entry())
    audit.feedback(uid, "up")
    audit.feedback(uid, "down", "changed my mind")
    fb = audit.entries()[0]["feedback"]
    assert [(f["rating"], f["comment"]) for f in fb] == [("up", ""), ("down", "changed my mind")]
    with pytest.raises(ValueError, match="'up' or 'down'"):
        audit.feedback(uid, "sideways")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        audit.feedback("no-such-id", "up")


def test_from_answer_reads_a_pipeline_answer() -> None:
    from advisor.pipeline import Answer, CitationRef, CodeLine
    from guardrails.report import CodeStatus

    answer = Answer(
        answer="text", ruleset="r", backend="openai:gpt-x", question="q", path="draft",
        codes=[CodeLine(code="20611", status=CodeStatus.VERIFIED, units=1)],
        removed=[CodeLine(code="76942", status=CodeStatus.REMOVED)],
        citations=[CitationRef(id="p1", source="s", title="t", section="c")],
        timings_ms={"total": 3},
    )
    e = AuditEntry.from_answer(answer)
    assert (e.backend, e.model) == ("openai", "gpt-x")
    assert [(c.code, c.status) for c in e.codes] == [("20611", "verified"), ("76942", "removed")]
    assert e.passage_ids == ["p1"]


def test_locked_database_keeps_the_answer_and_retries(
    audit: AuditLog, log_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit.record(entry("first"))
    holder = sqlite3.connect(log_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock

    def answer_question(q: str) -> str:
        """What the UI does: build the answer, audit it, show it."""
        shown = f"answer to {q}"
        audit.record(entry(q))
        return shown

    with caplog.at_level(logging.WARNING, logger="advisor.audit"):
        assert answer_question("during lock") == "answer to during lock"
    assert audit.pending == 1
    assert audit.last_error is not None
    assert audit.last_error.retryable
    assert "locked" in caplog.text
    assert "kept for retry" in caplog.text
    assert "during lock" not in caplog.text  # the log reports the failure, not the content

    holder.execute("ROLLBACK")
    holder.close()
    audit.record(entry("after lock"))  # the next write flushes the waiting one first
    assert audit.pending == 0
    assert [r["question"] for r in audit.entries()] == ["first", "during lock", "after lock"]


def test_pending_entries_are_written_at_close(audit: AuditLog, log_path: Path) -> None:
    audit.record(entry("first"))
    holder = sqlite3.connect(log_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    uid = audit.record(entry("queued"))
    audit.feedback(uid, "up", "queued too")
    assert audit.pending == 2
    holder.execute("ROLLBACK")
    holder.close()
    audit.close()  # also what the exit hook does
    rows = AuditLog(log_path, scrubber=mark).entries()
    assert [r["question"] for r in rows] == ["first", "queued"]
    assert rows[1]["feedback"][0]["comment"] == "queued too"


def test_retry_queue_is_bounded(log_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = AuditLog(log_path, scrubber=mark, timeout_s=0.05, max_pending=3)
    a.record(entry("0"))
    holder = sqlite3.connect(log_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    for i in range(1, 6):
        a.record(entry(str(i)))
    assert a.pending == 3
    assert "spool full" in caplog.text
    holder.execute("ROLLBACK")
    holder.close()
    assert a.flush()
    assert [r["question"] for r in a.entries()] == ["0", "3", "4", "5"]
    a.close()


def _make_read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder the process cannot write; as root (which ignores modes) the OS error is faked."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    probe = folder / ".probe"
    try:
        probe.write_text("x")
    except PermissionError:
        return
    probe.unlink()

    real_connect = sqlite3.connect

    def connect(path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path).parent == folder:
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", connect)  # what SQLAlchemy calls


def test_read_only_folder_gives_the_fixing_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "ro"
    AuditLog(folder / "audit.sqlite3", scrubber=mark).record(entry("before"))
    _make_read_only(folder, monkeypatch)
    try:
        a = AuditLog(folder / "audit.sqlite3", scrubber=mark)
        uid = a.record(entry())  # the answer path: never raises
        assert uid
        assert a.pending == 1
        assert a.last_error is not None
        msg = str(a.last_error)
        assert f"chmod u+w {folder}" in msg
        assert "ADVISOR_DATA_DIR" in msg
        assert f"chmod u+w {folder}" in caplog.text
        with pytest.raises(AuditError, match="chmod u"):
            a.export()
        a._pending.clear()
        a.close()
    finally:
        folder.chmod(stat.S_IRWXU)


def test_cli_audit_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ADVISOR_SETTINGS_FILE", raising=False)
    a = AuditLog(tmp_path / "audit.sqlite3", scrubber=mark)
    now = datetime.now(UTC)
    a.record(entry("old", created_at=now - timedelta(days=30)))
    a.record(entry("new"))
    a.close()
    runner = CliRunner()

    res = runner.invoke(app, ["audit", "export", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["question"] for r in json.loads(res.stdout)] == ["old", "new"]

    since = (now - timedelta(days=1)).date().isoformat()
    res = runner.invoke(app, ["audit", "export", "--since", since, "--csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["question"] for r in rows] == ["new"]

    res = runner.invoke(app, ["audit", "export"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)

    assert runner.invoke(app, ["audit", "export", "--json", "--csv"]).exit_code == 2
    bad = runner.invoke(app, ["audit", "export", "--since", "yesterday"])
    assert bad.exit_code == 2
    assert "YYYY-MM-DD" in bad.output


def test_cli_audit_export_without_a_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("ADVISOR_SETTINGS_FILE", raising=False)
    res = CliRunner().invoke(app, ["audit", "export"])
    assert res.exit_code == 0
    assert json.loads(res.stdout) == []
    assert not (tmp_path / "fresh" / "audit.sqlite3").exists()


def test_cli_audit_export_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "audit.sqlite3").write_bytes(b"not a database at all, just bytes" * 10)
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(folder))
    monkeypatch.delenv("ADVISOR_SETTINGS_FILE", raising=False)
    res = CliRunner().invoke(app, ["audit", "export"])
    assert res.exit_code == 1
    assert "audit log" in res.output


def test_default_scrubber_is_privacy_scrub() -> None:
    from advisor.privacy import scrub

    assert AuditLog(Path(os.devnull))._scrub is scrub


def _cli_env(monkeypatch: pytest.MonkeyPatch, data: Path, url: str | None = None) -> None:
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(data))
    monkeypatch.delenv("ADVISOR_SETTINGS_FILE", raising=False)
    if url is None:
        monkeypatch.delenv("ADVISOR_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("ADVISOR_DATABASE_URL", url)


def test_cli_db_upgrade_and_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_env(monkeypatch, tmp_path)
    (tmp_path / "audit.sqlite3").write_bytes(PREVIOUS_RELEASE.read_bytes())
    runner = CliRunner()
    res = runner.invoke(app, ["db", "status", "--json"])
    assert res.exit_code == 1  # behind: made by the previous release
    status = json.loads(res.stdout)
    assert (status["revision"], status["entries"], status["feedback"]) == (None, 4, 3)

    res = runner.invoke(app, ["db", "upgrade", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"database": f"sqlite:///{tmp_path}/audit.sqlite3",
                                      "from": None, "to": head_revision(), "changed": True}
    res = runner.invoke(app, ["db", "upgrade"])
    assert res.exit_code == 0
    assert "already at revision" in res.stdout
    res = runner.invoke(app, ["db", "status"])
    assert res.exit_code == 0, res.output
    assert "entries: 4" in res.stdout
    assert "ADVISOR_DATABASE_URL" in runner.invoke(app, ["db", "--help"]).stdout


def test_cli_db_rejects_a_bad_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_env(monkeypatch, tmp_path, "mysql://advisor:s3cret@db/advisor")
    res = CliRunner().invoke(app, ["db", "upgrade"])
    assert res.exit_code == 2
    assert "postgresql://" in res.output
    _cli_env(monkeypatch, tmp_path, "postgresql://advisor:s3cret@127.0.0.1:1/advisor")
    res = CliRunner().invoke(app, ["db", "upgrade"])
    assert res.exit_code == 1
    assert "Cannot reach the database" in res.output
    assert "s3cret" not in res.output  # the password is never shown
    assert "pg_isready -h 127.0.0.1 -p 1" in res.output


def test_cli_audit_replay_writes_the_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_env(monkeypatch, tmp_path)
    a = AuditLog(tmp_path / "audit.sqlite3", scrubber=mark, timeout_s=0.05)
    a.record(entry("first"))
    holder = sqlite3.connect(tmp_path / "audit.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    a.record(entry("while locked"))
    a._stop.set()  # the app stopped before the database was back: its spool stays
    a.close()
    res = CliRunner().invoke(app, ["audit", "replay", "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["waiting"] == 1
    holder.execute("ROLLBACK")
    holder.close()
    res = CliRunner().invoke(app, ["audit", "replay", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["written"] == 1
    res = CliRunner().invoke(app, ["audit", "export", "--json"])
    assert [r["question"] for r in json.loads(res.stdout)] == ["first", "while locked"]


def test_spool_sets_aside_an_unreadable_record(tmp_path: Path) -> None:
    from advisor.spool import Spool

    spool = Spool(tmp_path / "spool", 10)
    spool.put({"kind": "entry", "uid": "a"})
    (tmp_path / "spool" / "00000000000000000000-1-00000000.json").write_text("{not json")
    spool.put({"kind": "entry", "uid": "b"})
    assert [r["uid"] for _, r in spool.items()] == ["a", "b"]
    assert len(list((tmp_path / "spool").glob("*.bad"))) == 1
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "spool").glob("*.json"))
