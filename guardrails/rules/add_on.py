"""Add-on codes need an allowed primary on the same claim."""

from __future__ import annotations

from collections.abc import Iterator

from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context


def check(ctx: Context) -> Iterator[Finding]:
    """Findings for add-ons alone, with excluded primaries, or with unlisted primaries."""
    cat = ctx.catalog
    for code in ctx.known():
        ap = cat.addon_primaries(code)
        if ap is None:
            continue
        entry = cat.codes[code]
        others = [c for c in ctx.codes if c != code]
        listed = sorted(ap.primaries)
        shown = ", ".join(listed[:8]) + (" ..." if len(listed) > 8 else "")
        src = entry.sources if ap.origin == "builtin" else ("CMS_AOC",)
        if any(c in ap.primaries for c in others):
            continue
        excluded = [c for c in others if c in ap.excluded]
        only = cat.get(listed[0]) if len(listed) == 1 and (ap.exhaustive or not others) else None
        if only is not None and only.active and not excluded:
            # One possible primary ("each additional lesion" after the first): it is the
            # code the claim lacks.
            yield Finding(
                "add_on.no_primary",
                Severity.ERROR,
                (code,),
                f"{code} is an add-on reported only with {only.code} ({only.label}); "
                f"{only.code} is not on the claim.",
                sources=src,
                confidence=entry.confidence.value,
                fix=Fix(f"Report {only.code} with {code}.", add=(only.code,)),
                on_fail=OnFail.FIX,
            )
        elif all(cat.is_add_on(c) for c in others) and (asked := _primary_asked(ctx, code)):
            # "Coronary IVUS during PCI, add-on code?": the add-on is the answer asked for;
            # the primary is the procedure the question names, reported with its own code.
            yield Finding(
                "add_on.primary_in_question",
                Severity.INFO,
                (code,),
                f"{code} is an add-on: report it with the code of the primary procedure the "
                f"question names ('{asked}')"
                + (f"; its primaries include {shown}." if listed else "."),
                sources=src,
                confidence=entry.confidence.value,
            )
        elif not others:
            yield Finding(
                "add_on.no_primary",
                Severity.ERROR,
                (code,),
                f"{code} is an add-on code and is never reported alone; it needs a primary "
                f"procedure on the same claim" + (f" (e.g. {shown})." if listed else "."),
                sources=src,
                confidence=entry.confidence.value,
                on_fail=OnFail.REASK,
            )
        elif excluded:
            yield Finding(
                "add_on.excluded_primary",
                Severity.ERROR,
                (code, *excluded),
                f"{code} is not reported with {', '.join(excluded)}. "
                + (entry.primaries_note or ""),
                sources=src,
                confidence=entry.confidence.value,
                fix=Fix(f"Remove {code}.", remove=(code,)),
                on_fail=OnFail.FIX,
            )
        elif ap.exhaustive:
            yield Finding(
                "add_on.no_primary",
                Severity.ERROR,
                (code,),
                f"{code} is an add-on whose allowed primaries are {shown}; none is on the claim.",
                sources=src,
                confidence=entry.confidence.value,
                on_fail=OnFail.REASK,
            )
        else:
            yield Finding(
                "add_on.primary_unverified",
                Severity.WARNING,
                (code,),
                f"{code} is an add-on; none of {', '.join(others)} is on the list of primaries "
                f"held for it" + (f" ({shown})" if listed else "")
                + ": not verified. " + (entry.primaries_note or ""),
                sources=src,
                confidence=entry.confidence.value,
            )


def _primary_asked(ctx: Context, code: str) -> str | None:
    """The question's words naming the add-on's primary procedure, if it names one."""
    rx = ctx.compiled.primary_asked.get(code)
    if rx is None or not ctx.context:
        return None
    m = rx.search(ctx.context)
    return m.group(0) if m else None
