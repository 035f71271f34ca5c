"""Apply the fixes that findings carry, and re-check until nothing more can be fixed."""

from __future__ import annotations

from dataclasses import dataclass, replace

from guardrails.checker import check, overall_of
from guardrails.report import (
    CheckReport,
    CodeStatus,
    CodeVerdict,
    Draft,
    DraftCode,
    Finding,
    OnFail,
    Severity,
)
from guardrails.rules.base import compiled_for
from knowledge.catalog import Catalog

_CARRY = ("RT", "LT", "50")


def apply(report: CheckReport, *, drop: bool = True) -> Draft:
    """The structured draft with every FIX applied (and DROP applied when ``drop``)."""
    lines = list(report.draft.codes)
    # A code one fix names as the right one is not removed by another fix of the same round
    # (the question says "no Doppler": 93307 stays though the one-TTE edit would keep 93306).
    wanted = {
        c for f in report.findings if f.on_fail is OnFail.FIX and f.fix for c in f.fix.add
    }
    for f in report.findings:
        if f.on_fail is OnFail.FIX and f.fix is not None:
            fix = f.fix
            gone = set(fix.remove) - wanted
            removed = [ln for ln in lines if ln.code in gone]
            carry = tuple(m for ln in removed for m in ln.modifiers if m in _CARRY)
            lines = [ln for ln in lines if ln.code not in gone]
            present = {ln.code for ln in lines}
            for code in fix.add:
                if code not in present:
                    lines.append(DraftCode(code, 1, tuple(dict.fromkeys(carry)),
                                           reason=f"corrected: {fix.description}"))
                    present.add(code)
            units = dict(fix.set_units)
            if units:
                # A unit limit counts the code's lines together: one line carries the units.
                seen: set[str] = set()
                kept_lines = []
                for ln in lines:
                    if ln.code in units and ln.code in seen:
                        continue
                    seen.add(ln.code)
                    kept_lines.append(ln)
                lines = kept_lines
            drops = set(fix.drop_modifiers)
            adds: dict[str, tuple[str, ...]] = {}
            for code, mod in fix.add_modifiers:
                adds[code] = (*adds.get(code, ()), mod)
            lines = [
                DraftCode(
                    ln.code,
                    units.get(ln.code, ln.units),
                    tuple(
                        dict.fromkeys(
                            [m for m in ln.modifiers if (ln.code, m) not in drops]
                            + list(adds.get(ln.code, ()))
                        )
                    ),
                    ln.reason,
                    ln.citations,
                    ln.add_on_mark,
                )
                for ln in lines
            ]
        elif drop and f.on_fail is OnFail.DROP:
            gone = set(f.fix.remove) if f.fix and f.fix.remove else set(f.codes)
            lines = [ln for ln in lines if ln.code not in gone]
    return replace(report.draft, codes=tuple(lines))


@dataclass(frozen=True)
class Outcome:
    """Result of check-and-repair: the final draft, its report and a verdict per code."""

    first: CheckReport
    final: CheckReport
    draft: Draft
    verdicts: tuple[CodeVerdict, ...]
    findings: tuple[Finding, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON form: the check shape with final verdicts."""
        return {
            "verdict": overall_of(self.findings, self.verdicts).value,
            "codes": [v.to_dict() for v in self.verdicts],
            "findings": [f.to_dict() for f in self.findings],
            "ruleset": self.final.ruleset,
        }


def check_and_repair(
    draft: Draft | str, catalog: Catalog, *, drop: bool = True, max_rounds: int = 3
) -> Outcome:
    """Check, apply deterministic fixes, re-check; verdicts say verified/corrected/removed."""
    first = check(draft, catalog)
    report = first
    current = first.draft
    for _ in range(max_rounds):
        fixed = apply(report, drop=drop)
        if [ln.code for ln in fixed.codes] == [ln.code for ln in current.codes] and [
            (ln.units, ln.modifiers) for ln in fixed.codes
        ] == [(ln.units, ln.modifiers) for ln in current.codes]:
            break
        current = fixed
        # Text-level findings were reported on the first pass; re-check the codes alone.
        report = check(replace(current, text=""), catalog)
    original = {v.code: v for v in first.verdicts}
    final_codes = {v.code: v for v in report.verdicts}
    verdicts: list[CodeVerdict] = []
    for code, v in original.items():
        if code not in final_codes:
            verdicts.append(CodeVerdict(code, CodeStatus.REMOVED, v.units, v.modifiers, v.findings))
    for code, v in final_codes.items():
        if code in original:
            changed = original[code].units != v.units or original[code].modifiers != v.modifiers
            status = v.status
            if changed and status is CodeStatus.VERIFIED:
                status = CodeStatus.CORRECTED
            findings = tuple(dict.fromkeys(original[code].findings + v.findings))
            verdicts.append(CodeVerdict(code, status, v.units, v.modifiers, findings))
        else:
            status = CodeStatus.CORRECTED if v.status is CodeStatus.VERIFIED else v.status
            verdicts.append(CodeVerdict(code, status, v.units, v.modifiers, v.findings))
    verdicts, follow = _addons_follow_primaries(
        verdicts, catalog, current.context, {v.code: v.findings for v in report.verdicts}
    )
    findings = tuple(dict.fromkeys(first.findings + report.findings + follow))
    return Outcome(first, report, current, tuple(verdicts), findings)


_SHOWN_OK = (CodeStatus.VERIFIED, CodeStatus.CORRECTED)


def _addons_follow_primaries(
    verdicts: list[CodeVerdict],
    catalog: Catalog,
    question: str,
    final: dict[str, tuple[Finding, ...]],
) -> tuple[list[CodeVerdict], tuple[Finding, ...]]:
    """An add-on is never shown as verified when no primary beside it is.

    The checker verifies each code's own rules; an add-on also stands on its primary, so a
    primary left 'not verified' (a modifier in doubt, a missing element) takes the add-on's
    verified status with it. One exception: the question itself names the primary procedure
    ("IVUS during PCI") and the drafted primary is unverified only because its own facts are
    weakly sourced (no rule finding against it): the add-on stands on the question, as it
    would drafted alone.
    """
    asked = compiled_for(catalog).primary_asked
    low = question.lower()
    out = list(verdicts)
    found: list[Finding] = []
    changed = True
    while changed:
        changed = False
        ok = {v.code for v in out if v.status in _SHOWN_OK}
        present = {v.code for v in out if v.status is not CodeStatus.REMOVED}
        for i, v in enumerate(out):
            ap = catalog.addon_primaries(v.code)
            if v.status not in _SHOWN_OK or ap is None or ap.primaries & ok:
                continue
            beside = sorted(ap.primaries & present)
            if not beside:
                continue  # no primary at all: the add-on rules already report that
            rx = asked.get(v.code)
            # The primary is judged on the last round (``final``): a fix already applied
            # (a dropped modifier) is no finding against it any more.
            if rx is not None and rx.search(low) and all(
                f.severity is Severity.INFO for p in beside for f in final.get(p, ())
            ):
                continue
            f = Finding(
                "add_on.primary_not_verified",
                Severity.WARNING,
                (v.code,),
                f"{v.code} is an add-on to {', '.join(beside)}, which is not verified; the "
                f"add-on is not verified either.",
                sources=catalog.codes[v.code].sources if v.code in catalog.codes else (),
            )
            found.append(f)
            out[i] = CodeVerdict(v.code, CodeStatus.NOT_VERIFIED, v.units, v.modifiers,
                                 (*v.findings, f))
            changed = True
    return out, tuple(found)
