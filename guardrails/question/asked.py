"""Words the question asks about rather than says: the predicate of a yes/no question
about what was described, and a word that names a code rather than the service."""

from __future__ import annotations

from typing import Any

# A yes/no question about what was described: an auxiliary verb, then a pronoun for it.
_AUX = frozenset({"do", "does", "did", "is", "are", "was", "were", "would", "will", "could",
                  "can", "should", "shall", "may", "might", "must", "has", "have", "had"})
_ANAPHOR = frozenset({"that", "this", "it", "these", "those"})


def asked(sent: Any) -> bool:
    """A yes/no question about what was just described ('Does that knock it down to
    limited?', 'Is this still complete?'): an auxiliary verb, then 'that', 'this' or 'it',
    and a question mark. Its predicate is asked, not said."""
    words = [t for t in sent if not t.is_space]
    return (len(words) > 2 and words[-1].text == "?" and words[0].lower_ in _AUX
            and words[1].lower_ in _ANAPHOR)


def choice(doc: Any, ent: Any, kind_of: Any) -> bool:
    """One of two options of the same kind joined by 'or' in a question ('RP complete or
    ltd?', 'TV or TA?'): which one is asked, neither is said. ``kind_of`` gives a target's
    kind (None when it has none)."""
    words = [t for t in ent.sent if not t.is_space]
    if not words or words[-1].text != "?":
        return False
    kind = kind_of(ent)
    for other in doc.ents:
        if other is ent or kind_of(other) != kind:
            continue
        if (other.start == ent.end + 1 and doc[ent.end].lower_ == "or") or (
                other.end == ent.start - 1 and doc[other.end].lower_ == "or"):
            return True
    return False


_DETERMINERS = frozenset({"the", "a", "an", "that", "this"})


def names_code(doc: Any, ent: Any, any_kind: bool = False) -> bool:
    """An extent or approach word that names a code ('the follow-up code', 'the complete
    bilateral code', 'the endovaginal code'): 'code' within the next three words, only
    words between. ``any_kind``: the word is of another kind ('the screening code'), so a
    determiner right before it is needed too ('thyroid US code?' asks for a code of the
    study said)."""
    if any_kind and (ent.start == 0 or doc[ent.start - 1].lower_ not in _DETERMINERS):
        return False
    for t in doc[ent.end:ent.end + 3]:
        if t.lower_ in ("code", "codes"):
            return True
        if not t.is_alpha:
            return False
    return False
