"""Units: over the unit limit is an error or a warning by adjudication indicator."""

from __future__ import annotations

import re
from collections.abc import Iterator

from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.schema import Adjudication, Confidence

_REPEAT = frozenset({"76", "77", "RT", "LT", "59", "XE", "XP", "XS", "XU"})
_COUNTS = re.compile(
    r"\d|\b(?:two|three|four|five|six|seven|eight|nine|ten|both|bilateral|multiple|"
    r"several|each|additional|second|third|another|twins?|triplets?|units?|times|levels|"
    r"lesions|nodules|sites|vessels|muscles|joints|injections)\b"
)


def check(ctx: Context) -> Iterator[Finding]:
    """Findings for units above the limit held for a code."""
    cat = ctx.catalog
    for code in ctx.known():
        limit = cat.unit_limit(code)
        units = ctx.units[code]
        if limit is None or units <= limit.value:
            continue
        note = f" {limit.note}" if limit.note else ""
        per = {"encounter": "per encounter", "day": "per day", "line": "per claim line"}[limit.per]
        base = f"{code} is reported {units} units; the limit is {limit.value} {per}.{note}"
        fix = Fix(f"Report {code} x{limit.value}.", set_units=((code, limit.value),))
        strict = limit.confidence is not Confidence.LOW
        # A drafted answer to a question that counts nothing (no number, no "both", no
        # "each"): the extra units are the draft's own, and the limit is the fix.
        uncounted = bool(ctx.context) and not _COUNTS.search(ctx.context)
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
