"""The app's chat handler when the audit log cannot be written, and concurrent exports.

Real AdvisorApp, real Advisor (backend 'none': code-only questions take the lookup path,
no model or index) and a real SQLite audit log; only the failure is arranged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from advisor.audit import AuditLog
from advisor.settings import Settings
from knowledge.catalog import load_catalog

CATALOG = load_catalog()
KNEE_ROW = 'data-code="20611" data-status="corrected"'


def _state(tmp_path: Path) -> Any:
    import app

    state = app.AdvisorApp(Settings(data_dir=tmp_path, backend="none"), CATALOG)
    state.audit.timeout_s = 0.2  # the lock wait, kept short for the test
    return state


def _ask(state: Any, question: str, chat: Any = None, turns: Any = None) -> tuple[Any, Any]:
    *_, (chat, turns, _box) = list(state.chat(question, chat or [], turns or []))
    return chat, turns


def test_answer_is_shown_while_the_audit_log_is_locked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = _state(tmp_path)
    chat, turns = _ask(state, "lookup 76937")
    holder = sqlite3.connect(state.settings.audit_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with caplog.at_level(logging.WARNING):
            chat, turns = _ask(state, "20610 76942", chat, turns)
        answer = chat[-1]["content"]
        assert KNEE_ROW in answer
        assert "error-box" not in answer
        assert len(turns) == 2
        assert turns[-1].audit_id  # the entry waits in memory under this id
        assert state.audit.pending == 1
        assert "locked" in caplog.text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    chat, turns = _ask(state, "93970", chat, turns)  # the waiting entry is written first
    assert state.audit.pending == 0
    rows = AuditLog(state.settings.audit_path).entries()
    assert [r["question"] for r in rows] == ["lookup 76937", "20610 76942", "93970"]
    assert [r["id"] for r in rows] == [t.audit_id for t in turns]


def test_answer_is_shown_when_the_audit_log_cannot_be_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = _state(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the audit log's folder should be")
    state.audit = AuditLog(blocker / "audit.sqlite3", timeout_s=0.2)
    with caplog.at_level(logging.WARNING):
        chat, _turns = _ask(state, "20610 76942")
    assert KNEE_ROW in chat[-1]["content"]
    assert "error-box" not in chat[-1]["content"]
    assert state.audit.pending == 1
    assert "Cannot write the audit log" in caplog.text
    state.audit._pending.clear()  # nothing to write at exit


def test_answer_is_shown_when_recording_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _state(tmp_path)

    def broken(entry: Any) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(state.audit, "record", broken)
    with caplog.at_level(logging.ERROR):
        chat, turns = _ask(state, "20610 76942")
    assert KNEE_ROW in chat[-1]["content"]
    assert "error-box" not in chat[-1]["content"]
    assert turns[-1].audit_id is None
    assert "audit record failed" in caplog.text


def test_exports_in_the_same_second_get_their_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app

    state = _state(tmp_path)
    _, first = _ask(state, "lookup 76937")
    _, second = _ask(state, "93970")
    monkeypatch.setattr(app.time, "strftime", lambda fmt, *a: "20261126-120000")
    paths = [state.export(first, "json"), state.export(second, "json")]
    assert None not in paths
    assert paths[0] != paths[1]
    assert Path(paths[0]).name == Path(paths[1]).name == "advisor-conversation-20261126-120000.json"
    questions = [[t["question"] for t in json.loads(Path(p).read_text())["turns"]] for p in paths]
    assert questions == [["lookup 76937"], ["93970"]]


def test_api_ask_answers_are_recorded_masked(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.warmup.done.set()  # no model or index to load for code-only questions
    out = state.api_ask("20610 76942")
    assert out["audit_id"]
    assert "20611" in {c["code"] for c in out["codes"]}
    # No index and no model: a fallback answer, recorded all the same, with the PHI masked.
    other = state.api_ask("Knee injection for John Carter, MRN 4471823, under ultrasound")
    rows = AuditLog(state.settings.audit_path).entries()
    assert [r["id"] for r in rows] == [out["audit_id"], other["audit_id"]]
    assert "John Carter" not in rows[1]["question"]
    assert "4471823" not in rows[1]["question"]
