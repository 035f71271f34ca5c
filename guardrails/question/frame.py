"""The encounter frame: what a question says was done, where, how and to whom.

A frame is a list of facts read from the question (and the earlier turn it follows up). Each
fact names a vocabulary concept and carries its assertion status: a thing the question
affirms, denies, places in the past, plans for later or says of someone else. Only affirmed
facts describe today's service; the others are kept so that a reader (and a test) can see
why a word did not count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from guardrails.question.numbers import CODE_NUMBER
from knowledge.schema import AgeBand


class Status(StrEnum):
    """Assertion status of a fact."""

    AFFIRMED = "affirmed"
    NEGATED = "negated"
    HISTORICAL = "historical"
    HYPOTHETICAL = "hypothetical"  # planned, conditional, recommended: not done today
    OTHER = "other_experiencer"  # said of someone other than the patient (family)
    UNCERTAIN = "uncertain"  # possible, suspected, to rule out: still today's question


@dataclass(frozen=True, slots=True)
class Fact:
    """One concept the question names, with its status and where it was said."""

    concept: str
    kind: str
    status: Status
    span: tuple[int, int]
    text: str
    turn: int = 0  # 0: the question asked now; 1: the earlier turn it follows up
    inferred: bool = False  # read from weaker words ('with ultrasound' beside a procedure)
    near_action: bool = False  # said in the same clause as a procedure or exam word
    head: bool = False  # said right before an exam word ('renal ultrasound'): its site

    @property
    def affirmed(self) -> bool:
        """The question says this of today's service (uncertain findings count too)."""
        return self.status in (Status.AFFIRMED, Status.UNCERTAIN)


@dataclass(frozen=True, slots=True)
class Count:
    """How many of a thing the question says (nodules, muscles, vessels, fetuses ...)."""

    thing: str
    value: int
    span: tuple[int, int]
    text: str
    at_least: bool = False  # "several veins", "a second lesion": this many or more


@dataclass(frozen=True, slots=True)
class Frame:
    """A question read into facts. Built by :func:`guardrails.question.read_frame`."""

    text: str
    facts: tuple[Fact, ...] = ()
    counts: tuple[Count, ...] = ()
    age_years: tuple[float, ...] = ()
    age_band: AgeBand | None = None
    weeks: float | None = None  # gestational age the question states
    sides: str | None = None  # "both" | "one" | None
    codes: tuple[str, ...] = ()  # code numbers named in the question
    _affirmed: frozenset[str] = field(default=frozenset(), repr=False)
    _negated: frozenset[str] = field(default=frozenset(), repr=False)
    _hash: int = field(default=0, repr=False, compare=False)

    def __hash__(self) -> int:
        # Frames key the fit caches: hashed once, not once per lookup.
        h = self._hash
        if not h:
            h = hash((self.text, self.facts, self.counts, self.age_years, self.age_band,
                      self.weeks, self.sides, self.codes)) or 1
            object.__setattr__(self, "_hash", h)
        return h

    @property
    def empty(self) -> bool:
        """True when the question names nothing the reader knows."""
        return not self.facts and not self.codes and not self.counts

    @property
    def describes_service(self) -> bool:
        """True when the question says something of the service beyond code numbers
        (a fact a cue implies counts: 'placed the TEE probe' says a TEE was done)."""
        return any(f.affirmed and f.kind not in ("cue", "count")
                   and not (f.inferred and CODE_NUMBER.fullmatch(f.text))
                   for f in self.facts)

    def affirms(self, concept: str) -> bool:
        """True when the question affirms ``concept`` itself (not via a narrower one)."""
        return concept in self._affirmed

    def denies(self, concept: str) -> bool:
        """True when the question says ``concept`` was not done or is absent."""
        return concept in self._negated and concept not in self._affirmed

    def affirmed(self, kind: str | None = None) -> tuple[Fact, ...]:
        """Affirmed facts, of one kind if given, in text order."""
        return tuple(f for f in self.facts if f.affirmed and (kind is None or f.kind == kind))

    def concepts(self, kind: str, *, strong: bool = False) -> frozenset[str]:
        """Concept ids of the affirmed facts of ``kind`` (``strong``: not inferred)."""
        return frozenset(
            f.concept for f in self.facts
            if f.affirmed and f.kind == kind and not (strong and f.inferred)
        )

    def count_of(self, thing: str) -> int | None:
        """The number of ``thing`` the question states (largest if it says several)."""
        values = [c.value for c in self.counts if c.thing == thing]
        return max(values) if values else None

    def count_is_minimum(self, thing: str) -> bool:
        """True when the largest count of ``thing`` is a least number ('several veins': two
        or more), so a code for more of them is not ruled out by it."""
        n = self.count_of(thing)
        return n is not None and all(c.at_least for c in self.counts
                                     if c.thing == thing and c.value == n)

    def describe(self) -> str:
        """A short readable summary, for logs and tests."""
        parts = [
            f"{f.kind}:{f.concept}" + ("" if f.status is Status.AFFIRMED else f"({f.status})")
            for f in self.facts
        ]
        parts += [f"count:{c.thing}={c.value}" for c in self.counts]
        if self.age_band is not None:
            parts.append(f"age:{self.age_band.value}")
        if self.weeks is not None:
            parts.append(f"weeks:{self.weeks:g}")
        if self.sides:
            parts.append(f"sides:{self.sides}")
        return ", ".join(parts)


def adjacent(text: str, a: Fact, b: Fact) -> bool:
    """True when two facts of the question's own turn are said next to each other."""
    if a.turn or b.turn:
        return False
    first, second = sorted((a.span, b.span))
    return first[1] <= second[0] and not text[first[1]:second[0]].strip(" -/")
