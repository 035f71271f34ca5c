"""Run cases through the real pipeline (and, optionally, the raw-model baseline) and score them.

Question cases go through :meth:`advisor.pipeline.Advisor.ask` exactly as a person's
question would; check cases through the same checker as ``advisor check``. The raw
baseline sends the same question to the same chat model with nothing else: no retrieval,
no candidate codes, no rules, only the JSON schema. Nothing checks its codes, so each one
counts as shown verified.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from advisor.evaluation.metrics import (
    AnswerView,
    CheckMetrics,
    CheckScore,
    CitationView,
    CodeView,
    FindingView,
    QuestionMetrics,
    QuestionScore,
    RetrievedView,
    aggregate_checks,
    aggregate_questions,
    by_tag,
    score_check,
    score_question,
)
from advisor.evaluation.suite import CheckCase, QuestionCase, Suite

if TYPE_CHECKING:
    from advisor.pipeline import Advisor, Answer
    from knowledge.catalog import Catalog

log = logging.getLogger(__name__)

BaselineKind = Literal["raw"]
Progress = Callable[[str], None]
_RAW_CODE_RE = re.compile(r"^\+?([0-9]{5}|[0-9]{4}[A-Za-z]|[A-Za-z][0-9]{4})((?:-[A-Za-z0-9]{2})*)")


class RecordingRetriever:
    """Wraps the pipeline's retriever and keeps what each search returned."""

    def __init__(self, inner: Any) -> None:
        """Wrap ``inner`` (anything with ``search(query, k)``)."""
        self.inner = inner
        self.results: list[Any] = []

    def search(self, query: str, k: int | None = None) -> Any:
        """Search with the wrapped retriever and record the result."""
        result = self.inner.search(query, k)
        self.results.append(result)
        return result

    def passages(self) -> list[RetrievedView]:
        """Every passage recorded since the last reset."""
        out: dict[str, RetrievedView] = {}
        for result in self.results:
            for p in getattr(result, "passages", []):
                out.setdefault(
                    p.id,
                    RetrievedView(
                        id=p.id, source=p.source, source_keys=list(getattr(p, "source_keys", []))
                    ),
                )
        return list(out.values())


def view_of_answer(
    answer: Answer, retrieved: Sequence[RetrievedView], latency_ms: int
) -> AnswerView:
    """The scoring view of a pipeline Answer."""
    return AnswerView(
        codes=[
            CodeView(
                code=c.code,
                status=str(getattr(c.status, "value", c.status)),
                units=c.units,
                modifiers=list(c.modifiers),
            )
            for c in answer.codes
        ],
        findings=[
            FindingView(
                rule=str(f.get("rule", "")),
                severity=str(f.get("severity", "info")),
                codes=[str(c) for c in f.get("codes") or []],
                sources=[str(s) for s in f.get("sources") or []],
            )
            for f in answer.findings
        ],
        citations=[CitationView(id=c.id, source=c.source) for c in answer.citations],
        retrieved=list(retrieved),
        latency_ms=latency_ms,
        path=answer.path,
    )


def parse_raw_codes(items: Sequence[Any]) -> list[CodeView]:
    """Codes of a raw baseline reply ('76942', '+76937', '76641-50'), each 'verified'.

    Nothing checks a raw answer, so every code it gives counts as shown verified. Text that
    is no code at all ('unknown') is kept as written so it counts as an unknown code.
    """
    out: dict[str, CodeView] = {}
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        m = _RAW_CODE_RE.match(text)
        if m:
            code = m.group(1).upper()
            mods = [x.upper() for x in m.group(2).split("-") if x]
        else:
            code, mods = text[:20], []
        out.setdefault(code, CodeView(code=code, status="verified", modifiers=mods))
    return list(out.values())


class CaseResult(BaseModel):
    """One case with its system score and, for questions, its baseline score."""

    id: str
    suite: str
    type: Literal["question", "check"]
    tags: dict[str, str]
    prompt: str = Field(description="The (last) question, or the claim line and text.")
    system: QuestionScore | CheckScore
    baseline: QuestionScore | None = None
    answer: str = Field("", description="The start of the system's answer text.")


def case_key(suite: str, case_id: str) -> str:
    """A case's identity across runs: suite name and case id."""
    return f"{suite}/{case_id}"


class Summary(BaseModel):
    """Aggregates of one run."""

    system: QuestionMetrics
    baseline: QuestionMetrics | None = None
    checks: CheckMetrics
    system_by_tag: dict[str, dict[str, QuestionMetrics]] = Field(default_factory=dict)
    baseline_by_tag: dict[str, dict[str, QuestionMetrics]] = Field(default_factory=dict)
    checks_by_tag: dict[str, dict[str, CheckMetrics]] = Field(default_factory=dict)


class EvalRun(BaseModel):
    """Everything one evaluation produced; written as the JSON file."""

    started: str
    seconds: float
    backend: str
    ruleset: str
    baseline: str | None = None
    baseline_note: str | None = None
    suites: list[str]
    filters: dict[str, Any] = Field(default_factory=dict)
    summary: Summary
    cases: list[CaseResult]


def summarize(results: Sequence[CaseResult]) -> Summary:
    """Overall and per-tag figures for a list of case results."""
    questions = [r for r in results if r.type == "question"]
    checks = [r for r in results if r.type == "check"]
    sys_scores = [(r.tags, r.system) for r in questions]
    base_scores = [(r.tags, r.baseline) for r in questions if r.baseline is not None]
    chk_scores = [(r.tags, r.system) for r in checks]
    return Summary(
        system=aggregate_questions([s for _, s in sys_scores]),  # type: ignore[misc]
        baseline=aggregate_questions([s for _, s in base_scores]) if base_scores else None,  # type: ignore[misc]
        checks=aggregate_checks([s for _, s in chk_scores]),  # type: ignore[misc]
        system_by_tag=by_tag(sys_scores, aggregate_questions),
        baseline_by_tag=by_tag(base_scores, aggregate_questions) if base_scores else {},
        checks_by_tag=by_tag(chk_scores, aggregate_checks),
    )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def build_advisor(settings: Any, catalog: Catalog | None = None, model: Any = None) -> Advisor:
    """An Advisor whose retriever records what it returns (for the citation checks)."""
    from advisor.pipeline import Advisor
    from advisor.retriever import Retriever

    if catalog is None:
        from knowledge.catalog import load_catalog

        cms = settings.cms_dir if settings.cms_dir.exists() else None
        catalog = load_catalog(cms_dir=cms)
    recorder = RecordingRetriever(Retriever(settings, catalog))
    return Advisor(settings, catalog=catalog, retriever=recorder, model=model)


class Runner:
    """Runs cases through one Advisor; build once per evaluation."""

    def __init__(self, advisor: Advisor, baseline: BaselineKind | None = None) -> None:
        """Wrap the advisor's retriever so citations can be checked against what it found."""
        self.advisor = advisor
        self.catalog: Catalog = advisor.catalog
        self.baseline = baseline
        self.baseline_note: str | None = None
        current = advisor.retriever
        if isinstance(current, RecordingRetriever):
            self.recorder = current
        else:
            self.recorder = RecordingRetriever(current)
            # The pipeline reads its retriever from this attribute; wrapping it in place
            # lets the run see exactly the passages each answer was drafted from.
            advisor._retriever = self.recorder

    # -- one case ---------------------------------------------------------------------
    def run_question(self, case: QuestionCase) -> tuple[QuestionScore, str]:
        """Ask every turn; score the last answer."""
        history: list[Answer] = []
        answer: Answer | None = None
        error: str | None = None
        latency = 0
        for i, turn in enumerate(case.turns):
            self.recorder.results.clear()
            started = time.perf_counter()
            try:
                answer = self.advisor.ask(turn, history)
            except Exception as exc:  # one broken case must not end the run
                log.exception("case %s failed", case.id)
                error = f"{type(exc).__name__}: {exc}"
                answer = None
                break
            finally:
                if i == len(case.turns) - 1:
                    latency = _ms(time.perf_counter() - started)
            history.append(answer)
        if answer is None:
            view = AnswerView(error=error or "no answer", latency_ms=latency)
            return score_question(case, view, self.catalog), ""
        view = view_of_answer(answer, self.recorder.passages(), latency)
        return score_question(case, view, self.catalog), answer.answer

    def run_baseline(self, case: QuestionCase) -> QuestionScore:
        """The same question to the same model, alone: no retrieval, candidates or rules."""
        from advisor.llm import text_call
        from advisor.prompts import TEMPLATES, Task, raw_baseline_messages
        from guardrails.claims import extract

        model = self.advisor.chat_model()
        if model is None:
            view = AnswerView(error="no chat model for the baseline")
            return score_question(case, view, self.catalog)
        turns = case.turns
        question = turns[-1]
        if len(turns) > 1:
            earlier = " ".join(f"Earlier question: {t}" for t in turns[:-1])
            question = f"{earlier} Now: {question}"
        started = time.perf_counter()
        try:
            reply = text_call(
                model,
                raw_baseline_messages(question),
                timeout_s=self.advisor.settings.llm_timeout_s,
                max_tokens=TEMPLATES[Task.RAW_BASELINE].max_tokens,
            )
            # The codes the prose recommends (not those it warns against), as written.
            codes = [
                m.code + "".join(f"-{x}" for x in m.modifiers)
                for m in extract(reply).recommended()
            ]
            view = AnswerView(
                codes=parse_raw_codes(codes),
                latency_ms=_ms(time.perf_counter() - started),
                path="raw_baseline",
            )
        except Exception as exc:  # a failed baseline answer scores as no answer
            view = AnswerView(
                error=f"{type(exc).__name__}: {exc}", latency_ms=_ms(time.perf_counter() - started)
            )
        return score_question(case, view, self.catalog)

    def run_check(self, case: CheckCase) -> CheckScore:
        """Run a claim line (and text) through the checker, as ``advisor check`` does."""
        from guardrails.claims import MalformedCode, parse_claim_lines
        from guardrails.repair import check_and_repair
        from guardrails.report import Draft, DraftCode

        started = time.perf_counter()
        try:
            lines = parse_claim_lines(case.codes.split())
        except MalformedCode as exc:
            return score_check(case, "bad_input", [f"malformed: {exc}"], {})
        draft = Draft(
            codes=tuple(
                DraftCode(ln.code, ln.units, ln.modifiers, add_on_mark=ln.add_on_mark)
                for ln in lines
            ),
            text=case.text,
        )
        result = check_and_repair(draft, self.catalog).to_dict()
        latency = _ms(time.perf_counter() - started)
        findings = [str(f["rule"]) for f in result["findings"]]  # type: ignore[index, union-attr]
        statuses = {str(c["code"]): str(c["status"]) for c in result["codes"]}  # type: ignore[index, union-attr]
        return score_check(case, str(result["verdict"]), findings, statuses, latency)

    # -- many cases -------------------------------------------------------------------
    def run(
        self,
        suites: Sequence[Suite],
        cases: Sequence[QuestionCase | CheckCase],
        progress: Progress | None = None,
        filters: dict[str, Any] | None = None,
        done: dict[str, CaseResult] | None = None,
        on_result: Callable[[CaseResult], None] | None = None,
    ) -> EvalRun:
        """Run and score every case; ``progress`` is told each finished case id.

        ``done`` holds results of an interrupted earlier run, keyed by :func:`case_key`; those
        cases are not run again. ``on_result`` is handed each new result as soon as it exists
        (the command appends it to a checkpoint file).
        """
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        t0 = time.perf_counter()
        suite_of = {id(c): s.name for s in suites for c in s.cases}
        has_questions = any(isinstance(c, QuestionCase) for c in cases)
        if self.baseline and has_questions and self.advisor.chat_model() is None:
            self.baseline_note = (
                "baseline skipped: no chat model is available for backend "
                f"'{self.advisor.backend_label()}'"
            )
        results: list[CaseResult] = []
        for case in cases:
            earlier = (done or {}).get(case_key(suite_of.get(id(case), ""), case.id))
            if earlier is not None:
                results.append(earlier)
                if progress is not None:
                    progress(case.id)
                continue
            if isinstance(case, QuestionCase):
                score, text = self.run_question(case)
                base = None
                if self.baseline == "raw" and self.baseline_note is None:
                    base = self.run_baseline(case)
                results.append(CaseResult(
                    id=case.id, suite=suite_of.get(id(case), ""), type="question",
                    tags=case.tags.values(), prompt=case.turns[-1], system=score,
                    baseline=base, answer=text[:400],
                ))
            else:
                prompt = " | ".join(p for p in (case.codes, case.text) if p)
                results.append(CaseResult(
                    id=case.id, suite=suite_of.get(id(case), ""), type="check",
                    tags=case.tags.values(), prompt=prompt, system=self.run_check(case),
                ))
            if on_result is not None:
                on_result(results[-1])
            if progress is not None:
                progress(case.id)
        return EvalRun(
            started=started_at,
            seconds=round(time.perf_counter() - t0, 2),
            backend=self.advisor.backend_label(),
            ruleset=self.catalog.ruleset,
            baseline=self.baseline if self.baseline_note is None else None,
            baseline_note=self.baseline_note,
            suites=[str(s.path) for s in suites],
            filters=filters or {},
            summary=summarize(results),
            cases=results,
        )
