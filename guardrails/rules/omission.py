"""A service the question names, missing from the draft beside the code it goes with.

A small model handed "central line with ultrasound guidance" often drafts 36556 and stops;
the guidance add-on +76937 is the other half of the answer. Each code's ``implied_by`` data
says which question words name its service and which drafted codes it goes with; the fix
adds the code, and the next round checks it like any other (its pairs, its documentation).
Only the question itself is read: a follow-up that changes the service ("and if it was a
PICC?") does not carry the earlier question's words into this rule.

The same holds for imaging guidance, from what the codes describe: a drafted procedure code
whose description says it includes no imaging guidance (a nerve block, a liver biopsy), for a
question that affirms real-time guidance of one modality, leaves the guidance code of that
modality unreported; the one guidance code that fits the question and the procedure's kind
of needle work is added (+76942 beside 64418 for an ultrasound-guided suprascapular block;
77012 beside a CT-guided bone biopsy).

And for counts: an add-on whose description counts a thing from a minimum (each additional
gestation, level or lesion), missing beside its drafted primary when the question counts at
least that many (twins at 22 weeks: +76810 beside 76805; blocks at T5 and T6: +64421).

And a guidance code drafted alone: guidance is reported with the procedure it guides, so
when the question supports exactly one procedure code (every fact it needs affirmed, none
contradicted) and no procedure is drafted, that code is added (a guided liver biopsy: 47000
beside 76942).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from guardrails.question.fit import fitter_for
from guardrails.question.misfit import GUIDANCE_OF
from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.schema import Confidence

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

_ORDER = [Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH]


def check(ctx: Context) -> Iterator[Finding]:
    """One finding per code the question names beside a drafted code it goes with."""
    if not ctx.context:
        return
    yield from _guidance(ctx)
    yield from _counted(ctx)
    yield from _procedure(ctx)
    cat = ctx.catalog
    drafted = set(ctx.codes)
    kept = drafted - ctx.removing  # a partner this round removes implies nothing
    for code, implications in ctx.compiled.implied.items():
        if code in drafted:
            continue
        for rx, with_any, i in implications:
            partners = sorted(kept & with_any)
            if not partners or not rx.search(ctx.context):
                continue
            im = cat.codes[code].implied_by[i]
            yield Finding(
                RuleId.OMISSION_IMPLIED,
                Severity.WARNING,
                (code,),
                f"{code} ({cat.codes[code].label}) is missing beside {', '.join(partners)}: "
                + im.message,
                sources=im.sources,
                confidence=im.confidence.value,
                fix=Fix(f"Add {code}.", add=(code,)),
                on_fail=OnFail.FIX,
            )
            break


def _guidance(ctx: Context) -> Iterator[Finding]:
    """The guidance code missing beside a drafted procedure that does not include guidance."""
    frame = ctx.frame
    if frame is None or frame.empty:
        return
    cat = ctx.catalog
    fitter = fitter_for(cat)
    kept = [c for c in ctx.active() if c not in ctx.removing]
    added: set[str] = set()
    for code in kept:
        e = cat.codes[code]
        d = e.describes
        if (d is None or d.service != "procedure" or e.add_on or tuple(d.guidance) != ("none",)
                or fitter.score(frame, code) == 0):
            continue
        for modality, concept in GUIDANCE_OF.items():
            if fitter.has(frame, concept, strong=True) is None:
                continue
            guides = [
                g for g in (*fitter.guidance_codes(modality), *_addon_guides(cat, code, modality))
                if fitter.score(frame, g) >= 1 and any(
                    fitter.vocab.related(a, b) for a in d.actions
                    for b in cat.codes[g].describes.actions)  # type: ignore[union-attr]
            ]
            if len(guides) != 1:
                continue
            guide = guides[0]
            edit = cat.pair(code, guide)
            if (guide in added or _guided(cat, kept, modality)
                    or (edit is not None and edit.relation.value != "allowed")):
                continue
            added.add(guide)
            g = cat.codes[guide]
            yield Finding(
                RuleId.OMISSION_GUIDANCE,
                Severity.WARNING,
                (guide,),
                f"{guide} ({g.label}) is missing beside {code}: the question says {modality} "
                f"guided the needle, and {code} does not include imaging guidance, so the "
                f"guidance is reported with {guide}.",
                sources=tuple(dict.fromkeys((*e.sources, *g.sources))),
                confidence=min(e.confidence, g.confidence, key=_ORDER.index).value,
                fix=Fix(f"Add {guide}.", add=(guide,)),
                on_fail=OnFail.FIX,
            )


def _procedure(ctx: Context) -> Iterator[Finding]:
    """The one procedure the question supports, missing beside a guidance code drafted alone."""
    frame = ctx.frame
    if frame is None or frame.empty:
        return
    cat = ctx.catalog
    # Every drafted code, those other rules remove included: a guidance code drafted alone
    # shows the procedure was left out, even when it is the wrong guidance code (76942 for
    # an arterial line: the fit rules remove it; the line's own code is still missing).
    services = {c: _service(cat, c) for c in ctx.active()}
    # An add-on guidance code stands on its primary (the add-on rules say which is missing).
    guides = [c for c, s in services.items() if s == "guidance" and not cat.codes[c].add_on]
    if not guides or any(s == "procedure" for s in services.values()):
        return
    fitter = fitter_for(cat)
    modalities = [m for m, concept in GUIDANCE_OF.items()
                  if fitter.has(frame, concept, strong=True) is not None]
    if len(modalities) != 1 or _ASKS_GUIDANCE_ONLY.search(ctx.context):
        return  # a choice between modalities, or a question about the guidance code alone
    procs = fitter.procedures_for(frame)
    if len(procs) != 1:
        return
    proc = procs[0]
    e = cat.codes[proc]
    if proc in ctx.codes or any(g in e.included_guidance for g in guides):
        return  # a code that includes the guidance replaces it: the fit rules say so
    if any(c != proc and o.family == e.family and not o.add_on and o.active
           and fitter.score(frame, c) >= 1 for c, o in cat.codes.items()):
        return  # a near code the question does not rule out: the choice is not ours
    yield Finding(
        RuleId.OMISSION_PROCEDURE,
        Severity.WARNING,
        (proc,),
        f"{proc} ({e.label}) is missing beside {', '.join(guides)}: guidance is reported with "
        f"the procedure it guides, and the question describes {proc}.",
        sources=e.sources,
        confidence=e.confidence.value,
        fix=Fix(f"Add {proc}.", add=(proc,)),
        on_fail=OnFail.FIX,
    )


# "which guidance code?": the question asks for the guidance code alone.
_ASKS_GUIDANCE_ONLY = re.compile(r"\bguidance codes?\b")


def _service(cat: Catalog, code: str) -> str | None:
    d = cat.codes[code].describes
    return d.service if d is not None else None


def _addon_guides(cat: Catalog, code: str, modality: str) -> tuple[str, ...]:
    """Add-on guidance codes of ``modality`` that list ``code`` among their primaries
    (+77002 beside 20610)."""
    out = []
    for g in cat.addons_by_primary().get(code, ()):
        d = cat.codes[g].describes
        if d is not None and d.service == "guidance" and modality in d.guidance:
            out.append(g)
    return tuple(out)


def _guided(cat: Catalog, codes: list[str], modality: str) -> bool:
    """True when a drafted code already reports guidance of ``modality``."""
    for c in codes:
        d = cat.codes[c].describes
        if d is not None and d.service == "guidance" and modality in d.guidance:
            return True
    return False


def _counted(ctx: Context) -> Iterator[Finding]:
    """The counted add-on missing beside its drafted primary."""
    frame = ctx.frame
    if frame is None or frame.empty or not frame.counts:
        return
    cat = ctx.catalog
    fitter = fitter_for(cat)
    kept = set(ctx.active()) - ctx.removing
    for primary in sorted(kept):
        if fitter.score(frame, primary) == 0:
            continue
        for addon in cat.addons_by_primary(counted=True).get(primary, ()):
            a = cat.codes[addon]
            count = a.describes.count if a.describes else None
            if addon in ctx.codes or not a.active or count is None or count.min is None:
                continue
            n = frame.count_of(count.thing)
            if n is None or n < count.min or fitter.score(frame, addon) == 0:
                continue
            units = n - count.min + 1
            said = f"at least {n}" if frame.count_is_minimum(count.thing) else str(n)
            yield Finding(
                RuleId.OMISSION_COUNT,
                Severity.WARNING,
                (addon,),
                f"{addon} ({a.label}) is missing beside {primary}: the question counts {said} "
                f"({count.thing}), and {addon} reports each one from number {count.min}.",
                sources=a.sources,
                confidence=a.confidence.value,
                fix=Fix(f"Add {addon}" + (f" x{units}." if units > 1 else "."), add=(addon,),
                        set_units=((addon, units),) if units > 1 else ()),
                on_fail=OnFail.FIX,
            )
