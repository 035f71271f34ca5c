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
"""

from __future__ import annotations

from collections.abc import Iterator

from guardrails.question.fit import GUIDANCE_OF, fitter_for
from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.schema import Confidence

_ORDER = [Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH]


def check(ctx: Context) -> Iterator[Finding]:
    """One finding per code the question names beside a drafted code it goes with."""
    if not ctx.context:
        return
    yield from _guidance(ctx)
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
                g for g in fitter.guidance_codes(modality)
                if fitter.score(frame, g) >= 1 and any(
                    fitter.vocab.related(a, b) for a in d.actions
                    for b in cat.codes[g].describes.actions)  # type: ignore[union-attr]
            ]
            if len(guides) != 1:
                continue
            guide = guides[0]
            edit = cat.pair(code, guide)
            if guide in added or any(
                c == guide or modality in (cat.codes[c].describes.guidance  # type: ignore[union-attr]
                                           if cat.codes[c].describes else ())
                and cat.codes[c].describes.service == "guidance"  # type: ignore[union-attr]
                for c in kept
            ) or (edit is not None and edit.relation.value != "allowed"):
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
