"""Does a code fit a question? The question's frame against what the code describes.

The pipeline offers the drafting model a short list of candidate codes, ranked by how well
each fits the question (:func:`rank`): codes the question supports first, then codes it says
nothing against, then codes it contradicts. Nothing is dropped: a reading that is wrong
must not keep the right code from the model. :func:`misfits` gives the contradictions of one
code (the question affirms something the code cannot describe), as checker findings.
:func:`supported` names the few codes the question's reading alone supports, so that a code
retrieval missed still reaches the candidate list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from guardrails.question import read_frame
from guardrails.question.fit import fitter_for
from guardrails.registry import question_rules
from guardrails.report import Finding, Severity
from guardrails.rules.fit import finding_for

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

# Rules that judge a code by the question alone (not by other codes or the prose).
QUESTION_RULES = question_rules()


def misfits(catalog: Catalog, code: str, question: str, history: str = "") -> list[Finding]:
    """The contradiction findings of ``code`` drafted alone for ``question`` (empty when the
    question does not contradict it, or when there is no question)."""
    if not question.strip() or catalog.get(code) is None:
        return []
    frame = read_frame(question, catalog, history)
    f = finding_for(fitter_for(catalog), frame, code, (code,))
    return [f] if f is not None and f.severity is Severity.ERROR else []


def fit_score(catalog: Catalog, code: str, question: str, history: str = "") -> int:
    """2: the question supports the code; 1: says nothing against it; 0: contradicts it."""
    if not question.strip() or catalog.get(code) is None:
        return 1
    return fitter_for(catalog).score(read_frame(question, catalog, history), code)


# A question read into a frame that the catalog narrows to this many primary codes or fewer
# names its service specifically enough for those codes to be offered to the drafting
# model, whatever retrieval found; a frame that many codes fit says too little to add any.
SUPPORTED_MAX = 4


def supported(catalog: Catalog, question: str, history: str = "") -> list[str]:
    """Primary codes the question alone supports (every fact each needs is affirmed, none
    contradicted), when they are few (:data:`SUPPORTED_MAX`); else none."""
    if not question.strip():
        return []
    codes = fitter_for(catalog).supported(read_frame(question, catalog, history))
    return list(codes) if len(codes) <= SUPPORTED_MAX else []


def less_specific(catalog: Catalog, question: str, history: str = "") -> frozenset[str]:
    """Codes the question fully supports that another supported code describes more
    exactly (the limited abdomen beside liver elastography)."""
    if not question.strip():
        return frozenset()
    return frozenset(fitter_for(catalog).less_specific(read_frame(question, catalog, history)))


def outside(catalog: Catalog, question: str, history: str = "") -> bool:
    """True when every service the question affirms is one no code of the catalog describes
    and it names no ultrasound or imaging guidance (a knee arthroscopy)."""
    if not question.strip():
        return False
    frame = read_frame(question, catalog, history)
    if not frame.codes and not any(f.kind not in ("cue", "count") for f in frame.facts):
        # The reading finds nothing a code could describe, in any status: no site, study,
        # procedure, device or feature (an office visit's E/M level).
        return True
    return bool(fitter_for(catalog).unserved(frame))


def rank(catalog: Catalog, codes: Sequence[str], question: str, history: str = ""
         ) -> list[tuple[str, int]]:
    """``codes`` with their fit score (:func:`fit_score`), best first; ties keep their
    order."""
    scores = {c: fit_score(catalog, c, question, history) for c in codes}
    return sorted(((c, scores[c]) for c in codes), key=lambda cs: -cs[1])
