"""One way a code does not fit a question, and the words that say it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.schema import Confidence


@dataclass(frozen=True, slots=True)
class Misfit:
    """One way a code does not fit the question."""

    code: str
    dimension: str  # site, approach, guidance, action, exam, device, feature, patient, ...
    contradiction: bool  # True: the question affirms the opposite; False: it is silent
    message: str
    said: str = ""  # the question's words behind a contradiction
    alternatives: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    confidence: Confidence = Confidence.MEDIUM
    need: str = ""  # the concept left unsaid, where a dimension has several ('requires')


def _words(concepts: Iterable[str]) -> str:
    items = [c.replace("_", " ") for c in concepts]
    if len(items) <= 2:
        return " or ".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


_VESSEL_WORDS = frozenset({"vessel", "artery", "vein"})
_BAND = {"under_5": "under 5", "5_and_older": "5 or older"}


def _range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo} to {hi}" if lo != hi else str(lo)
    if lo is not None:
        return f"{lo} or more"
    return f"at most {hi}"
