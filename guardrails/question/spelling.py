"""Misspelled vocabulary words, read as the word meant ('thoracentsis' is 'thoracentesis').

A word of the question is corrected only when all of these hold:
- it is at least 7 letters long (short words are abbreviations far more often than typos);
- it is not itself a word of the vocabulary, nor an English word of pyspellchecker's
  frequency list (so 'infection' never becomes 'injection');
- exactly one vocabulary word of at least 7 letters, with the same first letter, is one edit
  away (a letter added, dropped, changed, or two neighbours swapped).

The lookup is a symmetric-delete index (the SymSpell method) of the vocabulary's words, built
once per vocabulary. Without pyspellchecker the text is read as written.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from typing import Any

from guardrails.question.vocab import Vocabulary

MIN_LETTERS = 7
_WORD = re.compile(r"[A-Za-z]+")
_LOCK = threading.Lock()
_SPELLERS: dict[int, tuple[Vocabulary, Speller]] = {}
_ENGLISH: list[Any] = []


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def one_edit(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by one insertion, deletion, substitution or swap of
    neighbours (Damerau-Levenshtein distance 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return short in _deletes(long_)


def _english() -> Any:
    """pyspellchecker's English word list (loaded once), or None when it is missing."""
    if not _ENGLISH:
        try:
            from spellchecker import SpellChecker

            _ENGLISH.append(SpellChecker(distance=1).word_frequency)
        except ImportError:  # pragma: no cover - a declared dependency
            _ENGLISH.append(None)
    return _ENGLISH[0]


class Speller:
    """Corrects one-edit misspellings of a vocabulary's long words."""

    def __init__(self, vocab: Vocabulary) -> None:
        words = {w for term in vocab.terms for w in _WORD.findall(term.lower())
                 if len(w) >= MIN_LETTERS}
        self.words = frozenset(words)
        index: dict[str, set[str]] = defaultdict(set)
        for w in words:
            index[w].add(w)
            for d in _deletes(w):
                index[d].add(w)
        self._index = dict(index)

    def meant(self, word: str) -> str | None:
        """The vocabulary word ``word`` misspells, or None."""
        low = word.lower()
        if len(low) < MIN_LETTERS or low in self.words:
            return None
        found = {w for d in (_deletes(low) | {low}) for w in self._index.get(d, ())
                 if w[0] == low[0] and one_edit(low, w)}
        if len(found) != 1:
            return None
        english = _english()
        if english is None or low in english:
            return None
        return found.pop()

    def correct(self, text: str) -> str:
        """``text`` with each misspelled vocabulary word replaced by the word meant."""
        return _WORD.sub(lambda m: self.meant(m.group(0)) or m.group(0), text)


def speller(vocab: Vocabulary) -> Speller:
    """The speller of ``vocab``, built on first use."""
    hit = _SPELLERS.get(id(vocab))
    if hit is not None and hit[0] is vocab:
        return hit[1]
    with _LOCK:
        hit = _SPELLERS.get(id(vocab))
        if hit is None or hit[0] is not vocab:
            hit = (vocab, Speller(vocab))
            _SPELLERS[id(vocab)] = hit
        return hit[1]
