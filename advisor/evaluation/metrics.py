"""Scoring: one answer against its case, and many scores into the report's figures.

Every figure is computed from an :class:`AnswerView`, the part of an answer that scoring
needs, so the full system and the raw-model baseline are scored by the same code. Whether a
code the answer shows is actually valid is decided again here, from the catalog and the
checker, never from what the answer says about itself.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from advisor.evaluation.suite import CheckCase, QuestionCase

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

SHOWN_OK = frozenset({"verified", "corrected"})
# Why a case has no answer: the model ran out of time, the model failed otherwise (could not
# load, broken output), or the pipeline itself raised.
ErrorKind = Literal["timeout", "model", "pipeline"]


class CodeView(BaseModel):
    """A code as the answer shows it."""

    code: str
    status: str = Field(description="verified, corrected, removed or not_verified.")
    units: int = 1
    modifiers: list[str] = Field(default_factory=list)


class FindingView(BaseModel):
    """A finding as the answer shows it."""

    rule: str
    severity: str = "info"
    codes: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)


class CitationView(BaseModel):
    """A citation of the answer."""

    id: str
    source: str


class RetrievedView(BaseModel):
    """A passage the retriever returned for the question."""

    id: str
    source: str
    source_keys: list[str] = Field(default_factory=list)


class AnswerView(BaseModel):
    """What scoring needs of an answer (system or baseline)."""

    codes: list[CodeView] = Field(
        default_factory=list, description="Codes of the answer with their status (removed too)."
    )
    findings: list[FindingView] = Field(default_factory=list)
    citations: list[CitationView] = Field(default_factory=list)
    retrieved: list[RetrievedView] = Field(
        default_factory=list, description="Passages retrieved while answering (any turn)."
    )
    latency_ms: int = 0
    path: str = ""
    error: str | None = Field(None, description="Why no answer was produced.")
    error_kind: ErrorKind | None = Field(None, description="timeout, model or pipeline.")


def describe_code(c: CodeView) -> str:
    """'76942 removed', '93970-59x2 verified': a code as the answer showed it."""
    mods = "".join(f"-{m}" for m in c.modifiers)
    units = f"x{c.units}" if c.units > 1 else ""
    return f"{c.code}{mods}{units} {c.status}"


class QuestionScore(BaseModel):
    """One question case scored."""

    recommended: list[str] = Field(description="Codes shown verified or corrected.")
    shown: list[str] = Field(description="All codes shown (any status but removed).")
    exact: bool
    true_positives: int
    false_positives: int
    false_negatives: int
    forbidden_cases: int = Field(description="1 when the case forbids any code.")
    leaked: list[str] = Field(description="Forbidden codes shown verified or corrected.")
    unflagged_invalid: list[str] = Field(
        description="Invalid codes shown verified or corrected with no finding about them."
    )
    findings_expected: int
    findings_hit: int
    missing_findings: list[str]
    sources_expected: int
    sources_hit: int
    citations_total: int
    citations_valid: int
    latency_ms: int
    passed: bool
    failures: list[str]
    error: str | None = None
    error_kind: ErrorKind | None = Field(
        None, description="Why there was no answer; such a case is not scored on its codes."
    )
    answered: list[str] = Field(
        default_factory=list,
        description="Every code of the answer with its status ('76942 removed').",
    )


class CheckScore(BaseModel):
    """One check case scored."""

    verdict: str
    findings: list[str]
    statuses: dict[str, str]
    verdict_ok: bool
    findings_expected: int
    findings_hit: int
    latency_ms: int
    passed: bool
    failures: list[str]


def rule_matches(expected: str, fired: str) -> bool:
    """'pairs.bundled' matches itself; a family id 'pairs' matches any 'pairs.*' rule."""
    return fired == expected or fired.startswith(expected + ".")


def _invalid_codes(
    codes: Sequence[CodeView], catalog: Catalog, question: str = "", history: str = ""
) -> dict[str, str]:
    """Code -> why, for shown codes that are unknown, deleted or break a rule together."""
    from guardrails.checker import check
    from guardrails.report import Draft, DraftCode, Severity

    why: dict[str, str] = {}
    for c in codes:
        status = catalog.status(c.code)
        if status != "active":
            why[c.code] = f"{status} code"
    lines = tuple(
        DraftCode(c.code, max(1, c.units), tuple(c.modifiers)) for c in codes if c.code not in why
    )
    if lines:
        # Judged as the checker judges an answer: with the question it answers, as written
        # (abbreviations such as TV or GON are read only in their written case).
        report = check(Draft(codes=lines, context=question, history=history), catalog)
        for f in report.findings:
            if f.severity is Severity.INFO:
                continue
            for code in f.codes:
                if code in {ln.code for ln in lines}:
                    why.setdefault(code, f.rule)
    return why


def score_question(case: QuestionCase, view: AnswerView, catalog: Catalog) -> QuestionScore:
    """Score one answer against its case.

    A case with no answer (``view.error``: a model timeout, a model that failed, a pipeline
    error) is an error case: it counts as a miss, and nothing is said about codes it did
    not recommend (a fallback's candidates are shown 'not verified', never recommended).
    """
    if view.error:
        return _score_error(case, view)
    allowed = set(case.allow_codes)
    expected = set(case.expect_codes)
    shown_views = [c for c in view.codes if c.status != "removed"]
    ok_views = [c for c in shown_views if c.status in SHOWN_OK]
    recommended = list(dict.fromkeys(c.code for c in ok_views))
    shown = list(dict.fromkeys(c.code for c in shown_views))
    rec = set(recommended)
    tp = len(rec & expected)
    fp = len(rec - allowed - expected)
    fn = len(expected - rec)
    exact = (rec - allowed) == expected and (not case.expect_no_codes or not shown)
    leaked = [c for c in recommended if c in set(case.forbid_codes)]

    flagged = {code for f in view.findings if f.severity != "info" for code in f.codes}
    invalid = _invalid_codes(ok_views, catalog, case.turns[-1], case.earlier)
    unflagged = [c for c in recommended if c in invalid and c not in flagged]

    fired = [f.rule for f in view.findings]
    missing = [e for e in case.expect_findings if not any(rule_matches(e, r) for r in fired)]

    by_id = {p.id: p for p in view.retrieved}
    cited_keys: set[str] = {s for f in view.findings for s in f.sources}
    valid = 0
    for cit in view.citations:
        passage = by_id.get(cit.id)
        if passage is not None and passage.source == cit.source:
            valid += 1
            cited_keys.update(passage.source_keys)
    sources_hit = sum(1 for k in case.expect_sources if k in cited_keys)

    status_of = {c.code: c.status for c in shown_views}
    failures: list[str] = []
    for code in case.expect_codes:
        if code not in rec:
            failures.append(f"expected {code} verified or corrected")
    for code in case.forbid_codes:
        if code in rec:
            failures.append(f"forbidden {code} was recommended ({status_of[code]})")
        elif code in shown:
            failures.append(f"forbidden {code} was shown ({status_of[code]})")
    if case.expect_no_codes and shown:
        failures.append(f"expected no codes, got {', '.join(shown)}")
    failures.extend(f"expected finding {m}" for m in missing)
    failures.extend(
        f"expected source {k} cited" for k in case.expect_sources if k not in cited_keys
    )
    failures.extend(f"{c} shown as valid but {invalid[c]} (no finding)" for c in unflagged)
    if case.max_latency_ms is not None and view.latency_ms > case.max_latency_ms:
        failures.append(f"latency {view.latency_ms} ms over {case.max_latency_ms} ms")
    return QuestionScore(
        recommended=recommended,
        shown=shown,
        exact=exact,
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        forbidden_cases=1 if case.forbid_codes else 0,
        leaked=leaked,
        unflagged_invalid=unflagged,
        findings_expected=len(case.expect_findings),
        findings_hit=len(case.expect_findings) - len(missing),
        missing_findings=missing,
        sources_expected=len(case.expect_sources),
        sources_hit=sources_hit,
        citations_total=len(view.citations),
        citations_valid=valid,
        latency_ms=view.latency_ms,
        passed=not failures,
        failures=failures,
        answered=[describe_code(c) for c in view.codes],
    )


def _score_error(case: QuestionCase, view: AnswerView) -> QuestionScore:
    kind = view.error_kind or "pipeline"
    return QuestionScore(
        recommended=[],
        shown=[],
        exact=False,
        true_positives=0,
        false_positives=0,
        false_negatives=len(set(case.expect_codes)),
        forbidden_cases=1 if case.forbid_codes else 0,
        leaked=[],
        unflagged_invalid=[],
        findings_expected=len(case.expect_findings),
        findings_hit=0,
        missing_findings=list(case.expect_findings),
        sources_expected=len(case.expect_sources),
        sources_hit=0,
        citations_total=0,
        citations_valid=0,
        latency_ms=view.latency_ms,
        passed=False,
        failures=[f"no answer ({kind}): {view.error}"],
        error=view.error,
        error_kind=kind,
        answered=[describe_code(c) for c in view.codes],
    )


def score_check(
    case: CheckCase, verdict: str, findings: Sequence[str], statuses: dict[str, str],
    latency_ms: int = 0,
) -> CheckScore:
    """Score a checker result against a check case."""
    failures: list[str] = []
    if verdict != case.expect_verdict:
        failures.append(f"verdict {verdict}, expected {case.expect_verdict}")
    missing = [e for e in case.expect_findings if not any(rule_matches(e, r) for r in findings)]
    failures.extend(f"expected finding {m}" for m in missing)
    for rule in case.forbid_findings:
        if any(rule_matches(rule, r) for r in findings):
            failures.append(f"finding {rule} must not fire")
    for code, want in case.expect_status.items():
        got = statuses.get(code, "absent")
        if got != want:
            failures.append(f"{code} is {got}, expected {want}")
    return CheckScore(
        verdict=verdict,
        findings=list(dict.fromkeys(findings)),
        statuses=statuses,
        verdict_ok=verdict == case.expect_verdict,
        findings_expected=len(case.expect_findings),
        findings_hit=len(case.expect_findings) - len(missing),
        latency_ms=latency_ms,
        passed=not failures,
        failures=failures,
    )


# ---------------------------------------------------------------------------- aggregates


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


class QuestionMetrics(BaseModel):
    """Figures over a set of question scores; None where nothing was measured."""

    cases: int = Field(description="Cases scored.")
    passed: int = Field(description="Cases meeting every expectation.")
    errors: int = Field(description="Cases with no answer (counted as misses).")
    timeouts: int = Field(0, description="Of the errors, model timeouts.")
    pass_rate: float | None = None
    exact_code_set: float | None = Field(None, description="Share with the exact code set.")
    code_precision: float | None = None
    code_recall: float | None = None
    forbidden_leak_rate: float | None = Field(
        None, description="Share of cases with forbidden codes that showed one as valid."
    )
    unflagged_invalid_rate: float | None = Field(
        None, description="Share of cases showing an invalid code as valid with no finding."
    )
    finding_recall: float | None = None
    source_recall: float | None = None
    citation_validity: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


def aggregate_questions(scores: Sequence[QuestionScore]) -> QuestionMetrics:
    """Micro-averaged figures (sums over cases, then one ratio)."""
    n = len(scores)
    tp = sum(s.true_positives for s in scores)
    fp = sum(s.false_positives for s in scores)
    fn = sum(s.false_negatives for s in scores)
    forbidding = sum(s.forbidden_cases for s in scores)
    lat = [float(s.latency_ms) for s in scores if s.error is None]
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    return QuestionMetrics(
        cases=n,
        passed=sum(s.passed for s in scores),
        errors=sum(s.error is not None for s in scores),
        timeouts=sum(s.error_kind == "timeout" for s in scores),
        pass_rate=_ratio(sum(s.passed for s in scores), n),
        exact_code_set=_ratio(sum(s.exact for s in scores), n),
        code_precision=_ratio(tp, tp + fp),
        code_recall=_ratio(tp, tp + fn),
        forbidden_leak_rate=_ratio(sum(bool(s.leaked) for s in scores), forbidding),
        unflagged_invalid_rate=_ratio(sum(bool(s.unflagged_invalid) for s in scores), n),
        finding_recall=_ratio(
            sum(s.findings_hit for s in scores), sum(s.findings_expected for s in scores)
        ),
        source_recall=_ratio(
            sum(s.sources_hit for s in scores), sum(s.sources_expected for s in scores)
        ),
        citation_validity=_ratio(
            sum(s.citations_valid for s in scores), sum(s.citations_total for s in scores)
        ),
        latency_p50_ms=round(p50, 1) if p50 is not None else None,
        latency_p95_ms=round(p95, 1) if p95 is not None else None,
    )


class CheckMetrics(BaseModel):
    """Figures over check cases."""

    cases: int
    passed: int
    pass_rate: float | None = None
    verdict_accuracy: float | None = None
    finding_recall: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


def aggregate_checks(scores: Sequence[CheckScore]) -> CheckMetrics:
    """Figures over check scores."""
    n = len(scores)
    lat = [float(s.latency_ms) for s in scores]
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    return CheckMetrics(
        cases=n,
        passed=sum(s.passed for s in scores),
        pass_rate=_ratio(sum(s.passed for s in scores), n),
        verdict_accuracy=_ratio(sum(s.verdict_ok for s in scores), n),
        finding_recall=_ratio(
            sum(s.findings_hit for s in scores), sum(s.findings_expected for s in scores)
        ),
        latency_p50_ms=round(p50, 1) if p50 is not None else None,
        latency_p95_ms=round(p95, 1) if p95 is not None else None,
    )


def by_tag(
    items: Iterable[tuple[dict[str, str], Any]], aggregate: Any
) -> dict[str, dict[str, Any]]:
    """Tag name -> tag value -> aggregate of the scores carrying it."""
    groups: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for tags, score in items:
        for name, value in tags.items():
            groups[name][value].append(score)
    return {
        name: {value: aggregate(scores) for value, scores in sorted(values.items())}
        for name, values in sorted(groups.items())
    }
