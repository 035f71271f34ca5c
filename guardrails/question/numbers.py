"""Numbers a question states: patient age, gestational age, counts of things, code numbers.

These are read with small patterns over the text; whether a number counts for today's
service (a count in a sentence about a planned scan does not) is decided by the reader,
which knows the assertion scopes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from knowledge.schema import AgeBand

WORD_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "single": 1, "solitary": 1, "two": 2, "both": 2, "three": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "pair of": 2, "couple of": 2,
}
_NUMBER = r"(\d{1,2}|" + "|".join(sorted((re.escape(w) for w in WORD_NUMBERS), key=len,
                                         reverse=True)) + r")"
# A number stated as one (not an article): "two", "3", "single", "both".
_STATED_NUMBER = r"(\d{1,2}|" + "|".join(sorted((re.escape(w) for w in WORD_NUMBERS
                                                 if w not in ("a", "an")),
                                                key=len, reverse=True)) + r")"

CODE_NUMBER = re.compile(r"(?<![\w.])(\d{4}[\dT]|[A-HJ-NP-V]\d{4})(?![\w])", re.IGNORECASE)

# Nouns counted, by the thing each counts (plural forms included).
COUNT_NOUNS: dict[str, tuple[str, ...]] = {
    "lesion": ("lesions?", "nodules?", "masse?s?", "tumou?rs?", "targets?", "cysts?", "lumps?",
               "foci", "focus", "sites?", "nodes?", "lymph nodes?"),
    "vessel": ("vessels?", "arter(?:y|ies)", "veins?", "branch(?:es)?", "grafts?"),
    "muscle": ("muscles?", "muscle groups?", "trigger points?"),
    "gestation": ("fetus(?:es)?", "foetus(?:es)?", "gestations?", "babies", "baby"),
    "level": ("levels?", "segments?", "spinal levels?", "vertebral levels?"),
    "joint": ("joints?", "knees?", "shoulders?", "hips?", "elbows?", "wrists?", "ankles?"),
    "injection": ("injections?", "injection sites?", "needle pass(?:es)?"),
}
_NOUN_THING = [(re.compile(r"^(?:" + "|".join(nouns) + r")$"), thing)
               for thing, nouns in COUNT_NOUNS.items()]
_ALL_NOUNS = "|".join(n for nouns in COUNT_NOUNS.values() for n in nouns)
# Words that say how much or how long, not what kind: "in 2 weeks the veins", "a 2 cm nodule".
_MEASURES = ("weeks?", "wks?", "days?", "months?", "mos?", "years?", "yrs?", "hours?", "hrs?",
             "minutes?", "mins?", "times?", "cm", "mm", "ml", "cc", "mg", "kg", "inch(?:es)?",
             # a clock-face position locates a breast lesion ('2 o'clock mass'): no count
             "o['\u2019]?clock", "clock")
# Stop words that still describe the counted thing ("two more nodules", "three other veins").
_KIND_WORDS = ("separate", "distinct", "different", "additional", "more", "other")


def _describing_word() -> str:
    """A word describing a counted thing: any word but a function word (spaCy's English stop
    words, read on first use) or a measure."""
    from spacy.lang.en.stop_words import STOP_WORDS

    stop = sorted({w for w in STOP_WORDS if w.isalpha() and w not in _KIND_WORDS}
                  | set(WORD_NUMBERS), key=len, reverse=True)
    function = "|".join([*(re.escape(w) for w in stop), *_MEASURES])
    return r"(?!(?:" + function + r")(?=[\s,.;:]|$))[a-z][a-z'-]*"


@functools.cache
def _several_re() -> re.Pattern[str]:
    """'several incompetent veins', 'multiple thyroid nodules': two or more of the thing."""
    return re.compile(
        r"\b(?:several|multiple|numerous|two or more|2 or more|more than one)\s+(?:"
        + _describing_word() + r"[\s-]+){0,3}?(" + _ALL_NOUNS + r")\b",
        re.IGNORECASE,
    )


@functools.cache
def _counted_re() -> re.Pattern[str]:
    """A number, up to three words describing the thing, and the counted noun: "two thyroid
    nodules", "3 separate liver lesions", "two hypoechoic solid nodules", "three incompetent
    varicose veins". A describing word is any word but a function word (spaCy's English stop
    words, read here on first use) or a measure; so "in 2 weeks the left leg veins" counts
    nothing."""
    word = _describing_word()
    return re.compile(
        r"\b" + _STATED_NUMBER + r"\s+(?:" + word + r"[\s-]+){0,3}?(" + _ALL_NOUNS + r")\b",
        re.IGNORECASE,
    )


# "a nodule", "an enlarged lymph node": an article says one thing is spoken of, not that
# there is only one (the GSV "and an accessory vein" are two), so it counts only before the
# noun itself or a few kinds of describing word.
_ARTICLE_COUNTED = re.compile(
    r"\b(an?)\s+(?:(?:separate|distinct|different|additional|[a-z]+(?:al|ic|ous|ive|ar|ed)|"
    r"thyroid|liver|breast|renal|kidney|lung|lymph|neck|axillary|lower|upper|extremity|leg|arm|"
    r"iliac|femoral|coronary|peripheral)[\s-]+){0,3}(" + _ALL_NOUNS + r")\b",
    re.IGNORECASE,
)


# "one nodule in each lobe", "a lesion in both breasts", "one in each knee"
_EACH = re.compile(
    r"\b(?:one|a|an|single)\s+(?:[a-z]+\s+){0,3}?(?:in|on|of|at|from)\s+(?:each|both|either)\s+"
    r"(?:of\s+the\s+)?(?:two\s+)?([a-z]+)",
    re.IGNORECASE,
)
_MULTIPLES = {"twins": ("gestation", 2), "twin": ("gestation", 2), "triplets": ("gestation", 3),
              "triplet": ("gestation", 3), "quadruplets": ("gestation", 4),
              "singleton": ("gestation", 1)}
_MULTIPLE_RE = re.compile(r"\b(" + "|".join(_MULTIPLES) + r")\b", re.IGNORECASE)
# "each additional lesion", "a second lesion": at least two of the thing
_SECOND = re.compile(r"\b(?:second|2nd|another|additional)\s+(?:[a-z]+\s+){0,2}?("
                     + _ALL_NOUNS + r")\b", re.IGNORECASE)

# "no other vessel was imaged", "no additional lesion": the one named is the only one
_NO_OTHER = re.compile(r"\b(?:no|not\s+any|without\s+any)\s+(?:other|additional|further|second|"
                       r"more)\s+(?:[a-z]+\s+){0,2}?(" + _ALL_NOUNS + r")\b", re.IGNORECASE)


# Spinal levels named in a list: "T5 and T6", "L4-L5 and L5-S1", "C5, C6 and C7". Each
# item is one level (an interspace such as L4-L5 is one facet or epidural level); a single
# named level is not counted (it says no more than "one level").
_LEVEL = r"[CTLS]\d{1,2}(?:\s*[-/]\s*[CTLS]?\d{1,2})?"
_LEVEL_LIST = re.compile(
    r"(?<![\w-])" + _LEVEL + r"(?:\s*(?:,\s*(?:and\s+|&\s*)?|\s+and\s+|\s*[&+]\s*)" + _LEVEL
    + r")+(?![\w-])"
)
_LEVEL_ITEM = re.compile(_LEVEL)
# Limb levels of a physiologic arterial study (segmental pressures, PVR) named in a list:
# "at the thigh, calf and ankle", "ankle and toe". Each named region is one level; a single
# one is not counted.
_LIMB_LEVEL = (r"(?:high|low|upper|lower|mid)?[- ]?thighs?|above[- ]the[- ]knee|above[- ]knee|"
               r"below[- ]the[- ]knee|below[- ]knee|calf|calves|ankles?|metatarsals?|"
               r"transmetatarsal|(?:great\s+)?toes?|digits?|upper\s+arms?|forearms?|wrists?|"
               r"fingers?")
_LIMB_LEVEL_LIST = re.compile(
    r"\b(?:" + _LIMB_LEVEL + r")(?:\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*[&+/]\s*)(?:the\s+)?(?:"
    + _LIMB_LEVEL + r"))+\b", re.IGNORECASE)
_LIMB_ITEM = re.compile(_LIMB_LEVEL, re.IGNORECASE)


# Coder shorthand for a count: "IVUS x3 vessels", "x2 nodules", "nodules x 2", "3x lesions".
_TIMES_COUNTED = re.compile(
    r"(?<![\w])(?:[x\u00d7]\s?(\d{1,2})|(\d{1,2})\s?[x\u00d7])\s+(?:[a-z]+\s+){0,2}?("
    + _ALL_NOUNS + r")\b|\b(" + _ALL_NOUNS + r")\s*[x\u00d7]\s?(\d{1,2})(?![\w.])",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Number:
    """A number read from the text, with what it is about and where."""

    what: str  # a count thing, "age", "weeks"
    value: float
    span: tuple[int, int]
    text: str
    at_least: bool = False  # "a second lesion": two or more


_LABELLED = re.compile(r"\b(" + _ALL_NOUNS + r")\s+(?:#\s*)?(?-i:([A-Z]|\d))(?![\w'\u2019.])"
                       r"(?!\s*(?:" + "|".join(_MEASURES) + r"|x|by)\b)",
                       re.IGNORECASE)


def thing_of(noun: str) -> str | None:
    """The count thing a noun counts ('nodules' -> lesion), or None."""
    noun = noun.lower()
    for rx, thing in _NOUN_THING:
        if rx.match(noun):
            return thing
    return None


def _value(word: str) -> int:
    word = word.lower()
    return int(word) if word.isdigit() else WORD_NUMBERS[word]


def counts(text: str) -> Iterator[Number]:
    """Counts of things the text states, in text order."""
    for rx in (_counted_re(), _ARTICLE_COUNTED):
        for m in rx.finditer(text):
            thing = thing_of(m.group(2))
            if thing is None:
                continue
            n = _value(m.group(1))
            if 0 < n <= 50:
                yield Number(thing, n, m.span(), m.group(0))
    for m in _TIMES_COUNTED.finditer(text):
        value = m.group(1) or m.group(2) or m.group(5)
        thing = thing_of(m.group(3) or m.group(4))
        if thing is not None and 0 < int(value) <= 50:
            yield Number(thing, int(value), m.span(), m.group(0))
    for m in _EACH.finditer(text):
        head = text[m.start():m.end()].split()
        noun = next((thing_of(w) for w in head[1:4] if thing_of(w)), None)
        yield Number(noun or "lesion", 2, m.span(), m.group(0))
    for m in _MULTIPLE_RE.finditer(text):
        thing, n = _MULTIPLES[m.group(1).lower()]
        yield Number(thing, n, m.span(), m.group(0))
    for m in _several_re().finditer(text):
        thing = thing_of(m.group(1))
        if thing is not None:
            yield Number(thing, 2, m.span(), m.group(0), at_least=True)
    for m in _SECOND.finditer(text):
        thing = thing_of(m.group(1))
        if thing is not None and not _NO_OTHER.search(text, max(0, m.start() - 12), m.end()):
            yield Number(thing, 2, m.span(), m.group(0), at_least=True)
    for m in _NO_OTHER.finditer(text):
        thing = thing_of(m.group(1))
        if thing is not None:
            yield Number(thing, 1, m.span(), m.group(0))
    for m in _LEVEL_LIST.finditer(text):
        items = _LEVEL_ITEM.findall(m.group(0))
        yield Number("level", len(dict.fromkeys(i.replace(" ", "") for i in items)), m.span(),
                     m.group(0))
    # lesions told apart by labels ('lesion A ... lesion B', 'nodule #1 and nodule #2')
    labels: dict[str, dict[str, tuple[int, int]]] = {}
    for m in _LABELLED.finditer(text):
        thing = thing_of(m.group(1))
        if thing is not None:
            labels.setdefault(thing, {}).setdefault(m.group(2).upper(), m.span())
    for thing, seen in labels.items():
        if len(seen) >= 2:
            spans = list(seen.values())
            yield Number(thing, len(seen), (spans[0][0], spans[-1][1]),
                         text[spans[0][0]:spans[-1][1]])
    for m in _LIMB_LEVEL_LIST.finditer(text):
        items = [i.lower().strip(" -").rstrip("s") for i in _LIMB_ITEM.findall(m.group(0))]
        n = len(dict.fromkeys(items))
        if n >= 2:
            yield Number("level", n, m.span(), m.group(0))


_NUM = r"(\d{1,3}(?:\.\d)?)"
_AGE_OF = r"\s+(?:the\s+)?(?:age\s+(?:of\s+)?)?"
_AGE_BELOW = re.compile(r"\b(?:under|younger than|less than|below)" + _AGE_OF + _NUM
                        + r"(?!\s*(?:weeks?|wks?|months?|days?|cm|mm|ml|kg|%))\b", re.IGNORECASE)
_AGE_ATLEAST = re.compile(
    _NUM + r"\s*(?:years?|yrs?|y)?\s*(?:of age\s*)?(?:or|and)\s*(?:older|over|above)\b"
    r"|\b(?:over|older than|above)" + _AGE_OF + _NUM + r"\s*(?:years?|yrs?|y)\b",
    re.IGNORECASE,
)
_AGE_YEARS = re.compile(
    r"\b" + _NUM + r"[- ]?(?:years?|yrs?|y)[- ]?(?:old|of age|/o)\b|\b" + _NUM
    + r"\s*(?:yo|y/o|yr old|yom|yof|yo[mf])\b|\bage[ds]?\s*(?:of\s*)?:?\s*"
    + _NUM + r"\b",
    re.IGNORECASE,
)
_AGE_SMALL = re.compile(
    r"\b\d{1,2}[- ]?(?:months?|mos?|weeks?|wks?|days?)[- ]?(?:old|of age)\b", re.IGNORECASE
)


def ages(text: str) -> Iterator[Number]:
    """Patient ages in years the text states ('under 5' gives 4.9; '5 or older' gives 5)."""
    taken: list[tuple[int, int]] = []

    def free(span: tuple[int, int]) -> bool:
        return all(span[1] <= s or span[0] >= e for s, e in taken)

    for m in _AGE_BELOW.finditer(text):
        taken.append(m.span())
        n = float(m.group(1))
        if n <= 5:
            yield Number("age", min(n, 5) - 0.1, m.span(), m.group(0))
    for m in _AGE_ATLEAST.finditer(text):
        if not free(m.span()):
            continue
        taken.append(m.span())
        n = float(m.group(1) or m.group(2))
        if n >= 5:
            yield Number("age", n, m.span(), m.group(0))
    for m in _AGE_YEARS.finditer(text):
        if not free(m.span()):
            continue
        taken.append(m.span())
        n = float(next(g for g in m.groups() if g))
        if n <= 120:
            yield Number("age", n, m.span(), m.group(0))
    for m in _AGE_SMALL.finditer(text):
        if free(m.span()):
            yield Number("age", 0.5, m.span(), m.group(0))


def band_of(years: float) -> AgeBand:
    """The catalog's age band for an age in years."""
    return AgeBand.UNDER_5 if years < 5 else AgeBand.FIVE_AND_OLDER


_WEEKS = re.compile(
    r"\b(?:at|ga(?: of)?|gestational age(?: of)?|ega(?: of)?|@)?\s*" + _NUM
    + r"\s*(?:\+\d\s*)?(?:-|\s)?(?:weeks?|wks?|w)(?:\s*\d\s*d(?:ays?)?)?\b"
    r"(?!\s*(?:ago|old|postpartum|post-partum|after|later|from now|of (?:pain|symptoms)))",
    re.IGNORECASE,
)
_WEEKS_CONTEXT = re.compile(
    r"pregnan|gestation|\bga\b|\bega\b|\bob\b|obstetric|fetus|fetal|\biup\b|trimester|"
    r"singleton|twins?|triplets?|nuchal|crown|\bcrl\b|\blmp\b|\bedd\b|gravid|prenatal|antenatal|"
    r"anatom(?:y|ic) (?:scan|survey)",
    re.IGNORECASE,
)
_NOT_WEEKS = re.compile(r"\b(?:in|for|every|within|after|over|past|last|next)\s*$", re.IGNORECASE)
_TRIMESTER = re.compile(r"\b(first|1st|second|2nd|third|3rd)\s+trimester\b", re.IGNORECASE)
_TRIMESTER_WEEKS = {"first": 10.0, "1st": 10.0, "second": 20.0, "2nd": 20.0, "third": 32.0,
                    "3rd": 32.0}


def trimester_of(weeks: float) -> int:
    """The trimester of a gestational age in weeks (ACOG: first to 13 6/7, second to 27 6/7)."""
    return 1 if weeks < 14 else 2 if weeks < 28 else 3


_BELOW = re.compile(r"(?:<|\u2264|\bunder|\bless than|\bbelow|\bbefore)\s*$", re.IGNORECASE)
_ABOVE = re.compile(r"(?:>|\u2265|\bover|\bmore than|\bgreater than|\bbeyond|\bpast)\s*$",
                    re.IGNORECASE)


def gestational_weeks(text: str, context: str = "") -> Iterator[Number]:
    """Gestational ages in weeks ('at 20 weeks', 'GA 11w2d', 'second trimester').

    ``context`` is an earlier turn: a follow-up ('and at 13 weeks?') is read with the
    pregnancy it names. A stated age outranks a trimester word that agrees with it ('second
    trimester, 22 weeks' is 22 weeks); one that disagrees is yielded too, so the reader,
    seeing two ages, knows neither."""
    if not _WEEKS_CONTEXT.search(text) and not (context and _WEEKS_CONTEXT.search(context)):
        return
    stated: list[float] = []
    for m in _WEEKS.finditer(text):
        before = text[max(0, m.start() - 12):m.start() + (m.group(0).find(m.group(1)))]
        if _NOT_WEEKS.search(before):
            continue  # "repeat in 4 weeks", "for 2 weeks"
        n = float(m.group(1))
        # '< 14 wks', 'over 14 weeks': a bound, read as just inside it
        if _BELOW.search(before):
            n -= 0.5
        elif _ABOVE.search(before):
            n += 0.5
        if 3 <= n <= 43:
            stated.append(n)
            yield Number("weeks", n, m.span(), m.group(0).strip())
    for m in _TRIMESTER.finditer(text):
        value = _TRIMESTER_WEEKS[m.group(1).lower()]
        if stated and all(trimester_of(n) == trimester_of(value) for n in stated):
            continue
        yield Number("weeks", value, m.span(), m.group(0), at_least=True)


def code_numbers(text: str) -> tuple[str, ...]:
    """Code numbers named in the text, upper case, in order, once each."""
    return tuple(dict.fromkeys(m.group(1).upper() for m in CODE_NUMBER.finditer(text)))
