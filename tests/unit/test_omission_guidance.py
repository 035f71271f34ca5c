"""The imaging guidance a question affirms, added beside a drafted procedure code whose
description says it includes none (omission.guidance)."""

from __future__ import annotations

import pytest

from guardrails.repair import check_and_repair
from guardrails.report import Draft, DraftCode
from knowledge.catalog import load_catalog

CAT = load_catalog()


def verdicts(question: str, *codes: str) -> dict[str, str]:
    draft = Draft(codes=tuple(DraftCode(c, 1, ()) for c in codes), text="", context=question)
    return {v.code: v.status.value for v in check_and_repair(draft, CAT).verdicts}


@pytest.mark.parametrize(
    ("question", "codes", "guide"),
    [
        ("Ultrasound-guided suprascapular nerve block for frozen shoulder, image stored.",
         ("64418",), "76942"),
        ("Ultrasound-guided thrombin injection of a femoral artery pseudoaneurysm.",
         ("36002",), "76942"),
        ("Ultrasound-guided needle aspiration of a subcutaneous hematoma.", ("10160",), "76942"),
        ("CT-guided needle biopsy of the L2 vertebral body.", ("20225",), "77012"),
        ("Ultrasound guidance for needle biopsies of liver lesions - which codes?", ("47000",),
         "76942"),
        ("US-guided intercostal nerve blocks at T5 and T6, image saved.", ("64420", "64421"),
         "76942"),
    ],
)
def test_the_affirmed_guidance_is_added_once(question, codes, guide) -> None:
    got = verdicts(question, *codes)
    assert got[guide] == "corrected"
    assert all(got[c] == "verified" for c in codes)
    assert len(got) == len(codes) + 1


@pytest.mark.parametrize(
    ("question", "codes"),
    [
        ("Knee injection by palpation, not ultrasound-guided.", ("20610",)),
        ("Suprascapular nerve block; the skin was marked with ultrasound beforehand, no "
         "real-time guidance.", ("64418",)),
        ("FNA of a palpable lymph node with no imaging guidance.", ("10021",)),
        # The code includes its guidance: nothing is added beside it.
        ("Ultrasound-guided knee injection.", ("20611",)),
        # No question: a coder's claim is checked as keyed.
        ("", ("64418",)),
    ],
)
def test_nothing_is_added_without_affirmed_real_time_guidance(question, codes) -> None:
    assert set(verdicts(question, *codes)) == set(codes)


def test_guidance_already_drafted_is_not_added_again() -> None:
    got = verdicts("Ultrasound-guided suprascapular nerve block.", "64418", "76942")
    assert got == {"64418": "verified", "76942": "verified"}


# --------------------------------------------------------------- counted add-ons
@pytest.mark.parametrize(
    ("question", "codes", "expected"),
    [
        ("Twin pregnancy at 22 weeks, standard complete exam of both fetuses.", ("76805",),
         {"76805": "verified", "76810": "corrected"}),
        ("US-guided FNA of two thyroid nodules.", ("10005",),
         {"10005": "verified", "10006": "corrected"}),
        ("Ultrasound-guided lumbar facet joint injections at L4-L5 and L5-S1 on the right.",
         ("0216T",), {"0216T": "verified", "0217T": "corrected"}),
        ("Ultrasound-guided lumbar facet joint injections at L3-L4, L4-L5 and L5-S1.",
         ("0216T",), {"0216T": "verified", "0217T": "corrected", "0218T": "corrected"}),
        # One of the thing: no add-on.
        ("Singleton pregnancy at 22 weeks, complete exam.", ("76805",), {"76805": "verified"}),
        ("US-guided FNA of one thyroid nodule.", ("10005",), {"10005": "verified"}),
    ],
)
def test_the_counted_add_on_is_added_beside_its_primary(question, codes, expected) -> None:
    assert verdicts(question, *codes) == expected


def test_the_add_on_carries_the_units_of_the_count() -> None:
    draft = Draft(codes=(DraftCode("10005", 1, ()),), text="",
                  context="US-guided FNA of three thyroid nodules.")
    out = check_and_repair(draft, CAT)
    assert {c.code: c.units for c in out.draft.codes} == {"10005": 1, "10006": 2}


def test_a_count_in_a_planned_sentence_adds_nothing() -> None:
    q = "US-guided FNA of one thyroid nodule today; FNA of two more nodules is planned."
    assert verdicts(q, "10005") == {"10005": "verified"}


# --------------------------------------------------------------- add-on guidance codes
def test_an_add_on_guidance_code_is_added_beside_a_primary_it_lists() -> None:
    assert verdicts("Knee injection under fluoroscopy.", "20610") == {
        "20610": "verified", "77002": "corrected"}


# --------------------------------------------------------------- guidance drafted alone
@pytest.mark.parametrize(
    ("question", "guide", "procedure"),
    [
        ("Ultrasound guidance for needle biopsies of liver lesions - which codes?", "76942",
         "47000"),
        ("CT-guided needle biopsy of the L2 vertebral body.", "77012", "20225"),
    ],
)
def test_the_one_procedure_the_question_describes_is_added(question, guide, procedure) -> None:
    assert verdicts(question, guide) == {guide: "verified", procedure: "corrected"}


def test_no_procedure_is_added_when_the_question_names_none() -> None:
    got = verdicts("Ultrasound guidance for a needle placement, what code?", "76942")
    assert set(got) == {"76942"}


def test_a_code_that_includes_the_guidance_replaces_it_instead() -> None:
    assert verdicts("Ultrasound-guided knee injection", "76942") == {
        "76942": "removed", "20611": "corrected"}


def test_the_procedure_is_added_when_the_drafted_guidance_code_is_the_wrong_one() -> None:
    # 76942 does not report vessel access guidance; the fit rules remove it. The arterial
    # line the question describes is still missing: its code is added, and with it the
    # vascular access guidance (+76937) the question affirms.
    got = verdicts("Femoral arterial line placed under real-time ultrasound.", "76942")
    assert got == {"76942": "removed", "36620": "corrected", "76937": "corrected"}
