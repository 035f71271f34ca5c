"""Does a code fit a question? The checker's question-reading rules applied to one code.

The pipeline offers the drafting model a short list of candidate codes. A candidate that
the checker would reject on the question's own words alone (20610 when the question says
ultrasound guidance, 76705 for an echo question, 76801 at 20 weeks) only gives the model a
wrong code to pick; :func:`misfits` says which rules a code breaks before it is offered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardrails.checker import check
from guardrails.report import Draft, DraftCode, Finding

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

# Rules that judge a code by the question alone (not by other codes or the prose).
QUESTION_RULES = frozenset({
    "descriptor.site",
    "descriptor.guidance_context",
    "descriptor.extent_context",
    "descriptor.age",
    "descriptor.question",
    "descriptor.question_lacks",
    "descriptor.one_side",
    "descriptor.both_sides",
    "descriptor.not_ultrasound",
    "descriptor.off_topic",
    "descriptor.guidance_unsaid",
})


def misfits(catalog: Catalog, code: str, question: str, history: str = "") -> list[Finding]:
    """Findings of the question-reading rules on ``code`` drafted alone for ``question``.

    ``history`` is the earlier question a follow-up builds on (read for the topic only, as
    in a full check). Empty when the code fits, or when there is no question to read.
    """
    if not question.strip():
        return []
    report = check(
        Draft(codes=(DraftCode(code),), context=question, history=history), catalog
    )
    return [f for f in report.findings if f.rule in QUESTION_RULES and code in f.codes]
