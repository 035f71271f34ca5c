"""Denials whose object was said before them, which ConText's scopes cannot reach.

- A pronoun: 'the ultrasound was in the room but I never turned it on', 'then did the tap
  without it'. 'It' after a negated verb of use, or after 'without', stands for the last
  imaging named before it (the tool being used or not), even across a 'but' or a sentence.
- A subject left out after a comma: 'US available, not used.' A clause made only of 'not'
  and a participle, ending there, denies the last thing named before the comma.

Both give token indexes, as the reader's other denials do (``self_denied``).
"""

from __future__ import annotations

import re
from typing import Any

from guardrails.question.vocab import Vocabulary

# verbs of using a tool: 'never turned it on', 'did not use it', 'didn't need it'
_USE = frozenset({"use", "used", "using", "turn", "turned", "switch", "switched", "power",
                  "powered", "need", "needed", "employ", "employed", "touch", "touched"})
_NEG = frozenset({"not", "never", "n't"})
# what 'it' can stand for when a tool is used or not: an imaging modality or guidance
_TOOL_KINDS = frozenset({"modality", "guidance"})
_PARTICIPLE = re.compile(r"^(?:[a-z]{2,}ed|done|seen|taken|given|made|shown|drawn|kept|run)$")


def _kinds(ent: Any, vocab: Vocabulary) -> set[str]:
    rule = getattr(ent._, "target_rule", None)
    concepts = (getattr(rule, "metadata", None) or {}).get("concepts", ())
    return {vocab.kinds.get(c, "") for c in concepts}


def _pronoun_denies(doc: Any, i: int) -> int | None:
    """The index where the denial of the 'it' at token ``i`` starts, or None when that
    'it' is not the object of a denied use ('without it', 'never turned it on')."""
    if i == 0:
        return None
    before = doc[i - 1]
    if before.lower_ == "without":
        return i - 1
    if before.lower_ in _USE:
        neg = next((t for t in doc[max(0, i - 4):i - 1] if t.lower_ in _NEG), None)
        if neg is not None:
            return int(neg.i)
    return None


def referred_denied(doc: Any, vocab: Vocabulary) -> set[int]:
    """Tokens denied by a pronoun or by a clause with its subject left out."""
    out: set[int] = set()
    ents = sorted(doc.ents, key=lambda e: e.start)
    for t in doc:
        if t.lower_ == "it":
            at = _pronoun_denies(doc, t.i)
            if at is None:
                continue
            tool = next((e for e in reversed(ents)
                         if e.end <= at and _kinds(e, vocab) & _TOOL_KINDS), None)
            if tool is not None:
                out.update(range(tool.start, tool.end))
        elif t.text == "," and _elided(doc, t.i):
            last = next((e for e in reversed(ents) if e.end <= t.i), None)
            if last is not None and last.sent.start == t.sent.start and not any(
                    doc[j].is_punct for j in range(last.end, t.i)):
                out.update(range(last.start, last.end))
    return out


def _elided(doc: Any, comma: int) -> bool:
    """', not used.': 'not' and a participle right after the comma, and the clause ends."""
    rest = doc[comma + 1:comma + 4]
    if len(rest) < 2 or rest[0].lower_ not in ("not", "never"):
        return False
    if _PARTICIPLE.match(rest[1].lower_) is None:
        return False
    return len(rest) == 2 or rest[2].is_punct
