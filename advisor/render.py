"""Plain-text rendering of check results and answers (terminal; the UI has its own)."""

from __future__ import annotations

from guardrails.repair import Outcome
from guardrails.report import CodeStatus, Finding, Severity

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


def format_outcome(outcome: Outcome, *, show_info: bool = False) -> str:
    """Verdict per code, findings, and the corrected claim."""
    data = outcome.to_dict()
    lines = [f"verdict: {str(data['verdict']).upper()}   ruleset: {outcome.final.ruleset}", ""]
    for v in outcome.verdicts:
        mods = "".join(f"-{m}" for m in v.modifiers)
        units = f" x{v.units}" if v.units != 1 else ""
        lines.append(f"  {v.code}{mods}{units:<6}  {BADGE[v.status]}")
    shown = [f for f in outcome.findings if show_info or f.severity is not Severity.INFO]
    if shown:
        lines.append("")
        lines.append("findings:")
        lines.extend(format_finding(f) for f in shown)
    info = [f for f in outcome.findings if f.severity is Severity.INFO and not show_info]
    if info:
        lines.append(f"  ({len(info)} informational notes; see --json)")
    claim = " ".join(
        c.code + "".join(f"-{m}" for m in c.modifiers) + (f"x{c.units}" if c.units != 1 else "")
        for c in outcome.draft.codes
    )
    if [c.code for c in outcome.draft.codes] != [v.code for v in outcome.first.verdicts] or any(
        v.status is CodeStatus.CORRECTED for v in outcome.verdicts
    ):
        lines.append("")
        lines.append(f"corrected claim: {claim or '(nothing billable remains)'}")
    return "\n".join(lines)
