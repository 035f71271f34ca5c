"""Units: over the unit limit is an error or a warning by adjudication indicator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.schema import Adjudication, Bilateral, Confidence, UnitLimit

_REPEAT = frozenset({"76", "77", "RT", "LT", "59", "XE", "XP", "XS", "XU"})
# What in a question counts services. A bare number does not: ages, weeks of pregnancy and
# sizes ("patient is 40", "7 weeks", "4 cm") are not counts; "x2", "3 units", "2 nodules" are.
_COUNTS = re.compile(
    r"\bx ?\d|\d ?x\b|\b\d+ (?:of (?:them|each)|separate|different|areas?|spots?|sides?|"
    r"passes|cores?|samples?|sessions?|studies|exams?)\b"
    r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|both|bilateral|multiple|"
    r"several|each|additional|second|third|another|twins?|triplets?|units?|times|"
    r"lesions|nodules|sites|vessels|muscles|joints|injections)\b"
    # Upper and lower extremities are separate regions: a code of one region counts twice.
    r"|\b(?:upper|lower)\b[\s\w]{0,25}?\band\s+(?:\w+\s+){0,2}?(?:upper|lower)\s+"
    r"(?:extremit|limb)\w*|\b(?:arms?|legs?) and (?:(?:the|both) )?(?:legs?|arms?)\b"
)

# Words that say both sides were done: for a code that already covers both sides they count
# nothing, and for a code billed per side they ask for -50 (or RT/LT lines), not x2.
_BOTH = re.compile(r"\bboth\b|\bbilateral(?:ly)?\b|\bleft and right\b|\bright and left\b")


# Numbers of things that are not services: "all four quadrants", "7 weeks", "2 views".
_NOT_SERVICES = re.compile(
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|both|all) (?:\w+ )?"
    r"(?:quadrants?|views?|weeks?|wks?|days?|months?|years?|yrs?|minutes?|mins?|hours?|hrs?|"
    r"cm|mm|centimeters?|millimeters?|levels?|trimesters?|chambers?|valves?|planes?|windows?|"
    r"kidneys|lobes|ovaries|adnexa|ventricles|atria|codes?|modifiers?|add-?ons?)\b"
)


# A count beyond the two sides ("three joints", "another lesion").
_MORE_THAN_TWO = re.compile(
    r"\b(?:three|four|five|six|seven|eight|nine|ten|[3-9]|several|multiple|additional|"
    r"another|other)\b"
)


# Asking about units is not counting them: "how many units of guidance?". Needle passes
# count nothing either: codes count lesions, levels or muscles, never passes.
_ASKS_HOW_MANY = re.compile(
    r"\bhow many (?:\w+ )?(?:units?|times)\b"
    r"|\b(?:each|per|every|a|one|multiple|several|many|\d+|two|three|four|five) "
    r"(?:needle )?pass(?:es)?\b"
)


@lru_cache(maxsize=4096)
def counts(question: str, bilateral: Bilateral) -> bool:
    """True when the (lowercased) question counts services for a code of this bilateral rule.

    "Both" or "bilateral" counts nothing for a code that covers both sides or is not sided;
    numbers of quadrants, views, weeks or sizes never count.
    """
    question = _ASKS_HOW_MANY.sub(" ", _NOT_SERVICES.sub(" ", question))
    if bilateral in (Bilateral.INHERENT, Bilateral.NOT_APPLICABLE):
        question = _BOTH.sub(" ", question)
    return bool(_COUNTS.search(question))


_NUMBER = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
           "nine": 9, "ten": 10, "twins": 2, "triplets": 3}
# A total count of the things an "each additional" add-on counts: "two thyroid nodules",
# "3 vessels", "twins". "Two additional nodules" counts the add-on's own units, not the total.
_TOTAL = re.compile(
    r"\b(?:(?P<n>\d+|two|three|four|five|six|seven|eight|nine|ten) (?:(?P<w>[a-z-]+) )?"
    r"(?:lesions|nodules|masses|cysts|targets|vessels|arteries|veins|sites|levels|gestations|"
    r"fetuses|sacs|areas|spots)|(?P<t>twins|triplets))\b"
)
_MORE_WORDS = frozenset({"additional", "more", "other", "extra", "further", "added"})
_MORE = re.compile(r"\b(?:" + "|".join(sorted(_MORE_WORDS)) + r")\b")


def stated_total(question: str) -> int | None:
    """The largest total count of lesions, vessels, levels or gestations the (lowercased)
    question states, or None. "Two additional nodules" is not a total."""
    best = None
    for m in _TOTAL.finditer(question):
        if m["t"]:
            n = _NUMBER[m["t"]]
        elif m["w"] in _MORE_WORDS:
            continue
        else:
            n = int(m["n"]) if m["n"].isdigit() else _NUMBER[m["n"]]
        best = n if best is None else max(best, n)
    return best


# Words that count without a number: the question may then count any number of services.
_UNBOUNDED = re.compile(r"\b(?:several|multiple|many|numerous|each|every|additional|"
                        r"another|other|further|all|per)\b")
_ANY_NUMBER = re.compile(r"\b(\d+|two|three|four|five|six|seven|eight|nine|ten|twins|"
                         r"triplets)\b")
_TIMES = re.compile(r"\bx ?(\d+)\b|\b(?<!\d)(\d+) ?x\b")


@lru_cache(maxsize=4096)
def stated_most(question: str) -> int | None:
    """The most services the (lowercased) question could count: its largest number (not of
    weeks, sizes, views or years), 2 where it says both sides, at least 1; None where it
    counts without a number ('several', 'each') and any count may be meant."""
    q = _ASKS_HOW_MANY.sub(" ", _NOT_SERVICES.sub(" ", question))
    if _UNBOUNDED.search(q):
        return None
    q = _TIMES.sub(lambda m: f" {m.group(1) or m.group(2)} ", q)  # 'x2', '2x': the number
    found: list[int] = [int(n) if n.isdigit() else _NUMBER[n] for n in _ANY_NUMBER.findall(q)]
    return int(max([1, *found, *((2,) if _BOTH.search(q) else ())]))


def _each_additional(ctx: Context, code: str) -> tuple[str, int] | None:
    """(primary, units it should carry) for an "each additional" add-on whose one primary is
    drafted and whose total the question states; None when this does not apply."""
    entry = ctx.catalog.codes[code]
    if not (entry.add_on and entry.primaries_exhaustive and len(entry.primaries) == 1):
        return None
    if entry.unit_limit is not None and entry.unit_limit.value == 1:
        return None  # names one level or all further levels (0214T, 0215T), not each one

    primary = entry.primaries[0]
    if primary not in ctx.units or not ctx.context:
        return None
    total = stated_total(ctx.context)
    d = entry.describes
    if (total is None and ctx.frame is not None and d is not None and d.count is not None
            and not _MORE.search(ctx.context)):
        # the reading's count of the thing ('lesion A ... and lesion B': 2), unless it is
        # only a least number ('several')
        thing = d.count.thing
        if not ctx.frame.count_is_minimum(thing):
            total = ctx.frame.count_of(thing)
    if total is None or total < 2:
        return None
    return primary, total - 1


def _first_of(ctx: Context, code: str) -> str | None:
    """The drafted "each additional" add-on whose one primary ``code`` is (the first lesion
    or vessel: one unit, whatever the total), when the question states the total."""
    for other in ctx.known():
        got = _each_additional(ctx, other) if other != code else None
        if got is not None and got[0] == code:
            return other
    return None


def check(ctx: Context) -> Iterator[Finding]:
    """Findings for units above the limit held for a code."""
    cat = ctx.catalog
    for code in ctx.known():
        extra_code = _first_of(ctx, code) if ctx.units[code] != 1 else None
        if extra_code is not None:
            yield Finding(
                RuleId.UNITS_EACH_ADDITIONAL,
                Severity.WARNING,
                (code,),
                f"{code} is the first lesion, vessel, level or gestation, once; each one "
                f"after it is {extra_code}.",
                sources=cat.codes[extra_code].sources,
                confidence=cat.codes[extra_code].confidence.value,
                fix=Fix(f"Report {code} x1.", set_units=((code, 1),)),
                on_fail=OnFail.FIX,
            )
            continue
        limit = cat.unit_limit(code)
        units = ctx.units[code]
        question = ctx.context
        own = ctx.compiled.own_counts.get(code)
        if own is not None and question:
            question = own.sub(" ", question)  # "three muscles" picks 20553, once
        # A drafted answer to a question that counts nothing (no number, no "both" for a
        # code billed per side, no "each"): the extra units are the draft's own, and the
        # limit is the fix.
        uncounted = bool(question) and not counts(question, cat.codes[code].bilateral)
        # more units than any number the question says: the count is the draft's own
        cap = stated_most(question) if question else None
        beyond = cap is not None and units > cap
        uncounted = uncounted or beyond
        extra = _each_additional(ctx, code)
        if extra is not None:
            primary, want = extra
            if units != want:
                yield Finding(
                    RuleId.UNITS_EACH_ADDITIONAL,
                    Severity.WARNING,
                    (code,),
                    f"{code} counts each lesion, vessel, level or gestation after the first, "
                    f"which is {primary}: {want + 1} in all is {primary} x1 and {code} "
                    f"x{want}, not x{units}.",
                    sources=cat.codes[code].sources,
                    confidence=cat.codes[code].confidence.value,
                    fix=Fix(f"Report {code} x{want}.", set_units=((code, want),)),
                    on_fail=OnFail.FIX,
                )
                continue
            uncounted = False  # the question's own count, less the first
        if limit is None:
            yield from _no_limit(ctx, code, uncounted, beyond)
            continue
        if units <= limit.value:
            continue
        over = _over_limit(ctx, code, units, limit, uncounted)
        if over is not None:
            yield over


def _over_limit(
    ctx: Context, code: str, units: int, limit: UnitLimit, uncounted: bool
) -> Finding | None:
    """The finding for more units than the limit, worded by how the limit is adjudicated."""
    note = f" {limit.note}" if limit.note else ""
    per = {"encounter": "per encounter", "day": "per day", "line": "per claim line"}[limit.per]
    base = f"{code} is reported {units} units; the limit is {limit.value} {per}.{note}"
    fix = Fix(f"Report {code} x{limit.value}.", set_units=((code, limit.value),))
    strict = limit.confidence is not Confidence.LOW
    # A policy or descriptor limit is a fix; a clinical or line limit, a fix only when the
    # question counts nothing (the extra units are then the draft's own).
    soft = OnFail.FIX if uncounted else OnFail.WARN
    if limit.adjudication in (Adjudication.ENCOUNTER_POLICY, Adjudication.DATE_POLICY):
        severity = Severity.ERROR if strict else Severity.WARNING
        said, on_fail = " This limit is set by policy and cannot be appealed.", OnFail.FIX
    elif limit.adjudication is Adjudication.DESCRIPTOR:
        severity = Severity.ERROR if strict else Severity.WARNING
        said = (" The code itself covers them all by its definition; this is the code's "
                "meaning, not a payer edit.")
        on_fail = OnFail.FIX
    elif limit.adjudication is Adjudication.DATE_CLINICAL:
        severity, on_fail = Severity.WARNING, soft
        said = " Units above it are denied unless the records show they were needed."
    elif limit.adjudication is Adjudication.LINE:
        if ctx.line_count[code] > 1 and ctx.modifiers.get(code, frozenset()) & _REPEAT:
            return None
        severity, on_fail = Severity.WARNING, soft
        said = " Extra units go on separate lines with 76/77, RT/LT or 59 when documented."
    else:
        severity, on_fail = Severity.WARNING, soft
        said = " How the limit is adjudicated is not known: not verified."
    return Finding(
        RuleId.UNITS_OVER_LIMIT,
        severity,
        (code,),
        base + said,
        sources=limit.sources,
        confidence=limit.confidence.value,
        fix=fix,
        on_fail=on_fail,
    )


def _no_limit(ctx: Context, code: str, uncounted: bool, beyond: bool) -> Iterator[Finding]:
    """More than one unit on a line of a code with no unit limit held: not verified.

    Separate lines of one unit each told apart by RT/LT, 76/77 or 59/X{EPSU} are left to the
    other rules; a line of several units, or one code drafted on several lines that nothing
    tells apart, is a count nothing here can check. Where the question counts nothing,
    the count is the draft's own and one unit is the fix.
    """
    lines = [ln for ln in ctx.lines if ln.code == code]
    sides = [frozenset(ln.modifiers) & _REPEAT for ln in lines]
    told_apart = len(lines) > 1 and len(set(sides)) == len(sides)
    one_bare = not any(set(ln.modifiers) & {"50", "RT", "LT"} for ln in lines) and sum(
        1 for x in sides if not x
    ) == 1
    if told_apart and (all(sides) or (one_bare and not uncounted)):
        # Separate lines told apart by RT/LT, 76 or 59 - or, where the question counts the
        # services, a first line and further lines with 59 (93970 for the arms and 93970-59
        # for the legs).
        most = max(ln.units for ln in lines)
    else:
        most = sum(ln.units for ln in lines)  # one line, or the same line drafted twice
    if most <= 1:
        return
    entry = ctx.catalog.codes[code]
    sided = frozenset().union(*(ln.modifiers for ln in lines)) & {"50", "RT", "LT"}
    # Both sides drafted as x2: with no side modifier ("76641 x2"), or on one line that
    # already says both sides ("76641-50 x2", "76641-RT-LT x2", "76641-50" drafted twice, or
    # -50 beside RT and LT lines). Either way: -50 x1.
    on_one_line = all(set(ln.modifiers) & {"50", "RT", "LT"} for ln in lines) and (
        "50" in sided or {"RT", "LT"} <= sided
    )
    if (
        (most == 2 or (on_one_line and most == 3) or beyond)
        and entry.bilateral in (Bilateral.MODIFIER_50, Bilateral.EACH_SIDE)
        and (not sided or on_one_line)
        and _BOTH.search(ctx.context)
        and not _MORE_THAN_TWO.search(_NOT_SERVICES.sub(" ", ctx.context))
    ):
        message = (
            f"{code} with -50 (or RT and LT on one line) already reports both sides: it is "
            f"one unit, not {most}." if sided else
            f"{code} x2 for both sides: a code billed per side is reported once with -50 "
            "(Medicare) or on RT and LT lines, not as 2 units on one line."
        )
        yield Finding(
            RuleId.UNITS_BOTH_SIDES,
            Severity.WARNING,
            (code,),
            message,
            sources=entry.sources,
            confidence=entry.confidence.value,
            fix=Fix(
                f"Report {code}-50 x1 (or {code}-RT and {code}-LT where the payer asks).",
                set_units=((code, 1),),
                drop_modifiers=tuple((code, m) for m in ("RT", "LT") if m in sided),
                add_modifiers=((code, "50"),),
            ),
            on_fail=OnFail.FIX,
        )
        return
    if uncounted:
        yield Finding(
            RuleId.UNITS_UNCOUNTED,
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
        RuleId.UNITS_NO_LIMIT,
        Severity.WARNING,
        (code,),
        f"{code} x{most}: no unit limit is held for {code} here, so the count is not "
        "verified. Import the CMS MUE file (`advisor import-cms`) to check it.",
        confidence="low",
    )
