"""Modifiers: -50, -52, -26/-TC and RT/LT only where they apply."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from guardrails.question.fit import fitter_for
from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.catalog import Catalog
from knowledge.schema import Bilateral, CodeEntry, Extent, PcTc


def check(ctx: Context) -> Iterator[Finding]:
    """Findings for modifiers used where the catalog says they do not apply, then for
    modifiers the question gives no ground for."""
    flagged: set[tuple[str, str]] = set()
    for code, mod, f in _catalog_rules(ctx):
        if f.fix is not None:  # handled; a warning with no fix ("split not known") is not
            flagged.add((code, mod))
        yield f
    yield from _unasked(ctx, flagged)
    yield from _distinct_without_edit(ctx, flagged)


def covers_both_sides(entry: CodeEntry) -> bool:
    """True for a code that itself reports both sides (93970, 93880, 93985): no RT or LT."""
    if entry.bilateral is not Bilateral.INHERENT:
        return False
    if entry.sides is not None:
        return entry.sides == "both"
    return entry.extent is not Extent.LIMITED


_CODE_IN_TEXT = re.compile(r"\b\d{4}[0-9T]\b")


def _cited(cat: Catalog, sources: Iterable[str], code: str) -> tuple[str, ...]:
    """Of a modifier rule's sources, those that speak to ``code``: a source whose summary
    names codes but not this one (a breast article behind -50) is about another code."""
    out: list[str] = []
    for key in dict.fromkeys(sources):
        src = cat.sources.get(key)
        named = set(_CODE_IN_TEXT.findall(src.supports)) if src is not None else set()
        if not named or code in named:
            out.append(key)
    return tuple(out)


# Long: one branch per condition a modifier rule in knowledge/data can state (not on an
# add-on, sides, reduced, 26/TC ...), each with its finding beside its test, as one table.
def _catalog_rules(ctx: Context) -> Iterator[tuple[str, str, Finding]]:
    """(code, modifier, finding) for modifiers the catalog says do not apply."""
    cat = ctx.catalog
    for code in ctx.known():
        entry = cat.codes[code]
        for mod in sorted(ctx.modifiers.get(code, frozenset())):
            rule = cat.modifiers.get(mod)
            if rule is None or mod in entry.allowed_modifiers:
                continue
            # The facts that fire are the modifier rule's and the code's own (its add-on
            # status, sides, split): cited once each.
            src = _cited(cat, rule.sources, code) + tuple(
                k for k in entry.sources if k not in rule.sources
            )
            conf = rule.confidence.value
            drop = Fix(f"Remove -{mod} from {code}.", drop_modifiers=((code, mod),))
            for cond in rule.not_on:
                if cond == "add_on" and cat.is_add_on(code):
                    yield code, mod, Finding(
                        RuleId.MODIFIERS_BILATERAL,
                        Severity.ERROR,
                        (code,),
                        f"{code} is an add-on code; add-ons take no -{mod}.",
                        sources=src,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if cond == "both_sides_code" and covers_both_sides(entry):
                    yield code, mod, Finding(
                        RuleId.MODIFIERS_SIDE,
                        Severity.WARNING,
                        (code,),
                        f"{code} itself reports both sides; it has no side for -{mod} to name.",
                        sources=src,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if cond == "inherent_bilateral" and entry.bilateral is Bilateral.INHERENT:
                    other = cat.get(entry.counterpart) if entry.counterpart else None
                    if entry.sides == "one" and entry.side_counterpart:
                        other = cat.get(entry.side_counterpart)
                    if (
                        mod == "50"
                        and other is not None
                        and (entry.extent is Extent.LIMITED or entry.sides == "one")
                        and other.bilateral is Bilateral.INHERENT
                        # one side studied, or the question rules the other code out:
                        # the modifier is what is wrong, not the code
                        and not (ctx.frame is not None and ctx.frame.sides == "one")
                        and not (
                            ctx.frame is not None
                            and fitter_for(cat).contradictions(ctx.frame, other.code)
                        )
                    ):
                        fix = Fix(
                            f"Report {other.code} (both sides) instead of {code}-50.",
                            remove=(code,),
                            add=(other.code,),
                        )
                    else:
                        fix = drop
                    yield code, mod, Finding(
                        RuleId.MODIFIERS_BILATERAL if mod == "50" else RuleId.MODIFIERS_SIDE,
                        Severity.ERROR if mod == "50" else Severity.WARNING,
                        (code,),
                        f"{code} already covers "
                        + ("both sides" if entry.extent is not Extent.LIMITED else "either side")
                        + f"; do not add -{mod}."
                        + (f" {rule.note}" if rule.note and mod == "50" else ""),
                        sources=src,
                        confidence=conf,
                        fix=fix,
                        on_fail=OnFail.FIX,
                    )
                    break
                if (
                    cond == "not_applicable_bilateral"
                    and entry.bilateral is Bilateral.NOT_APPLICABLE
                ):
                    yield code, mod, Finding(
                        RuleId.MODIFIERS_BILATERAL,
                        Severity.ERROR,
                        (code,),
                        f"{code} is not a sided service; -{mod} does not apply.",
                        sources=src,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if (
                    cond == "has_limited_counterpart"
                    and entry.extent is Extent.COMPLETE
                    and entry.counterpart
                    and ctx.frame is not None
                    and ctx.frame.affirms("complete")
                    and not ctx.frame.affirms("limited")
                ):
                    yield code, mod, Finding(
                        RuleId.MODIFIERS_REDUCED,
                        Severity.ERROR,
                        (code,),
                        f"The question describes a complete exam: {code} is reported without "
                        f"-{mod}.",
                        sources=src,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if (
                    cond == "has_limited_counterpart"
                    and entry.extent is Extent.COMPLETE
                    and entry.counterpart
                ):
                    yield code, mod, Finding(
                        RuleId.MODIFIERS_REDUCED,
                        Severity.ERROR,
                        (code,),
                        f"A reduced {code} is reported with the limited code "
                        f"{entry.counterpart}, not with -{mod}.",
                        sources=src,
                        confidence=conf,
                        fix=Fix(
                            f"Report {entry.counterpart} instead of {code}-{mod}.",
                            remove=(code,),
                            add=(entry.counterpart,),
                        ),
                        on_fail=OnFail.FIX,
                    )
                    break
                if cond == "has_limited_counterpart" and entry.extent is Extent.LIMITED:
                    yield code, mod, Finding(
                        RuleId.MODIFIERS_REDUCED,
                        Severity.ERROR,
                        (code,),
                        f"{code} is already the limited code; do not add -{mod}.",
                        sources=src,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if cond == "no_pc_tc" and entry.pc_tc is PcTc.NONE:
                    yield code, mod, Finding(
                        RuleId.MODIFIERS_PC_TC,
                        Severity.ERROR,
                        (code,),
                        f"{code} has no professional/technical split; -{mod} does not apply.",
                        sources=src,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if cond == "no_pc_tc" and entry.pc_tc is PcTc.UNKNOWN:
                    yield code, mod, Finding(
                        RuleId.MODIFIERS_PC_TC,
                        Severity.WARNING,
                        (code,),
                        f"Whether {code} has a professional/technical split is not known here: "
                        f"-{mod} not verified.",
                        sources=src,
                        confidence="low",
                    )
                    break


# What a question says that grounds a modifier. Only a drafted answer to a question is
# checked this way (the question is the context): a modifier the question gives no ground
# for is the draft's own guess, and the fix drops it (the person adds it from the note).
_REDUCED = re.compile(
    r"\b(?:limited|reduced|partial(?:ly)?|incomplete(?:ly)?|discontinued|terminated|aborted|"
    r"stopped|halted|cut short|could ?n[o']?t|unable|not (?:fully|completely|all)|only|just|"
    r"single|one)\b|\b52\b"
)
_BOTH = re.compile(r"\bbilateral(?:ly)?\b|\bboth\b|\bleft and right\b|\bright and left\b|\b50\b")
# A professional or technical component only: who read it, whose equipment, which setting.
_COMPONENT = re.compile(
    r"\binterpret\w*|\bread(?:s|ing)?\b|\breport(?:ed|ing)? only\b|\bprofessional\b|"
    r"\bcomponent\b|\bpc\b|\btc\b|\btechnical\b|\bhospital\b|\bfacility\b|"
    r"\binpatient\b|\boutpatient department\b|\bhopd\b|\bemergency\b|\bed\b|\ber\b|"
    r"\bicu\b|\bbedside\b|\bequipment\b|\b26\b"
)
_RIGHT = re.compile(r"\bright\b|\brt\b")
_LEFT = re.compile(r"\bleft\b|\blt\b")


_DISTINCT_SAID = re.compile(
    r"\bseparate\w*|\bdistinct\b|\bdifferent (?:site|session|encounter|structure|organ|"
    r"practitioner|lesion|area)|\banother (?:site|session|encounter|structure|organ|area)"
)
_REPEAT_SAID = re.compile(r"\brepeat\w*|\bagain\b|\bsecond (?:time|study|exam|scan)\b")
_EM_SAID = re.compile(r"\be/?m\b|\bevaluation and management\b|\boffice visit\b|\bconsult")
# A modifier the question keys itself: "93971-50", "modifier 26", "with RT".
_KEYED = re.compile(r"(?:\d{4}[\dt]|\bmodifiers?)[ -]+([0-9a-z]{2})\b|-([0-9a-z]{2})\b")


def implied_modifiers(question: str, history: str = "") -> frozenset[str]:
    """Modifiers the question (and the one it follows up) gives ground for.

    The same readings as the checker's ``modifiers.unasked``: -52 for a reduced service,
    -50 (and RT/LT) for both sides, RT or LT for a side, -26/-TC for a component or a
    setting; -59/X{EPSU} for a separate site or session; -76/-77 for a repeat; -25 beside an
    E/M service; and any modifier the question keys itself. A drafted answer gets no other.
    """
    said = " ".join(t for t in (question, history) if t).lower()
    if not said.strip():
        return frozenset()
    out: set[str] = set()
    if _REDUCED.search(said):
        out.add("52")
    if _BOTH.search(said):
        out.update(("50", "RT", "LT"))
    if _RIGHT.search(said):
        out.add("RT")
    if _LEFT.search(said):
        out.add("LT")
    if _COMPONENT.search(said):
        out.update(("26", "TC"))
    if _DISTINCT_SAID.search(said):
        out.update(_DISTINCT)
    if _REPEAT_SAID.search(said):
        out.update(("76", "77"))
    if _EM_SAID.search(said):
        out.add("25")
    for m in _KEYED.finditer(said):
        out.add((m.group(1) or m.group(2)).upper())
    return frozenset(out)


def _unasked(ctx: Context, flagged: set[tuple[str, str]]) -> Iterator[Finding]:
    """-52, -50, -26/-TC, RT or LT on a drafted code where the question gives no ground for
    it."""
    said = " ".join(t for t in (ctx.context, ctx.history) if t)
    if not ctx.context:
        return
    cat = ctx.catalog
    right, left = bool(_RIGHT.search(said)), bool(_LEFT.search(said))
    both = bool(_BOTH.search(said))
    for code in ctx.known():
        for mod in sorted(ctx.modifiers.get(code, frozenset())):
            if (code, mod) in flagged:
                continue
            if mod == "52" and not _REDUCED.search(said):
                why = "the question describes no reduced or discontinued service"
            elif mod == "50" and not both:
                why = "the question does not say both sides were done"
            elif mod in ("26", "TC") and not _COMPONENT.search(said):
                why = ("the question does not say who read the study or whose equipment was "
                       "used; add -26 or -TC only when one component is billed")
            elif mod in ("RT", "LT") and not (right or left or both):
                why = "the question names no side; add RT or LT from the note"
            elif mod == "RT" and left and not right:
                why = "the question says left, not right (LT)"
            elif mod == "LT" and right and not left:
                why = "the question says right, not left (RT)"
            else:
                continue
            rule = cat.modifiers.get(mod)
            yield Finding(
                RuleId.MODIFIERS_UNASKED,
                Severity.WARNING,
                (code,),
                f"-{mod} on {code} is not verified: {why}.",
                sources=_cited(cat, rule.sources, code) if rule else (),
                confidence=rule.confidence.value if rule else "medium",
                fix=Fix(f"Remove -{mod} from {code}.", drop_modifiers=((code, mod),)),
                on_fail=OnFail.FIX,
            )


_DISTINCT = ("59", "XE", "XP", "XS", "XU")


def _distinct_without_edit(ctx: Context, flagged: set[tuple[str, str]]) -> Iterator[Finding]:
    """-59 or X{EPSU} on a code that forms no pair edit with any other drafted code.

    These modifiers exist to bypass a pair edit; with nothing to bypass they say nothing
    true about the claim (and unneeded -59 is a known audit target). Several lines of one
    code told apart by -59 are left alone.
    """
    cat = ctx.catalog
    codes = ctx.known()
    for code in codes:
        if ctx.line_count.get(code, 1) > 1:
            continue
        others = [o for o in codes if o != code]
        for mod in sorted(ctx.modifiers.get(code, frozenset()) & frozenset(_DISTINCT)):
            if (code, mod) in flagged or any(cat.pair(code, o) for o in others):
                continue
            rule = cat.modifiers.get(mod)
            yield Finding(
                RuleId.MODIFIERS_DISTINCT_UNNEEDED,
                Severity.WARNING,
                (code,),
                f"-{mod} bypasses a pair edit, and {code} forms none with the other codes "
                "here: the modifier is not needed.",
                sources=_cited(cat, rule.sources, code) if rule else (),
                confidence=rule.confidence.value if rule else "medium",
                fix=Fix(f"Remove -{mod} from {code}.", drop_modifiers=((code, mod),)),
                on_fail=OnFail.FIX,
            )
