"""UI formatting: badges, code tables, findings, citations, claim checks, audits, exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from advisor.lookup import lookup
from advisor.pipeline import Answer, CitationRef, CodeLine
from advisor.settings import Settings
from advisor.ui import (
    ChatTurn,
    PassageMemo,
    Warmup,
    answer_html,
    append_feedback,
    as_dict,
    audit_html,
    badge_html,
    citations_html,
    codes_in_text,
    codes_table_html,
    corrected_claim,
    error_message,
    export_json,
    export_markdown,
    feedback_record,
    findings_html,
    footer_markdown,
    lookup_html,
    outcome_html,
    outcome_json,
    parse_code_list,
    settings_markdown,
    status_line,
)
from guardrails.audit import audit_note
from guardrails.repair import check_and_repair
from guardrails.report import CodeStatus, Draft, DraftCode
from knowledge.catalog import load_catalog

CATALOG = load_catalog()

BUNDLED = {
    "rule": "pairs.bundled",
    "severity": "error",
    "codes": ["20610", "76942"],
    "message": "76942 is not reported with 20610.",
    "fix": {"description": "Report 20611 instead of 20610 + 76942.", "remove": ["20610", "76942"],
            "add": ["20611"], "set_units": {}, "drop_modifiers": [], "add_modifiers": [], "alternatives": []},
    "sources": ["supercoder_2061x"],
    "confidence": "high",
}
INFO = {"rule": "documentation.requirements", "severity": "info", "codes": ["20611"],
        "message": "Keep a permanent image.", "fix": None, "sources": [], "confidence": "high"}


def knee_answer() -> Answer:
    """A hand-built answer as the pipeline would give it for the knee question."""
    return Answer(
        answer="Codes (each checked against the ruleset):\n  20611  CORRECTED",
        codes=[CodeLine(code="20611", status=CodeStatus.CORRECTED, label="Major joint, US guided",
                        findings=["pairs.bundled"], reason="corrected: Report 20611")],
        removed=[CodeLine(code="76942", status=CodeStatus.REMOVED, label="US needle guidance",
                          findings=["pairs.bundled"], reason="76942 is not reported with 20610")],
        findings=[BUNDLED, INFO],
        citations=[CitationRef(id="abc123", source="guidelines/joint.md",
                               title="Joint <injections>", section="Guidance included")],
        ruleset="builtin 2026.11",
        backend="embedded:default",
        timings_ms={"retrieve": 12, "draft": 9000, "check": 3, "total": 9100},
        banner="Drafted by a small model",
        question="What do I bill for an ultrasound-guided knee injection?",
    )


@pytest.mark.parametrize(
    ("status", "label", "cls"),
    [
        (CodeStatus.VERIFIED, "verified", "badge-verified"),
        ("corrected", "corrected", "badge-corrected"),
        (CodeStatus.REMOVED, "removed", "badge-removed"),
        ("not_verified", "not verified", "badge-unverified"),
    ],
)
def test_badges(status: Any, label: str, cls: str) -> None:
    html = badge_html(status)
    assert f">{label}<" in html
    assert cls in html


def test_codes_table_escapes_and_shows_units_and_modifiers() -> None:
    rows = [{"code": "93971", "status": "verified", "label": "Duplex <limited>", "units": 2,
             "modifiers": ["RT", "59"], "findings": ["units.limit"]}]
    html = codes_table_html(rows, caption="Codes")
    assert 'data-code="93971"' in html
    assert 'data-status="verified"' in html
    assert "Duplex &lt;limited&gt;" in html
    assert "<td>2</td>" in html
    assert "RT, 59" in html
    assert "units.limit" in html
    assert "No code to show" in codes_table_html([])


def test_findings_show_severity_message_fix_source_and_fold_info() -> None:
    html = findings_html([BUNDLED, INFO], sources={"supercoder_2061x": "supercoder.com"})
    assert "badge-removed" in html
    assert "20610 + 76942" in html
    assert "Fix: Report 20611 instead of 20610 + 76942." in html
    assert "supercoder_2061x" in html
    assert 'title="supercoder.com"' in html
    assert "1 informational note(s)" in html
    assert "No findings" in findings_html([])


def test_citations_are_expandable_with_passage_text() -> None:
    cites = [{"id": "abc123", "source": "guidelines/joint.md", "title": "Joint", "section": "S"}]
    html = citations_html(cites, {"abc123": "Guidance is <included> in 20611."})
    assert "<details" in html
    assert "Guidance is &lt;included&gt; in 20611." in html
    assert "guidelines/joint.md" in html
    assert "not available" in citations_html(cites, {})
    assert citations_html([], {}) == ""


def test_answer_html_has_table_removed_findings_citations_and_meta() -> None:
    html = answer_html(knee_answer(), {"abc123": "passage text"})
    assert 'data-code="20611" data-status="corrected"' in html
    assert 'data-code="76942" data-status="removed"' in html
    assert "Removed" in html
    assert "Fix: Report 20611" in html
    assert "Joint &lt;injections&gt;" in html
    assert "passage text" in html
    assert "ruleset builtin 2026.11" in html
    assert "embedded:default" in html
    assert "Drafted by a small model" in html
    assert "9100 ms" in html


def test_as_dict_accepts_answer_outcome_and_dict() -> None:
    assert as_dict(knee_answer())["codes"][0]["code"] == "20611"
    assert as_dict({"a": 1}) == {"a": 1}
    with pytest.raises(TypeError):
        as_dict(object())


def _outcome(*codes: DraftCode):  # type: ignore[no-untyped-def]
    return check_and_repair(Draft(codes=codes), CATALOG)


def test_claim_check_shows_fix_and_corrected_claim() -> None:
    outcome = _outcome(DraftCode("20610"), DraftCode("76942"))
    assert corrected_claim(outcome) == "20611"
    html = outcome_html(outcome, CATALOG)
    assert ">FAIL<" in html
    assert 'data-code="20610" data-status="removed"' in html
    assert 'data-code="20611" data-status="corrected"' in html
    assert "Corrected claim: <code>20611</code>" in html
    data = outcome_json(outcome)
    assert data["corrected_claim_text"] == "20611"
    assert data["verdict"] == "fail"


def test_claim_check_of_a_clean_claim_says_no_change() -> None:
    outcome = _outcome(DraftCode("20611"))
    html = outcome_html(outcome, CATALOG)
    assert "(no change)" in html
    assert "Corrected claim" not in html


def test_units_and_modifiers_in_corrected_claim() -> None:
    outcome = _outcome(DraftCode("37252"), DraftCode("37253", units=6))
    assert "37253" in corrected_claim(outcome)


def test_lookup_html_shows_everything_lookup_knows() -> None:
    records = [lookup("76937", CATALOG), lookup("99999", CATALOG)]
    html = lookup_html(records)
    assert 'data-code="76937"' in html
    assert "Add-on" in html
    assert "Permanent image" in html or "permanent image" in html.lower()
    assert "Unknown code" in html or "unknown code" in html
    assert CATALOG.ruleset in html


def test_parse_code_list_and_codes_in_text() -> None:
    assert parse_code_list("76937, 20611;+76942 ") == ["76937", "20611", "76942"]
    note = "Central line placed; +76937 billed. Phone 555-12345. Also 99999."
    assert codes_in_text(note, CATALOG) == ["76937"]


def test_audit_html_reports_missing_patency() -> None:
    note = ("Potential access sites were evaluated. Under real-time ultrasound the needle entry "
            "was visualized. Images were saved.")
    html = audit_html(audit_note(note, ["76937"], CATALOG))
    assert 'data-element="vessel_patency" data-status="missing"' in html
    assert 'data-element="permanent_image" data-status="present"' in html
    assert "rule-based" in html
    assert "No code to audit" in audit_html(audit_note(note, [], CATALOG))


def test_audit_html_complete_versus_limited() -> None:
    html = audit_html(audit_note("Liver normal. Impression: fine.", ["76705"], CATALOG))
    assert "supports only limited" in html


def test_exports_hold_every_verdict_and_citation() -> None:
    turn = ChatTurn(question="knee?", answer=knee_answer().to_json(),
                    passages={"abc123": "Guidance is included.", "zzz": "not cited"})
    md = export_markdown([turn], ruleset="builtin 2026.11")
    assert "## 1. knee?" in md
    assert "| 20611 |" in md
    assert "CORRECTED" in md
    assert "| 76942 |" in md
    assert "REMOVED" in md
    assert "Fix: Report 20611 instead of 20610 + 76942." in md
    assert "guidelines/joint.md" in md
    assert "> Guidance is included." in md
    data = json.loads(export_json([turn], ruleset="builtin 2026.11"))
    (t,) = data["turns"]
    assert t["answer"]["codes"][0]["status"] == "corrected"
    assert t["answer"]["citations"][0]["id"] == "abc123"
    assert t["passages"] == {"abc123": "Guidance is included."}  # only cited passages


def test_feedback_is_appended_as_json_lines(tmp_path) -> None:
    turn = ChatTurn(question="knee?", answer=knee_answer().to_json())
    path = tmp_path / "data" / "feedback.jsonl"
    append_feedback(path, feedback_record(turn, True))
    append_feedback(path, feedback_record(turn, False, comment="missed 76942"))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["rating"] for x in lines] == ["up", "down"]
    assert lines[0]["codes"] == [{"code": "20611", "status": "corrected"}]
    assert lines[1]["removed"] == ["76942"]
    assert lines[1]["ruleset"] == "builtin 2026.11"


def test_footer_and_settings() -> None:
    footer = footer_markdown(CATALOG)
    assert CATALOG.ruleset in footer
    assert "CMS quarter" in footer
    s = Settings(backend="embedded", model_preset="small")
    md = settings_markdown(s, {"model": "Qwen 0.5B", "loaded": False}, "model ready")
    assert "| Backend | embedded |" in md
    assert "| Model preset | small |" in md
    assert "Qwen 0.5B" in md
    assert "127.0.0.1" in md


def test_error_message_is_readable() -> None:
    class Flaky(Exception):
        retryable = True

    assert "try again" in error_message(Flaky("Timed out."))
    assert error_message(ValueError("Type codes.")) == "Type codes."
    msg = error_message(KeyError("x"))
    assert "KeyError" in msg
    assert "Traceback" not in msg


def test_warmup_runs_steps_and_keeps_going_after_a_failure() -> None:
    ran: list[str] = []

    def bad() -> None:
        raise RuntimeError("no index")

    w = Warmup([("index", bad), ("model", lambda: ran.append("model"))])
    assert "loading in the background" in status_line(w, "embedded")
    w.start()
    assert w.wait(10)
    assert ran == ["model"]
    assert w.state == {"index": "failed", "model": "ready"}
    assert "no index" in w.summary()
    assert "problem at start-up" in status_line(w, "embedded")
    assert "off" in status_line(None, "none")


def test_passage_memo_remembers_texts() -> None:
    class P:
        def __init__(self, i: str) -> None:
            self.id, self.text = i, f"text {i}"

    class R:
        calls = 0

        def search(self, query: str, k: int | None = None) -> Any:
            R.calls += 1
            return type("Result", (), {"passages": [P("a"), P("b")]})()

    memo = PassageMemo(R, limit=1)
    memo.search("q")
    assert memo.texts(["a", "b"]) == {"b": "text b"}  # bounded: oldest forgotten
    assert R.calls == 1


class ScriptedAdvisor:
    """Stands in for Advisor in the app's chat handler: streams text, then an Answer."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.histories: list[list[Any]] = []
        self.fail = fail

    def stream(self, question: str, history: Any = ()) -> Any:
        self.histories.append(list(history))
        if self.fail is not None:
            raise self.fail
        yield "drafting 20611 (not yet checked)\n"
        yield knee_answer()


def _app(tmp_path, advisor: ScriptedAdvisor):  # type: ignore[no-untyped-def]
    import app

    settings = Settings(data_dir=tmp_path, backend="none")
    return app.AdvisorApp(settings, CATALOG, advisor=advisor)  # type: ignore[arg-type]


def test_chat_handler_streams_then_shows_checked_table_and_keeps_history(tmp_path) -> None:
    advisor = ScriptedAdvisor()
    state = _app(tmp_path, advisor)
    shown: list[str] = []  # what each streamed update showed, read as Gradio would
    steps = []
    for step in state.chat("knee <b>injection</b>?", [], []):
        shown.append(step[0][-1]["content"])
        steps.append(step)
    chat, turns, box = steps[-1]
    assert box == ""
    assert chat[0] == {"role": "user", "content": "knee &lt;b&gt;injection&lt;/b&gt;?"}
    assert any("drafting 20611" in s and "not yet checked" in s for s in shown[:-1])
    assert 'data-code="20611" data-status="corrected"' in chat[-1]["content"]
    assert len(turns) == 1
    # A follow-up hands the earlier answer to the advisor as history.
    chat2, turns2, _ = list(state.chat("and if both knees?", chat, turns))[-1]
    assert [a.codes[0].code for a in advisor.histories[-1]] == ["20611"]
    assert len(turns2) == 2
    assert len(chat2) == 4
    md = state.export(turns2, "md")
    assert md is not None
    assert "| 20611 |" in Path(md).read_text()


def test_exports_do_not_outlive_their_time_or_the_app(tmp_path) -> None:
    """Exported conversations hold what users typed: old ones go, and all go with the app."""
    import gc
    import os
    import time

    import app

    state = _app(tmp_path, ScriptedAdvisor())
    _, turns, _ = list(state.chat("knee injection for Jane Roe?", [], []))[-1]
    first = Path(state.export(turns, "json"))
    second = Path(state.export(turns, "md"))
    assert first.exists() and second.exists()
    # An export older than the limit is removed by the next export or the status timer.
    old = time.time() - state.settings.export_ttl_s - 5
    os.utime(first.parent, (old, old))
    assert state.prune_exports() == 1
    assert not first.parent.exists() and second.exists()
    # The status timer prunes at most once a minute.
    os.utime(second.parent, (old, old))
    state._pruned_at = 0.0
    state.status()
    assert not second.parent.exists()
    # close() removes the folder; so does collecting an app never closed.
    folder = state.export_dir
    state.close()
    assert not folder.exists()
    other = _app(tmp_path, ScriptedAdvisor())
    folder2 = other.export_dir
    del other
    gc.collect()
    assert not folder2.exists()
    # Gradio's own copies (exports, uploads) are dropped on the same schedule.
    demo = app.build_ui(_app(tmp_path, ScriptedAdvisor()))
    assert demo.delete_cache == (600, 3600)


def test_chat_handler_shows_errors_as_messages(tmp_path) -> None:
    state = _app(tmp_path, ScriptedAdvisor(fail=RuntimeError("index is locked")))
    chat, turns, _ = list(state.chat("knee?", [], []))[-1]
    assert "error-box" in chat[-1]["content"]
    assert "index is locked" in chat[-1]["content"]
    assert "Traceback" not in chat[-1]["content"]
    assert turns == []


def test_feedback_handler_appends_to_the_data_dir(tmp_path) -> None:
    state = _app(tmp_path, ScriptedAdvisor())
    chat, turns, _ = list(state.chat("knee?", [], []))[-1]
    like = type("Like", (), {"index": 1, "liked": False})()
    assert "saved" in state.feedback(chat, turns, like)
    (line,) = (tmp_path / "feedback.jsonl").read_text().splitlines()
    assert json.loads(line)["rating"] == "down"


def test_tool_handlers_answer_without_a_model(tmp_path) -> None:
    state = _app(tmp_path, ScriptedAdvisor())
    html, data = state.check_view("20610 76942")
    assert data["corrected_claim_text"] == "20611"
    assert "Corrected claim" in html
    html, records = state.lookup_view("76937")
    assert records[0]["code"] == "76937"
    html, records = state.lookup_view("7694")
    assert records is None
    assert "error-box" in html
    assert "not a code" in html
    audit = state.audit_view("Images were saved. Vessel patent.", "76937")
    assert 'data-element="vessel_patency" data-status="present"' in audit
    codes, hint = state.suggest_codes("Bill +76937 for the line.")
    assert codes == "76937"
    assert "named in the note" in hint


def test_chat_answers_are_audited_and_feedback_attached(tmp_path):
    """The app records each answer in the audit log and attaches thumbs to that entry."""
    import app as app_module
    from advisor.audit import AuditLog
    from advisor.settings import Settings

    settings = Settings(data_dir=tmp_path, backend="none")
    state = app_module.AdvisorApp(settings)
    *_, (chat, turns, _) = list(state.chat("20610 76942", [], []))
    assert turns and turns[-1].audit_id
    entries = AuditLog(settings.audit_path).entries(None)
    assert len(entries) == 1

    class Like:
        index = (1, 0)
        liked = True

    msg = state.feedback(chat, turns, Like())
    assert "saved" in msg
    exported = AuditLog(settings.audit_path).export(None, "json")
    assert '"up"' in exported
