"""The medspaCy pipeline of the question reader, and how far its ConText cues reach.

The pipeline is medspaCy's sentence splitter (PyRuSH), its target matcher (the
vocabulary's terms) and ConText with its default rules plus the vocabulary's cues. It is
built once per process per vocabulary, on first use, so lookups and claim checks never
pay for it.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

from guardrails.question.frame import Status
from guardrails.question.vocab import Vocabulary

# ConText categories -> status, strongest first (a negated family fact is still family).
_CATEGORY_STATUS = (
    ("FAMILY", Status.OTHER),
    ("OTHER_EXPERIENCER", Status.OTHER),
    ("NEGATED_EXISTENCE", Status.NEGATED),
    ("HYPOTHETICAL", Status.HYPOTHETICAL),
    ("HISTORICAL", Status.HISTORICAL),
    ("POSSIBLE_EXISTENCE", Status.UNCERTAIN),
)


# units of a time from now ('in 6 weeks'): a planned service
SPANS_OF_TIME = ("day", "days", "week", "weeks", "wk", "wks", "month", "months", "mo", "mos",
                  "year", "years")


class ReaderUnavailable(RuntimeError):
    """The clinical NLP packages are missing: the frame cannot be read."""

    retryable = False


ACTION_MATCHERS: dict[int, Any] = {}
_PIPELINES: dict[int, tuple[Vocabulary, Any]] = {}
_BUILD_LOCK = threading.Lock()


def _quiet() -> None:
    # PyRuSH logs every sentence decision through loguru at DEBUG: silence it.
    try:
        from loguru import logger

        logger.disable("PyRuSH")
        logger.disable("medspacy")
    except ImportError:  # pragma: no cover - loguru comes with PyRuSH
        pass
    for name in ("medspacy", "PyRuSH", "spacy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def pipeline(vocab: Vocabulary) -> Any:
    """The medspaCy pipeline for ``vocab``, built on first use."""
    hit = _PIPELINES.get(id(vocab))
    if hit is not None and hit[0] is vocab:
        return hit[1]
    with _BUILD_LOCK:
        hit = _PIPELINES.get(id(vocab))
        if hit is not None and hit[0] is vocab:
            return hit[1]
        _quiet()
        try:
            import medspacy  # type: ignore[import-untyped]
            from medspacy.context import (  # type: ignore[import-untyped]
                ConTextRule,
                context_modifier,
            )
            from medspacy.target_matcher import TargetRule  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ReaderUnavailable(
                "The question reader needs medspaCy (installed by `make install`; by hand: "
                "see the Makefile's install step). " + str(exc)
            ) from exc
        _quiet()
        # medspaCy 1.3.1's overlap test is false when the second span holds the first: a
        # terminator whose reach is the whole sentence (';', 'but') then fails to end a cue
        # a comma has already shortened ('with contrast; the ECG was done by another
        # physician': the contrast is not the other physician's). The test, made symmetric:
        context_modifier.tuple_overlaps = _overlaps
        nlp = medspacy.load(medspacy_enable=["medspacy_pyrush", "medspacy_target_matcher"])
        context = nlp.add_pipe("medspacy_context", config={
            "rules": None,
            "terminating_types": {c: ["COMMA"] for c in vocab.comma_ends},
        })
        defaults = ConTextRule.from_json(context.DEFAULT_RULES_FILEPATH)
        context.add([r for r in defaults if r.literal not in vocab.context_drop])
        context.add(
            [ConTextRule(cue, category, direction=direction, max_scope=scope)
             for cue, category, direction, scope in vocab.context]
            + _grammar_rules(vocab, ConTextRule)
        )
        rules = [
            TargetRule(term, "CONCEPT", metadata={"concepts": concepts})
            for term, concepts in vocab.terms.items()
        ]
        rules += [
            TargetRule(term, "CONCEPT", pattern=[{"TEXT": t} for t in term.split()],
                       metadata={"concepts": concepts})
            for term, concepts in vocab.case_terms.items()
        ]
        rules += _all_elements(TargetRule)
        nlp.get_pipe("medspacy_target_matcher").add(rules)
        # The target matcher keeps one of two overlapping terms ('SI joint' over 'joint
        # injection', 'genicular nerve block' over 'nerve block'); what a procedure does is
        # read again from every term of an action, overlapping or inside another.
        from spacy.matcher import PhraseMatcher

        actions = PhraseMatcher(nlp.vocab, attr="LOWER")
        for term, concepts in vocab.terms.items():
            if any(vocab.kinds.get(c) == "action" for c in concepts):
                actions.add(term, [nlp.make_doc(term)])
        ACTION_MATCHERS[id(nlp)] = actions
        _PIPELINES[id(vocab)] = (vocab, nlp)
        return nlp


def _all_elements(TargetRule: Any) -> list[Any]:
    """'all eight abdominal elements', 'all the required structures': every element of the
    study said, however the writer counts or names them (grammar, not a word list). Bare
    'all structures' is left alone: 'all visualized structures are normal' says nothing
    of the extent."""
    some = {"IS_PUNCT": False, "OP": "{0,3}"}
    meta = {"concepts": ["complete"]}
    return [
        TargetRule("all <...> elements", "CONCEPT", metadata=meta, pattern=[
            {"LOWER": "all"}, some, {"LOWER": {"IN": ["elements", "components"]}}]),
        TargetRule("all <...> required <...>", "CONCEPT", metadata=meta, pattern=[
            {"LOWER": "all"}, some, {"LOWER": "required"},
            {"LOWER": {"IN": ["structures", "organs", "views", "images", "elements"]}}]),
    ]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two (start, end) token spans share a token."""
    return a[0] < b[1] and b[0] < a[1]


def _grammar_rules(vocab: Vocabulary, ConTextRule: Any) -> list[Any]:
    """ConText rules of English grammar (patterns and callbacks, not word lists)."""
    return (
        []
        # a comma reaches one word each side, so that it also ends a cue just before it
        # ("declined, and a limited study was done": the study is not declined)
        + [ConTextRule(",", "COMMA", direction="BIDIRECTIONAL", max_scope=1)]
        # 'No - a non-tunneled line': a sentence opened by 'no' and a pause answers what
        # was asked before it; it denies nothing after it (a pseudo cue outranks 'no')
        + [ConTextRule("no - (an answer)", "ANSWER", direction="PSEUDO",
                       pattern=[{"IS_SENT_START": True, "LOWER": "no"},
                                {"TEXT": {"IN": [",", "-", "\u2013", "\u2014", ":", ";"]}}]),
           ConTextRule("? no - (an answer)", "ANSWER", direction="PSEUDO",
                       pattern=[{"TEXT": "?"}, {"LOWER": "no"},
                                {"TEXT": {"IN": [",", "-", "\u2013", "\u2014", ":", ";"]}}])]
        # 'Biopsy recommended.', 'follow-up ultrasound in 8 weeks recommended.': a
        # recommendation said after its object, at the end of its clause
        + [ConTextRule("<object> recommended.", "HYPOTHETICAL", direction="BACKWARD",
                       pattern=[{"LOWER": {"IN": ["recommended", "advised", "suggested"]}},
                                {"IS_PUNCT": True}])]
        # 'repeat in 6 weeks', 'follow-up ultrasound in 3 months': a time from now
        + [ConTextRule("in <n> weeks", "HYPOTHETICAL", direction="BACKWARD", max_scope=3,
                       pattern=[{"LOWER": "in"}, {"LIKE_NUM": True},
                                {"LOWER": {"IN": list(SPANS_OF_TIME)}}])]
        # 'a formal Doppler study to be rescheduled', 'biopsy to be done next week': an
        # infinitive of the passive after its object says what is yet to be done
        + [ConTextRule("to be <participle>", "HYPOTHETICAL", direction="BACKWARD",
                       max_scope=6,
                       pattern=[{"LOWER": "to"}, {"LOWER": "be"},
                                {"LOWER": {"REGEX": _PARTICIPLE}}])]
        # a coding argument over the level billed ('downgrade it to limited', 'upgraded to
        # the complete code'): the level named is a proposal about the claim
        + [ConTextRule("downgrade to", "HYPOTHETICAL", direction="FORWARD", max_scope=3,
                       pattern=[{"LOWER": {"REGEX": r"^(?:down|up)grad(?:e|ed|es|ing)$"}},
                                {"IS_PUNCT": False, "OP": "{0,2}"}, {"LOWER": "to"}])]
        # a template's 'Doppler: no' denies its header; 'Thyroid US: no nodules' says
        # what the header's study found (the default ': no' rule, replaced: the answer
        # must end its clause)
        + [ConTextRule(lit, "NEGATED_EXISTENCE", direction="BACKWARD",
                       on_modifies=_header_answer_modifies)
           for lit in (": no", ": none") if lit in vocab.context_drop]
        # English passive negation after the thing it denies: 'a detailed scan was not
        # requested', 'Doppler not recorded' (any past participle, not a word list) ...
        # except when a means follows: the negation is then of the means ('the
        # injection was not done by palpation' says how it was not done).
        + [ConTextRule(_PASSIVE_NOT, "NEGATED_EXISTENCE", direction="BIDIRECTIONAL",
                       pattern=[{"LOWER": {"IN": list(_BE)}, "OP": "?"},
                                {"LOWER": {"IN": ["not", "n't"]}},
                                {"LOWER": {"IN": list(_ADVERBS)}, "OP": "?"},
                                {"LOWER": {"IN": ["be", "been"]}, "OP": "?"},
                                {"LOWER": {"REGEX": _PARTICIPLE}}],
                       on_modifies=_passive_not_modifies)]
        # 'not a blind injection': the negation of a phrase whose first word says how
        # (guidance, extent, approach, a feature) is of that word: the injection was done
        + [ConTextRule(_NOT_A, "NEGATED_EXISTENCE", direction="FORWARD",
                       pattern=[{"LOWER": {"IN": list(_BE)}, "OP": "?"},
                                {"LOWER": "not"}, {"LOWER": {"IN": ["a", "an"]}}],
                       on_modifies=partial(_not_a_modifies, vocab))]
    )


_BE = ("was", "were", "is", "are", "been", "be")
# an adverb between the negation and its participle ('not also done', 'not yet performed'),
# and the modal's 'be' ('could not be interrogated')
_ADVERBS = ("also", "yet", "ever", "actually", "separately", "fully", "formally")
_PARTICIPLE = r"^(?:[a-z]{3,}ed|done|seen|taken|given|made|shown|drawn|kept|sent|run|held)$"
_PASSIVE_NOT = "not <participle>"
_NOT_A = "not a <noun phrase>"
# Prepositions that open a means after a participle ('done by palpation', 'placed under
# ultrasound', 'performed with fluoroscopy') ...
_MEANS = frozenset({"by", "with", "under", "using", "via", "through"})
# ... but not after a verb of seeing: 'flow was not seen with color Doppler' denies the flow,
# and the Doppler was done
_PERCEIVED = frozenset({"seen", "visualized", "visualised", "identified", "detected",
                        "demonstrated", "noted", "found", "observed", "appreciated",
                        "shown", "imaged", "evident"})
# Words that open another clause: a means phrase ends before them ('... with ultrasound
# because the patient declined').
_CLAUSE = frozenset({"because", "since", "as", "but", "so", "although", "though", "while",
                     "when", "after", "before", "due"})
# The first word of a 'not a X Y' phrase that the negation is of, by its kind.
_HOW_KINDS = frozenset({"guidance", "extent", "approach", "feature"})


def status_of(categories: set[str]) -> Status:
    """The status ConText categories give, the strongest first."""
    for category, status in _CATEGORY_STATUS:
        if category in categories:
            return status
    return Status.AFFIRMED


def _means_reach(doc: Any, end: int) -> int | None:
    """Where the means phrase opening at token ``end`` ends (exclusive), or None when none
    opens there: a preposition of means after a verb of doing, followed by a term the
    vocabulary reads ('by palpation', 'under ultrasound', 'with contrast'). An agent ('not
    performed by me') is no means: the act itself is denied."""
    if (end >= len(doc) or doc[end].lower_ not in _MEANS or end == 0
            or doc[end - 1].lower_ in _PERCEIVED
            or not any(ent.start in (end, end + 1) for ent in doc.ents)):
        return None
    return next((t.i for t in doc[end:] if t.is_punct or t.lower_ in _CLAUSE), len(doc))


def _header_answer_modifies(_target: Any, modifier: Any, _between: Any) -> bool:
    """'Header: no' denies the header when nothing but punctuation follows the answer."""
    doc, end = modifier.doc, modifier.end
    return end >= len(doc) or bool(doc[end].is_punct)


def _passive_not_modifies(target: Any, modifier: Any, _between: Any) -> bool:
    """'X was not <participle>' denies X; 'X was not <participle> by/with/under Y' denies
    only the means Y (to the end of its clause)."""
    reach = _means_reach(modifier.doc, modifier.end)
    if reach is None:
        return bool(target.end <= modifier.start) and not _clause_between(
            modifier.doc, target.end, modifier.start)
    return bool(modifier.end <= target.start < reach)


def _clause_between(doc: Any, start: int, end: int) -> bool:
    """A clause ends between ``start`` and ``end``: a semicolon, or a colon that is not a
    template's 'Header: not done' (one right before the cue). 'duplex of the portal vein;
    hepatic veins not interrogated' does not deny the duplex."""
    return any(t.text == ";" or (t.text == ":" and t.i < end - 2) for t in doc[start:end])


def _phrase_after(doc: Any, end: int) -> list[Any]:
    """The targets said one after another (a hyphen between at most) from token ``end``."""
    run: list[Any] = []
    for ent in sorted(doc.ents, key=lambda x: x.start):
        at = run[-1].end if run else end
        if ent.start == at or (ent.start == at + 1 and doc[at].text == "-"):
            run.append(ent)
        elif ent.start > at:
            break
    return run


def _how_first(vocab: Vocabulary, doc: Any, end: int) -> Any | None:
    """The first target of a 'not a X Y' phrase when it says how Y was done (its concepts
    are guidance, extent, approach or a feature) and a head Y follows; else None."""
    run = _phrase_after(doc, end)
    if len(run) < 2:
        return None
    rule = getattr(run[0]._, "target_rule", None)
    concepts = (getattr(rule, "metadata", None) or {}).get("concepts", ())
    if concepts and all(vocab.kinds.get(c) in _HOW_KINDS for c in concepts):
        return run[0]
    return None


def _not_a_modifies(vocab: Vocabulary, target: Any, modifier: Any, _between: Any) -> bool:
    """'not a blind injection': only 'blind'; 'not a renal biopsy': all of it, as 'not'."""
    first = _how_first(vocab, modifier.doc, modifier.end)
    return first is None or bool(target.start == first.start)


def self_denied(doc: Any) -> set[int]:
    """Tokens a 'not <participle>' cue denies inside itself: 'the knee was not aspirated'
    (the participle is the action; ConText never lets a cue modify a term it overlaps)."""
    graph = getattr(doc._, "context_graph", None)
    return {mod.modifier_span[1] - 1 for mod in getattr(graph, "modifiers", ()) or ()
            if mod.rule.literal == _PASSIVE_NOT}


# the verb after a subject: 'No ultrasound guidance was used for this knee aspiration'
# denies the guidance, not the aspiration the verb goes on to
_AUX = frozenset({"was", "were", "is", "are", "has", "have", "had"})


def _verb_after(doc: Any, start: int, end: int) -> int | None:
    """Where the predicate of a subject in tokens [start, end) ends: after its first
    auxiliary verb and the word that follows it ('no fluid was aspirated': the
    aspiration is denied too), or None when no auxiliary is said."""
    aux = next((i for i in range(start, min(end, len(doc))) if doc[i].lower_ in _AUX), None)
    return None if aux is None else aux + 2


def categories_of(ent: Any) -> set[str]:
    """The ConText categories of a target. A negation said before its subject ('No
    Doppler was done ...') reaches only to the subject's verb."""
    out: set[str] = set()
    for mod in getattr(ent._, "modifiers", ()):
        if mod.category.upper() == "NEGATED_EXISTENCE" and mod.direction.upper() == "FORWARD":
            verb = _verb_after(ent.doc, mod.modifier_span[1], ent.start)
            if verb is not None and verb <= ent.start:
                continue
        out.add(mod.category.upper())
    return out


def scopes_of(doc: Any, vocab: Vocabulary) -> list[tuple[int, int, str]]:
    """(start char, end char, category) of every ConText cue's reach (the two cues with
    their own ``on_modifies`` reach as those decide)."""
    out = []
    graph = getattr(doc._, "context_graph", None)
    for mod in getattr(graph, "modifiers", ()) or ():
        if mod.direction.upper() == "TERMINATE":
            continue
        s, e = mod.scope_span
        start, end = mod.modifier_span
        if mod.rule.literal == _NOT_A:  # from the article on ('not a knee' is no count)
            first = _how_first(vocab, doc, end)
            s, e = (start, e) if first is None else (start, first.end)
        elif mod.rule.literal == _PASSIVE_NOT:
            reach = _means_reach(doc, end)
            s, e = (s, start) if reach is None else (end, reach)
        elif mod.category.upper() == "NEGATED_EXISTENCE" and mod.direction.upper() == "FORWARD":
            verb = _verb_after(doc, end, e)
            e = e if verb is None else min(e, verb)
        if e <= s:
            continue
        out.append((doc[s].idx, doc[e - 1].idx + len(doc[e - 1]), mod.category.upper()))
    return out


def status_at(span: tuple[int, int], scopes: list[tuple[int, int, str]]) -> Status:
    cats = {cat for s, e, cat in scopes if s <= span[0] and span[1] <= e}
    return status_of(cats)
