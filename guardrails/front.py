"""The checker's front door for a claim: keyed lines (and text) in, checked and repaired out.

The CLI's ``advisor check``, the web app's claim tab and API, the pipeline's code-only
questions and the evaluation's check cases all come in here, so a claim is read, checked
and repaired one way.
"""

from __future__ import annotations

from collections.abc import Iterable

from guardrails.claims import ClaimLine, parse_claim_lines
from guardrails.repair import Outcome, check_and_repair
from guardrails.report import Draft, DraftCode
from knowledge.catalog import Catalog


def draft_of(
    lines: Iterable[str | ClaimLine | DraftCode],
    *,
    text: str = "",
    question: str = "",
    history: str = "",
) -> Draft:
    """The draft a claim stands for; strings are parsed as keyed ("93971-50", "37253x6").

    Raises ``MalformedCode`` (a ``ValueError`` whose message says what a code looks like)
    for a string that is no claim line.
    """
    codes: list[DraftCode] = []
    keyed: list[str] = []

    def flush() -> None:
        codes.extend(
            DraftCode(ln.code, ln.units, ln.modifiers, add_on_mark=ln.add_on_mark)
            for ln in parse_claim_lines(keyed)
        )
        keyed.clear()

    for line in lines:
        if isinstance(line, str):
            keyed.append(line)  # parsed together: "37253 x6" puts the units on the line before
            continue
        flush()
        if isinstance(line, DraftCode):
            codes.append(line)
        else:
            codes.append(
                DraftCode(line.code, line.units, line.modifiers, add_on_mark=line.add_on_mark)
            )
    flush()
    return Draft(codes=tuple(codes), text=text, context=question, history=history)


def check_claim(
    lines: Iterable[str | ClaimLine | DraftCode],
    catalog: Catalog,
    *,
    text: str = "",
    question: str = "",
    history: str = "",
) -> Outcome:
    """Check a claim and apply the deterministic fixes; verdicts per code, the claim after.

    ``text`` is a drafted answer checked with the lines (its codes are the claim when no
    lines are given); ``question`` and ``history`` are what was asked (read for the
    question rules only, never for codes).
    """
    draft = draft_of(lines, text=text, question=question, history=history)
    return check_and_repair(draft, catalog)
