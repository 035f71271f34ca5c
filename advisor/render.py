"""Plain-text rendering of check results and answers (terminal; the UI has its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardrails.registry import RuleId
from guardrails.repair import Outcome
from guardrails.report import CodeStatus, CodeVerdict, Finding, Severity
from knowledge.codes import format_line

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

BADGE = {
    CodeStatus.VERIFIED: "VERIFIED",
    CodeStatus.CORRECTED: "CORRECTED",
    CodeStatus.REMOVED: "REMOVED",
    CodeStatus.NOT_VERIFIED: "NOT VERIFIED",
}
MARK = {Severity.ERROR: "ERROR", Severity.WARNING: "WARNING", Severity.INFO: "info"}


def format_finding(f: Finding) -> str:
    """One finding as text with its fix and sources."""
    codes = "+".join(f.codes) if f.codes else "text"
    out = f"  [{MARK[f.severity]}] {f.rule} ({codes}): {f.message}"
    if f.fix is not None:
        out += f"\n      fix: {f.fix.description}"
        if f.fix.alternatives:
            out += f" (alternatives: {', '.join(f.fix.alternatives)})"
    if f.sources:
        out += f"\n      sources: {', '.join(f.sources)} [confidence {f.confidence}]"
    return out


def _status_text(v: CodeVerdict) -> str:
    """A code's status in words; an unknown code is called that, as `advisor lookup` does."""
    if any(f.rule == RuleId.EXISTENCE_UNKNOWN for f in v.findings):
        return "UNKNOWN CODE"
    return BADGE[v.status]


def _label(code: str, catalog: Catalog | None, unknown: bool) -> str:
    if unknown:
        return "not in the ruleset (unknown code): nothing about it can be verified"
    entry = catalog.get(code) if catalog is not None else None
    return entry.label if entry is not None else ""


def format_outcome(
    outcome: Outcome, catalog: Catalog | None = None, *, show_info: bool = False
) -> str:
    """Verdict, a table of the codes (code with modifiers, units, status, label), the
    findings, what each code's documentation needs, and the corrected claim."""
    data = outcome.to_dict()
    lines = [f"verdict: {str(data['verdict']).upper()}   ruleset: {outcome.final.ruleset}", ""]
    rows = []
    for v in outcome.verdicts:
        status = _status_text(v)
        rows.append((format_line(v.code, v.modifiers), str(v.units), status,
                     _label(v.code, catalog, status == "UNKNOWN CODE")))
    if rows:
        head = ("code", "units", "status", "label" if catalog is not None else "")
        w = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
        lines.extend(f"  {r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:<{w[2]}}  {r[3]}".rstrip()
                     for r in [head, *rows])
    # Codes given as alternatives are shown as such: it is what the text says.
    shown = [f for f in outcome.findings if show_info or f.severity is not Severity.INFO
             or f.rule == RuleId.PAIRS_ALTERNATIVES]
    if shown:
        lines.append("")
        lines.append("findings:")
        lines.extend(format_finding(f) for f in shown)
    gone = {v.code for v in outcome.verdicts if v.status is CodeStatus.REMOVED}
    docs = [f for f in outcome.findings if f.rule == RuleId.DOCUMENTATION_REQUIREMENTS
            and not show_info and not set(f.codes) & gone]
    if docs:
        lines.append("")
        lines.append("documentation needed:")
        lines.extend(f"  {f.message}" for f in docs)
    info = [f for f in outcome.findings if f.severity is Severity.INFO and not show_info
            and f.rule not in (RuleId.DOCUMENTATION_REQUIREMENTS, RuleId.PAIRS_ALTERNATIVES)]
    if info:
        lines.append(f"  ({len(info)} informational notes; see --json)")
    if outcome.claim_changed():
        lines.append("")
        claim = outcome.corrected_claim() or "(nothing billable remains)"
        lines.append(f"corrected claim: {claim}")
    return "\n".join(lines)
