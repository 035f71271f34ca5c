"""Note audit: which documentation and complete-exam elements a procedure note shows.

Deterministic and pure (no model, no I/O): every element of an element set carries
case-insensitive ``patterns`` that show it in a note and ``negations`` that show it is
absent. Matching is done sentence by sentence, because a negation only cancels the
statement it belongs to: "No image was saved" removes the permanent-image element, while
"The vessel was marked. Under real-time guidance the needle entered the vein." still
documents real-time guidance. A model may suggest which codes to audit, but never decides
whether an element is present.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from knowledge.catalog import Catalog
from knowledge.schema import DocElement, ElementSet, Extent

__all__ = [
    "CodeAudit",
    "ElementResult",
    "ElementStatus",
    "NoteAudit",
    "SetResult",
    "audit_note",
    "split_sentences",
]

_EVIDENCE_CHARS = 240
# Periods after these words end an abbreviation, not a sentence ("Dr. Lee", "approx. 2 cm").
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms st vs approx e.g i.e eg ie fig pt".split()
)
_BOUNDARY = re.compile(r"[.!?]+(?=\s)|\n")


class ElementStatus(StrEnum):
    """What the note says about one element."""

    PRESENT = "present"  # a pattern matched in a sentence without a negation
    NEGATED = "negated"  # the note says it was not done ("images were not saved")
    MISSING = "missing"  # nothing in the note shows it


@dataclass(frozen=True, slots=True)
class ElementResult:
    """One element of one set, with the sentence that shows (or negates) it."""

    element: str
    label: str
    status: ElementStatus
    evidence: str | None = None
    span: tuple[int, int] | None = None

    @property
    def present(self) -> bool:
        """True when the note documents the element."""
        return self.status is ElementStatus.PRESENT

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "element": self.element,
            "label": self.label,
            "status": self.status.value,
            "evidence": self.evidence,
            "span": list(self.span) if self.span else None,
        }


@dataclass(frozen=True, slots=True)
class SetResult:
    """One element set audited against the note."""

    set_id: str
    title: str
    kind: str
    elements: tuple[ElementResult, ...]
    rule: str | None
    sources: tuple[str, ...]
    confidence: str

    @property
    def complete(self) -> bool:
        """True when every element of the set is present."""
        return all(e.present for e in self.elements)

    @property
    def missing(self) -> tuple[ElementResult, ...]:
        """Elements that are missing or negated."""
        return tuple(e for e in self.elements if not e.present)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "set": self.set_id,
            "title": self.title,
            "kind": self.kind,
            "complete": self.complete,
            "elements": [e.to_dict() for e in self.elements],
            "rule": self.rule,
            "sources": list(self.sources),
            "confidence": self.confidence,
        }


@dataclass(frozen=True, slots=True)
class CodeAudit:
    """What the note supports for one code."""

    code: str
    label: str | None
    known: bool
    documentation: tuple[SetResult, ...]
    complete_exam: SetResult | None
    extent: str | None  # the code's own extent: complete, limited, single
    complete_code: str | None  # the complete code of the complete/limited pair
    limited_code: str | None  # the limited code of the pair
    supported_extent: str | None  # "complete", "limited" or None when not applicable
    message: str

    @property
    def documented(self) -> bool | None:
        """All documentation elements present; None when the ruleset has none for the code."""
        if not self.documentation:
            return None
        return all(s.complete for s in self.documentation)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "code": self.code,
            "label": self.label,
            "known": self.known,
            "documented": self.documented,
            "documentation": [s.to_dict() for s in self.documentation],
            "complete_exam": self.complete_exam.to_dict() if self.complete_exam else None,
            "extent": self.extent,
            "complete_code": self.complete_code,
            "limited_code": self.limited_code,
            "supported_extent": self.supported_extent,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class NoteAudit:
    """The audit of one note for one or more codes."""

    codes: tuple[CodeAudit, ...]
    ruleset: str
    sentences: int

    def for_code(self, code: str) -> CodeAudit | None:
        """The audit of one code, if it was audited."""
        for c in self.codes:
            if c.code == code:
                return c
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stable shape)."""
        return {
            "codes": [c.to_dict() for c in self.codes],
            "ruleset": self.ruleset,
            "sentences": self.sentences,
        }


def split_sentences(note: str) -> list[tuple[int, int]]:
    """Spans of the note's sentences: lines, split again at . ! ? before whitespace.

    Notes are often templated one finding per line, so a line break always ends a
    sentence; a period after a common abbreviation ("Dr.", "approx.") does not.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(note):
        if m.group() != "\n":
            word = re.search(r"([A-Za-z.]+)$", note[start : m.start()])
            if word and word.group(1).lower().rstrip(".") in _ABBREVIATIONS:
                continue
        end = m.end()
        _add_span(note, start, end, spans)
        start = end
    _add_span(note, start, len(note), spans)
    return spans


def _add_span(note: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    text = note[start:end]
    stripped = text.strip()
    if stripped:
        s = start + (len(text) - len(text.lstrip()))
        spans.append((s, s + len(stripped)))


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _evidence(note: str, span: tuple[int, int]) -> str:
    text = " ".join(note[span[0] : span[1]].split())
    return text if len(text) <= _EVIDENCE_CHARS else text[: _EVIDENCE_CHARS - 1] + "…"


def audit_element(
    note: str, element: DocElement, sentences: Sequence[tuple[int, int]] | None = None
) -> ElementResult:
    """Present if a pattern matches a sentence that no negation matches; else negated/missing.

    A note that both affirms and negates an element in different sentences counts as
    present: the affirming sentence is the evidence a reviewer will look at.
    """
    spans = split_sentences(note) if sentences is None else sentences
    negated_at: tuple[int, int] | None = None
    for span in spans:
        sentence = note[span[0] : span[1]]
        negated = any(_compiled(p).search(sentence) for p in element.negations)
        if negated:
            if negated_at is None:
                negated_at = span
            continue
        if any(_compiled(p).search(sentence) for p in element.patterns):
            return ElementResult(
                element.id, element.label, ElementStatus.PRESENT, _evidence(note, span), span
            )
    if negated_at is not None:
        return ElementResult(
            element.id, element.label, ElementStatus.NEGATED, _evidence(note, negated_at),
            negated_at,
        )
    return ElementResult(element.id, element.label, ElementStatus.MISSING)


def audit_set(
    note: str, es: ElementSet, sentences: Sequence[tuple[int, int]] | None = None
) -> SetResult:
    """Audit every element of one set."""
    spans = split_sentences(note) if sentences is None else sentences
    return SetResult(
        set_id=es.id,
        title=es.title,
        kind=es.kind,
        elements=tuple(audit_element(note, e, spans) for e in es.elements),
        rule=es.rule,
        sources=tuple(es.sources),
        confidence=es.confidence.value,
    )


def _pair(code: str, catalog: Catalog) -> tuple[str | None, str | None]:
    """(complete code, limited code) of the code's complete/limited pair."""
    entry = catalog.get(code)
    if entry is None or entry.extent is Extent.SINGLE:
        return None, None
    if entry.extent is Extent.COMPLETE:
        return code, entry.counterpart
    return entry.counterpart, code


def _complete_set(code: str, catalog: Catalog) -> ElementSet | None:
    """The complete-exam set that decides complete versus limited for a code."""
    entry = catalog.get(code)
    if entry is None:
        return None
    if entry.complete_elements:
        return catalog.element_sets[entry.complete_elements]
    complete_code, _ = _pair(code, catalog)
    other = catalog.get(complete_code) if complete_code else None
    if other is not None and other.complete_elements:
        return catalog.element_sets[other.complete_elements]
    return None


def _names(results: Iterable[ElementResult]) -> str:
    return ", ".join(r.label for r in results)


def audit_code(
    note: str, code: str, catalog: Catalog, sentences: Sequence[tuple[int, int]] | None = None
) -> CodeAudit:
    """What the note supports for one code: documentation elements and complete vs limited."""
    spans = split_sentences(note) if sentences is None else sentences
    entry = catalog.get(code)
    if entry is None:
        return CodeAudit(code, None, False, (), None, None, None, None, None,
                         f"{code} is not in the ruleset; nothing about it can be verified.")
    docs = tuple(audit_set(note, catalog.element_sets[s], spans) for s in entry.documentation)
    cset = _complete_set(code, catalog)
    complete = audit_set(note, cset, spans) if cset else None
    complete_code, limited_code = _pair(code, catalog)
    supported: str | None = None
    parts: list[str] = []
    missing_docs = [e for s in docs for e in s.missing]
    if docs and not missing_docs:
        parts.append("All documentation elements are present.")
    elif docs:
        parts.append(f"Documentation missing: {_names(missing_docs)}.")
    else:
        parts.append("The ruleset has no documentation elements for this code (not verified).")
    if complete is not None:
        if complete.complete:
            supported = "complete"
            parts.append("Every complete-exam element is present: the note supports a "
                         f"complete exam{f' ({complete_code})' if complete_code else ''}.")
        else:
            supported = "limited"
            target = f" ({limited_code})" if limited_code else ""
            parts.append(f"Complete-exam elements missing: {_names(complete.missing)}; "
                         f"as written the note supports only a limited exam{target}, unless it "
                         "states why a missing element could not be seen.")
    return CodeAudit(
        code=code,
        label=entry.label,
        known=True,
        documentation=docs,
        complete_exam=complete,
        extent=entry.extent.value,
        complete_code=complete_code,
        limited_code=limited_code,
        supported_extent=supported,
        message=" ".join(parts),
    )


def audit_note(note: str, codes: Iterable[str], catalog: Catalog) -> NoteAudit:
    """Audit a de-identified note for each code (duplicates ignored, order kept)."""
    spans = split_sentences(note)
    unique = list(dict.fromkeys(c.strip().upper().lstrip("+") for c in codes if c.strip()))
    return NoteAudit(
        codes=tuple(audit_code(note, c, catalog, spans) for c in unique),
        ruleset=catalog.ruleset,
        sentences=len(spans),
    )
