"""Write what a run found: a Markdown report, the JSON results and a PNG chart; compare runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from advisor.evaluation.metrics import QuestionMetrics
from advisor.evaluation.runner import CaseResult, EvalRun, GroupSummary, VariantSummary

HIGHER_IS_BETTER = (
    "pass_rate",
    "exact_code_set",
    "code_precision",
    "code_recall",
    "finding_recall",
    "source_recall",
    "citation_validity",
    "verdict_accuracy",
)
LOWER_IS_BETTER = ("forbidden_leak_rate", "unflagged_invalid_rate")
LATENCY = ("latency_p95_ms",)
LATENCY_TOLERANCE = 0.25  # timings on a shared CPU wander; only a clear slowdown counts

_LABELS = {
    "cases": "cases",
    "errors": "errors (no answer)",
    "timeouts": "of which model timeouts",
    "pass_rate": "all expectations met",
    "exact_code_set": "exact code set",
    "code_precision": "code precision",
    "code_recall": "code recall",
    "forbidden_leak_rate": "forbidden-code leak rate",
    "unflagged_invalid_rate": "unflagged-invalid rate",
    "finding_recall": "expected-finding recall",
    "source_recall": "expected-source recall",
    "citation_validity": "citation validity",
    "latency_p50_ms": "latency p50 (ms)",
    "latency_p95_ms": "latency p95 (ms)",
}


def _fmt(value: Any, key: str = "") -> str:
    """Counts as is, latencies in whole ms, rates as percentages."""
    if value is None:
        return "–"
    if key.endswith("_ms"):
        return f"{float(value):.0f}"
    if isinstance(value, float):
        return f"{value:.1%}"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _lift(key: str, sys_v: Any, base_v: Any) -> str:
    if not isinstance(sys_v, float) or not isinstance(base_v, float):
        return ""
    diff = sys_v - base_v
    return f"{diff:+.0f} ms" if key.endswith("_ms") else f"{diff * 100:+.1f} pts"


def markdown_report(run: EvalRun, command: str | None = None) -> str:
    """The run as a Markdown report: figures side by side, per tag, then what failed."""
    s = run.summary
    out = [
        "# Evaluation report",
        "",
        f"- started: {run.started}; wall time {run.seconds:.1f} s",
        f"- backend: `{run.backend}`; ruleset: `{run.ruleset}`",
        f"- suites: {', '.join(f'`{p}`' for p in run.suites)}",
    ]
    if command:
        out.append(f"- command: `{command}`")
    if run.filters:
        out.append(f"- filters: {json.dumps(run.filters)}")
    if run.baseline_note:
        out.append(f"- {run.baseline_note}")
    out += ["", "## Questions as written (full pipeline vs raw model)", ""]
    base = s.baseline
    head = "| metric | system |" + (" raw baseline | lift |" if base else "")
    rule = "|---|---|" + ("---|---|" if base else "")
    out += [head, rule]
    sys_d = s.system.model_dump()
    base_d = base.model_dump() if base else {}
    for key, label in _LABELS.items():
        row = f"| {label} | {_fmt(sys_d.get(key), key)} |"
        if base:
            lift = _lift(key, sys_d.get(key), base_d.get(key))
            row += f" {_fmt(base_d.get(key), key)} | {lift} |"
        out.append(row)
    out.append("")
    out.append(
        "Exact code set: the codes shown verified or corrected equal the expected set. Leak: a "
        "forbidden code shown verified or corrected. Unflagged invalid: a code shown verified "
        "or corrected that is unknown, deleted or breaks a rule (decided again by the checker) "
        "with no finding about it. Every raw-baseline code counts as shown verified. A case "
        "with no answer (a model timeout, a model that failed, a pipeline error) is an error: "
        "a miss, listed under Errors, never scored on its codes. Variants and hold-out "
        "questions are counted apart (sections below)."
    )
    out += _tag_tables(s.system_by_tag, s.baseline_by_tag, bool(base))
    if s.variants is not None:
        out += _variant_section(s.variants, s.system, bool(base))
    if s.holdout is not None:
        out += _holdout_section(s.holdout)
    c = s.checks
    out += [
        "",
        "## Lookup and check cases (deterministic checker)",
        "",
        f"- passed: {c.passed}/{c.cases} ({_pct(c.pass_rate)}); verdict accuracy "
        f"{_pct(c.verdict_accuracy)}; expected-finding recall {_pct(c.finding_recall)}",
    ]
    errors = [r for r in run.cases if r.type == "question" and r.system.error]  # type: ignore[union-attr]
    if errors:
        out += ["", "## Errors: no answer (counted as misses, not scored on their codes)", ""]
        for r in errors:
            sc = r.system
            out.append(
                f"- `{r.id}` ({_where(r)}): {sc.error_kind}: {sc.error}"  # type: ignore[union-attr]
            )
    failed = [r for r in run.cases if not r.system.passed and r not in errors]
    if failed:
        out += ["", "## Cases that missed an expectation", ""]
        for r in failed:
            why = "; ".join(r.system.failures) or "failed"
            line = f"- `{r.id}` ({_where(r)}): {why}"
            if r.type == "question":
                answered = ", ".join(r.system.answered) or "no codes"  # type: ignore[union-attr]
                line += f". Answered: {answered}"
            out.append(line)
    return "\n".join(out) + "\n"


def _where(r: CaseResult) -> str:
    where = f"{r.type}, {r.tags.get('family')}"
    if r.variant_kind:
        where += f", {r.variant_kind} variant"
    elif r.group == "holdout":
        where += ", hold-out"
    return where


def _tag_tables(
    by_tag: dict[str, dict[str, QuestionMetrics]],
    base_by_tag: dict[str, dict[str, QuestionMetrics]],
    base: bool,
    heading: str = "###",
) -> list[str]:
    out: list[str] = []
    for tag in ("family", "user", "kind"):
        groups = by_tag.get(tag, {})
        if not groups:
            continue
        out += ["", f"{heading} By {tag}", ""]
        if base:
            out.append("| " + tag + " | n | exact (sys / raw) | leak (sys / raw) "
                       "| unflagged invalid (sys / raw) | all met (sys) |")
            out.append("|---|---|---|---|---|---|")
        else:
            out.append(f"| {tag} | n | exact | leak | unflagged invalid | all met |")
            out.append("|---|---|---|---|---|---|")
        for value, m in groups.items():
            b = base_by_tag.get(tag, {}).get(value)
            if base and b is not None:
                out.append(
                    f"| {value} | {m.cases} | {_pct(m.exact_code_set)} / {_pct(b.exact_code_set)}"
                    f" | {_pct(m.forbidden_leak_rate)} / {_pct(b.forbidden_leak_rate)}"
                    f" | {_pct(m.unflagged_invalid_rate)} / {_pct(b.unflagged_invalid_rate)}"
                    f" | {m.passed}/{m.cases} |"
                )
            else:
                out.append(
                    f"| {value} | {m.cases} | {_pct(m.exact_code_set)} "
                    f"| {_pct(m.forbidden_leak_rate)} | {_pct(m.unflagged_invalid_rate)} "
                    f"| {m.passed}/{m.cases} |"
                )
    return out


_SIDE_BY_SIDE = (
    "cases", "errors", "timeouts", "pass_rate", "exact_code_set", "code_precision",
    "code_recall", "forbidden_leak_rate", "unflagged_invalid_rate", "finding_recall",
    "latency_p50_ms", "latency_p95_ms",
)


def _variant_section(v: VariantSummary, originals: QuestionMetrics, base: bool) -> list[str]:
    o, w = originals.model_dump(), v.system.model_dump()
    paired = v.originals.model_dump() if v.originals else {}
    out = [
        "",
        "## Generalization: the questions as written vs their variants",
        "",
        "| metric | as written | variants | as written, same cases |",
        "|---|---|---|---|",
    ]
    for key in _SIDE_BY_SIDE:
        out.append(
            f"| {_LABELS[key]} | {_fmt(o.get(key), key)} | {_fmt(w.get(key), key)} "
            f"| {_fmt(paired.get(key), key)} |"
        )
    if base and v.baseline is not None:
        out.append(f"| raw baseline exact code set | – | {_pct(v.baseline.exact_code_set)} | – |")
    out += [
        "",
        "A variant rewords its case (clinician wording, coder shorthand, a negated or deferred "
        "distractor, a pasted note excerpt, abbreviations) and keeps all its expectations. "
        "'As written, same cases': the cases these variants reword, when they ran too.",
        "",
        f"- variants that missed the exact code set while their case as written had it: "
        f"{v.missed_where_original_exact}",
    ]
    if v.worst_kind is not None:
        out.append(f"- worst variant kind (over all families): {v.worst_kind.describe()}")
    if v.worst_family_kind is not None:
        cell = v.worst_family_kind
        out.append(f"- worst variant family (family x kind, among groups of {cell.min_cases} "
                   f"or more variants): {cell.describe()}")
    out += ["", "### Variants by kind", ""]
    head = "| variant kind | n | exact | leak | unflagged invalid | all met |"
    out += [head + (" raw exact |" if v.baseline_by_kind else ""),
            "|---|---|---|---|---|---|" + ("---|" if v.baseline_by_kind else "")]
    for kind, m in v.by_kind.items():
        row = (f"| {kind} | {m.cases} | {_pct(m.exact_code_set)} | "
               f"{_pct(m.forbidden_leak_rate)} | {_pct(m.unflagged_invalid_rate)} | "
               f"{m.passed}/{m.cases} |")
        if v.baseline_by_kind:
            b = v.baseline_by_kind.get(kind)
            row += f" {_pct(b.exact_code_set if b else None)} |"
        out.append(row)
    out += ["", "### Variants by family", "",
            "| family | n | exact | leak | unflagged invalid | all met |",
            "|---|---|---|---|---|---|"]
    for fam, m in v.by_family.items():
        out.append(f"| {fam} | {m.cases} | {_pct(m.exact_code_set)} | "
                   f"{_pct(m.forbidden_leak_rate)} | {_pct(m.unflagged_invalid_rate)} | "
                   f"{m.passed}/{m.cases} |")
    return out


def _holdout_section(h: GroupSummary) -> list[str]:
    out = ["", "## Hold-out questions (fresh questions kept out of rule writing)", ""]
    head = "| metric | system |" + (" raw baseline | lift |" if h.baseline else "")
    out += [head, "|---|---|" + ("---|---|" if h.baseline else "")]
    sys_d = h.system.model_dump()
    base_d = h.baseline.model_dump() if h.baseline else {}
    for key in _SIDE_BY_SIDE:
        row = f"| {_LABELS[key]} | {_fmt(sys_d.get(key), key)} |"
        if h.baseline:
            row += (f" {_fmt(base_d.get(key), key)} | "
                    f"{_lift(key, sys_d.get(key), base_d.get(key))} |")
        out.append(row)
    out += _tag_tables(h.system_by_tag, h.baseline_by_tag, h.baseline is not None, "###")
    return out


def write_json(run: EvalRun, path: Path) -> Path:
    """The full results as JSON (the input of ``--compare``)."""
    path.write_text(json.dumps(run.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    return path


def write_chart(run: EvalRun, path: Path) -> Path:
    """PNG: exact code-set accuracy and leak rate per family, system beside raw baseline."""
    # The Agg canvas renders to a file without a display or the pyplot global state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = run.summary
    fams = s.system_by_tag.get("family", {})
    names = list(fams) or ["(none)"]
    base = s.baseline_by_tag.get("family", {})
    fig = Figure(figsize=(max(8.0, 0.55 * len(names) + 3), 8.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    x = list(range(len(names)))
    width = 0.4 if base else 0.7
    for ax, key, title in (
        (axes[0], "exact_code_set", "Exact code-set accuracy (higher is better)"),
        (axes[1], "forbidden_leak_rate", "Forbidden-code leak rate (lower is better)"),
    ):
        sys_vals = [getattr(fams[n], key) or 0.0 if n in fams else 0.0 for n in names]
        offset = -width / 2 if base else 0.0
        ax.bar([i + offset for i in x], sys_vals, width, label="system", color="#2b7bba")
        if base:
            base_vals = [
                (getattr(base[n], key) or 0.0) if n in base else 0.0 for n in names
            ]
            ax.bar([i + width / 2 for i in x], base_vals, width, label="raw baseline",
                   color="#e08214")
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("share of cases")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[1].set_xticks(x)
    axes[1].set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    fig.suptitle(f"{run.backend} - ruleset {run.ruleset}", fontsize=10)
    fig.tight_layout()
    fig.savefig(str(path), dpi=110)
    return path


def write_outputs(run: EvalRun, out_dir: Path, command: str | None = None) -> dict[str, Path]:
    """Write report.md, results.json and chart.png into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text(markdown_report(run, command), encoding="utf-8")
    return {
        "report": md,
        "json": write_json(run, out_dir / "results.json"),
        "chart": write_chart(run, out_dir / "chart.png"),
    }


# ------------------------------------------------------------------------------ compare


class Regression(BaseModel):
    """A figure or a case that got worse since an earlier run."""

    scope: str = Field(description="'system', 'system/family=obstetric', 'checks', 'case'.")
    metric: str = Field(description="Metric name, or the case id for a case.")
    old: Any = None
    new: Any = None

    def describe(self) -> str:
        """One line for a person."""
        if self.scope == "case":
            return f"case {self.metric}: passed before, now fails ({self.new})"
        old, new = _fmt(self.old, self.metric), _fmt(self.new, self.metric)
        return f"{self.scope}: {self.metric} {old} -> {new}"


def _worse(metric: str, old: Any, new: Any) -> bool:
    if not isinstance(old, int | float) or not isinstance(new, int | float):
        return False
    if metric in HIGHER_IS_BETTER:
        return new < old - 1e-9
    if metric in LOWER_IS_BETTER:
        return new > old + 1e-9
    if metric in LATENCY:
        return new > old * (1 + LATENCY_TOLERANCE)
    return False


def _compare_metrics(scope: str, old: dict[str, Any], new: dict[str, Any]) -> list[Regression]:
    return [
        Regression(scope=scope, metric=k, old=old.get(k), new=new.get(k))
        for k in (*HIGHER_IS_BETTER, *LOWER_IS_BETTER, *LATENCY)
        if _worse(k, old.get(k), new.get(k))
    ]


def compare(old: dict[str, Any], new: EvalRun | dict[str, Any]) -> list[Regression]:
    """What got worse from ``old`` (a results.json) to ``new``: figures, per tag, cases."""
    new_d = new.model_dump(mode="json") if isinstance(new, EvalRun) else new
    o, n = old.get("summary", {}), new_d.get("summary", {})
    out: list[Regression] = []
    for key in ("system", "checks"):
        if o.get(key) and n.get(key):
            out += _compare_metrics(key, o[key], n[key])
    for group in ("variants", "holdout"):
        before, after = (o.get(group) or {}).get("system"), (n.get(group) or {}).get("system")
        if before and after:
            out += _compare_metrics(group, before, after)
    before_kinds = (o.get("variants") or {}).get("by_kind") or {}
    for kind, metrics in ((n.get("variants") or {}).get("by_kind") or {}).items():
        if before_kinds.get(kind):
            out += _compare_metrics(f"variants/kind={kind}", before_kinds[kind], metrics)
    for key in ("system_by_tag", "checks_by_tag"):
        scope = key.removesuffix("_by_tag")
        for tag, groups in (n.get(key) or {}).items():
            for value, metrics in groups.items():
                before = (o.get(key) or {}).get(tag, {}).get(value)
                if before:
                    out += _compare_metrics(f"{scope}/{tag}={value}", before, metrics)
    before_cases = {c["id"]: c for c in old.get("cases", [])}
    for case in new_d.get("cases", []):
        prev = before_cases.get(case["id"])
        if prev and prev["system"].get("passed") and not case["system"].get("passed"):
            why = "; ".join(case["system"].get("failures") or [])
            out.append(Regression(scope="case", metric=case["id"], old="passed", new=why))
    return out


def load_results(path: Path) -> dict[str, Any]:
    """Read a results.json written by an earlier run."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "summary" not in data:
        raise ValueError(f"{path} is not an evaluation results file (no 'summary')")
    return data


def format_regressions(regressions: Sequence[Regression]) -> str:
    """The regressions as lines, or a line saying there are none."""
    if not regressions:
        return "No regressions against the earlier run."
    return "Regressions against the earlier run:\n" + "\n".join(
        f"  - {r.describe()}" for r in regressions
    )
