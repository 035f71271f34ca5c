"""The audit log, feedback and the shared question limit on both stores: SQLite (a file) and
PostgreSQL (a real server, started once per session by the ``postgres`` fixture).

Every test here runs against each store: the same records give the same export, a replayed
write is stored once, a store that goes down and comes back loses nothing, migrations keep
every row, and two limiters on one database count one session's questions together.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from advisor.audit import AuditCode, AuditEntry, AuditLog
from advisor.db import head_revision, make_engine, parse_url
from advisor.limits import InputRejected, SharedRateLimiter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def mark(text: str) -> str:
    return text.replace("Jane Roe", "<PERSON>")


def entry(question: str, i: int = 0, **kw: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "id": f"answer-{question}-{i}",
        "question": f"{question} for Jane Roe",
        "answer": "20611 verified for Jane Roe",
        "codes": [AuditCode(code="20611", status="verified"),
                  AuditCode(code="76942", status="removed", units=2, modifiers=["RT"])],
        "findings": [{"rule": "pairs.bundled", "message": "bundled (Jane Roe)",
                      "codes": ["20611", "76942"], "severity": "error"}],
        "ruleset": "builtin-2026.1",
        "backend": "openai",
        "model": "small",
        "passage_ids": ["p1", "p2"],
        "timings_ms": {"retrieve": 4, "total": 9},
        "path": "draft",
        "created_at": T0 + timedelta(minutes=i),
    }
    values.update(kw)
    return AuditEntry(**values)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's URL: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


@contextmanager
def store_down(request: pytest.FixtureRequest, url: str) -> Iterator[None]:
    """The store refuses writes for the ``with`` block: the SQLite file held locked by another
    connection, or the PostgreSQL server stopped (then started again)."""
    if url.startswith("sqlite"):
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    else:
        server = request.getfixturevalue("postgres")
        server.stop()
        try:
            yield
        finally:
            server.start()


def open_log(url: str, tmp_path: Path, **kw: Any) -> AuditLog:
    kw.setdefault("timeout_s", 0.5)
    kw.setdefault("retry_s", 0.2)
    return AuditLog(url, scrubber=mark, spool_dir=tmp_path / "spool", **kw)


def wait_for(check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s:g} s: {check}")
        time.sleep(0.1)


def test_record_feedback_and_export(store: str, tmp_path: Path) -> None:
    log = open_log(store, tmp_path)
    assert log.revision() == head_revision()
    first = log.record(entry("knee", 0))
    log.record(entry("shoulder", 1))
    log.feedback(first, "down", "76942 should stay for Jane Roe")
    rows = json.loads(log.export())
    assert [r["question"] for r in rows] == ["knee for <PERSON>", "shoulder for <PERSON>"]
    assert rows[0]["id"] == first
    assert rows[0]["created_at"] == "2026-12-01T08:00:00.000000+00:00"
    assert rows[0]["findings"][0]["message"] == "bundled (<PERSON>)"
    assert rows[0]["codes"][1] == {"code": "76942", "status": "removed", "units": 2,
                                   "modifiers": ["RT"]}
    assert rows[0]["feedback"][0]["comment"] == "76942 should stay for <PERSON>"
    assert [r["question"] for r in json.loads(log.export(since=T0 + timedelta(seconds=30)))] == [
        "shoulder for <PERSON>"]
    csv_text = log.export(fmt="csv")
    assert "20611:verified 76942:removedx2" in csv_text
    assert "Jane Roe" not in log.export() + csv_text
    with pytest.raises(KeyError):
        log.feedback("no-such-answer", "up")
    log.close()


def test_both_stores_give_the_same_export(tmp_path: Path, pg_url: str) -> None:
    exports = []
    for url in (f"sqlite:///{tmp_path / 'audit.sqlite3'}", pg_url):
        log = open_log(url, tmp_path / url.split(":")[0])
        for i, q in enumerate(["knee", "central line", "FAST"]):
            log.record(entry(q, i))
        log.feedback("answer-knee-0", "up", "right for Jane Roe")
        rows = json.loads(log.export())
        for row in rows:  # feedback is stamped when given: the one field that differs
            for f in row["feedback"]:
                f.pop("created_at")
        exports.append((rows, log.export(fmt="csv")))
        log.close()
    assert exports[0] == exports[1]


def test_writes_are_idempotent_per_answer_id(store: str, tmp_path: Path) -> None:
    log = open_log(store, tmp_path)
    e = entry("knee")
    assert log.record(e) == log.record(e) == e.id  # a retried request
    # A replay of a write the database took before the acknowledgement was lost.
    assert log.spool is not None
    log.spool.put({"kind": "entry", "uid": e.id, "row": {
        "uid": e.id, "created_at": T0.isoformat(), "question": "again", "answer": "",
        "codes": [], "findings": [], "ruleset": "", "backend": "", "model": "",
        "passage_ids": [], "timings": {}, "path": ""}})
    fb = log.feedback(e.id, "up")
    log.spool.put({"kind": "feedback", "uid": fb, "row": {
        "uid": fb, "entry_uid": e.id, "rating": "up", "comment": "",
        "created_at": T0.isoformat()}})
    assert log.flush()
    assert log.pending == 0
    (row,) = log.entries()
    assert row["question"] == "knee for <PERSON>"
    assert len(row["feedback"]) == 1
    log.close()


def test_store_down_then_back_loses_nothing(
    store: str, tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    log = open_log(store, tmp_path)
    before = log.record(entry("before", 0))
    with store_down(request, store):
        started = time.monotonic()
        ids = [log.record(entry("down", i)) for i in range(1, 6)]  # never raises
        fb = log.feedback(ids[0], "down", "wrong for Jane Roe")  # on an entry still waiting
        log.feedback(before, "up")
        assert time.monotonic() - started < 15
        assert log.pending == 7
        assert log.last_error is not None and log.last_error.retryable
        waiting = sorted((tmp_path / "spool").glob("*.json"))
        assert len(waiting) == 7
        assert all("Jane Roe" not in p.read_text() for p in waiting)  # spooled masked
    # Back: the background replay writes everything, oldest first, without being asked.
    wait_for(lambda: log.pending == 0)
    assert fb
    rows = log.entries()
    assert [r["id"] for r in rows] == [before, *ids]
    assert rows[1]["feedback"][0]["comment"] == "wrong for <PERSON>"
    assert [f["rating"] for f in rows[0]["feedback"]] == ["up"]
    assert "kept for retry" in caplog.text
    assert "Jane Roe" not in caplog.text
    # Nothing written twice: a second replay and a new log on the same store agree.
    assert log.flush()
    log.close()
    assert len(open_log(store, tmp_path / "other").entries()) == 6


def test_upgrade_from_the_first_revision_keeps_every_row(store: str, tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    from advisor.db import _alembic_config

    engine = make_engine(parse_url(store))
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
    with engine.begin() as conn:
        for i in range(3):
            conn.execute(text(
                "INSERT INTO entries (uid, created_at, question, answer, codes, findings, "
                "ruleset, backend, model, passage_ids, timings, path) VALUES (:u, :t, :q, 'a', "
                "'[]', '[]', 'r', 'none', '', '[]', '{}', 'lookup')"),
                {"u": f"old-{i}", "q": f"old question {i}",
                 "t": (T0 + timedelta(minutes=i)).isoformat(timespec="microseconds")})
        conn.execute(text("INSERT INTO feedback (entry_uid, rating, comment, created_at) "
                          "VALUES ('old-1', 'down', 'no', :t)"), {"t": T0.isoformat()})
    engine.dispose()
    log = open_log(store, tmp_path)
    log.record(entry("new", 5))
    rows = log.entries()
    assert [r["id"] for r in rows] == ["old-0", "old-1", "old-2", "answer-new-5"]
    assert rows[1]["feedback"] == [
        {"rating": "down", "comment": "no", "created_at": "2026-12-01T08:00:00.000000+00:00"}]
    assert log.revision() == head_revision()
    log.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_two_replicas_count_one_session_together(store: str, tmp_path: Path) -> None:
    log = open_log(store, tmp_path)  # the limiters use the audit log's database
    clock = Clock()
    a = SharedRateLimiter(3, log.engine, clock=clock)
    b = SharedRateLimiter(3, log.engine, clock=clock)
    a.check("session-1")
    b.check("session-1")
    clock.now += 10
    a.check("session-1")
    with pytest.raises(InputRejected, match=r"3 questions in the last minute.*in 50 s"):
        b.check("session-1")
    with pytest.raises(InputRejected):
        a.check("session-1")  # a refused question is not counted
    b.check("session-2")  # another session has its own count
    clock.now += 51  # the first two questions are out of the window
    b.check("session-1")
    a.check("session-1")
    with pytest.raises(InputRejected):
        b.check("session-1")
    log.close()


def test_limit_counts_locally_while_the_database_is_down(
    pg_url: str, tmp_path: Path, request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = open_log(pg_url, tmp_path)
    clock = Clock()
    limiter = SharedRateLimiter(2, log.engine, clock=clock)
    limiter.check("s")
    with store_down(request, pg_url):
        started = time.monotonic()
        limiter.check("s")  # the local count starts afresh: this replica alone
        limiter.check("s")
        with pytest.raises(InputRejected):
            limiter.check("s")
        assert time.monotonic() - started < 10
    assert "shared question limit unavailable" in caplog.text
    log.close()
