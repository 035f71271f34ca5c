"""What every rule module sees: the catalog, the draft, the text claims, compiled patterns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from guardrails.report import DraftCode

if TYPE_CHECKING:
    from guardrails.claims import Claims
    from guardrails.question.frame import Frame
    from knowledge.catalog import Catalog

DISTINCT_MODIFIERS = frozenset({"59", "XE", "XP", "XS", "XU"})
SIDE_MODIFIERS = frozenset({"RT", "LT"})


@dataclass(frozen=True, slots=True)
class Compiled:
    """Regexes of the catalog compiled once per catalog (checks stay fast)."""

    misreadings: dict[str, tuple[tuple[re.Pattern[str], int], ...]]
    # (pattern, index, trigger words, negation pattern or None)
    misconceptions: tuple[
        tuple[re.Pattern[str], int, tuple[str, ...], re.Pattern[str] | None], ...
    ]
    requirements: dict[str, str]
    own_counts: dict[str, re.Pattern[str]] = field(default_factory=dict)
    primary_asked: dict[str, re.Pattern[str]] = field(default_factory=dict)
    # code -> (question pattern, codes it goes with, index in the entry's implied_by)
    implied: dict[str, tuple[tuple[re.Pattern[str], frozenset[str], int], ...]] = field(
        default_factory=dict
    )


_COMPILED: dict[int, tuple[Catalog, Compiled]] = {}


def compiled_for(catalog: Catalog) -> Compiled:
    """Compile the catalog's text patterns once and reuse them."""
    hit = _COMPILED.get(id(catalog))
    if hit is not None and hit[0] is catalog:
        return hit[1]
    mis = {
        code: tuple(
            (re.compile(m.pattern, re.IGNORECASE), i) for i, m in enumerate(entry.misreadings)
        )
        for code, entry in catalog.codes.items()
        if entry.misreadings
    }
    cons = tuple(
        (
            re.compile(m.pattern, re.IGNORECASE),
            i,
            m.requires,
            re.compile(m.unless, re.IGNORECASE) if m.unless else None,
        )
        for i, m in enumerate(catalog.misconceptions)
    )
    reqs = {
        set_id: "; ".join(e.label for e in es.elements)
        for set_id, es in catalog.element_sets.items()
    }
    own = {
        code: re.compile(
            r"\b(?:(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|both|several|"
            r"multiple|many) (?:\w+ )?)?(?:" + entry.counted_by_code + r")\b",
            re.IGNORECASE,
        )
        for code, entry in catalog.codes.items()
        if entry.counted_by_code
    }
    implied = {
        code: tuple(
            (re.compile(im.pattern, re.IGNORECASE), frozenset(im.with_any or entry.primaries), i)
            for i, im in enumerate(entry.implied_by)
        )
        for code, entry in catalog.codes.items()
        if entry.implied_by and entry.active
    }
    primary_asked = {
        code: re.compile(entry.primary_in_question, re.IGNORECASE)
        for code, entry in catalog.codes.items()
        if entry.primary_in_question
    }
    comp = Compiled(mis, cons, reqs, own, implied=implied, primary_asked=primary_asked)
    _COMPILED[id(catalog)] = (catalog, comp)
    return comp


@dataclass(slots=True)
class Context:
    """Inputs of one check."""

    catalog: Catalog
    lines: tuple[DraftCode, ...]
    claims: Claims
    compiled: Compiled
    codes: dict[str, DraftCode] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    line_count: dict[str, int] = field(default_factory=dict)
    modifiers: dict[str, frozenset[str]] = field(default_factory=dict)
    context: str = ""
    history: str = ""
    # The question read into facts (None when there is no question).
    frame: Frame | None = None
    # Codes the rules run so far remove with a fix (read by the omission rule, which runs last).
    removing: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for line in self.lines:
            self.codes.setdefault(line.code, line)
            self.units[line.code] = self.units.get(line.code, 0) + line.units
            self.line_count[line.code] = self.line_count.get(line.code, 0) + 1
            self.modifiers[line.code] = self.modifiers.get(line.code, frozenset()) | frozenset(
                line.modifiers
            )

    def known(self) -> list[str]:
        """Recommended codes the catalog knows (active or deleted)."""
        return [c for c in self.codes if c in self.catalog.codes]

    def active(self) -> list[str]:
        """Recommended codes that are active in the catalog."""
        cat = self.catalog.codes
        return [c for c in self.codes if c in cat and cat[c].active]
