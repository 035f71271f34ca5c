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
    ErrorKind,
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
from advisor.evaluation.suite import (
    VARIANT_KINDS,
    CheckCase,
    QuestionCase,
    Suite,
    VariantCase,
    origin,
)
from knowledge.codes import CODE_LIKE

if TYPE_CHECKING:
    from advisor.pipeline import Advisor, Answer
    from knowledge.catalog import Catalog

log = logging.getLogger(__name__)

BaselineKind = Literal["raw"]
Group = Literal["originals", "variants", "holdout"]
# The tags the report groups originals and hold-out cases by; variants also by kind.
REPORT_TAGS = ("family", "user", "kind")
Progress = Callable[[str], None]
_RAW_CODE_RE = re.compile(rf"^\+?({CODE_LIKE})((?:-[A-Za-z0-9]{{2}})*)")


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


def model_error_kind(error: str) -> ErrorKind:
    """'timeout' for a model call that ran out of time, else 'model'."""
    return "timeout" if error.startswith("ModelTimeout") else "model"


def view_of_answer(
    answer: Answer, retrieved: Sequence[RetrievedView], latency_ms: int
) -> AnswerView:
    """The scoring view of a pipeline Answer (its removed codes included, as removed).

    An answer the model could not draft (a timeout, a model that failed to load) is an
    error: its fallback candidates are kept to show what was answered, never scored.
    """
    shown = {c.code for c in answer.codes}
    model_error = getattr(answer, "model_error", None)
    return AnswerView(
        codes=[
            CodeView(
                code=c.code,
                status=str(getattr(c.status, "value", c.status)),
                units=c.units,
                modifiers=list(c.modifiers),
            )
            for c in answer.codes
        ] + [
            CodeView(code=c.code, status="removed", units=c.units, modifiers=list(c.modifiers))
            for c in getattr(answer, "removed", [])
            if c.code not in shown
        ],
        error=f"model gave no draft: {model_error}" if model_error else None,
        error_kind=model_error_kind(model_error) if model_error else None,
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
    answer: str = Field("", description="The system's answer text, whole.")
    variant_of: str | None = Field(None, description="For a variant: the id of its case.")
    variant_kind: str | None = Field(None, description="For a variant: how it rewords it.")

    @property
    def group(self) -> Group:
        """Which figures the case counts in: originals, variants or hold-out."""
        if self.variant_of is not None:
            return "variants"
        return "holdout" if self.tags.get("set") == "holdout" else "originals"


def case_key(suite: str, case_id: str) -> str:
    """A case's identity across runs: suite name and case id."""
    return f"{suite}/{case_id}"


class GroupSummary(BaseModel):
    """Question figures of one group of cases (hold-out), overall and per tag."""

    system: QuestionMetrics
    baseline: QuestionMetrics | None = None
    system_by_tag: dict[str, dict[str, QuestionMetrics]] = Field(default_factory=dict)
    baseline_by_tag: dict[str, dict[str, QuestionMetrics]] = Field(default_factory=dict)


class WorstGroup(BaseModel):
    """The group of variants with the lowest exact code-set share."""

    scope: Literal["kind", "family x kind"] = Field(
        description="'kind': over all families; 'family x kind': one family, one kind."
    )
    family: str | None = Field(None, description="The family (scope 'family x kind').")
    kind: str = Field(description="The variant kind.")
    cases: int = Field(description="Variants in the group.")
    exact: int = Field(description="Of them, with the exact code set.")
    exact_code_set: float | None = None
    forbidden_leak_rate: float | None = None
    originals_exact_code_set: float | None = Field(
        None, description="Exact share of the same cases as written, when they ran too."
    )
    min_cases: int = Field(description="Smallest group size considered.")

    def describe(self) -> str:
        """One line for a person: 'joint_injection x note, exact 0.0% (0/2), leak ...'."""
        name = self.kind if self.scope == "kind" else f"{self.family} x {self.kind}"
        share = f"{self.exact_code_set:.1%}" if self.exact_code_set is not None else "-"
        out = f"{name}, exact {share} ({self.exact}/{self.cases})"
        if self.forbidden_leak_rate is not None:
            out += f", leak {self.forbidden_leak_rate:.1%}"
        if self.originals_exact_code_set is not None:
            out += f"; the same cases as written {self.originals_exact_code_set:.1%}"
        return out


class VariantSummary(BaseModel):
    """Figures of the variants, apart from the cases as written."""

    system: QuestionMetrics
    baseline: QuestionMetrics | None = None
    originals: QuestionMetrics | None = Field(
        None, description="The cases these variants reword, as written (those that ran)."
    )
    by_kind: dict[str, QuestionMetrics] = Field(default_factory=dict)
    baseline_by_kind: dict[str, QuestionMetrics] = Field(default_factory=dict)
    by_family: dict[str, QuestionMetrics] = Field(default_factory=dict)
    by_family_kind: dict[str, QuestionMetrics] = Field(
        default_factory=dict, description="'family x kind' -> figures."
    )
    missed_where_original_exact: int = Field(
        0, description="Variants without the exact code set whose case as written had it."
    )
    worst_kind: WorstGroup | None = None
    worst_family_kind: WorstGroup | None = None


class Summary(BaseModel):
    """Aggregates of one run.

    ``system``/``baseline`` and their per-tag tables cover the public cases as written, the
    figures earlier runs report; variants and hold-out cases have their own blocks.
    """

    system: QuestionMetrics
    baseline: QuestionMetrics | None = None
    checks: CheckMetrics
    system_by_tag: dict[str, dict[str, QuestionMetrics]] = Field(default_factory=dict)
    baseline_by_tag: dict[str, dict[str, QuestionMetrics]] = Field(default_factory=dict)
    checks_by_tag: dict[str, dict[str, CheckMetrics]] = Field(default_factory=dict)
    variants: VariantSummary | None = None
    holdout: GroupSummary | None = None


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


# A family x kind group smaller than this says little; the worst is sought among larger ones
# (or among all when none is that large).
WORST_MIN_CASES = 3


def _tagged(
    results: Sequence[CaseResult], names: Sequence[str], baseline: bool = False
) -> list[tuple[dict[str, str], Any]]:
    out = []
    for r in results:
        score = r.baseline if baseline else r.system
        if score is not None:
            out.append(({k: r.tags[k] for k in names if k in r.tags}, score))
    return out


def _exact(r: CaseResult) -> bool:
    return isinstance(r.system, QuestionScore) and r.system.exact


def _worst(
    groups: dict[str, list[CaseResult]],
    scope: Literal["kind", "family x kind"],
    originals: dict[str, CaseResult],
) -> WorstGroup | None:
    if not groups:
        return None
    floor = WORST_MIN_CASES if any(len(g) >= WORST_MIN_CASES for g in groups.values()) else 1
    ranked = []
    for name, group in groups.items():
        if len(group) < floor:
            continue
        m = aggregate_questions([r.system for r in group])  # type: ignore[misc]
        # Lowest exact first; then the higher leak; then the larger group.
        ranked.append(((m.exact_code_set or 0.0, -(m.forbidden_leak_rate or 0.0), -len(group),
                        name), name, group, m))
    _, name, group, m = min(ranked)
    paired = [originals[r.variant_of] for r in group if r.variant_of in originals]
    orig = aggregate_questions([r.system for r in paired]) if paired else None  # type: ignore[misc]
    family, _, kind = name.rpartition(" x ")
    return WorstGroup(
        scope=scope, family=family or None, kind=kind, cases=len(group),
        exact=sum(1 for r in group if _exact(r)),
        exact_code_set=m.exact_code_set, forbidden_leak_rate=m.forbidden_leak_rate,
        originals_exact_code_set=orig.exact_code_set if orig else None, min_cases=floor,
    )


def _variant_summary(
    variants: Sequence[CaseResult], originals: Sequence[CaseResult]
) -> VariantSummary:
    agg: Any = aggregate_questions
    by_id = {r.id: r for r in originals}
    paired = [by_id[i] for i in dict.fromkeys(r.variant_of for r in variants) if i in by_id]
    kinds: dict[str, list[CaseResult]] = {}
    cells: dict[str, list[CaseResult]] = {}
    families: dict[str, list[CaseResult]] = {}
    order = {k: i for i, k in enumerate(VARIANT_KINDS)}
    for r in sorted(variants, key=lambda r: order.get(r.variant_kind or "", 99)):
        kind, family = r.variant_kind or "?", r.tags.get("family", "?")
        kinds.setdefault(kind, []).append(r)
        families.setdefault(family, []).append(r)
        cells.setdefault(f"{family} x {kind}", []).append(r)
    base = [r.baseline for r in variants if r.baseline is not None]
    missed = sum(
        1 for r in variants
        if not _exact(r) and r.variant_of in by_id and _exact(by_id[r.variant_of])
    )
    return VariantSummary(
        system=agg([r.system for r in variants]),
        baseline=agg(base) if base else None,
        originals=agg([r.system for r in paired]) if paired else None,
        by_kind={k: agg([r.system for r in g]) for k, g in kinds.items()},
        baseline_by_kind={
            k: agg([r.baseline for r in g if r.baseline is not None])
            for k, g in kinds.items() if any(r.baseline is not None for r in g)
        },
        by_family={k: agg([r.system for r in g]) for k, g in sorted(families.items())},
        by_family_kind={k: agg([r.system for r in g]) for k, g in sorted(cells.items())},
        missed_where_original_exact=missed,
        worst_kind=_worst(kinds, "kind", by_id),
        worst_family_kind=_worst(cells, "family x kind", by_id),
    )


def summarize(results: Sequence[CaseResult]) -> Summary:
    """Overall and per-tag figures: public cases as written, variants, hold-out, checks."""
    agg: Any = aggregate_questions
    questions = [r for r in results if r.type == "question"]
    originals = [r for r in questions if r.group == "originals"]
    variants = [r for r in questions if r.group == "variants"]
    holdout = [r for r in questions if r.group == "holdout"]
    checks = [r for r in results if r.type == "check"]
    base = [r.baseline for r in originals if r.baseline is not None]
    hold_base = [r.baseline for r in holdout if r.baseline is not None]
    return Summary(
        system=agg([r.system for r in originals]),
        baseline=agg(base) if base else None,
        checks=aggregate_checks([r.system for r in checks]),  # type: ignore[misc]
        system_by_tag=by_tag(_tagged(originals, REPORT_TAGS), agg),
        baseline_by_tag=by_tag(_tagged(originals, REPORT_TAGS, True), agg) if base else {},
        checks_by_tag=by_tag(_tagged(checks, REPORT_TAGS), aggregate_checks),
        variants=_variant_summary(variants, originals) if variants else None,
        holdout=GroupSummary(
            system=agg([r.system for r in holdout]),
            baseline=agg(hold_base) if hold_base else None,
            system_by_tag=by_tag(_tagged(holdout, REPORT_TAGS), agg),
            baseline_by_tag=by_tag(_tagged(holdout, REPORT_TAGS, True), agg) if hold_base
            else {},
        ) if holdout else None,
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
            failed = getattr(answer, "model_error", None)
            if failed and i < len(case.turns) - 1:
                # The scored turn would follow up an answer the model never drafted.
                view = AnswerView(
                    error=f"model gave no draft for turn {i + 1}: {failed}",
                    error_kind=model_error_kind(failed),
                )
                return score_question(case, view, self.catalog), answer.answer
        if answer is None:
            view = AnswerView(error=error or "no answer", error_kind="pipeline",
                              latency_ms=latency)
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
            error = f"{type(exc).__name__}: {exc}"
            view = AnswerView(
                error=error, latency_ms=_ms(time.perf_counter() - started),
                error_kind=model_error_kind(error),
            )
        return score_question(case, view, self.catalog)

    def run_check(self, case: CheckCase) -> CheckScore:
        """Run a claim line (and text) through the checker, as ``advisor check`` does."""
        from guardrails import check_claim
        from guardrails.claims import MalformedCode

        started = time.perf_counter()
        try:
            result = check_claim(case.codes.split(), self.catalog, text=case.text).to_dict()
        except MalformedCode as exc:
            return score_check(case, "bad_input", [f"malformed: {exc}"], {})
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
        names = {id(c): s.name for s in suites for c in s.cases}

        def suite_of(case: QuestionCase | CheckCase) -> str:
            return names.get(id(origin(case)), "")

        has_questions = any(isinstance(c, QuestionCase) for c in cases)
        if self.baseline and has_questions and self.advisor.chat_model() is None:
            self.baseline_note = (
                "baseline skipped: no chat model is available for backend "
                f"'{self.advisor.backend_label()}'"
            )
        results: list[CaseResult] = []
        for case in cases:
            earlier = (done or {}).get(case_key(suite_of(case), case.id))
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
                variant = case if isinstance(case, VariantCase) else None
                results.append(CaseResult(
                    id=case.id, suite=suite_of(case), type="question",
                    tags=case.tag_values(), prompt=case.turns[-1], system=score,
                    baseline=base, answer=text,
                    variant_of=variant.variant_of if variant else None,
                    variant_kind=variant.variant_kind if variant else None,
                ))
            else:
                prompt = " | ".join(p for p in (case.codes, case.text) if p)
                results.append(CaseResult(
                    id=case.id, suite=suite_of(case), type="check",
                    tags=case.tag_values(), prompt=prompt, system=self.run_check(case),
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
