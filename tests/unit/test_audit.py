"""The SQLite audit log: WAL, migrations, record/feedback/export, and failed writes.

The masking function is replaced by a marker here (masking itself is tested in
test_privacy.py), so these tests are fast and show where it is applied.
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

from advisor import audit as audit_mod
from advisor.audit import SCHEMA_VERSION, AuditCode, AuditEntry, AuditError, AuditLog, parse_since
from advisor.cli import app


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


def test_wal_mode_and_schema_version(audit: AuditLog, log_path: Path) -> None:
    assert audit.journal_mode() == "wal"
    assert audit.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(log_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"entries", "feedback", "schema_version"} <= tables


def test_migrates_an_older_file(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True)
    with sqlite3.connect(log_path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.executescript(audit_mod.MIGRATIONS[0])
        conn.execute("INSERT INTO schema_version VALUES (1)")
    a = AuditLog(log_path, scrubber=mark)
    uid = a.record(entry())
    a.feedback(uid, "up")
    assert a.schema_version() == 2
    assert a.entries()[0]["feedback"][0]["rating"] == "up"
    a.close()


def test_refuses_a_newer_file(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True)
    with sqlite3.connect(log_path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (99)")
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
    assert "queue full" in caplog.text
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
