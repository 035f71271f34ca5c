"""The vocabulary indexed for reading and fitting: hierarchy, implications, terms.

Built once per catalog from ``knowledge/data/vocabulary.yaml``. Pure and fast: no NLP here,
so the fit rules can use the hierarchy without loading the reader.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knowledge.catalog import Catalog
    from knowledge.vocab_schema import VocabularyFile

# Concept kinds the phrase matcher looks for; counts are read by guardrails.question.numbers.
MATCHED_KINDS = frozenset({
    "site", "approach", "guidance", "modality", "action", "exam", "feature", "device",
    "patient", "extent", "service", "cue",
})


def _plurals(term: str) -> tuple[str, ...]:
    """A term and its plural, when its last word is a plain noun-like word."""
    words = term.split(" ")
    last = words[-1]
    if not last.isalpha() or len(last) < 4 or last.endswith("s"):
        return (term,)
    if last.endswith("y") and last[-2] not in "aeiou":
        plural = last[:-1] + "ies"
    elif last.endswith(("x", "ch", "sh")):
        plural = last + "es"
    else:
        plural = last + "s"
    return (term, " ".join([*words[:-1], plural]))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Concept kinds, ancestors (each concept's own id included), implications, terms."""

    kinds: dict[str, str]
    ancestors: dict[str, frozenset[str]]
    implies: dict[str, tuple[str, ...]]
    negates: dict[str, str]
    may_be: dict[str, tuple[str, ...]]  # a loose action word -> what it may also describe
    terms: dict[str, tuple[str, ...]]  # lower-case term -> concepts it names
    vague: frozenset[str]  # lower-case terms that name a concept only vaguely ('scan')
    case_terms: dict[str, tuple[str, ...]]  # term as written -> concepts
    context: tuple[tuple[str, str, str, int | None], ...]  # (cue, category, direction, max_scope)
    context_drop: frozenset[str]  # medspaCy default rules (by literal) left out
    comma_ends: tuple[str, ...]  # ConText categories a comma ends
    formed_by: tuple[tuple[str, str, str], ...] = ()  # (compound action, action, site)
    # Cue concepts that name an action only beside its site (formed_by: 'para'); built once.
    forming_cues: frozenset[str] = frozenset()

    def is_a(self, concept: str, other: str) -> bool:
        """True when ``concept`` is ``other`` or narrower (a knee is a joint)."""
        return other in self.ancestors.get(concept, frozenset((concept,)))

    def related(self, a: str, b: str) -> bool:
        """True when one concept is the other or narrower than it."""
        return self.is_a(a, b) or self.is_a(b, a)

    def closure(self, concept: str) -> tuple[str, ...]:
        """The concept and everything it implies, transitively, in a stable order."""
        out: dict[str, None] = {concept: None}
        todo = [concept]
        while todo:
            for nxt in self.implies.get(todo.pop(), ()):
                if nxt not in out:
                    out[nxt] = None
                    todo.append(nxt)
        return tuple(out)


def build(vocab: VocabularyFile) -> Vocabulary:
    """Index a vocabulary file."""
    kinds: dict[str, str] = {c.id: c.kind for c in vocab.concepts}
    parents = {c.id: c.parents for c in vocab.concepts}
    ancestors: dict[str, frozenset[str]] = {}

    def up(cid: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        if cid in ancestors:
            return ancestors[cid]
        acc = {cid}
        for p in parents.get(cid, ()):
            if p not in seen:
                acc |= up(p, seen | {cid})
        ancestors[cid] = frozenset(acc)
        return ancestors[cid]

    for cid in kinds:
        up(cid)
    terms: dict[str, dict[str, None]] = {}
    case_terms: dict[str, dict[str, None]] = {}
    vague: set[str] = set()
    for c in vocab.concepts:
        if c.kind not in MATCHED_KINDS:
            continue
        for t in (*c.terms, *c.vague_terms):
            for form in _plurals(t.lower().strip()):
                terms.setdefault(form, {})[c.id] = None
        for t in c.vague_terms:
            vague.update(_plurals(t.lower().strip()))
        for t in c.case_terms:
            case_terms.setdefault(t.strip(), {})[c.id] = None
    _heads(terms, kinds)
    formed_by = tuple((c.id, a, site) for c in vocab.concepts for a, site in c.formed_by)
    return Vocabulary(
        kinds=kinds,
        ancestors=ancestors,
        implies={c.id: c.implies for c in vocab.concepts if c.implies},
        negates={c.id: c.negates for c in vocab.concepts if c.negates},
        may_be={c.id: c.may_be for c in vocab.concepts if c.may_be},
        terms={t: tuple(cs) for t, cs in terms.items()},
        vague=frozenset(vague),
        case_terms={t: tuple(cs) for t, cs in case_terms.items()},
        context=tuple((r.cue, r.category, r.direction, r.max_scope) for r in vocab.context),
        context_drop=frozenset(vocab.context_drop),
        comma_ends=tuple(vocab.comma_ends),
        formed_by=formed_by,
        forming_cues=frozenset(a for _, a, _ in formed_by if kinds.get(a) == "cue"),
    )


# Kinds of a compound term's modifier ('OB ultrasound', 'head ultrasound', 'penile duplex'):
# the compound names its head noun's study too.
_MODIFIER_KINDS = frozenset({"site", "patient"})
_HEAD_KINDS = frozenset({"exam", "modality"})


def _heads(terms: dict[str, dict[str, None]], kinds: dict[str, str]) -> None:
    """A site's or patient's term that ends in a study word names that study too: the
    matcher keeps the longest term, so 'OB ultrasound' would otherwise hide 'ultrasound'.
    In English the last word of a compound is its head ('OB ultrasound' is an ultrasound);
    a guidance, approach or action term ('real-time ultrasound') is left as it is."""
    studies = {t: [c for c in cs if kinds.get(c) in _HEAD_KINDS] for t, cs in terms.items()}
    for term, concepts in terms.items():
        words = term.split(" ")
        if len(words) < 2 or not any(kinds.get(c) in _MODIFIER_KINDS for c in concepts):
            continue
        if any(kinds.get(c) not in _MODIFIER_KINDS for c in concepts):
            continue  # the term already names something else (an exam, an action)
        for c in studies.get(words[-1], ()):
            concepts[c] = None


_CACHE: dict[int, tuple[object, Vocabulary]] = {}
_LOCK = threading.Lock()


def vocabulary_of(catalog: Catalog) -> Vocabulary:
    """The indexed vocabulary of a catalog, built once per catalog."""
    key = id(catalog.vocabulary)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is catalog.vocabulary:
        return hit[1]
    with _LOCK:
        v = build(catalog.vocabulary)
        _CACHE[key] = (catalog.vocabulary, v)
        return v
