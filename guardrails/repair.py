"""Apply the fixes that findings carry, and re-check until nothing more can be fixed."""

from __future__ import annotations

from dataclasses import dataclass, replace

from guardrails.checker import check, overall_of
from guardrails.registry import RuleId, question_rules
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
from knowledge.codes import format_claim

_CARRY = ("RT", "LT", "50")
QUESTION_RULES = question_rules()


def apply(report: CheckReport, *, drop: bool = True) -> Draft:
    """The structured draft with every FIX applied (and DROP applied when ``drop``)."""
    lines = list(report.draft.codes)
    # A code one fix names as the right one is not removed by another fix of the same round
    # (the question says "no Doppler": 93307 stays though the one-TTE edit would keep 93306).
    wanted = {
        c for f in report.findings if f.on_fail is OnFail.FIX and f.fix for c in f.fix.add
    }
    # A code the question rules out (a fit fix removes it) takes its pairs with it: a pair
    # edit's fix on it is moot (a breast biopsy code replaced for a liver question does not
    # take the liver biopsy's 76942 away).
    ruled_out = {
        c for f in report.findings
        if f.rule in QUESTION_RULES and f.severity is Severity.ERROR for c in f.codes
    }
    for f in report.findings:
        if (f.on_fail is OnFail.FIX and f.fix is not None and f.rule not in QUESTION_RULES
                and len(f.codes) > 1 and set(f.codes) & ruled_out):
            continue
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

    def claim_changed(self) -> bool:
        """True when the fixes changed the claim: a line's code, units or modifiers, or the lines.

        The one definition the CLI, the web app and the evaluation use.
        """
        return _keyed(self.first.draft.codes) != _keyed(self.draft.codes)

    def corrected_claim(self) -> str:
        """The claim after the fixes, as a coder keys it ('93971 76937x2 76942-59')."""
        return format_claim((c.code, c.modifiers, c.units) for c in self.draft.codes)

    def to_dict(self) -> dict[str, object]:
        """JSON form: the check shape with final verdicts, and the claim after the fixes."""
        return {
            "verdict": overall_of(self.findings, self.verdicts).value,
            "codes": [v.to_dict() for v in self.verdicts],
            "findings": [f.to_dict() for f in self.findings],
            "ruleset": self.final.ruleset,
            "corrected_claim": [
                {"code": c.code, "units": c.units, "modifiers": list(c.modifiers)}
                for c in self.draft.codes
            ],
            "corrected_claim_text": self.corrected_claim(),
            "claim_changed": self.claim_changed(),
        }


def _keyed(lines: tuple[DraftCode, ...]) -> list[tuple[str, int, tuple[str, ...]]]:
    return [(c.code, c.units, c.modifiers) for c in lines]


def _state(draft: Draft) -> tuple[tuple[str, int, tuple[str, ...]], ...]:
    """The claim as a multiset of lines: order aside, a line drafted twice counts twice."""
    return tuple(sorted((c.code, c.units, tuple(sorted(c.modifiers))) for c in draft.codes))


def check_and_repair(
    draft: Draft | str, catalog: Catalog, *, drop: bool = True, max_rounds: int = 3
) -> Outcome:
    """Check, apply deterministic fixes, re-check; verdicts say verified/corrected/removed.

    A round whose fixes would bring back a claim an earlier round already left (76805 ->
    76801 -> 76805: two rules that disagree) stops the loop: the codes the fixes swap are
    shown "not verified" with a ``repair.oscillation`` finding naming both fixes.
    """
    first = check(draft, catalog)
    report = first
    current = first.draft
    seen = [_state(current)]
    applied: list[tuple[Finding, ...]] = []  # the FIX findings each round applied
    oscillation: Finding | None = None
    for _ in range(max_rounds):
        fixed = apply(report, drop=drop)
        if [ln.code for ln in fixed.codes] == [ln.code for ln in current.codes] and [
            (ln.units, ln.modifiers) for ln in fixed.codes
        ] == [(ln.units, ln.modifiers) for ln in current.codes]:
            break
        fixes = tuple(f for f in report.findings if f.on_fail is OnFail.FIX and f.fix)
        if _state(fixed) in seen:
            back = len(seen) - 1 - seen[::-1].index(_state(fixed))
            oscillation = _oscillation(current, fixed, applied[back:], fixes, catalog)
            break
        applied.append(fixes)
        seen.append(_state(fixed))
        current = fixed
        # Text-level findings were reported on the first pass; re-check the codes alone.
        report = check(replace(current, text=""), catalog)
    verdicts = _verdicts(first, report)
    if oscillation is not None:
        verdicts = _not_verified(verdicts, oscillation, first, report)
    verdicts, follow = _addons_follow_primaries(
        verdicts, catalog, current.context, {v.code: v.findings for v in report.verdicts}
    )
    extra = (oscillation,) if oscillation is not None else ()
    findings = tuple(dict.fromkeys(first.findings + report.findings + extra + follow))
    return Outcome(first, report, current, tuple(verdicts), findings)


def _verdicts(first: CheckReport, report: CheckReport) -> list[CodeVerdict]:
    """A verdict per code drafted first or at the end: removed, corrected or as checked."""
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
    return verdicts


def _oscillation(
    current: Draft,
    fixed: Draft,
    earlier: list[tuple[Finding, ...]],
    now: tuple[Finding, ...],
    catalog: Catalog,
) -> Finding:
    """The finding for fixes that undo each other: which codes, which rules, what each said."""
    before = {(c.code, c.units, c.modifiers) for c in current.codes}
    after = {(c.code, c.units, c.modifiers) for c in fixed.codes}
    # The code an earlier round had first (it is the one coming back), then its rival.
    codes = tuple(dict.fromkeys(c for c, _, _ in [*sorted(after - before),
                                                  *sorted(before - after)]))
    touched = [
        f for fs in (*earlier, now) for f in fs
        if set(f.codes) & set(codes) or (f.fix and set(f.fix.remove + f.fix.add) & set(codes))
    ]
    said = "; then ".join(
        f"{f.rule}: {(f.fix.description if f.fix else f.message).rstrip('.')}"
        for f in dict.fromkeys(touched)
    )
    sources = tuple(dict.fromkeys(s for f in touched for s in f.sources))
    return Finding(
        RuleId.REPAIR_OSCILLATION,
        Severity.WARNING,
        codes,
        f"The checker's fixes undo each other for {', '.join(codes)} ({said}), so neither "
        "is verified: choose the code the record supports.",
        sources=sources,
        confidence="low",
    )


def _not_verified(
    verdicts: list[CodeVerdict], osc: Finding, first: CheckReport, report: CheckReport
) -> list[CodeVerdict]:
    """Every code the oscillation is about is shown, not verified, with the finding."""
    out: list[CodeVerdict] = []
    done: set[str] = set()
    for v in verdicts:
        if v.code in osc.codes:
            out.append(CodeVerdict(v.code, CodeStatus.NOT_VERIFIED, v.units, v.modifiers,
                                   (*v.findings, osc)))
            done.add(v.code)
        else:
            out.append(v)
    for code in osc.codes:  # a code only an intermediate round held
        if code not in done:
            out.append(CodeVerdict(code, CodeStatus.NOT_VERIFIED, findings=(osc,)))
    return out


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
    weakly sourced or the question does not say which form of it was done (no rule finding
    against it): the add-on stands on the question, as it would drafted alone.
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
                f.severity is Severity.INFO or f.rule == RuleId.FIT_UNSUPPORTED
                for p in beside for f in final.get(p, ())
            ):
                continue
            f = Finding(
                RuleId.ADD_ON_PRIMARY_NOT_VERIFIED,
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
