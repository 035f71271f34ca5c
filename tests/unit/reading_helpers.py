"""Helpers shared by the question-reading tests: the checker's verdicts for codes drafted
alone with a question, and the statuses of the facts the question is read into."""

from __future__ import annotations

from typing import Any

from guardrails.checker import check
from guardrails.question import Status, read_frame
from guardrails.report import CodeStatus, Draft, DraftCode


def status(cat: Any, question: str, *codes: str) -> dict[str, CodeStatus]:
    """Each code's verdict status, the codes drafted together with ``question``."""
    report = check(Draft(codes=tuple(DraftCode(c) for c in codes), context=question), cat)
    return {c: report.verdict_for(c).status for c in codes}


def facts(cat: Any, question: str) -> dict[str, Status]:
    """Concept -> status of the facts read from ``question`` (inferred ones left out)."""
    return {f.concept: f.status for f in read_frame(question, cat).facts if not f.inferred}
