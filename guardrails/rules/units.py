"""Units: over the unit limit is an error or a warning by adjudication indicator."""

from __future__ import annotations

import re
from collections.abc import Iterator

from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.schema import Adjudication, Confidence

_REPEAT = frozenset({"76", "77", "RT", "LT", "59", "XE", "XP", "XS", "XU"})
# What in a question counts services. A bare number does not: ages, weeks of pregnancy and
# sizes ("patient is 40", "7 weeks", "4 cm") are not counts; "x2", "3 units", "2 nodules" are.
_COUNTS = re.compile(
    r"\bx ?\d|\d ?x\b|\b\d+ (?:of (?:them|each)|separate|different|areas?|spots?|sides?|"
    r"passes|cores?|samples?|sessions?|studies|exams?)\b"
    r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|both|bilateral|multiple|"
    r"several|each|additional|second|third|another|twins?|triplets?|units?|times|levels|"
    r"lesions|nodules|sites|vessels|muscles|joints|injections)\b"
)


def check(ctx: Context) -> Iterator[Finding]:
    """Findings for units above the limit held for a code."""
    cat = ctx.catalog
    # A drafted answer to a question that counts nothing (no number, no "both", no
    # "each"): the extra units are the draft's own, and the limit is the fix.
    uncounted = bool(ctx.context) and not _COUNTS.search(ctx.context)
    for code in ctx.known():
        limit = cat.unit_limit(code)
        units = ctx.units[code]
        if limit is None:
            yield from _no_limit(ctx, code, uncounted)
            continue
        if units <= limit.value:
            continue
        note = f" {limit.note}" if limit.note else ""
        per = {"encounter": "per encounter", "day": "per day", "line": "per claim line"}[limit.per]
        base = f"{code} is reported {units} units; the limit is {limit.value} {per}.{note}"
        fix = Fix(f"Report {code} x{limit.value}.", set_units=((code, limit.value),))
        strict = limit.confidence is not Confidence.LOW
        if limit.adjudication in (Adjudication.ENCOUNTER_POLICY, Adjudication.DATE_POLICY):
            yield Finding(
                "units.over_limit",
                Severity.ERROR if strict else Severity.WARNING,
                (code,),
                base + " This limit is set by policy and cannot be appealed.",
                sources=limit.sources,
                confidence=limit.confidence.value,
                fix=fix,
                on_fail=OnFail.FIX,
            )
        elif limit.adjudication is Adjudication.DATE_CLINICAL:
            yield Finding(
                "units.over_limit",
                Severity.WARNING,
                (code,),
                base + " Units above it are denied unless the records show they were needed.",
                sources=limit.sources,
                confidence=limit.confidence.value,
                fix=fix,
                on_fail=OnFail.FIX if uncounted else OnFail.WARN,
            )
        elif limit.adjudication is Adjudication.LINE:
            lines = ctx.line_count[code]
            if lines > 1 and ctx.modifiers.get(code, frozenset()) & _REPEAT:
                continue
            yield Finding(
                "units.over_limit",
                Severity.WARNING,
                (code,),
                base + " Extra units go on separate lines with 76/77, RT/LT or 59 when "
                "documented.",
                sources=limit.sources,
                confidence=limit.confidence.value,
                fix=fix,
                on_fail=OnFail.FIX if uncounted else OnFail.WARN,
            )
        else:
            yield Finding(
                "units.over_limit",
                Severity.WARNING,
                (code,),
                base + " How the limit is adjudicated is not known: not verified.",
                sources=limit.sources,
                confidence=limit.confidence.value,
                fix=fix,
                on_fail=OnFail.FIX if uncounted else OnFail.WARN,
            )


def _no_limit(ctx: Context, code: str, uncounted: bool) -> Iterator[Finding]:
    """More than one unit on a line of a code with no unit limit held: not verified.

    Separate lines of one unit each (RT and LT, 76, 59) are left to the other rules; a line
    of several units is a count nothing here can check. Where the question counts nothing,
    the count is the draft's own and one unit is the fix.
    """
    most = max((ln.units for ln in ctx.lines if ln.code == code), default=1)
    if most <= 1:
        return
    if uncounted:
        yield Finding(
            "units.uncounted",
            Severity.WARNING,
            (code,),
            f"{code} is drafted with {most} units, but the question counts nothing that "
            f"would make more than one; no unit limit is held for {code} here.",
            fix=Fix(f"Report {code} x1.", set_units=((code, 1),)),
            on_fail=OnFail.FIX,
            confidence="medium",
        )
        return
    yield Finding(
        "units.no_limit",
        Severity.WARNING,
        (code,),
        f"{code} x{most}: no unit limit is held for {code} here, so the count is not "
        "verified. Import the CMS MUE file (`advisor import-cms`) to check it.",
        confidence="low",
    )
