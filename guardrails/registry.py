"""Every rule id the checker and the advisor emit, declared once with what it means.

A finding's ``rule`` is one of :class:`RuleId` (a ``str``: JSON, the audit log and the suites
see the plain id), or ``misconception.<id>`` for a misconception in ``knowledge/data`` (the
data declares those). Each id has a :class:`RuleSpec`: its family, the severities and
``OnFail`` actions it may carry, what it says, and whether it judges a code by the question
alone (the question-fit rules). Lists of rules (:func:`question_rules`) derive from here.

``tests/unit/test_rule_registry.py`` fails when any module emits an id that is not declared
here, when a declared id is never emitted by its tests, or when a finding carries a severity
or an action its declaration does not allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from guardrails.report import OnFail, Severity

__all__ = ["DATA_FAMILIES", "SPECS", "RuleId", "RuleSpec", "is_declared", "question_rules"]


class RuleId(StrEnum):
    """The declared rule ids."""

    # existence: is it a code, is it current
    EXISTENCE_MALFORMED = "existence.malformed"
    EXISTENCE_UNKNOWN = "existence.unknown"
    EXISTENCE_DELETED = "existence.deleted"
    EXISTENCE_LOW_CONFIDENCE = "existence.low_confidence"
    # descriptor: what the text says a code is, and what the question says was done
    DESCRIPTOR_EXTENT = "descriptor.extent"
    DESCRIPTOR_ADD_ON = "descriptor.add_on"
    DESCRIPTOR_GUIDANCE = "descriptor.guidance"
    DESCRIPTOR_MEANING = "descriptor.meaning"
    DESCRIPTOR_GUIDANCE_ADDON = "descriptor.guidance_addon"
    # fit: a drafted code against the question's encounter frame
    FIT_SITE = "fit.site"
    FIT_VESSEL = "fit.vessel"
    FIT_APPROACH = "fit.approach"
    FIT_ACTION = "fit.action"
    FIT_EXAM = "fit.exam"
    FIT_DEVICE = "fit.device"
    FIT_GUIDANCE = "fit.guidance"
    FIT_FEATURE = "fit.feature"
    FIT_SERVICE = "fit.service"
    FIT_AGE = "fit.age"
    FIT_WEEKS = "fit.weeks"
    FIT_COUNT = "fit.count"
    FIT_SIDES = "fit.sides"
    FIT_EXTENT = "fit.extent"
    FIT_RESIDUAL = "fit.residual"
    FIT_DIAGNOSTIC_WITH_GUIDANCE = "fit.diagnostic_with_guidance"
    FIT_GUIDANCE_INCLUDED = "fit.guidance_included"
    FIT_UNSUPPORTED = "fit.unsupported"
    # pairs: two codes on one claim
    PAIRS_BUNDLED = "pairs.bundled"
    PAIRS_REVIEW = "pairs.review"
    PAIRS_ALTERNATIVES = "pairs.alternatives"
    PAIRS_ALLOWED_WITH_MODIFIER = "pairs.allowed_with_modifier"
    PAIRS_MODIFIER_REQUIRED = "pairs.modifier_required"
    PAIRS_MODIFIER_UNSUPPORTED = "pairs.modifier_unsupported"
    PAIRS_COMPLETE_LIMITED = "pairs.complete_limited"
    PAIRS_GUIDANCE_INCLUDED = "pairs.guidance_included"
    PAIRS_GUIDANCE_NOT_SEPARATE = "pairs.guidance_not_separate"
    PAIRS_UNFOUNDED_WARNING = "pairs.unfounded_warning"
    WARNED_UNSUPPORTED = "warned.unsupported"
    # add-ons and their primaries
    ADD_ON_NO_PRIMARY = "add_on.no_primary"
    ADD_ON_PRIMARY_IN_QUESTION = "add_on.primary_in_question"
    ADD_ON_EXCLUDED_PRIMARY = "add_on.excluded_primary"
    ADD_ON_PRIMARY_UNVERIFIED = "add_on.primary_unverified"
    ADD_ON_PRIMARY_NOT_VERIFIED = "add_on.primary_not_verified"
    # units
    UNITS_OVER_LIMIT = "units.over_limit"
    UNITS_EACH_ADDITIONAL = "units.each_additional"
    UNITS_BOTH_SIDES = "units.both_sides"
    UNITS_UNCOUNTED = "units.uncounted"
    UNITS_NO_LIMIT = "units.no_limit"
    # modifiers
    MODIFIERS_BILATERAL = "modifiers.bilateral"
    MODIFIERS_REDUCED = "modifiers.reduced"
    MODIFIERS_PC_TC = "modifiers.pc_tc"
    MODIFIERS_SIDE = "modifiers.side"
    MODIFIERS_UNASKED = "modifiers.unasked"
    MODIFIERS_DISTINCT_UNNEEDED = "modifiers.distinct_unneeded"
    MODIFIERS_DISTINCT_ON_INDICATOR_0 = "modifiers.distinct_on_indicator_0"
    # documentation
    DOCUMENTATION_REQUIREMENTS = "documentation.requirements"
    DOCUMENTATION_CONTRADICTION = "documentation.contradiction"
    # what a draft leaves out
    OMISSION_IMPLIED = "omission.implied"
    OMISSION_GUIDANCE = "omission.guidance"
    OMISSION_COUNT = "omission.count"
    OMISSION_PROCEDURE = "omission.procedure"
    # what the repair loop and the advisor did
    REPAIR_OSCILLATION = "repair.oscillation"
    PIPELINE_REASKED = "pipeline.reasked"
    PIPELINE_REASK_FAILED = "pipeline.reask_failed"
    PIPELINE_REASK_DISCARDED = "pipeline.reask_discarded"
    PIPELINE_KEPT_PASSING = "pipeline.kept_passing"
    PIPELINE_DROPPED_AFTER_REASK = "pipeline.dropped_after_reask"
    PIPELINE_PROSE_WITHHELD = "pipeline.prose_withheld"
    PIPELINE_MODEL_UNAVAILABLE = "pipeline.model_unavailable"
    PIPELINE_OUT_OF_SCOPE = "pipeline.out_of_scope"
    PIPELINE_LANGUAGE = "pipeline.language"


DATA_FAMILIES: dict[str, str] = {
    "misconception": "a wrong statement about coding, one id per misconception in the data",
}
"""Families whose ids come from knowledge/data (``<family>.<data id>``)."""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a rule id means and which severities and actions its findings may carry."""

    id: RuleId
    severities: frozenset[Severity]
    on_fail: frozenset[OnFail]
    description: str
    question: bool = False  # judges a code by the question alone (question fit)

    @property
    def family(self) -> str:
        """The family: the id's part before the dot."""
        return self.id.split(".", 1)[0]


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO
_FIX, _REASK, _DROP, _WARN = OnFail.FIX, OnFail.REASK, OnFail.DROP, OnFail.WARN
R = RuleId

# (id, severities, actions, description, question rule)
_TABLE: tuple[tuple[RuleId, tuple[Severity, ...], tuple[OnFail, ...], str, bool], ...] = (
    (R.EXISTENCE_MALFORMED, (_E,), (_DROP,), "a token that is not a code", False),
    (R.EXISTENCE_UNKNOWN, (_W,), (_DROP,), "a code the ruleset does not hold", False),
    (R.EXISTENCE_DELETED, (_E,), (_FIX, _REASK, _DROP), "a deleted code, with its replacement "
     "when it has one", False),
    (R.EXISTENCE_LOW_CONFIDENCE, (_I,), (_WARN,), "a code whose facts are weakly sourced",
     False),
    (R.DESCRIPTOR_EXTENT, (_E, _W), (_REASK,), "the text calls a code complete or limited "
     "wrongly", False),
    (R.DESCRIPTOR_ADD_ON, (_E, _W), (_REASK,), "the text says a code is or is not an add-on "
     "wrongly", False),
    (R.DESCRIPTOR_GUIDANCE, (_E, _W), (_REASK,), "the text says a code includes guidance, or "
     "not, wrongly", False),
    (R.DESCRIPTOR_MEANING, (_E, _W), (_REASK, _WARN), "the text misreads what a code "
     "describes", False),
    (R.DESCRIPTOR_GUIDANCE_ADDON, (_I,), (_WARN,), "a guidance add-on the question's guidance "
     "may allow", False),
    (R.FIT_SITE, (_E, _W), (_FIX, _REASK), "the question affirms a body site the code does not "
     "cover", True),
    (R.FIT_VESSEL, (_E, _W), (_FIX, _REASK), "the question affirms arteries where the code is "
     "for veins, or the reverse", True),
    (R.FIT_APPROACH, (_E, _W), (_FIX, _REASK), "the question affirms another approach "
     "(transvaginal, transrectal, transesophageal)", True),
    (R.FIT_ACTION, (_E, _W), (_FIX, _REASK), "the question affirms another procedure than the "
     "code's", True),
    (R.FIT_EXAM, (_E, _W), (_FIX, _REASK), "the question affirms another kind of study than the "
     "code's", True),
    (R.FIT_DEVICE, (_E, _W), (_FIX, _REASK), "the question affirms another device than the "
     "code's", True),
    (R.FIT_GUIDANCE, (_E, _W), (_FIX, _REASK), "the question affirms other guidance, or none, "
     "than the code's", True),
    (R.FIT_FEATURE, (_E, _W), (_FIX, _REASK), "a feature the code needs is negated, or one it "
     "excludes affirmed (Doppler, contrast)", True),
    (R.FIT_SERVICE, (_E, _W), (_FIX, _REASK), "the question affirms another kind of service "
     "(diagnostic, procedure, interpretation only)", True),
    (R.FIT_AGE, (_E, _W), (_FIX, _REASK), "the question affirms an age the code is not for",
     True),
    (R.FIT_WEEKS, (_E, _W), (_FIX, _REASK), "the question affirms a gestational age the code is "
     "not for", True),
    (R.FIT_COUNT, (_E, _W), (_FIX, _REASK), "the question counts fewer or more than the code "
     "describes", True),
    (R.FIT_SIDES, (_E, _W), (_FIX, _REASK), "one side where the code is for both, or the "
     "reverse", True),
    (R.FIT_EXTENT, (_E, _W), (_FIX, _REASK), "a complete code for a limited exam, or the "
     "reverse", True),
    (R.FIT_RESIDUAL, (_E, _W), (_FIX, _REASK), "the question affirms something the code "
     "excludes (a fact with its source that the fields above cannot hold)", True),
    (R.FIT_DIAGNOSTIC_WITH_GUIDANCE, (_E, _W), (_FIX,), "a diagnostic exam of the region a "
     "guided procedure covers, with no separate finding", True),
    (R.FIT_GUIDANCE_INCLUDED, (_E, _W), (_FIX,), "a guidance code where the procedure the "
     "question names includes its guidance", True),
    (R.FIT_UNSUPPORTED, (_W,), (_WARN,), "the question does not say what the code needs: not "
     "verified, with the codes that would fit", True),
    (R.PAIRS_BUNDLED, (_E, _W), (_FIX, _REASK, _WARN), "two codes not reported together",
     False),
    (R.PAIRS_REVIEW, (_W,), (_WARN,), "a disputed pair edit, for review", False),
    (R.PAIRS_ALTERNATIVES, (_I,), (_WARN,), "codes a text gives as alternatives (one of them "
     "is billed), not a claim to bill them together", False),
    (R.PAIRS_ALLOWED_WITH_MODIFIER, (_I,), (_WARN,), "an edit pair a modifier allows, with "
     "when", False),
    (R.PAIRS_MODIFIER_REQUIRED, (_W,), (_WARN, _FIX), "an edit pair reported only with a "
     "distinct-service modifier", False),
    (R.PAIRS_MODIFIER_UNSUPPORTED, (_W,), (_FIX,), "a distinct-service modifier the question "
     "gives no ground for", False),
    (R.PAIRS_COMPLETE_LIMITED, (_E,), (_FIX,), "the complete and limited exam of one region "
     "together", False),
    (R.PAIRS_GUIDANCE_INCLUDED, (_E,), (_FIX,), "a guidance code beside a code that includes "
     "it", False),
    (R.PAIRS_GUIDANCE_NOT_SEPARATE, (_I,), (_WARN,), "a diagnostic exam beside guidance of "
     "the same region", False),
    (R.PAIRS_UNFOUNDED_WARNING, (_W,), (_WARN,), "the text warns against a pair no rule "
     "forbids", False),
    (R.WARNED_UNSUPPORTED, (_I,), (_WARN,), "the text warns against a code no rule "
     "rules out", False),
    (R.ADD_ON_NO_PRIMARY, (_E,), (_FIX, _REASK), "an add-on with no primary beside it", False),
    (R.ADD_ON_PRIMARY_IN_QUESTION, (_I,), (_WARN,), "an add-on whose primary the question "
     "names", False),
    (R.ADD_ON_EXCLUDED_PRIMARY, (_E,), (_FIX,), "an add-on beside a primary it may not go "
     "with", False),
    (R.ADD_ON_PRIMARY_UNVERIFIED, (_W,), (_WARN,), "an add-on whose primary is not verified",
     False),
    (R.ADD_ON_PRIMARY_NOT_VERIFIED, (_W,), (_WARN,), "an add-on left unverified with its "
     "primary after repair", False),
    (R.UNITS_OVER_LIMIT, (_E, _W), (_FIX, _WARN), "more units than the limit", False),
    (R.UNITS_EACH_ADDITIONAL, (_W,), (_FIX,), "an each-additional add-on's units from the "
     "question's count", False),
    (R.UNITS_BOTH_SIDES, (_W,), (_FIX,), "units for both sides where the code is one unit",
     False),
    (R.UNITS_UNCOUNTED, (_W,), (_FIX,), "several units where the question counts nothing",
     False),
    (R.UNITS_NO_LIMIT, (_W,), (_WARN,), "several units of a code with no unit limit held",
     False),
    (R.MODIFIERS_BILATERAL, (_E,), (_FIX,), "modifier 50 or sides where the code says "
     "otherwise", False),
    (R.MODIFIERS_REDUCED, (_E,), (_FIX,), "modifier 52 where the code has a limited "
     "counterpart", False),
    (R.MODIFIERS_PC_TC, (_E, _W), (_FIX, _WARN), "26 or TC on a code without that split",
     False),
    (R.MODIFIERS_SIDE, (_W,), (_FIX,), "RT or LT where the code is for one side or both",
     False),
    (R.MODIFIERS_UNASKED, (_W,), (_FIX,), "-52, -50, RT or LT the question gives no ground for",
     False),
    (R.MODIFIERS_DISTINCT_UNNEEDED, (_W,), (_FIX,), "a distinct-service modifier with no pair "
     "edit to bypass", False),
    (R.MODIFIERS_DISTINCT_ON_INDICATOR_0, (_E,), (_FIX, _REASK), "a distinct-service modifier "
     "on an edit no modifier bypasses", False),
    (R.DOCUMENTATION_REQUIREMENTS, (_I,), (_WARN,), "what the record must show for the code",
     False),
    (R.DOCUMENTATION_CONTRADICTION, (_E, _W), (_WARN, _REASK), "the text says a required "
     "element is not needed", False),
    (R.OMISSION_IMPLIED, (_W,), (_FIX,), "a code the question names beside a drafted code it "
     "goes with", False),
    (R.OMISSION_COUNT, (_W,), (_FIX,), "the add-on for the second and later things the "
     "question counts (fetuses, levels, lesions), missing beside its primary", False),
    (R.OMISSION_PROCEDURE, (_W,), (_FIX,), "the one procedure the question describes, missing "
     "beside a guidance code drafted alone", False),
    (R.OMISSION_GUIDANCE, (_W,), (_FIX,), "the imaging guidance the question affirms, missing "
     "beside a procedure code that does not include it", False),
    (R.REPAIR_OSCILLATION, (_W,), (_WARN,), "fixes that undo each other: the codes they swap "
     "are not verified", False),
    (R.PIPELINE_REASKED, (_I,), (_WARN,), "the model was asked once more", False),
    (R.PIPELINE_REASK_FAILED, (_W,), (_WARN,), "the second draft could not be obtained",
     False),
    (R.PIPELINE_REASK_DISCARDED, (_I,), (_WARN,), "the second draft passed fewer codes; the "
     "first is used", False),
    (R.PIPELINE_KEPT_PASSING, (_I,), (_WARN,), "a code that passed in the first draft and the "
     "second left out, kept", False),
    (R.PIPELINE_DROPPED_AFTER_REASK, (_E,), (_DROP,), "a code still failing after the re-ask, "
     "removed", False),
    (R.PIPELINE_PROSE_WITHHELD, (_W,), (_WARN,), "prose still contradicted after the re-ask, "
     "withheld", False),
    (R.PIPELINE_MODEL_UNAVAILABLE, (_W,), (_WARN,), "no model drafted: candidates only",
     False),
    (R.PIPELINE_OUT_OF_SCOPE, (_I,), (_WARN,), "the question is not about ultrasound coding",
     False),
    (R.PIPELINE_LANGUAGE, (_I,), (_WARN,), "a question in another language: only English is "
     "supported", False),
)

SPECS: dict[RuleId, RuleSpec] = {
    rid: RuleSpec(rid, frozenset(sev), frozenset(act), text, q)
    for rid, sev, act, text, q in _TABLE
}


def question_rules() -> frozenset[str]:
    """Ids of the rules that judge a code by the question alone."""
    return frozenset(s.id.value for s in SPECS.values() if s.question)


def is_declared(rule: str) -> bool:
    """True for a declared id or an id of a data family (``misconception.<id>``)."""
    if rule in SPECS:
        return True
    family, _, rest = rule.partition(".")
    return family in DATA_FAMILIES and bool(rest)
