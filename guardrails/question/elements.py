"""A complete exam's elements named by the question: a study of one organ of the set is a
limited exam, a study naming every element is the complete one (the element sets of
``knowledge/data/documentation.yaml``, each with its sources)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from guardrails.question.frame import Frame
from knowledge.schema import CodeEntry, DocElement, ElementSet

if TYPE_CHECKING:
    from knowledge.catalog import Catalog


def one_element(catalog: Catalog, frame: Frame, e: CodeEntry) -> str | None:
    """The one element of ``e``'s complete-exam set the question's sites name, when they
    name exactly one (of a set of several), else None."""
    sets = catalog.element_sets
    elements = tuple(sets[e.complete_elements].elements) if e.complete_elements in sets else ()
    if len(elements) < 2:
        return None
    named = _named(frame, elements, sites_only=True)
    # an element that is no site ('compression', 'Doppler') said beside it: not one
    if len(named) != 1 or len(_named(frame, elements)) != 1:
        return None
    return named[0].label.lower()


def all_elements(catalog: Catalog, frame: Frame, e: CodeEntry) -> ElementSet | None:
    """The complete-exam set of ``e``'s complete counterpart, when the question's affirmed
    words name each of its elements (a limited code's exam was complete)."""
    other = catalog.codes.get(e.counterpart or "")
    es = catalog.element_sets.get(other.complete_elements or "") if other else None
    if es is None or len(es.elements) < 2 or len(_named(frame, es.elements)) < len(es.elements):
        return None
    return es


def _named(frame: Frame, elements: Iterable[DocElement], sites_only: bool = False
           ) -> list[DocElement]:
    texts = [f.text for f in frame.facts if f.affirmed and not f.inferred
             and (f.kind == "site" or not sites_only)]
    return [el for el in elements
            if any(re.search(p, t, re.IGNORECASE) for p in el.patterns for t in texts)]
