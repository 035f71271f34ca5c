"""Sides: whether the question says both sides, one side, or neither (a frame field)."""

from __future__ import annotations

import re
from typing import Any

from guardrails.question.frame import Fact

_SIDE_WORDS = frozenset({"left", "right", "lt", "rt", "l", "r"})


def sides_of(facts: list[Fact], doc: Any) -> str | None:
    """'both' when the question says both sides, 'one' when one side, else None."""
    both = any(f.concept == "both_sides" and f.affirmed for f in facts)
    one = any(f.concept == "one_side" and f.affirmed for f in facts)
    named_side = False
    # "both knees", "both legs"; "one leg", "the left arm", "right carotid"
    sites = {f.span[0]: f for f in facts if f.kind == "site" and f.affirmed}
    for t in doc:
        word = t.lower_
        near = [doc[j] for j in range(t.i + 1, min(len(doc), t.i + 3))]
        if not any(n.idx in sites for n in near):
            continue
        if word == "both":
            both = True
        elif word in _SIDE_WORDS:
            named_side = True
        elif word in ("one", "single") and any(
                n.idx in sites and not sites[n.idx].text.lower().endswith("s") for n in near):
            one = True
    named_side = (named_side or _side_named(doc.text)) and len(_sides_said(doc, sites)) < 2
    # 'Bilateral venous duplex, left leg worse': a side named beside 'both' is a detail
    if both and not one:
        return "both"
    if (one or named_side) and not both:
        return "one"
    return None


_SIDE_OF = {"left": "left", "lt": "left", "l": "left", "right": "right", "rt": "right",
            "r": "right"}


def _sides_said(doc: Any, sites: dict[int, Fact]) -> set[str]:
    """The sides a report names by their own words ('right kidney 11.2 cm and left 11.0
    cm'): a side word before a site affirmed or a measurement."""
    out = set()
    for t in doc:
        side = _SIDE_OF.get(t.lower_)
        nxt = doc[t.i + 1] if t.i + 1 < len(doc) else None
        if side and nxt is not None and (nxt.idx in sites or nxt.like_num):
            out.add(side)
    return out


# A side said on its own: 'on the right side', 'left-sided', 'on the left.' (a side before
# a site word is read above). Both sides named this way say nothing of one side.
_SIDE_ALONE = re.compile(
    r"\b(?:on|of|at|to)\s+the\s+(left|right)(?:\s+side)?\b(?=\s*(?:[.,;:?!)]|$|(?:"
    r"side|only|and|with|was|is|for|under|using|in|at|of|by|to|who|which|that|but|or|then|"
    r"today|yesterday)\b))"
    r"|\b(left|right|lt|rt|l|r)[- ]sided\b"
    r"|\b(left|right)(?:\s+side)?\s+only\b"
    r"|\b(lt|rt|l|r)\.?\s+side\b",
    re.IGNORECASE,
)


def _side_named(text: str) -> bool:
    """True when the text names exactly one side on its own ('on the right side')."""
    if _BOTH_NAMED.search(text):
        return False
    named = {_SIDE_OF[next(g for g in m.groups() if g).lower()]
             for m in _SIDE_ALONE.finditer(text)}
    return len(named) == 1


_BOTH_NAMED = re.compile(r"\b(?:left|right)\s*(?:and|&|/|or)\s*(?:the\s+)?(?:left|right)\b",
                         re.IGNORECASE)
