"""A pair edit settled by the question: of two codes not reported together, the one the
question describes stays and the extra drafted line goes; without a question nothing is
concluded."""

from __future__ import annotations

from guardrails.repair import check_and_repair
from guardrails.report import Draft, DraftCode
from knowledge.catalog import load_catalog

CAT = load_catalog()


def verdicts(question: str, *codes: str) -> dict[str, str]:
    draft = Draft(codes=tuple(DraftCode(c, 1, ()) for c in codes), text="", context=question)
    return {v.code: v.status.value for v in check_and_repair(draft, CAT).verdicts}


def rules_on(question: str, code: str, *codes: str) -> set[str]:
    draft = Draft(codes=tuple(DraftCode(c, 1, ()) for c in codes), text="", context=question)
    out = check_and_repair(draft, CAT)
    return {f.rule for v in out.verdicts if v.code == code for f in v.findings}


def test_an_exam_question_keeps_the_exam_and_drops_a_procedure_it_never_names() -> None:
    q = "I did a thyroid ultrasound for a palpable nodule. Which code?"
    assert verdicts(q, "76536", "10005") == {"76536": "verified", "10005": "removed"}
    assert "pairs.modifier_required" in rules_on(q, "10005", "76536", "10005")


def test_a_breast_exam_question_drops_biopsy_and_localization_codes() -> None:
    q = "Targeted ultrasound of one palpable lump in the left breast only. Code?"
    assert verdicts(q, "76642", "19083", "19285") == {
        "76642": "verified", "19083": "removed", "19285": "removed"}


def test_a_bundled_pair_keeps_the_code_the_question_describes() -> None:
    # The edit's own fix drops column 2 (93312); the question asks for the complete TEE.
    q = "Complete transesophageal echo with probe placement, image acquisition and report."
    assert verdicts(q, "93355", "93312") == {"93355": "removed", "93312": "verified"}


def test_without_a_question_both_stay_flagged() -> None:
    # A coder's claim: no question says what was done, so neither side is chosen.
    assert verdicts("", "76536", "10005") == {"76536": "not_verified", "10005": "not_verified"}


def test_a_question_that_names_distinct_services_decides_nothing() -> None:
    q = "Thyroid ultrasound, and on a separate encounter an FNA; which codes?"
    assert verdicts(q, "76536", "10005") == {"76536": "not_verified", "10005": "not_verified"}
