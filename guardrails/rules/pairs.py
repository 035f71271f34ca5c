"""Pairs: bundled codes billed together, complete+limited of one region, guidance included,
and whether the text is right to warn against a pair or a code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import combinations

from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import DISTINCT_MODIFIERS, SIDE_MODIFIERS, Context
from knowledge.schema import Confidence, ModifierIndicator, PairEdit, PairRelation


def _edit_fix(edit: PairEdit) -> Fix | None:
    if edit.replacement:
        add = edit.replacement
        return Fix(
            f"Report {' + '.join(add)} instead of {edit.column1} + {edit.column2}.",
            remove=tuple(c for c in (edit.column1, edit.column2) if c not in add),
            add=tuple(c for c in add if c not in (edit.column1, edit.column2)),
        )
    if edit.drop_column2:
        return Fix(
            f"Remove {edit.column2}; report {edit.column1} alone.", remove=(edit.column2,)
        )
    return None


# Words by which a question shows two services were distinct (another site, side, region,
# session or lesion), or names the unbundling modifier itself. The checker reads the
# question (lower case) for these only when the codes were drafted in answer to it.
_DISTINCT_IN_QUESTION = re.compile(
    r"\b(?:59|x[epsu]|separate(?:ly)?|distinct|different|another|unrelated|contralateral|"
    r"opposite|(?:second|other) (?:site|side|lesion|limb|region|area|session|encounter|"
    r"procedure|nodule|joint)|upper and lower|lower and upper|arms? and (?:the )?legs?|"
    r"legs? and (?:the )?arms?|left and right|right and left)\b"
)


def _unbundling_modifiers(ctx: Context, c1: str, c2: str) -> list[str]:
    """Modifiers on the pair that claim the services were distinct.

    A distinct-service modifier (59, XE/XP/XS/XU) on either code counts; RT/LT count only
    when the two codes carry different sides (both -LT is one side, not two services).
    """
    m1 = ctx.modifiers.get(c1, frozenset())
    m2 = ctx.modifiers.get(c2, frozenset())
    used = set((m1 | m2) & DISTINCT_MODIFIERS)
    s1, s2 = m1 & SIDE_MODIFIERS, m2 & SIDE_MODIFIERS
    if s1 and s2 and s1 != s2:
        used |= s1 | s2
    return sorted(used)


def _unsupported_bypass(ctx: Context, edit: PairEdit, used: list[str], when: str) -> Finding:
    """A drafted answer unbundles a pair with a modifier the question gives no ground for."""
    c1, c2 = edit.column1, edit.column2
    mods = ", ".join(used)
    base = _edit_fix(edit)
    drop = tuple((c, m) for c in (c1, c2) for m in used if m in ctx.modifiers.get(c, ()))
    remove = base.remove if base is not None else ()
    fix = Fix(
        (base.description if base is not None else f"Remove {c2}.")
        + f" Drop {mods}: nothing in the question shows distinct services.",
        remove=remove or (c2,),
        add=base.add if base is not None else (),
        drop_modifiers=drop,
    )
    return Finding(
        RuleId.PAIRS_MODIFIER_UNSUPPORTED,
        Severity.WARNING,
        (c1, c2),
        f"{c2} is normally not reported with {c1}: {edit.rationale} The draft adds {mods} to "
        f"report both, but the question does not describe distinct services, so the "
        f"modifier is not verified. Both are reported only when: {when}",
        sources=edit.sources,
        confidence=edit.confidence.value,
        fix=fix,
        on_fail=OnFail.FIX,
    )


def _pair_finding(ctx: Context, edit: PairEdit) -> Iterator[Finding]:
    c1, c2 = edit.column1, edit.column2
    codes = (c1, c2)
    low = edit.confidence is Confidence.LOW
    origin = " (CMS PTP file)" if edit.origin == "cms" else ""
    if edit.relation is PairRelation.REVIEW:
        fix = _edit_fix(edit)
        yield Finding(
            RuleId.PAIRS_REVIEW,
            Severity.WARNING,
            codes,
            f"{c1} with {c2}: needs review. {edit.rationale}",
            sources=edit.sources,
            confidence=edit.confidence.value,
            fix=Fix(fix.description, alternatives=fix.add) if fix else None,
        )
        return
    if edit.relation is not PairRelation.BUNDLED:
        return
    if edit.modifier_indicator is ModifierIndicator.NOT_ALLOWED:
        yield from _not_allowed(ctx, edit, low, origin)
    elif edit.modifier_indicator is ModifierIndicator.ALLOWED:
        yield from _allowed(ctx, edit, origin)
    else:
        yield Finding(
            RuleId.PAIRS_BUNDLED,
            Severity.WARNING,
            codes,
            f"{c2} with {c1}: {edit.rationale} The edit's modifier indicator is not known: "
            "needs review.",
            sources=edit.sources,
            confidence=edit.confidence.value,
            fix=_edit_fix(edit),
        )


def _by_fit(ctx: Context, fix: Fix | None, a: str, b: str) -> Fix | None:
    """A fix that removes one code of a pair removes the one the question fits less: an
    exam of the aorta alone keeps the limited code; a question that describes the exam and
    no procedure keeps the exam. Else the fix is left as it is."""
    if fix is None or ctx.frame is None or fix.add or len(fix.remove) != 1:
        return fix
    gone = fix.remove[0]
    kept = b if gone == a else a
    if _supported_side(ctx, gone, kept) == gone:
        return Fix(f"Remove {kept}; the question describes {gone}.", remove=(kept,))
    return fix


def _supported_side(ctx: Context, a: str, b: str) -> str | None:
    """The one code of a pair that the question supports (all it needs affirmed) while it
    does not support the other, or None (no question, both, or neither)."""
    if ctx.frame is None or ctx.frame.empty:
        return None
    if a not in ctx.catalog.codes or b not in ctx.catalog.codes:
        return None
    from guardrails.question.fit import fitter_for

    fitter = fitter_for(ctx.catalog)
    sa, sb = fitter.score(ctx.frame, a), fitter.score(ctx.frame, b)
    if sa == 2 and sb < 2:
        return a
    if sb == 2 and sa < 2:
        return b
    return None


def _not_allowed(ctx: Context, edit: PairEdit, low: bool, origin: str) -> Iterator[Finding]:
    """An edit no modifier bypasses (indicator 0), and any modifier drafted to try."""
    c1, c2 = edit.column1, edit.column2
    codes = (c1, c2)
    mods = ctx.modifiers.get(c1, frozenset()) | ctx.modifiers.get(c2, frozenset())
    fix = _by_fit(ctx, _edit_fix(edit), c1, c2)
    on_fail = OnFail.FIX if fix else OnFail.REASK
    e1, e2 = ctx.catalog.codes.get(c1), ctx.catalog.codes.get(c2)
    if fix is None and e1 and e2 and e1.age_band and e2.age_band and e1.age_band != e2.age_band:
        # The same service for two age bands: one is right, and only the patient's age
        # (which the question did not settle, or descriptor.age would have) says which.
        # Asking the model again cannot tell either; both stay, flagged, for a person.
        by_age = {e.age_band.value: e.code for e in (e1, e2) if e.age_band}
        fix = Fix(
            f"Report one code, by the patient's age: {by_age.get('under_5')} under 5, "
            f"{by_age.get('5_and_older')} 5 or older.",
            alternatives=(c1, c2),
        )
        on_fail = OnFail.WARN
    yield Finding(
        RuleId.PAIRS_BUNDLED,
        Severity.WARNING if low else Severity.ERROR,
        codes,
        f"{c2} is not reported with {c1}{origin}: {edit.rationale}"
        + (" No modifier can override this edit." if not low else " Needs review."),
        sources=edit.sources,
        confidence=edit.confidence.value,
        fix=fix,
        on_fail=on_fail,
    )
    bypass = sorted(mods & DISTINCT_MODIFIERS)
    if bypass:
        yield Finding(
            RuleId.MODIFIERS_DISTINCT_ON_INDICATOR_0,
            Severity.ERROR,
            codes,
            f"Modifier {', '.join(bypass)} cannot unbundle {c1} + {c2}: the edit's "
            "modifier indicator is 0.",
            sources=(*edit.sources, "MLN1783722"),
            confidence=edit.confidence.value,
            fix=fix,
            on_fail=OnFail.FIX if fix else OnFail.REASK,
        )


def _allowed(ctx: Context, edit: PairEdit, origin: str) -> Iterator[Finding]:
    """An edit a distinct-service modifier may bypass (indicator 1) when the record shows it."""
    c1, c2 = edit.column1, edit.column2
    codes = (c1, c2)
    used = _unbundling_modifiers(ctx, c1, c2)
    when = edit.allow_with or "the services were distinct and the record shows it"
    if used and ctx.context and not _DISTINCT_IN_QUESTION.search(ctx.context):
        # Codes drafted for a question (a code check has no question: the modifier is
        # then the user's own claim). The modifier asserts distinct services the
        # question never mentions: the checker cannot confirm it, so it is undone.
        yield _unsupported_bypass(ctx, edit, used, when)
    elif used:
        yield Finding(
            RuleId.PAIRS_ALLOWED_WITH_MODIFIER,
            Severity.INFO,
            codes,
            f"{c1} + {c2} is an edit pair; with {', '.join(used)} it is allowed only when: "
            f"{when}",
            sources=edit.sources,
            confidence=edit.confidence.value,
        )
    else:
        fix, on_fail = _edit_fix(edit), OnFail.WARN
        keep = _supported_side(ctx, c1, c2)
        if keep is not None and not _DISTINCT_IN_QUESTION.search(ctx.context):
            # Drafted for a question that describes one of the two and says nothing of a
            # separate service: the other is the extra line, and it goes (a thyroid exam
            # asked about, an FNA code drafted beside it).
            gone = c2 if keep == c1 else c1
            fix = Fix(f"Remove {gone}; the question describes {keep} and no separate "
                      f"service.", remove=(gone,), alternatives=(gone,))
            on_fail = OnFail.FIX
        yield Finding(
            RuleId.PAIRS_MODIFIER_REQUIRED,
            Severity.WARNING,
            codes,
            f"{c2} is normally not reported with {c1}{origin}: {edit.rationale} It may be "
            f"reported with modifier 59 or XE/XP/XS/XU (or RT/LT where sides differ) only "
            f"when: {when}",
            sources=edit.sources,
            confidence=edit.confidence.value,
            fix=fix,
            on_fail=on_fail,
        )


# A line or sentence that opens with a short label and a colon ("Limited: 93308", "If
# complete: 93306", "Option B: ..."): each such line offers one way to code the service.
_OPTION_LABEL = re.compile(r"^[\s*•\-]*(?:(?:if|when|for|option)\s+)?[a-z][a-z /-]{0,30}:\s*$",
                           re.IGNORECASE)


def _options(ctx: Context) -> dict[str, int]:
    """Codes a drafted text offers as alternatives: code -> the option line it is on. Only a
    text of two or more labelled option lines, one code line each, is read so; "bill A and
    B" is a claim of both."""
    if ctx.lines and any(ln.reason for ln in ctx.lines):
        return {}
    claims = ctx.claims
    text = claims.text
    by_sentence: dict[int, list[str]] = {}
    for m in claims.mentions:
        if m.polarity.value == "recommended":
            by_sentence.setdefault(m.sentence, []).append(m.code)
    out: dict[str, int] = {}
    for i, codes in by_sentence.items():
        start = claims.sentences[i][0]
        first = min(m.start for m in claims.mentions if m.sentence == i)
        if len(set(codes)) == 1 and _OPTION_LABEL.match(text[start:first]):
            out[codes[0]] = i
    return out if len(set(out.values())) >= 2 else {}


def check(ctx: Context) -> Iterator[Finding]:
    """Pair findings among recommended codes, plus checks of warned-against pairs and codes."""
    cat = ctx.catalog
    active = ctx.active()
    options = _options(ctx) if ctx.claims.text else {}
    for a, b in combinations(active, 2):
        if a in options and b in options and options[a] != options[b]:
            yield Finding(
                RuleId.PAIRS_ALTERNATIVES,
                Severity.INFO,
                (a, b),
                f"{a} and {b} are given as alternatives (one of them is billed, by what was "
                "done); the text does not claim both, so no pair edit applies.",
            )
            continue
        edit = cat.pair(a, b)
        if edit is not None and edit.deleted is None:
            yield from _pair_finding(ctx, edit)
            continue
        ea, eb = cat.codes[a], cat.codes[b]
        if ea.counterpart == b:
            complete, limited = (a, b) if ea.extent.value == "complete" else (b, a)
            yield Finding(
                RuleId.PAIRS_COMPLETE_LIMITED,
                Severity.ERROR,
                (complete, limited),
                f"{complete} (complete) and {limited} (limited) of the same region are not "
                "reported in the same session.",
                sources=ea.sources,
                confidence=ea.confidence.value,
                fix=_by_fit(ctx, Fix(f"Keep {complete} if the exam was complete; remove "
                                     f"{limited}.", remove=(limited,)), complete, limited),
                on_fail=OnFail.FIX,
            )
            continue
        for proc, guide in ((ea, b), (eb, a)):
            if guide in proc.included_guidance:
                yield Finding(
                    RuleId.PAIRS_GUIDANCE_INCLUDED,
                    Severity.ERROR,
                    (proc.code, guide),
                    f"{proc.code} already includes the imaging guidance; {guide} is not "
                    "reported with it.",
                    sources=proc.sources,
                    confidence=proc.confidence.value,
                    fix=Fix(f"Remove {guide}.", remove=(guide,)),
                    on_fail=OnFail.FIX,
                )
    yield from _included_guidance_notes(ctx, active)
    yield from _warnings(ctx)


def _included_guidance_notes(ctx: Context, active: list[str]) -> Iterator[Finding]:
    """Say which guidance codes are not added to a code that already includes guidance."""
    cat = ctx.catalog
    present = set(active)
    for code in active:
        entry = cat.codes[code]
        left_out = tuple(g for g in entry.included_guidance if g not in present)
        if not left_out:
            continue
        yield Finding(
            RuleId.PAIRS_GUIDANCE_NOT_SEPARATE,
            Severity.INFO,
            (code, *left_out),
            f"{code} already includes the imaging guidance: do not also report "
            f"{' or '.join(left_out)}.",
            sources=entry.sources,
            confidence=entry.confidence.value,
        )


def _warnings(ctx: Context) -> Iterator[Finding]:
    """Is the text right to warn against what it warns against?"""
    cat = ctx.catalog
    for st in ctx.claims.pairs:
        if st.together:
            continue
        edit = cat.pair(st.first, st.second)
        if edit is not None and edit.relation is PairRelation.ALLOWED:
            yield Finding(
                RuleId.PAIRS_UNFOUNDED_WARNING,
                Severity.WARNING,
                (st.first, st.second),
                f"The text says not to report {st.first} with {st.second}, but they may be "
                f"reported together: {edit.rationale}",
                sources=edit.sources,
                confidence=edit.confidence.value,
                span=(st.start, st.end),
            )
    recommended = set(ctx.codes)
    for code in dict.fromkeys(m.code for m in ctx.claims.warned()):
        if code in recommended:
            continue
        entry = cat.get(code)
        if entry is None or not entry.active:
            continue
        justified = False
        for other in recommended:
            edit = cat.pair(code, other)
            if edit is not None and edit.relation is not PairRelation.ALLOWED:
                justified = True
                break
            oe = cat.get(other)
            if oe is not None and (code in oe.included_guidance or oe.counterpart == code):
                justified = True
                break
        if not justified:
            for edit in cat.pairs_for(code):
                if edit.replacement and recommended & set(edit.replacement):
                    justified = True
                    break
        if not justified and entry.misreadings:
            justified = any(recommended & set(m.fix) for m in entry.misreadings)
        if not justified and recommended:
            yield Finding(
                RuleId.WARNED_UNSUPPORTED,
                Severity.INFO,
                (code,),
                f"The text warns against {code}; no rule in the ruleset ties that warning to "
                "the recommended codes: not verified.",
            )
