"""The evaluation harness: suite loading, metrics, report writing, comparisons, the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.cli import app
from advisor.evaluation.metrics import (
    AnswerView,
    CitationView,
    CodeView,
    FindingView,
    RetrievedView,
    aggregate_questions,
    percentile,
    rule_matches,
    score_check,
    score_question,
)
from advisor.evaluation.report import compare, format_regressions, markdown_report, write_outputs
from advisor.evaluation.runner import CaseResult, EvalRun, parse_raw_codes, summarize
from advisor.evaluation.suite import (
    CheckCase,
    QuestionCase,
    SuiteError,
    load_suites,
    select_cases,
)
from knowledge.catalog import load_catalog

CAT = load_catalog()

GOOD = """\
suite: sample
cases:
- id: q-knee
  question: "US-guided knee injection?"
  expect_codes: [20611]
  forbid_codes: [20610, 76942]
  tags: {family: joint_injection, user: clinician, kind: coding}
- id: q-conv
  conversation: ["Venous duplex one leg?", "And both legs?"]
  expect_codes: [93970]
  tags: {family: vascular, user: coder, kind: follow_up}
- id: c-pair
  type: check
  codes: "20610 76942"
  expect_verdict: fail
  expect_findings: [pairs.bundled]
  tags: {family: joint_injection, user: coder, kind: check}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def q(**kw) -> QuestionCase:
    base = {"id": "x", "question": "q?", "tags": {"family": "joint_injection", "user": "coder",
                                                  "kind": "coding"}}
    return QuestionCase.model_validate(base | kw)


# ------------------------------------------------------------------------------ loading


def test_loads_cases_of_both_kinds_and_folders(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    suites = load_suites([tmp_path], CAT)
    cases = suites[0].cases
    assert [type(c).__name__ for c in cases] == ["QuestionCase", "QuestionCase", "CheckCase"]
    assert cases[0].expect_codes == ("20611",)  # YAML ints become code strings
    assert cases[1].turns == ("Venous duplex one leg?", "And both legs?")
    assert [c.id for c in select_cases(suites, ["coder"])] == ["q-conv", "c-pair"]
    assert [c.id for c in select_cases(suites, ["kind=check"])] == ["c-pair"]
    assert [c.id for c in select_cases(suites, [], limit=1)] == ["q-knee"]
    assert [c.id for c in select_cases(suites, ["id=c-pair, q-knee"])] == ["q-knee", "c-pair"]
    # --sample: spread evenly, the same cases each time, never more than there are.
    assert [c.id for c in select_cases(suites, [], sample=2)] == ["q-knee", "q-conv"]
    assert [c.id for c in select_cases(suites, [], sample=1)] == ["q-knee"]
    assert len(select_cases(suites, [], sample=10)) == 3


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("expect_codes: [20611]", "expect_code: [20611]"),
         [":5: case q-knee: expect_code: Extra inputs are not permitted"]),
        (("user: clinician", "user: nurse"), [":7: case q-knee: tags.user:"]),
        (("expect_verdict: fail", "expect_verdict: maybe"), [":15: case c-pair: expect_verdict:"]),
        (("forbid_codes: [20610, 76942]", "forbid_codes: [2061]"),
         [":6: case q-knee: forbid_codes:", "not a code: 2061"]),
        (('  question: "US-guided knee injection?"\n', ""),
         ["case q-knee: (case): Value error, give exactly one of question or conversation"]),
    ],
)
def test_bad_file_names_file_line_case_and_field(tmp_path: Path, edit, expected) -> None:
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(SuiteError) as info:
        load_suites([path], CAT)
    text = str(info.value)
    assert str(path) in text
    for part in expected:
        assert part in text, text


def test_cross_checks_ids_families_codes_and_sources(tmp_path: Path) -> None:
    bad = GOOD.replace("id: q-conv", "id: q-knee").replace(
        "family: vascular", "family: cardiology"
    ).replace("expect_codes: [20611]", "expect_codes: [37250]\n  expect_sources: [nowhere]")
    path = write(tmp_path, bad)
    with pytest.raises(SuiteError) as info:
        load_suites([path], CAT)
    problems = info.value.problems
    assert any("case q-knee: id: duplicate" in p for p in problems)
    assert any("tags.family: unknown family 'cardiology'" in p for p in problems)
    assert any("expect_codes: 37250 is deleted" in p for p in problems)
    assert any("expect_sources: unknown source key 'nowhere'" in p for p in problems)


def test_yaml_syntax_error_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "suite: x\ncases:\n- {id: a, question: [unclosed\n")
    with pytest.raises(SuiteError, match=r"s\.yaml:\d+: YAML syntax error"):
        load_suites([path], CAT)
    with pytest.raises(SuiteError, match="no such file"):
        load_suites([tmp_path / "nope.yaml"], CAT)


# ------------------------------------------------------------------------------ metrics


def view(codes, findings=(), citations=(), retrieved=(), latency=100, error=None) -> AnswerView:
    return AnswerView(
        codes=[CodeView(code=c, status=s, modifiers=list(m)) for c, s, *m in codes],
        findings=[FindingView(rule=r, severity=sev, codes=list(cs), sources=list(src))
                  for r, sev, cs, src in findings],
        citations=[CitationView(id=i, source=s) for i, s in citations],
        retrieved=[RetrievedView(id=i, source=s, source_keys=list(k)) for i, s, k in retrieved],
        latency_ms=latency,
        error=error,
    )


def test_exact_precision_recall_and_allowed_codes() -> None:
    case = q(question="Wrist tendon sheath injection under ultrasound guidance: codes?",
             expect_codes=["20550"], allow_codes=["76942"], forbid_codes=["20611"])
    s = score_question(case, view([("20550", "corrected"), ("76942", "verified")]), CAT)
    assert s.exact
    assert s.passed
    assert (s.true_positives, s.false_positives, s.false_negatives) == (1, 0, 0)
    s = score_question(case, view([("20550", "verified"), ("20552", "verified")]), CAT)
    assert not s.exact
    assert (s.true_positives, s.false_positives) == (1, 1)
    # A not-verified code is shown but not recommended: the expected code is missing.
    s = score_question(case, view([("20550", "not_verified")]), CAT)
    assert s.false_negatives == 1
    assert not s.passed
    assert not s.exact


def test_leak_needs_a_forbidden_code_shown_as_valid() -> None:
    case = q(question="Ultrasound-guided knee injection: codes?", expect_codes=["20611"],
             forbid_codes=["76942"])
    leaked = score_question(case, view([("20611", "verified"), ("76942", "verified")]), CAT)
    flagged = score_question(case, view([("20611", "verified"), ("76942", "not_verified")]), CAT)
    removed = score_question(case, view([("20611", "verified"), ("76942", "removed")]), CAT)
    assert leaked.leaked == ["76942"]
    assert flagged.leaked == []
    assert not flagged.passed
    assert removed.leaked == []
    assert removed.passed
    m = aggregate_questions([leaked, flagged, removed])
    assert m.forbidden_leak_rate == pytest.approx(1 / 3, abs=1e-3)


def test_unflagged_invalid_is_decided_by_the_checker() -> None:
    case = q()
    # Unknown code shown verified with no finding.
    s = score_question(case, view([("76943", "verified")]), CAT)
    assert s.unflagged_invalid == ["76943"]
    # Deleted code shown verified, but a warning about it is shown: flagged.
    deleted = [("existence.deleted", "error", ["37250"], [])]
    s = score_question(case, view([("37250", "verified")], findings=deleted), CAT)
    assert s.unflagged_invalid == []
    # A pair that breaks a rule together (20610 + 76942), shown verified: both invalid.
    s = score_question(case, view([("20610", "verified"), ("76942", "verified")]), CAT)
    assert set(s.unflagged_invalid) == {"20610", "76942"}
    # A valid pair is not invalid; an info finding does not flag anything.
    line = q(question="Ultrasound-guided central line in an adult: codes?")
    s = score_question(line, view([("36556", "verified"), ("76937", "verified")]), CAT)
    assert s.unflagged_invalid == []
    # Judged with the question it answers: an add-on asked about during its named primary
    # is valid alone; with no such question it is not.
    ivus = q(question="Coronary IVUS of one vessel during PCI, add-on code?")
    assert score_question(ivus, view([("92978", "verified")]), CAT).unflagged_invalid == []
    assert score_question(case, view([("92978", "verified")]), CAT).unflagged_invalid == [
        "92978"
    ]
    # ... as written: an abbreviation read only in its written case (TV, transvaginal) is
    # read by the scorer's check as by the pipeline's
    pelvis = q(question="Complete TA + TV pelvic US same session, non-OB: codes?")
    s = score_question(pelvis, view([("76856", "verified"), ("76830", "verified")]), CAT)
    assert s.unflagged_invalid == []
    knee = q(question="Ultrasound-guided knee injection: codes?")
    m = aggregate_questions([score_question(case, view([("76943", "verified")]), CAT),
                             score_question(knee, view([("20611", "verified")]), CAT)])
    assert m.unflagged_invalid_rate == 0.5


def test_finding_recall_sources_and_citation_validity() -> None:
    case = q(expect_findings=["pairs.bundled", "modifiers"], expect_sources=["AAPC_76937",
                                                                               "ACEP_FAQ"])
    v = view(
        [("20611", "verified")],
        findings=[("pairs.bundled", "error", ["20610"], ["supercoder_2061x"]),
                  ("modifiers.bilateral", "error", ["93970"], [])],
        citations=[("p1", "guidelines/a.md"), ("p2", "guidelines/b.md"), ("p9", "x.md")],
        retrieved=[("p1", "guidelines/a.md", ["AAPC_76937"]), ("p2", "guidelines/other.md", [])],
    )
    s = score_question(case, v, CAT)
    assert (s.findings_hit, s.findings_expected) == (2, 2)
    assert (s.citations_valid, s.citations_total) == (1, 3)  # p2 source differs; p9 not retrieved
    assert (s.sources_hit, s.sources_expected) == (1, 2)
    assert "expected source ACEP_FAQ cited" in s.failures
    m = aggregate_questions([s])
    assert m.citation_validity == pytest.approx(1 / 3, abs=1e-3)
    assert m.finding_recall == 1.0
    assert m.source_recall == 0.5
    assert rule_matches("pairs", "pairs.bundled")
    assert not rule_matches("pair", "pairs.bundled")


def test_expect_no_codes_latency_budget_and_errors() -> None:
    case = q(expect_no_codes=True, max_latency_ms=50)
    s = score_question(case, view([("76942", "not_verified")], latency=80), CAT)
    assert not s.exact
    assert len(s.failures) == 2
    assert score_question(q(expect_no_codes=True), view([]), CAT).passed
    err = score_question(q(expect_codes=["20611"]), view([], error="boom"), CAT)
    assert err.error == "boom"
    assert not err.exact
    m = aggregate_questions([err, score_question(q(), view([], latency=10), CAT)])
    assert m.errors == 1
    assert m.latency_p50_ms == 10.0


def test_percentiles_and_empty_aggregates() -> None:
    assert percentile([], 50) is None
    assert percentile([10, 20, 30, 40], 50) == 25.0
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    m = aggregate_questions([])
    assert m.cases == 0
    assert m.exact_code_set is None
    assert m.latency_p95_ms is None


def test_check_scores() -> None:
    case = CheckCase.model_validate({
        "id": "c", "type": "check", "codes": "20610 76942", "expect_verdict": "fail",
        "expect_findings": ["pairs.bundled"], "forbid_findings": ["units"],
        "expect_status": {20611: "corrected"},
        "tags": {"family": "joint_injection", "user": "coder", "kind": "check"},
    })
    ok = score_check(case, "fail", ["pairs.bundled"], {"20611": "corrected"})
    assert ok.passed
    bad = score_check(case, "review", ["units.over_limit"], {})
    assert bad.failures == [
        "verdict review, expected fail", "expected finding pairs.bundled",
        "finding units must not fire", "20611 is absent, expected corrected",
    ]


def test_raw_codes_parse() -> None:
    codes = parse_raw_codes(["+76937", "76641-50", "unknown", "20611", "20611", ""])
    assert [(c.code, c.modifiers, c.status) for c in codes] == [
        ("76937", [], "verified"), ("76641", ["50"], "verified"), ("unknown", [], "verified"),
        ("20611", [], "verified"),
    ]


# ------------------------------------------------------------------ report and compare


def make_run(pass_knee: bool = True) -> EvalRun:
    knee = q(id="q-knee", question="Ultrasound-guided knee injection: codes?",
             expect_codes=["20611"], forbid_codes=["76942"])
    obs = q(id="q-ob", question="Complete OB ultrasound at 20 weeks, one fetus",
            expect_codes=["76805"],
            tags={"family": "obstetric", "user": "clinician", "kind": "coding"})
    good = [("20611", "corrected")] if pass_knee else [("20611", "verified"),
                                                       ("76942", "verified")]
    results = [
        CaseResult(id="q-knee", suite="s", type="question", tags=knee.tags.values(),
                   prompt="knee", system=score_question(knee, view(good, latency=900), CAT),
                   baseline=score_question(knee, view([("20610", "verified"),
                                                       ("76942", "verified")]), CAT)),
        CaseResult(id="q-ob", suite="s", type="question", tags=obs.tags.values(), prompt="ob",
                   system=score_question(obs, view([("76805", "verified")], latency=1200), CAT),
                   baseline=score_question(obs, view([("76805", "verified")]), CAT)),
    ]
    return EvalRun(started="2026-11-26T00:00:00+00:00", seconds=3.2, backend="fake",
                   ruleset=CAT.ruleset, baseline="raw", suites=["suites/s.yaml"],
                   summary=summarize(results), cases=results)


def test_summary_side_by_side_and_per_tag() -> None:
    run = make_run()
    s = run.summary
    assert s.system.exact_code_set == 1.0
    assert s.baseline is not None
    assert s.baseline.exact_code_set == 0.5
    assert s.baseline.forbidden_leak_rate == 1.0
    assert set(s.system_by_tag["family"]) == {"joint_injection", "obstetric"}
    assert s.baseline_by_tag["family"]["joint_injection"].unflagged_invalid_rate == 1.0


def test_report_json_and_png_are_written(tmp_path: Path) -> None:
    run = make_run(pass_knee=False)
    paths = write_outputs(run, tmp_path / "out", command="advisor eval suites")
    md = paths["report"].read_text(encoding="utf-8")
    assert "| exact code set | 50.0% | 50.0% | +0.0 pts |" in md
    assert "### By family" in md
    assert "`q-knee`" in md
    assert "advisor eval suites" in md
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["summary"]["system"]["forbidden_leak_rate"] == 1.0
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["chart"].stat().st_size > 5000
    assert "Lookup and check cases" in markdown_report(run)


def test_compare_reports_regressions() -> None:
    old = make_run(pass_knee=True).model_dump(mode="json")
    new = make_run(pass_knee=False)
    regs = compare(old, new)
    found = {(r.scope, r.metric) for r in regs}
    assert ("system", "exact_code_set") in found
    assert ("system", "forbidden_leak_rate") in found
    assert ("system/family=joint_injection", "pass_rate") in found
    assert ("case", "q-knee") in found
    assert ("system/family=obstetric", "exact_code_set") not in found
    text = format_regressions(regs)
    assert "exact_code_set 100.0% -> 50.0%" in text
    assert compare(old, make_run(pass_knee=True)) == []
    assert format_regressions([]) == "No regressions against the earlier run."


# ----------------------------------------------------------------------------- command


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ADVISOR_BACKEND", "none")
    return tmp_path


def test_eval_command_checks_only_writes_outputs_and_compares(cli_env: Path) -> None:
    suite = write(cli_env, GOOD.split("- id: q-knee")[0] + GOOD.split("- id: q-conv")[1].split(
        "\n", 4)[-1])
    assert "q-knee" not in suite.read_text()
    out = cli_env / "out"
    runner = CliRunner()
    res = runner.invoke(app, ["eval", str(suite), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["summary"]["checks"]["passed"] == 1
    assert (out / "report.md").exists()
    assert (out / "chart.png").exists()
    # Compare with a doctored earlier run in which a case passed that now fails.
    old = json.loads((out / "results.json").read_text())
    old["summary"]["checks"]["verdict_accuracy"] = 1.5
    (cli_env / "old.json").write_text(json.dumps(old))
    res = runner.invoke(app, ["eval", str(suite), "--compare", str(cli_env / "old.json")])
    assert res.exit_code == 1
    assert "checks: verdict_accuracy" in res.stdout


def test_eval_command_bad_input_exits_2(cli_env: Path) -> None:
    bad = write(cli_env, GOOD.replace("expect_verdict: fail", "expect_verdct: fail"))
    runner = CliRunner()
    res = runner.invoke(app, ["eval", str(bad)])
    assert res.exit_code == 2
    assert "case c-pair: expect_verdct: Extra inputs are not permitted" in res.output
    res = runner.invoke(app, ["eval", str(bad), "--baseline", "oracle"])
    assert res.exit_code == 2
    good = write(cli_env, GOOD, "good.yaml")
    res = runner.invoke(app, ["eval", str(good), "--tag", "nothing-matches"])
    assert res.exit_code == 2
    assert "no case matches" in res.output


def test_an_interrupted_run_resumes_from_its_checkpoint(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from advisor.evaluation.command import CHECKPOINT, run_eval
    from advisor.evaluation.runner import Runner

    checks = "".join(
        f"- id: c-{i}\n  type: check\n  codes: \"20610 76942\"\n  expect_verdict: fail\n"
        f"  tags: {{family: joint_injection, user: coder, kind: check}}\n"
        for i in range(5)
    )
    suite = write(cli_env, "suite: resume\ncases:\n" + checks)
    out = cli_env / "out"
    real = Runner.run_check
    calls: list[str] = []

    def crash_on_third(self: Runner, case: CheckCase):  # type: ignore[no-untyped-def]
        calls.append(case.id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, case)

    monkeypatch.setattr(Runner, "run_check", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_eval([str(suite)], out=out, show_progress=False, stdout=io.StringIO(),
                 stderr=io.StringIO())
    lines = (out / CHECKPOINT).read_text().splitlines()
    assert json.loads(lines[0])["header"]["suites"] == [str(suite)]
    assert [json.loads(x)["id"] for x in lines[1:]] == ["c-0", "c-1"]

    calls.clear()
    monkeypatch.setattr(Runner, "run_check", lambda self, case: calls.append(case.id) or real(
        self, case))
    err = io.StringIO()
    run, status = run_eval([str(suite)], out=out, show_progress=False, stdout=io.StringIO(),
                           stderr=err)
    assert status == 0
    assert "resuming: 2 of 5 cases" in err.getvalue()
    assert calls == ["c-2", "c-3", "c-4"]  # the finished cases are not run again
    assert [c.id for c in run.cases] == [f"c-{i}" for i in range(5)]
    assert run.summary.checks.passed == 5
    assert not (out / CHECKPOINT).exists()
    assert json.loads((out / "results.json").read_text())["summary"]["checks"]["passed"] == 5

    # A different run (other filters) into the same folder does not take those results.
    calls.clear()
    (out / CHECKPOINT).write_text(lines[0] + "\n" + "\n".join(lines[1:]) + "\n")
    run_eval([str(suite)], out=out, limit=4, show_progress=False, stdout=io.StringIO(),
             stderr=io.StringIO())
    assert calls == ["c-0", "c-1", "c-2", "c-3"]


def test_partial_reports_the_finished_cases_and_keeps_the_checkpoint(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from advisor.evaluation.command import CHECKPOINT, EvalUsageError, run_eval
    from advisor.evaluation.runner import Runner

    checks = "".join(
        f"- id: p-{i}\n  type: check\n  codes: \"20610 76942\"\n  expect_verdict: fail\n"
        f"  tags: {{family: joint_injection, user: coder, kind: check}}\n"
        for i in range(4)
    )
    suite = write(cli_env, "suite: part\ncases:\n" + checks)
    out = cli_env / "out"
    with pytest.raises(EvalUsageError, match="--out"):
        run_eval([str(suite)], partial=True, show_progress=False, stdout=io.StringIO())
    with pytest.raises(EvalUsageError, match="--sample must be at least 1"):
        run_eval([str(suite)], sample=0, show_progress=False, stdout=io.StringIO())
    real = Runner.run_check
    calls: list[str] = []

    def crash_on_fourth(self: Runner, case: CheckCase):  # type: ignore[no-untyped-def]
        calls.append(case.id)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, case)

    monkeypatch.setattr(Runner, "run_check", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        run_eval([str(suite)], out=out, show_progress=False, stdout=io.StringIO(),
                 stderr=io.StringIO())
    before = (out / CHECKPOINT).read_text()

    calls.clear()
    stdout, err = io.StringIO(), io.StringIO()
    run, status = run_eval([str(suite)], out=out, partial=True, show_progress=False,
                           stdout=stdout, stderr=err)
    assert status == 0 and calls == []  # nothing was run
    assert [c.id for c in run.cases] == ["p-0", "p-1", "p-2"]
    assert run.summary.checks.passed == 3
    assert run.filters["partial"].startswith("3 of 4 cases")
    assert "3 of 4 cases" in err.getvalue() and "--partial" in stdout.getvalue()
    assert json.loads((out / "results.json").read_text())["filters"]["partial"]
    assert (out / CHECKPOINT).read_text() == before  # read only: the run can still resume

    # Another run's options find nothing to report.
    with pytest.raises(EvalUsageError, match="no finished cases"):
        run_eval([str(suite)], out=out, partial=True, limit=2, show_progress=False,
                 stdout=io.StringIO(), stderr=io.StringIO())


def test_a_case_reads_its_earlier_turn_as_the_pipeline_does() -> None:
    TAGS = {"family": "joint_injection", "user": "coder", "kind": "follow_up"}
    follow = QuestionCase(id="f", tags=TAGS, conversation=("US-guided knee injection, code?",
                                                "and if both knees?"))
    assert follow.earlier == "US-guided knee injection, code?"
    alone = QuestionCase(id="a", tags=TAGS, conversation=(
        "US-guided knee injection, code?",
        "A separate question: complete bilateral lower extremity venous duplex for DVT?"))
    assert alone.earlier == ""
    assert QuestionCase(id="q", tags=TAGS, question="Complete abdominal ultrasound?").earlier == ""


# ------------------------------------------ error cases and what the system answered


class _TimingOutModel:
    """A chat model whose every call runs out of time (as llama.cpp does past its limit)."""

    @staticmethod
    def build():  # type: ignore[no-untyped-def]
        from langchain_core.language_models import BaseChatModel

        from advisor.llm import ModelTimeout

        class TimingOut(BaseChatModel):
            @property
            def _llm_type(self) -> str:
                return "timing-out"

            def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
                raise ModelTimeout("The model did not finish within 120 s.")

        return TimingOut()


class _Candidates:
    """A retriever offering fixed candidate codes and no passages."""

    def __init__(self, codes: list[str]) -> None:
        self.codes = codes

    def search(self, query: str, k: int | None = None):  # type: ignore[no-untyped-def]
        from advisor.retriever import Candidate, RetrievalResult

        return RetrievalResult(query=query, passages=[], candidates=[
            Candidate(code=c, label=CAT.codes[c].label, why="test", score=1.0)
            for c in self.codes])


def test_a_model_timeout_is_an_error_case_not_a_forbidden_code(tmp_path: Path) -> None:
    from advisor.evaluation.runner import Runner
    from advisor.pipeline import Advisor
    from advisor.settings import Settings

    advisor = Advisor(Settings(data_dir=tmp_path, backend="embedded"), catalog=CAT,
                      retriever=_Candidates(["20610", "20611", "76942"]),
                      model=_TimingOutModel.build())
    case = q(id="q-knee", question="What do I bill for an ultrasound-guided knee injection?",
             expect_codes=["20611"], forbid_codes=["20610", "76942"])
    suite = load_suites([write(tmp_path, "suite: t\ncases:\n- {id: x, question: 'x?', tags: "
                                         "{family: joint_injection, user: coder, "
                                         "kind: coding}}\n")], CAT)
    suite[0].cases[0] = case
    run = Runner(advisor).run(suite, [case])
    (res,) = run.cases
    s = res.system
    # The fallback showed candidates 'not verified'; nothing was recommended.
    assert not [f for f in s.failures if "forbidden" in f], s.failures
    assert s.error is not None and "ModelTimeout" in s.error
    assert run.summary.system.errors == 1
    assert run.summary.system.forbidden_leak_rate == 0.0
    md = markdown_report(run)
    assert "## Errors: no answer" in md
    assert "- `q-knee` (question, joint_injection): timeout: " in md


def test_each_missed_case_shows_what_the_system_answered_and_the_answer_is_kept_whole(
    tmp_path: Path,
) -> None:
    from advisor.evaluation.runner import Runner
    from advisor.pipeline import Answer, CodeLine
    from guardrails.report import CodeStatus

    long_text = "Report 20611. " + "The ultrasound guidance is part of the code. " * 20
    answers = {
        "US-guided knee injection?": Answer(
            answer=long_text, ruleset=CAT.ruleset, backend="fake",
            codes=[CodeLine(code="20611", status=CodeStatus.VERIFIED),
                   CodeLine(code="20610", status=CodeStatus.NOT_VERIFIED)],
            removed=[CodeLine(code="76942", status=CodeStatus.REMOVED)]),
    }

    class Fake:
        catalog = CAT
        retriever = _Candidates([])

        def ask(self, question, history=None):  # type: ignore[no-untyped-def]
            return answers[question]

        def backend_label(self) -> str:
            return "fake"

        def chat_model(self) -> None:
            return None

    suites = load_suites([write(tmp_path, GOOD)], CAT)
    run = Runner(Fake()).run(suites, [suites[0].cases[0]])  # type: ignore[arg-type]
    (res,) = run.cases
    assert res.answer == long_text
    assert res.system.failures == ["forbidden 20610 was shown (not_verified)"]
    assert ("- `q-knee` (question, joint_injection): forbidden 20610 was shown (not_verified). "
            "Answered: 20611 verified, 20610 not_verified, 76942 removed") in markdown_report(run)
