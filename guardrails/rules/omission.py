"""A service the question names, missing from the draft beside the code it goes with.

A small model handed "central line with ultrasound guidance" often drafts 36556 and stops;
the guidance add-on +76937 is the other half of the answer. Each code's ``implied_by`` data
says which question words name its service and which drafted codes it goes with; the fix
adds the code, and the next round checks it like any other (its pairs, its documentation).
Only the question itself is read: a follow-up that changes the service ("and if it was a
PICC?") does not carry the earlier question's words into this rule.
"""

from __future__ import annotations

from collections.abc import Iterator

from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context


def check(ctx: Context) -> Iterator[Finding]:
    """One finding per code the question names beside a drafted code it goes with."""
    if not ctx.context:
        return
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
