"""Codes to audit a note for: what the note names, else a drafted suggestion the checker keeps.

A drafted suggestion is a claim like any other: it goes through the checker's front door
with the note as the question (so the note's age, site, side and guidance rule codes out or
correct them), only codes that end verified or corrected are suggested, and an add-on is
never suggested without one of its primaries beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guardrails import check_claim
from guardrails.report import CodeStatus

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

NOTE_CHARS = 1500  # of the note handed to the drafting model
_OK = (CodeStatus.VERIFIED, CodeStatus.CORRECTED)


@dataclass(frozen=True)
class Suggestion:
    """Codes to put in the audit box, and a line saying where they came from."""

    codes: tuple[str, ...]
    message: str


def checked_suggestion(note: str, drafted: Sequence[str], catalog: Catalog) -> Suggestion:
    """The drafted codes as one claim checked with the note as the question; what survives."""
    if not drafted:
        return Suggestion((), "No code could be suggested; type the codes to audit.")
    outcome = check_claim(list(dict.fromkeys(drafted)), catalog, question=note)
    status = {v.code: v.status for v in outcome.verdicts}
    kept = [c.code for c in outcome.draft.codes if status.get(c.code) in _OK]

    def lone_add_on(code: str) -> bool:
        ap = catalog.addon_primaries(code)
        return ap is not None and not ap.primaries & set(kept)

    lone = [c for c in dict.fromkeys([*kept, *drafted]) if lone_add_on(c)]
    kept = [c for c in kept if c not in lone]
    left_out = [c for c in dict.fromkeys(drafted) if c not in kept and c not in lone]
    notes = []
    if left_out:
        notes.append("Not suggested (changed or not verified by the rules for this note): "
                     f"{', '.join(left_out)}.")
    for code in lone:
        notes.append(f"{code} is an add-on and no primary code for it is suggested; add the "
                     "primary to audit it.")
    if not kept:
        return Suggestion((), " ".join(["No code could be suggested; type the codes to audit.",
                                        *notes]))
    return Suggestion(
        tuple(kept),
        " ".join(["Suggested by the model and checked by the rules with the note as the "
                  "question; the audit below is rule-based. Edit the codes if they do not fit.",
                  *notes]),
    )


def suggest_for_note(
    note: str,
    catalog: Catalog,
    named: Sequence[str],
    ask: Callable[[str], Any] | None,
) -> Suggestion:
    """Codes the note names as written; else the model's suggestion, checked.

    ``ask`` answers a question (the advisor's ``ask``); None when no model is ready.
    """
    if named:
        return Suggestion(tuple(named), "Codes named in the note.")
    if ask is None:
        return Suggestion((), "The note names no code and the model is not ready; type the "
                              "codes to audit.")
    answer = ask("Which CPT codes does this procedure note support? " + note[:NOTE_CHARS])
    drafted = [c.code for c in answer.codes if c.status in _OK]
    return checked_suggestion(note, drafted, catalog)
