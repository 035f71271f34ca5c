"""Add-on codes need an allowed primary on the same claim."""

from __future__ import annotations

from collections.abc import Iterator

from guardrails.question.fit import fitter_for
from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.catalog import AddOnPrimaries


def check(ctx: Context) -> Iterator[Finding]:
    """Findings for add-ons alone, with excluded primaries, or with unlisted primaries."""
    for code in ctx.known():
        ap = ctx.catalog.addon_primaries(code)
        if ap is not None and not any(c in ap.primaries for c in ctx.codes if c != code):
            yield _finding(ctx, code, ap)


# Long: one ordered decision (which of six findings an add-on without its primary gets);
# split, the order of the cases would be spread over helpers.
def _finding(ctx: Context, code: str, ap: AddOnPrimaries) -> Finding:
    """What is wrong with an add-on none of whose listed primaries is on the claim."""
    cat = ctx.catalog
    entry = cat.codes[code]
    others = [c for c in ctx.codes if c != code]
    listed = sorted(ap.primaries)
    shown = ", ".join(listed[:8]) + (" ..." if len(listed) > 8 else "")
    src = entry.sources if ap.origin == "builtin" else ("CMS_AOC",)
    excluded = [c for c in others if c in ap.excluded]
    only = cat.get(listed[0]) if len(listed) == 1 and (ap.exhaustive or not others) else None
    if (only is not None and only.active and not excluded and ctx.frame is not None
            and fitter_for(cat).contradictions(ctx.frame, only.code)):
        # Its one primary is what the question rules out (a breast biopsy add-on for a liver
        # question): adding the primary back would undo the fit fix; the add-on goes.
        return Finding(
            RuleId.ADD_ON_NO_PRIMARY,
            Severity.ERROR,
            (code,),
            f"{code} is an add-on reported only with {only.code} ({only.label}), which the "
            "question rules out.",
            sources=src,
            confidence=entry.confidence.value,
            fix=Fix(f"Remove {code}.", remove=(code,)),
            on_fail=OnFail.FIX,
        )
    if only is not None and only.active and not excluded:
        # One possible primary ("each additional lesion" after the first): the claim lacks it.
        return _chain_finding(ctx, code, only.code, only.label, src) if _cannot_stand(
            ctx, only.code) else Finding(
            RuleId.ADD_ON_NO_PRIMARY,
            Severity.ERROR,
            (code,),
            f"{code} is an add-on reported only with {only.code} ({only.label}); "
            f"{only.code} is not on the claim.",
            sources=src,
            confidence=entry.confidence.value,
            fix=Fix(f"Report {only.code} with {code}.", add=(only.code,)),
            on_fail=OnFail.FIX,
        )
    elif not others and (instead := _excluded_in_question(ctx, ap)) is not None:
        # Color/spectral Doppler drafted alone for a complete TTE with Doppler: the question
        # describes the one primary the add-on is never reported with, whose code already
        # includes it (93306 includes 93320/93325); that code is the answer.
        return Finding(
            RuleId.ADD_ON_EXCLUDED_PRIMARY,
            Severity.ERROR,
            (code,),
            f"{code} is an add-on that is not reported with {instead}; the question "
            f"describes the service of {instead} ({cat.codes[instead].label}), which "
            f"includes it. " + (entry.primaries_note or ""),
            sources=src,
            confidence=entry.confidence.value,
            fix=Fix(f"Report {instead} instead of {code}.", remove=(code,), add=(instead,)),
            on_fail=OnFail.FIX,
        )
    elif all(cat.is_add_on(c) for c in others) and (asked := _primary_asked(ctx, code)):
        # "Coronary IVUS during PCI, add-on code?": the add-on is the answer asked for;
        # the primary is the procedure the question names, reported with its own code.
        return Finding(
            RuleId.ADD_ON_PRIMARY_IN_QUESTION,
            Severity.INFO,
            (code,),
            f"{code} is an add-on: report it with the code of the primary procedure the "
            f"question names ('{asked}')"
            + (f"; its primaries include {shown}." if listed else "."),
            sources=src,
            confidence=entry.confidence.value,
        )
    elif not others:
        return Finding(
            RuleId.ADD_ON_NO_PRIMARY,
            Severity.ERROR,
            (code,),
            f"{code} is an add-on code and is never reported alone; it needs a primary "
            f"procedure on the same claim" + (f" (e.g. {shown})." if listed else "."),
            sources=src,
            confidence=entry.confidence.value,
            on_fail=OnFail.REASK,
        )
    elif excluded:
        return Finding(
            RuleId.ADD_ON_EXCLUDED_PRIMARY,
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
        return Finding(
            RuleId.ADD_ON_NO_PRIMARY,
            Severity.ERROR,
            (code,),
            f"{code} is an add-on whose allowed primaries are {shown}; none is on the claim.",
            sources=src,
            confidence=entry.confidence.value,
            on_fail=OnFail.REASK,
        )
    else:
        return Finding(
            RuleId.ADD_ON_PRIMARY_UNVERIFIED,
            Severity.WARNING,
            (code,),
            f"{code} is an add-on; none of {', '.join(others)} is on the list of primaries "
            f"held for it" + (f" ({shown})" if listed else "")
            + ": not verified. " + (entry.primaries_note or ""),
            sources=src,
            confidence=entry.confidence.value,
        )


def _chain_finding(
    ctx: Context, code: str, primary: str, label: str, src: tuple[str, ...]
) -> Finding:
    """The one primary is itself an add-on whose own primary is not on the claim (37253
    needs 37252, which needs the catheter placement): adding it would leave a claim that
    still fails, so the add-on goes, and the finding says what to report."""
    chain = ctx.catalog.addon_primaries(primary)
    assert chain is not None
    theirs = sorted(chain.primaries)
    needs = ", ".join(theirs[:6]) + (" ..." if len(theirs) > 6 else "")
    return Finding(
        RuleId.ADD_ON_NO_PRIMARY,
        Severity.ERROR,
        (code,),
        f"{code} is an add-on reported only with {primary} ({label}), itself an add-on to a "
        f"procedure not on the claim ({needs}); neither can be billed without it.",
        sources=src,
        confidence=ctx.catalog.codes[code].confidence.value,
        fix=Fix(f"Remove {code}; if the procedure was performed, report its code with "
                f"{primary} and {code}.", remove=(code,)),
        on_fail=OnFail.FIX,
    )


def _cannot_stand(ctx: Context, primary: str) -> bool:
    """True when ``primary`` is itself an add-on none of whose own primaries is on the claim
    and whose primary procedure the question does not name."""
    chain = ctx.catalog.addon_primaries(primary)
    if chain is None or any(c in chain.primaries for c in ctx.codes):
        return False
    return _primary_asked(ctx, primary) is None


def _excluded_in_question(ctx: Context, ap: AddOnPrimaries) -> str | None:
    """The one excluded primary the question fully supports, when it supports none of the
    add-on's allowed primaries; else None."""
    if ctx.frame is None or not ap.excluded:
        return None
    supported = set(fitter_for(ctx.catalog).supported(ctx.frame))
    if supported & set(ap.primaries):
        return None
    hits = sorted(c for c in ap.excluded if c in supported)
    return hits[0] if len(hits) == 1 else None


def _primary_asked(ctx: Context, code: str) -> str | None:
    """The question's words naming the add-on's primary procedure, if it names one."""
    rx = ctx.compiled.primary_asked.get(code)
    if rx is None or not ctx.context:
        return None
    m = rx.search(ctx.context)
    return m.group(0) if m else None
