"""Variants and hold-out cases in the evaluation: suite format, selection, figures kept apart,
the worst variant group, the report and JSON, resuming; and error cases (a model timeout)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from advisor.cli import app
from advisor.evaluation.command import CHECKPOINT, run_eval
from advisor.evaluation.metrics import AnswerView, CodeView, score_question
from advisor.evaluation.report import compare, markdown_report
from advisor.evaluation.runner import CaseResult, EvalRun, Runner, summarize
from advisor.evaluation.suite import (
    QuestionCase,
    SuiteError,
    VariantCase,
    load_suites,
    select_cases,
)
from advisor.pipeline import Answer, CodeLine
from advisor.retriever import RetrievalResult
from advisor.settings import Settings
from guardrails.report import CodeStatus
from knowledge.catalog import load_catalog

CAT = load_catalog()

SUITE = """\
suite: sample
cases:
- id: q-knee
  question: "US-guided knee injection?"
  expect_codes: [20611]
  forbid_codes: [20610, 76942]
  tags: {family: joint_injection, user: clinician, kind: coding}
  variants:
  - {kind: abbreviation, question: "Knee inj under US - CPT?"}
  - {kind: distractor, question: "US-guided knee injection; knee x-ray last year. Code?"}
- id: q-conv
  conversation: ["Venous duplex one leg?", "And both legs?"]
  expect_codes: [93970]
  tags: {family: vascular, user: coder, kind: follow_up}
  variants:
  - {kind: coder, question: "Both sides?"}
- id: ho-abd
  question: "Spleen only, ultrasound, code?"
  expect_codes: [76705]
  forbid_codes: [76700]
  tags: {family: abdomen, user: clinician, kind: coding, set: holdout}
- id: c-pair
  type: check
  codes: "20610 76942"
  expect_verdict: fail
  tags: {family: joint_injection, user: coder, kind: check}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------------------ format


def test_variants_run_as_cases_of_their_own_with_the_same_expectations(tmp_path: Path) -> None:
    suites = load_suites([write(tmp_path, SUITE)], CAT)
    knee, conv = suites[0].cases[0], suites[0].cases[1]
    assert isinstance(knee, QuestionCase) and isinstance(conv, QuestionCase)
    v1, v2 = knee.variant_cases()
    assert (v1.id, v1.variant_of, v1.variant_kind) == ("q-knee~v1", "q-knee", "abbreviation")
    assert v2.question == "US-guided knee injection; knee x-ray last year. Code?"
    assert (v1.expect_codes, v1.forbid_codes, v1.tags) == (
        knee.expect_codes, knee.forbid_codes, knee.tags)
    assert v1.origin is knee
    # A conversation's variant replaces its last turn; the earlier turns stay.
    (cv,) = conv.variant_cases()
    assert cv.turns == ("Venous duplex one leg?", "Both sides?")
    assert cv.earlier == "Venous duplex one leg?"
    assert cv.tag_values()["variant"] == "coder"
    assert knee.tag_values()["variant"] == "original"


def test_select_originals_variants_or_both(tmp_path: Path) -> None:
    suites = load_suites([write(tmp_path, SUITE)], CAT)
    ids = lambda cases: [c.id for c in cases]  # noqa: E731
    # Originals first (comparable with earlier runs), then the variants in the same order.
    assert ids(select_cases(suites)) == [
        "q-knee", "q-conv", "ho-abd", "c-pair", "q-knee~v1", "q-knee~v2", "q-conv~v1"]
    assert ids(select_cases(suites, variants="none")) == ["q-knee", "q-conv", "ho-abd", "c-pair"]
    assert ids(select_cases(suites, variants="only")) == ["q-knee~v1", "q-knee~v2", "q-conv~v1"]
    assert ids(select_cases(suites, ["variant=distractor"])) == ["q-knee~v2"]
    assert ids(select_cases(suites, ["variant=original", "coder"])) == ["q-conv", "c-pair"]
    assert ids(select_cases(suites, ["set=holdout"])) == ["ho-abd"]
    # A case's id names its variants too; a variant's id names only itself.
    assert ids(select_cases(suites, ["id=q-knee"])) == ["q-knee", "q-knee~v1", "q-knee~v2"]
    assert ids(select_cases(suites, ["id=q-knee~v2"])) == ["q-knee~v2"]
    assert ids(select_cases(suites, ["id=q-knee"], variants="none")) == ["q-knee"]
    with pytest.raises(ValueError, match="variants must be one of"):
        select_cases(suites, variants="some")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("kind: abbreviation", "kind: slang"),
         ":9: case q-knee: variants.0.kind: Input should be 'clinician', 'coder', "),
        (("{kind: coder, question:", "{kind: coder, text:"),
         ":16: case q-conv: variants.0.text: Extra inputs are not permitted"),
        (('"Knee inj under US - CPT?"', '"US-guided knee injection!"'),
         ":3: case q-knee: (case): Value error, variant 1 repeats the question"),
        (("id: ho-abd", "id: abd"),
         "case abd: (case): Value error, a hold-out case (tags.set: holdout) and only such"),
        (("set: holdout", "set: secret"), ":21: case ho-abd: tags.set: Input should be"),
        (('  forbid_codes: [76700]\n', '  forbid_codes: [76700]\n  variants:\n  - {kind: coder, '
          'question: "Spleen US?"}\n'),
         "case ho-abd: (case): Value error, a hold-out case takes no variants"),
    ],
)
def test_bad_variants_name_file_line_case_and_field(tmp_path: Path, edit, expected) -> None:
    path = write(tmp_path, SUITE.replace(*edit))
    with pytest.raises(SuiteError) as info:
        load_suites([path], CAT)
    assert f"{path}" in str(info.value)
    assert expected in str(info.value), str(info.value)


# ------------------------------------------------------------------------------ figures


def result(case: QuestionCase, codes: list[tuple[str, str]], error: str | None = None,
           error_kind: str | None = None) -> CaseResult:
    view = AnswerView(codes=[CodeView(code=c, status=s) for c, s in codes], error=error,
                      error_kind=error_kind)  # type: ignore[arg-type]
    variant = case if isinstance(case, VariantCase) else None
    return CaseResult(
        id=case.id, suite="s", type="question", tags=case.tag_values(), prompt=case.turns[-1],
        system=score_question(case, view, CAT),
        variant_of=variant.variant_of if variant else None,
        variant_kind=variant.variant_kind if variant else None,
    )


def make_cases() -> dict[str, QuestionCase]:
    TAGS = {"family": "joint_injection", "user": "clinician", "kind": "coding"}
    knee = QuestionCase(id="knee", tags=TAGS, question="Ultrasound-guided knee injection?",
                        expect_codes=("20611",), forbid_codes=("20610", "76942"),
                        variants=tuple({"kind": k, "question": f"{k}: ultrasound-guided knee injection?"}
                                       for k in ("note", "abbreviation", "clinician")))
    elbow = QuestionCase(id="elbow", tags=TAGS, question="Elbow injection without imaging?",
                         expect_codes=("20605",), forbid_codes=("20606", "76942"),
                         variants=tuple({"kind": k, "question": f"{k}: elbow joint injection, no imaging?"}
                                        for k in ("note", "abbreviation", "coder")))
    hold = QuestionCase(id="ho-hip", tags={**TAGS, "set": "holdout"},
                        question="US-guided hip injection, image saved?", expect_codes=("20611",))
    return {"knee": knee, "elbow": elbow, "ho-hip": hold}


def make_run() -> EvalRun:
    c = make_cases()
    knee_v = {v.variant_kind: v for v in c["knee"].variant_cases()}
    elbow_v = {v.variant_kind: v for v in c["elbow"].variant_cases()}
    results = [
        result(c["knee"], [("20611", "verified")]),
        result(c["elbow"], [("20605", "verified")]),
        result(c["ho-hip"], [("20610", "verified")]),
        # Notes: both miss, one leaks a forbidden code; abbreviations: one miss.
        result(knee_v["note"], [("20610", "verified"), ("76942", "verified")]),
        result(elbow_v["note"], [("20606", "not_verified")]),
        result(knee_v["abbreviation"], [("20611", "verified")]),
        result(elbow_v["abbreviation"], [("20606", "verified")]),
        result(knee_v["clinician"], [("20611", "corrected")]),
        result(elbow_v["coder"], [], error="ModelTimeout: too slow", error_kind="timeout"),
    ]
    return EvalRun(started="2026-12-05T00:00:00+00:00", seconds=1.0, backend="fake",
                   ruleset=CAT.ruleset, suites=["s.yaml"], summary=summarize(results),
                   cases=results)


def test_originals_variants_and_holdout_are_counted_apart() -> None:
    s = make_run().summary
    # The headline figures are the public cases as written, as in earlier runs.
    assert (s.system.cases, s.system.exact_code_set, s.system.forbidden_leak_rate) == (2, 1.0, 0.0)
    assert s.holdout is not None
    assert (s.holdout.system.cases, s.holdout.system.exact_code_set) == (1, 0.0)
    assert s.holdout.system_by_tag["family"]["joint_injection"].cases == 1
    v = s.variants
    assert v is not None
    assert v.system.cases == 6
    assert v.system.exact_code_set == pytest.approx(2 / 6, abs=1e-3)
    assert v.system.forbidden_leak_rate == pytest.approx(2 / 6, abs=1e-3)
    assert (v.system.errors, v.system.timeouts) == (1, 1)
    assert list(v.by_kind) == ["clinician", "coder", "note", "abbreviation"]  # suite order
    assert v.by_kind["note"].exact_code_set == 0.0
    assert v.by_kind["abbreviation"].exact_code_set == 0.5
    assert v.originals is not None and v.originals.exact_code_set == 1.0
    assert v.missed_where_original_exact == 4
    assert set(v.by_family_kind) == {"joint_injection x clinician", "joint_injection x coder",
                                     "joint_injection x note",
                                     "joint_injection x abbreviation"}


def test_the_worst_variant_group_is_named_with_its_scope() -> None:
    v = make_run().summary.variants
    assert v is not None
    wk = v.worst_kind
    assert wk is not None
    # note and coder both have no exact answer; note leaked, so it is the worse.
    assert (wk.scope, wk.kind, wk.cases, wk.exact, wk.forbidden_leak_rate) == (
        "kind", "note", 2, 0, 0.5)
    assert wk.originals_exact_code_set == 1.0
    wf = v.worst_family_kind
    assert wf is not None
    assert (wf.scope, wf.family, wf.kind) == ("family x kind", "joint_injection", "note")
    assert wf.describe() == ("joint_injection x note, exact 0.0% (0/2), leak 50.0%; the same "
                             "cases as written 100.0%")


def test_the_worst_group_needs_enough_variants_when_some_group_has_them() -> None:
    cases = make_cases()
    TAGS = {"family": "vascular", "user": "coder", "kind": "coding"}
    big = QuestionCase(id="dvt", tags=TAGS, question="Venous duplex of one leg?",
                       expect_codes=("93971",),
                       variants=tuple({"kind": "note", "question": f"note {i}: one leg duplex"}
                                      for i in range(3)))
    results = [result(v, [("93971", "verified")] if i else []) for i, v in
               enumerate(big.variant_cases())]
    # A single abbreviation variant that missed: too small a group to be named worst.
    (knee_abbr,) = [v for v in cases["knee"].variant_cases() if v.variant_kind == "abbreviation"]
    results.append(result(knee_abbr, []))
    v = summarize(results).variants
    assert v is not None and v.worst_family_kind is not None
    assert (v.worst_family_kind.family, v.worst_family_kind.kind) == ("vascular", "note")
    assert v.worst_family_kind.min_cases == 3
    assert v.worst_kind is not None and v.worst_kind.kind == "note"


def test_report_and_json_show_the_split_the_worst_group_and_what_was_answered() -> None:
    run = make_run()
    md = markdown_report(run)
    assert "## Generalization: the questions as written vs their variants" in md
    assert "| exact code set | 100.0% | 33.3% | 100.0% |" in md
    assert "- worst variant kind (over all families): note, exact 0.0% (0/2), leak 50.0%" in md
    assert ("- worst variant family (family x kind, among groups of 1 or more variants): "
            "joint_injection x note, exact 0.0% (0/2)") in md
    assert "### Variants by kind" in md
    assert "| note | 2 | 0.0% | 50.0% |" in md
    assert "## Hold-out questions" in md
    # Every missed case says what the system answered, with statuses.
    line = next(x for x in md.splitlines() if x.startswith("- `knee~v1`"))
    assert line.startswith(
        "- `knee~v1` (question, joint_injection, note variant): expected 20611 verified or "
        "corrected; forbidden 20610 was recommended (verified); forbidden 76942 was "
        "recommended (verified)")
    assert line.endswith(". Answered: 20610 verified, 76942 verified")
    assert ("forbidden 20606 was shown (not_verified). Answered: 20606 not_verified") in md
    assert "- `ho-hip` (question, joint_injection, hold-out): " in md
    # The timeout is an error, named once, under its own heading.
    assert "## Errors: no answer" in md
    assert "- `elbow~v3` (question, joint_injection, coder variant): timeout: ModelTimeout" in md
    assert md.count("`elbow~v3`") == 1
    data = json.loads(json.dumps(run.model_dump(mode="json")))
    v = data["summary"]["variants"]
    assert v["by_kind"]["note"]["exact_code_set"] == 0.0
    assert v["worst_kind"]["kind"] == "note"
    assert v["worst_family_kind"]["family"] == "joint_injection"
    assert data["summary"]["holdout"]["system"]["cases"] == 1
    knee_v1 = next(c for c in data["cases"] if c["id"] == "knee~v1")
    assert (knee_v1["variant_of"], knee_v1["variant_kind"]) == ("knee", "note")
    assert knee_v1["tags"]["variant"] == "note"


def test_compare_sees_variant_regressions() -> None:
    old = make_run().model_dump(mode="json")
    old["summary"]["variants"]["system"]["exact_code_set"] = 0.9
    old["summary"]["variants"]["by_kind"]["abbreviation"]["exact_code_set"] = 1.0
    found = {(r.scope, r.metric) for r in compare(old, make_run())}
    assert ("variants", "exact_code_set") in found
    assert ("variants/kind=abbreviation", "exact_code_set") in found
    assert ("system", "exact_code_set") not in found


# ------------------------------------------------------------------ errors and answers


def test_a_timeout_is_an_error_not_a_forbidden_code() -> None:
    case = make_cases()["knee"]
    # The fallback after a timeout shows retrieval candidates, never recommended.
    view = AnswerView(codes=[CodeView(code="20610", status="not_verified")],
                      error="model gave no draft: ModelTimeout: too slow", error_kind="timeout")
    s = score_question(case, view, CAT)
    assert s.failures == ["no answer (timeout): model gave no draft: ModelTimeout: too slow"]
    assert not any("forbidden" in f for f in s.failures)
    assert (s.exact, s.passed, s.leaked, s.error_kind) == (False, False, [], "timeout")
    assert s.answered == ["20610 not_verified"]


class FakeAdvisor:
    """Just enough of Advisor for the Runner: answers each question from a table."""

    def __init__(self, answers: dict[str, Answer | Exception]) -> None:
        self.answers = answers
        self.catalog = CAT
        self.settings = Settings(backend="none")
        self.retriever = self
        self.asked: list[str] = []

    def search(self, query: str, k: int | None = None) -> RetrievalResult:
        return RetrievalResult(query=query, passages=[], candidates=[])

    def ask(self, question: str, history: Any = None) -> Answer:
        self.asked.append(question)
        self.retriever.search(question)
        reply = self.answers[question]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def backend_label(self) -> str:
        return "fake"

    def chat_model(self) -> None:
        return None


def answer(codes: dict[str, CodeStatus], text: str = "Answer.", model_error: str | None = None,
           removed: tuple[str, ...] = ()) -> Answer:
    return Answer(
        answer=text, ruleset=CAT.ruleset, backend="fake",
        codes=[CodeLine(code=c, status=s) for c, s in codes.items()],
        removed=[CodeLine(code=c, status=CodeStatus.REMOVED) for c in removed],
        model_error=model_error, path="fallback" if model_error else "draft",
    )


def test_the_runner_scores_a_timed_out_answer_as_an_error_and_keeps_the_whole_answer() -> None:
    long_text = "Use 20611. " + "Why: the guidance is included in the code. " * 30
    assert len(long_text) > 1000
    knee = make_cases()["knee"]
    adv = FakeAdvisor({
        knee.turns[-1]: answer({"20611": CodeStatus.VERIFIED}, long_text, removed=("76942",)),
        "note: ultrasound-guided knee injection?": answer(
            {"20610": CodeStatus.NOT_VERIFIED, "20611": CodeStatus.NOT_VERIFIED},
            "No model drafted this answer.", model_error="ModelTimeout: too slow"),
        "abbreviation: ultrasound-guided knee injection?": RuntimeError("index broken"),
        "clinician: ultrasound-guided knee injection?": answer(
            {}, model_error="ModelUnavailable: no file"),
    })
    runner = Runner(adv)  # type: ignore[arg-type]
    suite = load_suites([write_suite_of(knee)], CAT)
    run = runner.run(suite, select_cases(suite))
    by_id = {r.id: r for r in run.cases}
    first = by_id["knee"]
    assert first.answer == long_text  # stored whole
    assert first.system.answered == ["20611 verified", "76942 removed"]  # type: ignore[union-attr]
    assert first.system.passed
    timed_out = by_id["knee~v1"].system
    assert (timed_out.error_kind, timed_out.exact) == ("timeout", False)  # type: ignore[union-attr]
    assert timed_out.failures == [  # type: ignore[union-attr]
        "no answer (timeout): model gave no draft: ModelTimeout: too slow"]
    assert timed_out.answered == ["20610 not_verified", "20611 not_verified"]  # type: ignore[union-attr]
    assert by_id["knee~v2"].system.error_kind == "pipeline"  # type: ignore[union-attr]
    assert by_id["knee~v3"].system.error_kind == "model"  # type: ignore[union-attr]
    v = run.summary.variants
    assert v is not None and (v.system.errors, v.system.timeouts) == (3, 1)
    assert v.system.forbidden_leak_rate == 0.0


def write_suite_of(case: QuestionCase) -> Path:
    import tempfile

    d = Path(tempfile.mkdtemp())
    variants = "".join(
        f"  - {{kind: {v.kind}, question: {json.dumps(v.question)}}}\n" for v in case.variants)
    return write(d, (
        f"suite: one\ncases:\n- id: {case.id}\n  question: {json.dumps(case.question)}\n"
        f"  expect_codes: [{', '.join(case.expect_codes)}]\n"
        f"  forbid_codes: [{', '.join(case.forbid_codes)}]\n"
        "  tags: {family: joint_injection, user: clinician, kind: coding}\n"
        f"  variants:\n{variants}"))


# --------------------------------------------------------------------------- command


def fake_run_question(self: Runner, case: QuestionCase):  # type: ignore[no-untyped-def]
    calls.append(case.id)
    if case.id == CRASH_AT[0]:
        raise KeyboardInterrupt
    ok = not isinstance(case, VariantCase) or case.variant_kind != "distractor"
    view = AnswerView(codes=[CodeView(code=c, status="verified") for c in
                             (case.expect_codes if ok else ("20610",))])
    return score_question(case, view, CAT), "answer"


calls: list[str] = []
CRASH_AT = [""]


def test_an_interrupted_run_with_variants_resumes(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ADVISOR_BACKEND", "none")
    monkeypatch.setattr(Runner, "run_question", fake_run_question)
    monkeypatch.setattr("advisor.evaluation.command._ensure_index", lambda *a: None)
    suite = write(tmp_path, SUITE)
    out = tmp_path / "out"
    calls.clear()
    CRASH_AT[0] = "q-knee~v2"
    with pytest.raises(KeyboardInterrupt):
        run_eval([str(suite)], out=out, show_progress=False, stdout=io.StringIO(),
                 stderr=io.StringIO())
    done = [json.loads(x)["id"] for x in (out / CHECKPOINT).read_text().splitlines()[1:]]
    assert done == ["q-knee", "q-conv", "ho-abd", "c-pair", "q-knee~v1"]

    calls.clear()
    CRASH_AT[0] = ""
    err = io.StringIO()
    run, _ = run_eval([str(suite)], out=out, show_progress=False, stdout=io.StringIO(),
                      stderr=err)
    assert "resuming: 5 of 7 cases" in err.getvalue()
    assert calls == ["q-knee~v2", "q-conv~v1"]
    assert [c.id for c in run.cases] == [*done, "q-knee~v2", "q-conv~v1"]
    v = run.summary.variants
    assert v is not None
    assert (v.system.cases, v.by_kind["distractor"].exact_code_set) == (3, 0.0)
    assert run.summary.system.cases == 2 and run.summary.holdout is not None
    report = (out / "report.md").read_text()
    assert "worst variant kind (over all families): distractor" in report

    # --variants none is another run: it does not take the finished variants for its own.
    calls.clear()
    run, _ = run_eval([str(suite)], out=tmp_path / "out2", variants="none",
                      show_progress=False, stdout=io.StringIO(), stderr=io.StringIO())
    assert calls == ["q-knee", "q-conv", "ho-abd"]
    assert run.summary.variants is None
    assert run.filters == {"variants": "none"}


def test_cli_variants_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ADVISOR_BACKEND", "none")
    suite = write(tmp_path, SUITE)
    runner = CliRunner()
    res = runner.invoke(app, ["eval", str(suite), "--variants", "sometimes"])
    assert res.exit_code == 2
    assert "use all, none or only" in res.output
    res = runner.invoke(app, ["eval", str(suite), "--variants", "only", "--tag", "kind=check",
                              "--json"])
    assert res.exit_code == 2
    assert "no case matches the tags ['kind=check'] (--variants only)" in res.output
    res = runner.invoke(app, ["eval", str(suite), "--variants", "none", "--tag", "kind=check",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert [c["id"] for c in json.loads(res.stdout)["cases"]] == ["c-pair"]
    res = runner.invoke(app, ["eval", "--help"])
    assert "--variants" in res.output
