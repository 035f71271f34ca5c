"""Types of the knowledge base: codes, pair edits, unit limits, documentation rules, sources.

Every model that is read from user-editable data forbids unknown keys, so a misspelled
field fails loudly with the file and line that holds it (see :mod:`knowledge.loader`).
Labels are short descriptions in the project's own words, never CPT descriptors.
"""

from __future__ import annotations

import re
from datetime import date
from enum import IntEnum, StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge.codes import CODE

CODE_RE = re.compile(rf"^(?:{CODE})$")
Code = Annotated[str, Field(pattern=rf"^(?:{CODE})$", description="A code.")]


class Strict(BaseModel):
    """Base for data read from files: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Confidence(StrEnum):
    """How well a fact is supported (see the reference README)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Extent(StrEnum):
    """Whether a code is the complete or limited form of an exam, or has no such split."""

    COMPLETE = "complete"
    LIMITED = "limited"
    SINGLE = "single"


class Kind(StrEnum):
    """What sort of service a code reports."""

    DIAGNOSTIC = "diagnostic"
    SCREENING = "screening"
    GUIDANCE = "guidance"
    PROCEDURE = "procedure"
    UNLISTED = "unlisted"


class PcTc(StrEnum):
    """Whether the professional (-26) / technical (-TC) split applies."""

    SPLIT = "split"
    NONE = "none"
    UNKNOWN = "unknown"


class Bilateral(StrEnum):
    """How a code is reported when both sides are done."""

    MODIFIER_50 = "modifier_50"  # one line with -50 (or RT/LT by payer preference)
    EACH_SIDE = "each_side"  # each side paid in full; -50 or RT/LT lines by payer preference
    INHERENT = "inherent"  # the code already covers both sides or either side: no -50
    NOT_APPLICABLE = "not_applicable"  # midline or single-site service: no -50
    UNKNOWN = "unknown"


class Adjudication(StrEnum):
    """MUE adjudication indicator, or NCCI per-encounter policy."""

    LINE = "line"  # MAI 1: per claim line; more units on separate lines with modifiers
    DATE_POLICY = "date_policy"  # MAI 2: absolute per day, set by policy
    DATE_CLINICAL = "date_clinical"  # MAI 3: per day, may be appealed with records
    ENCOUNTER_POLICY = "encounter_policy"  # NCCI manual: one unit per encounter
    # The code's own definition counts the things (one or more fetuses, any number of
    # injections): more units misreport it, though no payer edit is known to say so.
    DESCRIPTOR = "descriptor"
    UNKNOWN = "unknown"


class ModifierIndicator(IntEnum):
    """NCCI PTP correct-coding modifier indicator."""

    NOT_ALLOWED = 0
    ALLOWED = 1
    NOT_APPLICABLE = 9


class SourceScope(StrEnum):
    """How far a source reaches: what a rule citing it may rest on."""

    EXISTENCE = "existence"  # the code number exists; nothing about its meaning
    DESCRIPTOR = "descriptor"  # what the code describes, read from the code set, own words
    RULE = "rule"  # what its `supports` says (policy text, edit files, society guidance)


class Source(Strict):
    """Where a fact comes from."""

    key: str = Field(description="Stable source key cited by rules.")
    where: str = Field(description="URL or document reference.")
    supports: str = Field(description="What the source supports, in our words.")
    scope: SourceScope = Field(
        SourceScope.RULE,
        description="existence: a rule may not rest on it alone; descriptor: a rule resting "
        "on it alone is medium confidence at most.",
    )


class Sourced(Strict):
    """Mixin: a fact with its sources and confidence."""

    sources: tuple[str, ...] = Field(description="Source keys supporting the fact.")
    confidence: Confidence = Field(description="How well the fact is supported.")

    @model_validator(mode="after")
    def _sources_or_low(self) -> Sourced:
        if not self.sources and self.confidence is not Confidence.LOW:
            raise ValueError("a fact without sources must have confidence 'low'")
        return self


class UnitLimit(Sourced):
    """Most units of a code per day or encounter."""

    value: int = Field(ge=0, description="Most units allowed.")
    adjudication: Adjudication = Field(description="How the limit is applied.")
    per: Literal["line", "day", "encounter"] = Field(description="What the limit counts over.")
    note: str | None = Field(None, description="Own-words note, e.g. payer differences.")


class AgeBand(StrEnum):
    """The patient age a code is for, where codes differ only by age."""

    UNDER_5 = "under_5"
    FIVE_AND_OLDER = "5_and_older"


Presence = Literal["with", "without"]
CountThing = Literal["lesion", "vessel", "muscle", "gestation", "level", "joint", "injection"]
GuidanceKind = Literal["none", "ultrasound", "fluoroscopy", "ct", "mr", "imaging"]


class CountRange(Strict):
    """How many of a thing the code is for."""

    thing: CountThing = Field(description="What is counted.")
    min: int | None = Field(None, ge=0, description="Fewest (e.g. 2 for an each-additional code).")
    max: int | None = Field(None, ge=0, description="Most (e.g. 2 for one or two muscles).")


class Describes(Strict):
    """What a code is for, in data: compared with the question's frame to judge fit.

    Concept ids name entries of the vocabulary. Lists of sites, actions, exams, devices and
    approaches are any-of: the code fits a question that affirms one of them (or a narrower
    concept). A question that affirms only other values contradicts the code; a question that
    is silent says nothing either way.
    """

    service: Literal[
        "diagnostic", "screening", "procedure", "guidance", "probe_placement", "interpretation",
        "monitoring", "unlisted", "other",
    ] | None = Field(None, description="What kind of service the code reports.")
    sites: tuple[str, ...] = Field(
        (), description="Sites the code is for (site concepts; 'any' for no site constraint)."
    )
    exclude_sites: tuple[str, ...] = Field(
        (), description="Sites inside `sites` that the code is not for (coronary for 37252)."
    )
    actions: tuple[str, ...] = Field((), description="What the procedure does (action concepts).")
    exams: tuple[str, ...] = Field((), description="What kind of study it is (exam concepts).")
    devices: tuple[str, ...] = Field((), description="What is placed (device concepts).")
    approach: tuple[str, ...] = Field((), description="How the probe reaches the site.")
    guidance: tuple[GuidanceKind, ...] = Field(
        (),
        description="For a procedure: the imaging guidance its code includes, any of ('none': "
        "none; 'imaging': any imaging). For a guidance code: the modality it reports.",
    )

    @field_validator("guidance", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return (v,) if isinstance(v, str) else v
    features: dict[str, Presence] = Field(
        default_factory=dict,
        description="Parts of the study present ('with') or absent ('without') in this code. "
        "A question that says the opposite contradicts the code.",
    )
    requires_absent: tuple[str, ...] = Field(
        (), description="Concepts the question must say are absent for the code to be "
        "verified (a TTE without Doppler is verified only when the question says so)."
    )
    requires: tuple[str, ...] = Field(
        (), description="Concepts the question must affirm for the code to be verified."
    )
    contradicted_by: tuple[str, ...] = Field(
        (), description="Concepts that, affirmed by the question, rule the code out."
    )
    weeks_min: float | None = Field(None, ge=0, description="Earliest gestational age (weeks).")
    weeks_below: float | None = Field(
        None, ge=0, description="Gestational age (weeks) the code is for only before."
    )
    age_min: float | None = Field(
        None, ge=0, description="Youngest patient age (years) the code is for (33017: 6)."
    )
    age_below: float | None = Field(
        None, ge=0, description="Patient age (years) the code is for only before; 'through "
        "age 5' is below 6 (33018)."
    )
    any_age_with: tuple[str, ...] = Field(
        (), description="Concepts that, affirmed, make the code right whatever the patient's "
        "age (33018: a congenital heart anomaly). The age range then does not apply."
    )
    count: CountRange | None = Field(None, description="How many of a thing the code is for.")
    vessel: Literal["artery", "vein"] | None = Field(
        None, description="Arteries or veins: a question about the other kind only contradicts."
    )
    residual: bool = Field(
        False,
        description="An 'other' or unlisted code: it fits only where no specific code does.",
    )


class CodeEntry(Sourced):
    """One code in the catalog."""

    code: Code
    label: str = Field(min_length=3, max_length=140, description="Short label in our own words.")
    family: str = Field(description="Family id (see families in codes data).")
    kind: Kind = Field(description="Diagnostic, guidance, procedure, ...")
    modality: Literal["ultrasound", "fluoroscopy", "ct", "mr"] | None = Field(
        None,
        description="For a guidance code: the imaging it reports. A question that names other "
        "imaging only (CT guidance) rules the code out. For a study: its imaging when not "
        "ultrasound (unset: an ultrasound study).",
    )
    extent: Extent = Field(Extent.SINGLE, description="Complete, limited or no split.")
    counterpart: Code | None = Field(None, description="The complete/limited partner code.")
    add_on: bool = Field(False, description="Reported only with a primary code.")
    primaries: tuple[Code, ...] = Field((), description="Allowed primary codes of an add-on.")
    primaries_exhaustive: bool = Field(
        False, description="The primaries list is complete: any other primary is an error."
    )
    excluded_primaries: tuple[Code, ...] = Field(
        (), description="Codes explicitly not valid primaries for this add-on."
    )
    primaries_note: str | None = Field(None, description="Own-words note on primaries.")
    guidance_included: bool | None = Field(
        None, description="Imaging guidance is part of the code (None: not applicable/unknown)."
    )
    included_guidance: tuple[Code, ...] = Field(
        (), description="Guidance codes never reported with this code."
    )
    pc_tc: PcTc = Field(PcTc.UNKNOWN, description="Whether -26/-TC split applies.")
    bilateral: Bilateral = Field(Bilateral.UNKNOWN, description="Bilateral reporting rule.")
    sides: Literal["both", "one"] | None = Field(
        None,
        description="For a study of paired limbs or organs: whether the code reports both sides "
        "or one side (93985 both, 93986 one).",
    )
    side_counterpart: Code | None = Field(
        None,
        description="The form of the same study for the other number of sides (93985 <-> 93986).",
    )
    with_us_guidance: Code | None = Field(
        None, description="The code to report instead when ultrasound guidance is used."
    )
    site_group: str | None = Field(
        None, description="Codes that differ only by site or age share a group (e.g. 20604/20611)."
    )
    age_band: AgeBand | None = Field(
        None,
        description="For codes that differ only by patient age: the band this code is for. "
        "The question's stated age is checked against it (the other band's code is the fix).",
    )
    allowed_modifiers: tuple[str, ...] = Field(
        (), description="Modifiers the general modifier rules would flag but this code takes."
    )
    unit_limit: UnitLimit | None = Field(None, description="Unit limit, if known.")
    documentation: tuple[str, ...] = Field((), description="Documentation element set ids.")
    complete_elements: str | None = Field(None, description="Complete-exam element set id.")
    effective: date | None = Field(None, description="First date the code is valid.")
    deleted: date | None = Field(None, description="Date the code was deleted.")
    replaced_by: tuple[Code, ...] = Field((), description="Codes that replaced a deleted code.")
    notes: str | None = Field(None, description="Own-words notes shown to users.")
    misreadings: tuple[Misreading, ...] = Field(
        (), description="Known wrong descriptions of this code and what is right."
    )
    counted_by_code: str | None = Field(
        None,
        description="Regex of the things whose number the code itself covers: one unit for "
        "any number of them (e.g. muscles for the trigger point codes, whose choice is made "
        "by the number of muscles).",
    )
    primary_in_question: str | None = Field(
        None,
        description="For an add-on: regex of question words that name the primary procedure it "
        "is done during (e.g. PCI for +92978). Drafted alone for such a question, the add-on "
        "is the answer asked for: it is kept with a note to report the primary's own code, "
        "not removed.",
    )
    implied_by: tuple[Implication, ...] = Field(
        (),
        description="Question words that name this code's service: drafted without it beside "
        "one of the codes it goes with, the code is added (e.g. +76937 for a central line the "
        "question says was placed with ultrasound guidance).",
    )
    describes: Describes | None = Field(
        None, description="What the code is for, in data (compared with the question's frame)."
    )

    @field_validator("counted_by_code", "primary_in_question")
    @classmethod
    def _requires_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            re.compile(v)
        return v

    @field_validator("label")
    @classmethod
    def _short_label(cls, v: str) -> str:
        if len(v.split()) > 20:
            raise ValueError("labels are short own-words summaries (at most 20 words)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CodeEntry:
        if self.primaries and not self.add_on:
            raise ValueError("only an add-on code has primaries")
        if self.counterpart and self.extent is Extent.SINGLE:
            raise ValueError("a code with a counterpart must be complete or limited")
        if self.replaced_by and not self.deleted:
            raise ValueError("replaced_by is only for deleted codes")
        if self.side_counterpart and self.sides is None:
            raise ValueError("a code with a side_counterpart says which sides it covers (sides)")
        return self

    @property
    def active(self) -> bool:
        """True unless the code has a deletion date."""
        return self.deleted is None


class Implication(Sourced):
    """A service the question names that the code reports, drafted without the code."""

    pattern: str = Field(
        description="Regex (case-insensitive) the question must match for the code to be "
        "implied by it."
    )
    with_any: tuple[Code, ...] = Field(
        (),
        description="The code is implied only when one of these is drafted; empty means the "
        "code's add-on primaries.",
    )
    message: str = Field(description="Why the code belongs with the draft, in our words.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        re.compile(v)
        return v


class Misreading(Sourced):
    """A wrong description of a code seen in the wild, as a pattern, with what is right."""

    pattern: str = Field(description="Regex (case-insensitive) matched in the code's sentence.")
    message: str = Field(description="What is right, in our words.")
    fix: tuple[Code, ...] = Field((), description="Codes to use instead, if any.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        re.compile(v)
        return v


CodeEntry.model_rebuild()


class PairRelation(StrEnum):
    """What a pair rule says about two codes reported together."""

    BUNDLED = "bundled"  # column 2 not separately reportable with column 1
    ALLOWED = "allowed"  # the pair may be reported together
    REVIEW = "review"  # disputed: flag for a person to review


class FixKind(StrEnum):
    """A deterministic repair a pair rule offers."""

    DROP_COLUMN2 = "drop_column2"
    REPLACE_PAIR = "replace_pair"


class PairFix(Strict):
    """How to repair a claim that breaks a pair rule."""

    type: FixKind = Field(description="Drop column 2, or replace both codes.")
    replacements: dict[Code, tuple[Code, ...]] = Field(
        default_factory=dict, description="For replace_pair: column-1 code -> codes to use instead."
    )


class PairRule(Sourced):
    """A bundling rule over sets of codes, as written in the data file."""

    id: str = Field(pattern=r"^[a-z0-9_]+$", description="Stable rule id.")
    column1: tuple[Code, ...] = Field(min_length=1, description="Column 1 (or primary) codes.")
    column2: tuple[Code, ...] = Field(min_length=1, description="Column 2 codes.")
    relation: PairRelation = Field(PairRelation.BUNDLED, description="What the rule says.")
    modifier_indicator: ModifierIndicator | None = Field(
        None, description="0 no modifier allowed, 1 allowed with documentation, 9 n/a."
    )
    indicator_verified: bool = Field(
        False, description="Indicator confirmed from the CMS file (else inferred from policy)."
    )
    rationale: str = Field(description="Why, in our words.")
    allow_with: str | None = Field(None, description="When the pair may be reported (indicator 1).")
    fix: PairFix | None = Field(None, description="Deterministic repair, if any.")
    effective: date | None = Field(None, description="First date the rule applies.")
    deleted: date | None = Field(None, description="Date the rule ended.")


class PairEdit(Sourced):
    """One column-1/column-2 edit (expanded from a PairRule or imported from CMS)."""

    column1: Code
    column2: Code
    relation: PairRelation = Field(description="What the edit says.")
    modifier_indicator: ModifierIndicator | None = Field(description="CCMI 0/1/9 or unknown.")
    rationale: str = Field(description="Why, in our words or the CMS rationale.")
    allow_with: str | None = Field(None, description="When the pair may be reported.")
    replacement: tuple[Code, ...] | None = Field(None, description="Codes replacing the pair.")
    drop_column2: bool = Field(False, description="Repair is to drop column 2.")
    rule_id: str = Field(description="Rule id or 'cms_ptp'.")
    effective: date | None = Field(None, description="First date the edit applies.")
    deleted: date | None = Field(None, description="Date the edit ended.")
    origin: Literal["builtin", "cms"] = Field("builtin", description="Where the edit comes from.")


class DocElement(Strict):
    """One documentation element a code requires, with phrases that show it in a note."""

    id: str = Field(pattern=r"^[a-z0-9_]+$", description="Element id.")
    label: str = Field(description="What must be documented, in our words.")
    patterns: tuple[str, ...] = Field(
        (), description="Regexes (case-insensitive) that show the element in a note."
    )
    negations: tuple[str, ...] = Field(
        (), description="Regexes that show the element is absent (e.g. 'no image saved')."
    )

    @field_validator("patterns", "negations")
    @classmethod
    def _compile(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            re.compile(p)
        return v


class ElementSet(Sourced):
    """A named set of documentation or complete-exam elements."""

    id: str = Field(pattern=r"^[a-z0-9_]+$", description="Set id referenced by codes.")
    title: str = Field(description="What the set is for.")
    kind: Literal["documentation", "complete_exam"] = Field(description="Set kind.")
    codes: tuple[Code, ...] = Field(description="Codes the set applies to.")
    elements: tuple[DocElement, ...] = Field(min_length=1, description="The elements.")
    rule: str | None = Field(None, description="Own-words note, e.g. when a missing element is OK.")
    also_complete: tuple[tuple[str, ...], ...] = Field(
        (),
        description="Smaller sets of element ids that also make the exam complete for a given "
        "indication (kidneys and bladder for a urinary-tract question, 76770).",
    )

    @model_validator(mode="after")
    def _subsets_name_elements(self) -> ElementSet:
        ids = {el.id for el in self.elements}
        unknown = sorted({i for sub in self.also_complete for i in sub} - ids)
        if unknown:
            raise ValueError(f"also_complete names no element of the set: {', '.join(unknown)}")
        return self


class ModifierRule(Sourced):
    """What a modifier means and where it must not be used."""

    modifier: str = Field(pattern=r"^[A-Z0-9]{2}$", description="Modifier, e.g. 50, TC, XU.")
    label: str = Field(description="Meaning in our words.")
    group: Literal["bilateral", "reduced", "split", "distinct", "repeat", "side", "other"] = Field(
        description="Modifier group."
    )
    not_on: tuple[str, ...] = Field(
        (),
        description="Conditions where the modifier is wrong: add_on, inherent_bilateral, "
        "both_sides_code (a code that itself reports both sides), has_limited_counterpart, "
        "no_pc_tc, indicator_0_pair, not_applicable_bilateral.",
    )
    note: str | None = Field(None, description="Own-words guidance.")


class Family(Strict):
    """A code family (region or service line)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$", description="Family id.")
    title: str = Field(description="Display name.")


class CodeGroup(Sourced):
    """A range of codes described together in the references (e.g. 36555-36571)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$", description="Group id.")
    ranges: str = Field(description="As written, e.g. '36555-36571'.")
    label: str = Field(description="Own-words label.")
    members: tuple[Code, ...] = Field(description="Codes in the group that the catalog holds.")
    note: str | None = Field(None, description="Own-words note.")


class Misconception(Sourced):
    """A false statement seen in the wild that is not about one code, as a pattern."""

    id: str = Field(pattern=r"^[a-z0-9_]+$", description="Id.")
    pattern: str = Field(description="Regex (case-insensitive) matched against a sentence.")
    requires: tuple[str, ...] = Field(
        (), description="Lowercase words of which one must be in the text before the regex runs."
    )
    unless: str | None = Field(
        None,
        description="Regex (case-insensitive): found in the sentence up to the match's end, it "
        "says the statement the other way round (a negation), so no finding.",
    )
    message: str = Field(description="What is right.")

    @field_validator("pattern", "unless")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            re.compile(v)
        return v


class CodesFile(Strict):
    """knowledge/data/codes.yaml, and further codes files (codes-*.yaml) of the same shape."""

    families: tuple[Family, ...] = ()
    codes: tuple[CodeEntry, ...]
    groups: tuple[CodeGroup, ...] = ()


class PairsFile(Strict):
    """knowledge/data/pairs.yaml."""

    rules: tuple[PairRule, ...]


class DocumentationFile(Strict):
    """knowledge/data/documentation.yaml."""

    sets: tuple[ElementSet, ...]


class ModifiersFile(Strict):
    """knowledge/data/modifiers.yaml."""

    modifiers: tuple[ModifierRule, ...]
    misconceptions: tuple[Misconception, ...] = ()


class SourcesFile(Strict):
    """knowledge/data/sources.yaml."""

    release: str = Field(description="Built-in ruleset release, e.g. 2026.11.")
    as_of: date = Field(description="Date the built-in facts were last reviewed.")
    sources: tuple[Source, ...]
