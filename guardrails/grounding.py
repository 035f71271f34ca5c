"""What a drafted code line may carry: the modifiers the question gives ground for and the
code takes.

A small model adds modifiers nobody asked for (-RT on a central line, -26, -50, -LT); each
then comes back from the checker as a fix, a "corrected" code and a finding. Such modifiers
are not drafted at all: a drafted line keeps a modifier only when the question (or the one
it follows up) implies it (:func:`guardrails.rules.modifiers.implied_modifiers`) and the
checker raises nothing against it on that code.
"""

from __future__ import annotations

from collections.abc import Iterable

from guardrails.claims import extract
from guardrails.report import DraftCode
from guardrails.rules import modifiers as modifier_rules
from guardrails.rules.base import Context, compiled_for
from guardrails.rules.modifiers import implied_modifiers
from knowledge.catalog import Catalog

_NO_TEXT = extract("")

__all__ = ["grounded_modifiers"]


def grounded_modifiers(
    catalog: Catalog, code: str, modifiers: Iterable[str], question: str, history: str = ""
) -> tuple[str, ...]:
    """The modifiers of a drafted ``code`` line that the question grounds and the code takes."""
    implied = implied_modifiers(question, history)
    out: list[str] = []
    for mod in dict.fromkeys(modifiers):
        if mod not in implied:
            continue
        # The modifier rules alone, on the line drafted alone (not the whole checker).
        ctx = Context(catalog, (DraftCode(code, 1, (mod,)),), _NO_TEXT, compiled_for(catalog))
        ctx.context, ctx.history = question.lower(), history.lower()
        if any(code in f.codes for f in modifier_rules.check(ctx)):
            continue
        out.append(mod)
    return tuple(out)
