"""Schema of knowledge/data/vocabulary.yaml: the concepts questions are read with, and the
ConText cues that set each fact's status (see knowledge/schema.py for the rest)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from knowledge.schema import Strict

ConceptKind = Literal[
    "site", "approach", "guidance", "modality", "action", "exam", "feature", "device",
    "patient", "extent", "service", "count", "cue",
]
ContextCategory = Literal[
    "NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HISTORICAL", "HYPOTHETICAL",
    "OTHER_EXPERIENCER", "FETUS", "TERMINATE",
]
CONCEPT_ID = r"^[a-z][a-z0-9_]*$"


class Concept(Strict):
    """One thing a question can say, with the words that name it."""

    id: str = Field(pattern=CONCEPT_ID, description="Stable concept id, used by codes data.")
    kind: ConceptKind = Field(description="What sort of fact the concept is.")
    parents: tuple[str, ...] = Field(
        (), description="Broader concepts of the same kind (a knee is a major joint)."
    )
    terms: tuple[str, ...] = Field(
        description="Words and phrases naming it, matched whole and case-insensitive."
    )
    case_terms: tuple[str, ...] = Field(
        (), description="Abbreviations matched only as written (US, TA, MR), so that 'us' the "
        "pronoun is not ultrasound."
    )
    vague_terms: tuple[str, ...] = Field(
        (), description="Words that name the concept but are said of others too ('scan' of a "
        "CT or a DEXA): they are read as the concept, but do not alone name it where the kind "
        "of study matters."
    )
    implies: tuple[str, ...] = Field(
        (), description="Concepts a mention of this one also states (TEE: echo of the heart)."
    )
    may_be: tuple[str, ...] = Field(
        (), description="For an action word said loosely of narrower actions that are not its "
        "children: what it may also describe ('drained' is said of a needle aspiration too). "
        "Such a word does not rule those actions out; it does not say they were done either."
    )
    negates: str | None = Field(
        None, description="The concept this one says is absent (non-tunneled: not tunneled)."
    )
    formed_by: tuple[tuple[str, str], ...] = Field(
        (), description="For an action: the (action, site) pairs it is by definition (a "
        "facet injection is an injection of a facet joint), so that 'the facet joints were "
        "injected' is read as the facet injection when both are said in one sentence. The "
        "first may be a cue: a short word that names the action only beside its site ('para' "
        "with ascites is a paracentesis; alone, in an obstetric history, it is parity). For a "
        "site: the two sites it is by definition (the sacroiliac joint's nerves are the "
        "nerves of the sacroiliac joint)."
    )


class ContextCue(Strict):
    """A word that changes the assertion status of facts near it (medspaCy ConText rule)."""

    cue: str = Field(min_length=1, description="The cue words, matched case-insensitive.")
    category: ContextCategory = Field(description="What the cue says of the facts it reaches.")
    direction: Literal["FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE"] = Field(
        description="Which way the cue reaches within its sentence."
    )
    max_scope: int | None = Field(
        None, ge=1, description="At most this many tokens reached (an adjective cue: 'for "
        "later excision' defers the excision, not what came before)."
    )


class VocabularyFile(Strict):
    """knowledge/data/vocabulary.yaml: the words questions are read with."""

    context: tuple[ContextCue, ...] = Field((), description="ConText cues beyond the defaults.")
    comma_ends: tuple[ContextCategory, ...] = Field(
        (), description="ConText categories whose reach a comma ends."
    )
    context_drop: tuple[str, ...] = Field(
        (), description="medspaCy default ConText rules (by literal) not used: they misread "
        "coding questions ('if' in 'what if it was guided?', 'child' as a family member)."
    )
    concepts: tuple[Concept, ...] = Field(description="The concepts.")
