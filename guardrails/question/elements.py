"""A complete exam's elements named by the question: a study of one organ of the set is a
limited exam, a study naming every element is the complete one (the element sets of
``knowledge/data/documentation.yaml``, each with its sources)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from guardrails.question.frame import Frame, Status
from knowledge.schema import CodeEntry, DocElement, ElementSet

if TYPE_CHECKING:
    from knowledge.catalog import Catalog


def one_element(catalog: Catalog, frame: Frame, e: CodeEntry) -> str | None:
    """The elements of ``e``'s complete-exam set the question's sites name, in words, when
    they name exactly one of a set of several, or fewer than half of a larger set (a study
    of the organs named, short of the complete exam), else None."""
    es = catalog.element_sets.get(e.complete_elements or "")
    elements = tuple(es.elements) if es is not None else ()
    if es is None or len(elements) < 2:
        return None
    named = _named(frame, elements, sites_only=True)
    # an element that is no site ('compression', 'Doppler') said beside them: not a part
    if not named or len(_named(frame, elements)) != len(named):
        return None
    if len(named) > 1 and (2 * len(named) >= len(elements) or _complete_subset(es, named)):
        return None
    labels = [el.label.lower() for el in named]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def most_elements(catalog: Catalog, frame: Frame, e: CodeEntry) -> list[str] | None:
    """The elements of the complete counterpart's set that the question's sites name, when
    they are at least two and at least half of the set but not all of it: a limited code is
    then not shown by the question (it may have been the complete exam)."""
    other = catalog.codes.get(e.counterpart or "")
    es = catalog.element_sets.get(other.complete_elements or "") if other else None
    if es is None:
        return None
    named = _named(frame, es.elements, sites_only=True)
    if len(named) < 2 or 2 * len(named) < len(es.elements) or len(named) == len(es.elements):
        return None
    return [el.label.lower() for el in named]


# Said of an element left out of the exam ('kidneys were not evaluated'), as against a
# finding denied ('no renal artery stenosis') or an element looked for and not seen
# ('tail obscured by gas'): only the first makes the exam short of complete.
_NOT_EXAMINED = re.compile(
    r"\bnot\s+(?:\w+\s+)?(?:evaluated|examined|imaged|scanned|assessed|included|"
    r"interrogated|studied|done|performed|looked\s+at)\b|\b(?:omitted|skipped)\b",
    re.IGNORECASE)


def omitted(catalog: Catalog, frame: Frame, e: CodeEntry) -> DocElement | None:
    """An element of the complete exam (``e``'s own set, or its complete counterpart's)
    that the question says was not examined ('kidneys were not evaluated'): the exam was
    not the complete one. A finding denied ('no stenosis') omits nothing."""
    own = catalog.element_sets.get(e.complete_elements or "")
    other = catalog.codes.get(e.counterpart or "")
    es = own or (catalog.element_sets.get(other.complete_elements or "") if other else None)
    if es is None:
        return None
    for f in frame.facts:
        if f.kind != "site" or f.inferred or f.status is not Status.NEGATED:
            continue
        start = max(frame.text.rfind(c, 0, f.span[0]) for c in ".;") + 1
        ends = [i for c in ".;" if (i := frame.text.find(c, f.span[1])) >= 0]
        if not _NOT_EXAMINED.search(frame.text[start:min(ends) if ends else None]):
            continue
        hit = next((el for el in es.elements
                    if any(re.search(p, f.text, re.IGNORECASE) for p in el.patterns)), None)
        if hit is not None:
            return hit
    return None


def _complete_subset(es: ElementSet, named: list[DocElement]) -> bool:
    """True when the named elements hold one of the set's smaller complete sets."""
    ids = {el.id for el in named}
    return any(set(sub) <= ids for sub in es.also_complete)


def all_elements(catalog: Catalog, frame: Frame, e: CodeEntry) -> ElementSet | None:
    """The complete-exam set of ``e``'s complete counterpart, when the question's affirmed
    words name each of its elements (a limited code's exam was complete)."""
    other = catalog.codes.get(e.counterpart or "")
    es = catalog.element_sets.get(other.complete_elements or "") if other else None
    if es is None or len(es.elements) < 2:
        return None
    named = _named(frame, es.elements)
    if len(named) == len(es.elements):
        return es
    # a smaller complete set (kidneys and bladder), of both sides: the exam was complete
    if frame.sides != "one" and _complete_subset(es, named):
        subset = next(sub for sub in es.also_complete if set(sub) <= {el.id for el in named})
        return es.model_copy(update={"elements": tuple(
            el for el in es.elements if el.id in subset)})
    return None


def _named(frame: Frame, elements: Iterable[DocElement], sites_only: bool = False
           ) -> list[DocElement]:
    texts = [f.text for f in frame.facts if f.affirmed and not f.inferred
             and (f.kind == "site" or not sites_only)]
    return [el for el in elements
            if any(re.search(p, t, re.IGNORECASE) for p in el.patterns for t in texts)]
