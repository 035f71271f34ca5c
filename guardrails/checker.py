"""check(draft, catalog) -> CheckReport: a pure function over the text and codes it is handed."""

from __future__ import annotations

from dataclasses import replace

from guardrails.claims import Claims, extract
from guardrails.question import read_frame
from guardrails.report import (
    CheckReport,
    CodeStatus,
    CodeVerdict,
    Draft,
    DraftCode,
    Finding,
    OnFail,
    Overall,
    Severity,
)
from guardrails.rules import (
    add_on,
    descriptor,
    documentation,
    existence,
    fit,
    modifiers,
    omission,
    pairs,
    units,
)
from guardrails.rules.base import Context, compiled_for
from knowledge.catalog import Catalog
from knowledge.schema import Confidence

RULE_FAMILIES = (
    existence, fit, descriptor, pairs, add_on, units, modifiers, documentation, omission
)


def lines_from_claims(claims: Claims) -> tuple[DraftCode, ...]:
    """Recommended code lines from free text; repeated mentions of a code are one line."""
    lines: dict[str, DraftCode] = {}
    for m in claims.recommended():
        old = lines.get(m.code)
        if old is None:
            lines[m.code] = DraftCode(
                m.code, m.units or 1, tuple(m.modifiers), add_on_mark=m.add_on_mark
            )
        else:
            mods = tuple(dict.fromkeys(old.modifiers + tuple(m.modifiers)))
            units_ = max(old.units, m.units or 1)
            lines[m.code] = DraftCode(m.code, units_, mods, add_on_mark=old.add_on_mark)
    return tuple(lines.values())


def _status(code: str, fs: list[Finding], catalog: Catalog) -> CodeStatus:
    for f in fs:
        if f.severity is Severity.ERROR:
            if f.fix is not None and code in f.fix.remove:
                return CodeStatus.REMOVED
            if f.on_fail is OnFail.DROP and (f.fix is None or code in f.fix.remove):
                return CodeStatus.REMOVED
    for f in fs:
        if f.severity is Severity.ERROR and (f.fix is None or not (f.fix.remove or f.fix.add)):
            return CodeStatus.NOT_VERIFIED
        if f.severity is Severity.WARNING:
            return CodeStatus.NOT_VERIFIED
    entry = catalog.get(code)
    if entry is None or not entry.active or entry.confidence is Confidence.LOW:
        return CodeStatus.NOT_VERIFIED
    return CodeStatus.VERIFIED


def check(draft: Draft | str, catalog: Catalog, *, claims: Claims | None = None) -> CheckReport:
    """Check a drafted answer (text) or a structured draft against the catalog."""
    if isinstance(draft, str):
        draft = Draft(text=draft)
    claims = claims if claims is not None else extract(draft.text)
    lines = draft.codes if draft.codes else lines_from_claims(claims)
    if not draft.codes and lines:
        draft = replace(draft, codes=lines)
    ctx = Context(catalog, lines, claims, compiled_for(catalog))
    # Only the question describes the service; the drafted prose may discuss other cases.
    ctx.context = draft.context.lower()
    ctx.history = draft.history.lower()
    if draft.context.strip():
        # Read once per question (cached): the frame every question rule compares with.
        ctx.frame = read_frame(draft.context, catalog, draft.history)
    findings: list[Finding] = []
    for family in RULE_FAMILIES:
        if family is omission:
            ctx.removing = frozenset(
                c for f in findings if f.fix is not None and f.on_fail is OnFail.FIX
                for c in f.fix.remove
            )
        findings.extend(family.check(ctx))
    by_code: dict[str, list[Finding]] = {c: [] for c in ctx.codes}
    for f in findings:
        for c in f.codes:
            if c in by_code:
                by_code[c].append(f)
    verdicts = tuple(
        CodeVerdict(
            code,
            _status(code, by_code[code], catalog),
            ctx.units[code],
            tuple(sorted(ctx.modifiers[code])),
            tuple(by_code[code]),
        )
        for code in ctx.codes
    )
    return CheckReport(
        draft=draft,
        findings=tuple(findings),
        verdicts=verdicts,
        overall=overall_of(findings, verdicts),
        ruleset=catalog.ruleset,
        warned=tuple(dict.fromkeys(m.code for m in claims.warned())),
    )


def overall_of(
    findings: list[Finding] | tuple[Finding, ...], verdicts: tuple[CodeVerdict, ...]
) -> Overall:
    """fail on any error, review on any warning or unverified code, else pass."""
    if any(f.severity is Severity.ERROR for f in findings):
        return Overall.FAIL
    if any(f.severity is Severity.WARNING for f in findings) or any(
        v.status is not CodeStatus.VERIFIED for v in verdicts
    ):
        return Overall.REVIEW
    return Overall.PASS
