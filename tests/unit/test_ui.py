"""UI formatting: badges, code tables, findings, citations, claim checks, audits, exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from advisor.cards import audit_html, lookup_html
from advisor.conversation import (
    ChatTurn,
    append_feedback,
    export_json,
    export_markdown,
    feedback_record,
)
from advisor.lookup import lookup
from advisor.pipeline import Answer, CitationRef, CodeLine
from advisor.settings import Settings
from advisor.ui import (
    answer_html,
    as_dict,
    badge_html,
    citations_html,
    codes_in_text,
    codes_table_html,
    error_message,
    findings_html,
    footer_markdown,
    outcome_html,
    outcome_json,
    parse_code_list,
    settings_markdown,
)
from advisor.warmup import LazyRetriever, Warmup, status_line
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
    assert '<td class="num">2</td>' in html
    assert "RT, 59" in html
    assert 'title="units.limit"' in html
    assert "No code to show" in codes_table_html([])


def test_findings_show_severity_message_fix_source_and_fold_info() -> None:
    html = findings_html([BUNDLED, INFO], sources={"supercoder_2061x": "supercoder.com"})
    assert "badge-removed" in html
    assert "20610 + 76942" in html
    assert "Fix: Report 20611 instead of 20610 + 76942." in html
    assert 'title="supercoder_2061x">supercoder.com</span>' in html
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
    assert outcome.corrected_claim() == "20611"
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
    assert "37253" in outcome.corrected_claim()


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


def test_the_retriever_is_built_once_on_first_use() -> None:
    built: list[int] = []

    class R:
        def search(self, query: str, k: int | None = None) -> Any:
            return query

    def factory() -> R:
        built.append(1)
        return R()

    lazy = LazyRetriever(factory)
    assert built == []
    assert lazy.search("q") == "q" and lazy.search("r") == "r"
    assert built == [1]


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
    # The box is emptied once, when the question is taken, and never touched again: a next
    # question typed meanwhile is kept.
    boxes = [step[2] for step in steps]
    assert boxes[0] == "" and all(b is None for b in boxes[1:])
    assert box is None
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


def test_exports_of_a_killed_app_are_removed_by_the_next_app(tmp_path, monkeypatch) -> None:
    """A process killed outright cannot clean up: the next app removes what it left."""
    import os
    import subprocess
    import sys
    import tempfile
    import time

    import app

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = tmp_path / "tmp" / f"advisor-export-{gone.stdout.strip()}-abc"
    (dead / "export-x").mkdir(parents=True)
    (dead / "export-x" / "advisor-conversation.json").write_text("{}")
    alive = tmp_path / "tmp" / f"advisor-export-{os.getppid()}-def"
    alive.mkdir()
    legacy_old = tmp_path / "tmp" / "advisor-export-k2j4_x9q"
    legacy_new = tmp_path / "tmp" / "advisor-export-p0q1r2s3"
    legacy_old.mkdir()
    legacy_new.mkdir()
    old = time.time() - Settings(data_dir=tmp_path).export_ttl_s - 5
    os.utime(legacy_old, (old, old))
    state = _app(tmp_path / "data", ScriptedAdvisor())
    assert not dead.exists() and not legacy_old.exists()
    assert alive.exists() and legacy_new.exists()
    assert state.export_dir.parent == tmp_path / "tmp"
    assert state.export_dir.name.startswith(f"advisor-export-{os.getpid()}-")
    assert app.sweep_orphan_exports(3600) == 0  # its own folder stays


def test_sigterm_stops_the_app_with_its_exports_removed(tmp_path) -> None:
    """A service manager's SIGTERM runs the exit clean-up: no conversation left on disk."""
    import os
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    script = (
        "import sys, time, app\n"
        "from advisor.settings import Settings\n"
        "state = app.AdvisorApp(Settings(data_dir=sys.argv[1], backend='none'), advisor=object())\n"
        "app.exit_on_sigterm()\n"
        "(state.export_dir / 'export-1').mkdir()\n"
        "(state.export_dir / 'export-1' / 'c.json').write_text('{}')\n"
        "print(state.export_dir, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=root, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        folder = Path(proc.stdout.readline().strip())
        assert folder.is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    assert not folder.exists()


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


def test_feedback_carries_the_optional_comment_to_the_file_and_the_audit_log(tmp_path) -> None:
    state = _app(tmp_path, ScriptedAdvisor())
    chat, turns, _ = list(state.chat("20610 76942", [], []))[-1]
    like = type("Like", (), {"index": 1, "liked": False})()
    said = state.feedback(chat, turns, like, "76942 should be removed, and it was")
    assert "with your comment" in said
    (line,) = (tmp_path / "feedback.jsonl").read_text().splitlines()
    assert json.loads(line)["comment"] == "76942 should be removed, and it was"
    state.audit.flush()
    exported = state.audit.export(None, "json")
    assert "76942 should be removed, and it was" in exported


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


def test_the_chat_shows_the_elapsed_time_while_a_model_that_does_not_stream_drafts(
    tmp_path,
) -> None:
    import time as _time

    class Slow(ScriptedAdvisor):
        def stream(self, question: str, history: Any = ()) -> Any:
            _time.sleep(2.5)  # a backend that gives nothing until its whole draft is done
            yield knee_answer()

    state = _app(tmp_path, Slow())
    shown = [step[0][-1]["content"] for step in state.chat("knee injection?", [], [])]
    waiting = shown[1:-1]  # read as Gradio would, at each update
    assert len(waiting) >= 2, "an update at least every second while drafting"
    assert 'class="elapsed">1 s' in waiting[0] and 'class="elapsed">2 s' in waiting[1]
    assert all("type your next question" in w for w in waiting)
    assert 'data-code="20611"' in shown[-1]


def test_question_counter_says_when_a_question_is_too_long() -> None:
    from advisor.ui import question_counter

    assert question_counter("knee?", 4000) == "5 / 4,000 characters"
    long = question_counter("x" * 4001, 4000)
    assert "4,001 / 4,000 characters: too long" in long


# ------------------------------------------------------------- readable chat answers


def test_the_answer_says_each_thing_once_codes_first() -> None:
    a = knee_answer()
    a.removed[0].reason = BUNDLED["message"]  # as the pipeline sets it: the finding's message
    html = answer_html(a, {"abc123": "passage text"})
    # The terminal summary repeats the table: not shown beside it.
    assert "Codes (each checked against the ruleset)" not in html
    # One table; the removed code is a row of it, its reason said once (in the findings).
    assert html.count("<table") == 1
    assert html.count(BUNDLED["message"]) == 1
    # Codes first, then findings, then citations.
    assert html.index("<table") < html.index("Findings") < html.index("Citations")
    # Rule ids as words, the id on hover.
    assert '<span class="rule" title="pairs.bundled">bundled pair</span>' in html
    assert "<code>pairs.bundled</code>" not in html


def test_code_numbers_and_headers_never_wrap() -> None:
    import app

    css = " ".join(app.CSS.split())
    assert "white-space:nowrap" in css.replace(": ", ":")
    assert "table.codes th" in css and "td.code" in css


def test_every_rule_the_checker_emits_has_words() -> None:
    import re as _re
    from pathlib import Path as _Path

    from advisor.ui import RULE_WORDS

    root = _Path(__file__).resolve().parents[2]
    emitted = set()
    for py in [*(root / "guardrails").rglob("*.py"), *(root / "advisor").rglob("*.py")]:
        emitted |= set(_re.findall(
            r'"((?:existence|descriptor|pairs|add_on|units|modifiers|documentation|omission|'
            r'pipeline|prose)\.[a-z_]+)"', py.read_text()))
    assert emitted - set(RULE_WORDS) == set()


def test_sources_are_links_with_titles() -> None:
    from advisor.ui import source_link, source_title

    src = CATALOG.sources["AAPC_breast_2015"]
    html = source_link("AAPC_breast_2015", src)
    assert html.startswith('<a class="source" href="https://www.aapc.com/blog/')
    assert ">aapc.com: breast imaging coding changes in 2015</a>" in html
    assert "AAPC_breast_2015" in html  # on hover, with what it supports
    assert source_title("NCCI Policy Manual ch. IX") == "NCCI Policy Manual ch. IX"
    findings = findings_html([BUNDLED], sources=CATALOG.sources)
    assert '<a class="source" href="' in findings
    assert 'title=""' not in findings


def test_lookup_values_are_words_never_enum_names() -> None:
    from advisor.lookup import format_lookup, lookup

    for code in ("76937", "20610", "93970"):
        rec = lookup(code, CATALOG)
        for shown in (format_lookup(rec), lookup_html([rec])):
            for raw in ("modifier_50", "not_applicable", "each_side", "encounter_policy",
                        "date_policy", ": split", ": none"):
                assert raw not in shown, (code, raw)
    guidance = lookup("76937", CATALOG)
    assert "imaging guidance:" not in format_lookup(guidance)  # it is the guidance itself
    assert "Imaging guidance" not in lookup_html([guidance])
    assert "modifier 50 allowed" in format_lookup(lookup("20610", CATALOG))
    assert "not applicable" in format_lookup(guidance)
    assert '<a class="source" href="https://' in lookup_html([guidance])
