"""Drafted prose against the checked answer: sentences the verdicts contradict are withheld.

A drafted explanation is shown beside the checked code table, so it must never say what the
table contradicts. :func:`contradictions` reads the prose sentence by sentence (with the
claims reader) and finds, deterministically:

- a pair said to be billed together when the table does not show both codes verified or
  corrected ("Yes, 20610 with 76942 is ok" beside a removed 76942), or said not to go
  together when the table verifies both;
- a code recommended that the checker removed;
- a patient age given for a code whose age band says otherwise ("36556 ... under age 5");
- an extent given for a code whose extent says otherwise ("76705 is the complete exam");
- a code the ruleset does not hold called valid, correct or billable, or recommended.

:func:`withhold` replaces each such sentence by a bracketed note saying why, so the same
draft gives the same shown text every time. Pure: no model, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from guardrails.claims import Claims, Polarity, extract
from guardrails.report import CodeStatus, Finding, Severity
from knowledge.catalog import Catalog
from knowledge.schema import AgeBand, Extent

__all__ = ["Contradiction", "contradictions", "findings_for", "withhold"]

RULE = "prose.contradicts_verdict"

_SHOWN_OK = (CodeStatus.VERIFIED, CodeStatus.CORRECTED)
_FIVE = r"(?:5|five)"
_AGE_PHRASES: tuple[tuple[AgeBand, re.Pattern[str]], ...] = (
    (
        AgeBand.UNDER_5,
        re.compile(
            rf"\b(?:under|younger\s+than|less\s+than|below)\s+(?:the\s+)?(?:age\s+(?:of\s+)?)?"
            rf"{_FIVE}\b|\bages?\s+(?:0|zero)\s*(?:-|to|through)\s*4\b"
            r"|\b(?:infants?|neonates?|newborns?|toddlers?)\b",
            re.IGNORECASE,
        ),
    ),
    (
        AgeBand.FIVE_AND_OLDER,
        re.compile(
            rf"\b(?:age\s+(?:of\s+)?)?{_FIVE}\s+(?:years?\s+)?(?:old\s+)?(?:or|and)\s+"
            rf"(?:older|over|above)\b|\b(?:over|older\s+than|at\s+least)\s+(?:age\s+)?{_FIVE}\b"
            r"|\badults?\b",
            re.IGNORECASE,
        ),
    ),
)
_BAND_WORDS = {AgeBand.UNDER_5: "under age 5", AgeBand.FIVE_AND_OLDER: "age 5 or older"}
_VALID_RE = re.compile(
    r"\b(?:valid|correct|billable|appropriate|accepted|legitimate|right\s+code|"
    r"(?:is|are)\s+(?:a|an|the)\s+(?:\w+\s+){0,2}code)\b",
    re.IGNORECASE,
)
_NOT_RE = re.compile(r"\b(?:not|never|no|invalid|isn't|aren't|cannot|can't)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Contradiction:
    """One sentence of the prose that the checked answer contradicts, and why."""

    start: int
    end: int
    codes: tuple[str, ...]
    reason: str


def _sentence_of(claims: Claims, pos: int) -> tuple[int, int]:
    for s, e in claims.sentences:
        if s <= pos < e:
            return s, e
    return pos, pos


def contradictions(
    text: str,
    statuses: Mapping[str, CodeStatus],
    catalog: Catalog,
    ruled_out: AbstractSet[str] = frozenset(),
) -> tuple[Contradiction, ...]:
    """Sentences of ``text`` that assert what the checked codes contradict.

    ``statuses`` holds the final verdict of every code the answer lists (shown or removed);
    a code absent from it is not part of the answer (``ruled_out`` names those the question
    rules out). One contradiction per sentence, the first found, in text order.
    """
    claims = extract(text)
    found: dict[tuple[int, int], Contradiction] = {}

    def add(pos: int, codes: Sequence[str], reason: str) -> None:
        span = _sentence_of(claims, pos)
        if span[0] < span[1] and span not in found:
            found[span] = Contradiction(span[0], span[1], tuple(codes), reason)

    def ok(code: str) -> bool:
        return statuses.get(code) in _SHOWN_OK

    for p in claims.pairs:
        if p.together and not (ok(p.first) and ok(p.second)):
            states = "; ".join(
                f"{code} is {_state(code, statuses, catalog, ruled_out)}"
                for code in (p.first, p.second) if not ok(code)
            )
            add(p.start, (p.first, p.second),
                f"it says {p.first} and {p.second} are billed together; {states}")
        elif not p.together and ok(p.first) and ok(p.second):
            add(p.start, (p.first, p.second),
                f"it says {p.first} and {p.second} are not billed together; both are verified "
                "together above")
    for m in claims.mentions:
        unknown = catalog.get(m.code) is None
        sentence = text[slice(*_sentence_of(claims, m.start))]
        if m.polarity is Polarity.RECOMMENDED and statuses.get(m.code) is CodeStatus.REMOVED:
            add(m.start, (m.code,), f"it recommends {m.code}, which the checker removed"
                + (" (an unknown code, not in the ruleset)" if unknown else ""))
        elif unknown and (
            m.polarity is Polarity.RECOMMENDED or _VALID_RE.search(sentence)
        ) and not _NOT_RE.search(sentence):
            add(m.start, (m.code,),
                f"it treats {m.code} as a code to report; {m.code} is an unknown code "
                "(not in the ruleset)")
    for x in claims.extents:
        entry = catalog.get(x.code)
        if entry is None or entry.extent is Extent.SINGLE or x.extent == entry.extent.value:
            continue
        add(x.start, (x.code,),
            f"it calls {x.code} the {x.extent} exam; {x.code} is the {entry.extent.value} code")
    _ages(text, claims, catalog, add)
    return tuple(sorted(found.values(), key=lambda c: c.start))


def _state(
    code: str, statuses: Mapping[str, CodeStatus], catalog: Catalog, ruled_out: AbstractSet[str]
) -> str:
    if statuses.get(code) is CodeStatus.REMOVED:
        return "removed"
    if code in statuses:
        return "not verified"
    if catalog.get(code) is None:
        return "an unknown code (not in the ruleset)"
    if code in ruled_out:
        return "ruled out by the question"
    return "not part of the checked answer"


def _ages(
    text: str, claims: Claims, catalog: Catalog, add: Callable[[int, Sequence[str], str], None]
) -> None:
    """An age phrase read for the code nearest it in its sentence."""
    banded = [
        (m, e.age_band) for m in claims.mentions
        if (e := catalog.get(m.code)) is not None and e.age_band is not None
    ]
    if not banded:
        return
    for band, rx in _AGE_PHRASES:
        for hit in rx.finditer(text):
            span = _sentence_of(claims, hit.start())
            near = [
                (min(abs(hit.start() - m.end), abs(m.start - hit.end())), m, b)
                for m, b in banded
                if span[0] <= m.start < span[1]
            ]
            if not near:
                continue
            _, m, code_band = min(near, key=lambda t: (t[0], t[1].start))
            if code_band is not band:
                add(hit.start(), (m.code,),
                    f"it uses {m.code} for \"{' '.join(hit.group(0).split())}\"; {m.code} "
                    f"is for patients {_BAND_WORDS[code_band]}")


def withhold(
    text: str, found: Sequence[Contradiction], kept: Callable[[str], str] = str
) -> str:
    """The text with each contradicting sentence replaced by a note saying why; ``kept``
    is applied to the text between them (e.g. to flag the codes it names)."""
    out: list[str] = []
    pos = 0
    for c in sorted(found, key=lambda c: c.start):
        if c.start < pos:
            continue
        out.append(kept(text[pos : c.start]))
        out.append(f"[statement withheld: {c.reason}]")
        pos = c.end
    out.append(kept(text[pos:]))
    return "".join(out)


def findings_for(found: Sequence[Contradiction]) -> list[Finding]:
    """One warning per withheld sentence, for the answer's findings."""
    return [
        Finding(
            RULE,
            Severity.WARNING,
            c.codes,
            "A statement of the drafted explanation was withheld: "
            f"{c.reason} (the checked codes above are what counts).",
        )
        for c in found
    ]
