"""Facts of the catalog's code descriptions, read against questions: what a device, a
count or a substance the question names rules in or out."""

from __future__ import annotations

import pytest

from guardrails.fit import fit_score
from guardrails.repair import check_and_repair
from guardrails.report import Draft, DraftCode
from knowledge.catalog import load_catalog

CAT = load_catalog()


def verdicts(question: str, *codes: str) -> dict[str, str]:
    draft = Draft(codes=tuple(DraftCode(c, 1, ()) for c in codes), text="", context=question)
    return {v.code: v.status.value for v in check_and_repair(draft, CAT).verdicts}


def test_an_arterial_line_is_not_a_vein_puncture() -> None:
    q = "Radial arterial line with ultrasound guidance."
    assert fit_score(CAT, "36620", q) == 2
    assert fit_score(CAT, "36410", q) == 0 and fit_score(CAT, "36000", q) == 0


def test_several_veins_rule_out_the_single_vein_code_not_the_three_or_more_one() -> None:
    # 'several': two or more. The single-vein code is ruled out (replaced by the several-veins
    # code); a code for three or more muscles is not ruled out by 'several muscles'.
    got = verdicts("Sclerotherapy of several incompetent varicose veins of the right leg.",
                   "36470")
    assert got == {"36470": "removed", "36471": "corrected"}
    assert verdicts("Trigger point injections into several muscles.", "20553") == {
        "20553": "verified"}


@pytest.mark.parametrize(("question", "drafted", "right"), [
    ("Compounded foam sclerotherapy of one incompetent truncal vein, ultrasound compression.",
     "36465", "36470"),
    ("Varithena injection of the great saphenous vein.", "36470", "36465"),
])
def test_compounded_and_non_compounded_sclerosants_are_told_apart(question, drafted, right):
    got = verdicts(question, drafted)
    assert got[drafted] == "removed" and right in got


def test_a_follow_up_obstetric_study_is_the_follow_up_code() -> None:
    # The OB family has a code of its own for a follow-up re-evaluation (76816); the limited
    # code (heartbeat, position, fluid) does not stand beside it for the same study.
    got = verdicts("Repeat OB ultrasound to re-evaluate fetal growth, singleton.", "76816",
                   "76815")
    assert got == {"76816": "verified", "76815": "removed"}
    assert verdicts("Limited OB scan for fetal heartbeat and position", "76815") == {
        "76815": "verified"}


def test_a_fetal_vessel_is_not_an_abdominal_or_pelvic_duplex() -> None:
    q = "Doppler of the fetal middle cerebral artery and umbilical artery."
    assert fit_score(CAT, "93976", q) == 0 and fit_score(CAT, "93975", q) == 0


def test_a_ganglion_cyst_is_its_own_code_not_a_soft_tissue_aspiration() -> None:
    assert verdicts("Needle aspiration of a ganglion at the dorsal wrist.", "10160") == {
        "10160": "removed", "20612": "corrected"}
    assert fit_score(CAT, "10160", "Needle aspiration of a subcutaneous hematoma.") == 2


def test_stress_echo_with_and_without_ecg_monitoring_are_told_apart() -> None:
    # 93351 includes the continuous ECG monitoring and supervision; 93350 does not
    watched = "Treadmill stress echo; I supervised the stress and watched the ECG throughout."
    assert fit_score(CAT, "93350", watched) == 0
    assert fit_score(CAT, "93351", watched) >= 1
    denied = "Stress echo, interpretation only; ECG monitoring was not performed by me."
    assert fit_score(CAT, "93351", denied) == 0


def test_an_add_on_for_a_study_that_already_includes_it_becomes_that_study() -> None:
    # A complete TTE with spectral and color Doppler is 93306, whose code includes them; the
    # Doppler add-on drafted alone is replaced by it, not left waiting for a primary.
    q = "Complete transthoracic echo with spectral and color flow Doppler."
    got = verdicts(q, "93320")
    assert got.get("93320") == "removed" and got.get("93306") == "corrected"
    # where the question supports an allowed primary (a limited TTE), the add-on stays
    got = verdicts("Limited TTE with limited spectral Doppler.", "93321")
    assert "93321" in got and "93306" not in got


@pytest.mark.parametrize("question", [
    # another modality's study, with ultrasound only negated, planned or in the past
    "CPT for a CT of the abdomen with contrast? An abdominal ultrasound was not done.",
    "Lumbar spine MRI without contrast; an ultrasound-guided injection may follow next month.",
    "Bilateral screening mammogram with tomosynthesis, code?",
    # nothing a code could describe
    "Which E/M level fits a 40 minute new patient visit?",
])
def test_questions_no_ultrasound_code_describes_are_outside(question: str) -> None:
    from guardrails.fit import outside

    assert outside(CAT, question)


@pytest.mark.parametrize("question", [
    "Ultrasound-guided core biopsy of a breast mass seen on mammogram, code?",
    "CT-guided drainage of a liver abscess with a catheter left in.",
    "What documentation does a limited exam need?",
])
def test_questions_a_code_describes_are_not_outside(question: str) -> None:
    from guardrails.fit import outside

    assert not outside(CAT, question)


def test_stereotactic_guidance_is_not_ultrasound_guidance() -> None:
    # 19083 includes ultrasound guidance; a stereotactic (mammographic) biopsy is another code
    assert fit_score(CAT, "19083", "Stereotactic core biopsy of breast calcifications.") == 0
    assert fit_score(CAT, "19083", "Ultrasound-guided core biopsy of a breast mass.") == 2


def test_a_sclerosant_product_names_the_sclerotherapy() -> None:
    # Varithena is a non-compounded foam sclerosant: the injection is 36465, which includes
    # the ultrasound compression, so 76942 is not added (karenzupko_36465)
    got = verdicts("Varithena injection of the right GSV with US compression.", "76942")
    assert got.get("76942") == "removed" and got.get("36465") == "corrected"
    assert fit_score(CAT, "36465", "Foam sclerotherapy of one truncal vein, non-compounded.") == 2


def test_complete_and_limited_spectral_doppler_follow_the_study() -> None:
    got = verdicts("Limited TTE with a limited spectral Doppler exam.", "93308", "93320")
    assert got.get("93320") == "removed" and got.get("93321") == "corrected"
    assert fit_score(CAT, "93320", "Complete TTE with complete spectral Doppler.") >= 1
    assert fit_score(CAT, "93321", "Complete TTE with complete spectral Doppler.") == 0


def test_a_guidance_code_the_procedure_reports_with_another_code_is_replaced() -> None:
    # The tunneled pleural catheter 32550 reports its imaging guidance with 75989, not 76942
    # (pair rule pleural_catheter_guidance_75989); 32557 is the non-tunneled catheter.
    q = "Tunneled pleural catheter (PleurX) placed with ultrasound guidance; guidance code?"
    got = verdicts(q, "76942")
    assert got.get("76942") == "removed" and got.get("75989") == "corrected"
    assert fit_score(CAT, "32557", q) == 0 and fit_score(CAT, "32550", q) == 2
    assert fit_score(CAT, "32557", "Indwelling pleural catheter placement with ultrasound.") == 2


_DRAIN = "Percutaneous pericardial drainage catheter left in place, placed under echo guidance"


@pytest.mark.parametrize(("patient", "drafted", "want"), [
    # 33017: six or older, no congenital anomaly; 33018: through age 5, or any age with a
    # congenital heart anomaly (iframe_33018). A stated age or anomaly decides; silence
    # leaves the young child's code unverified.
    ("a 70-year-old", "33018", {"33018": "removed", "33017": "corrected"}),
    ("a 70-year-old", "33017", {"33017": "verified"}),
    ("a 4 year old", "33017", {"33017": "removed", "33018": "corrected"}),
    ("a 4 year old", "33018", {"33018": "verified"}),
    ("a 30 yo with repaired tetralogy of Fallot", "33018", {"33018": "verified"}),
    ("a 30 yo with repaired tetralogy of Fallot", "33017",
     {"33017": "removed", "33018": "corrected"}),
    ("an adult, no congenital heart disease", "33017", {"33017": "verified"}),
    ("an adult", "33018", {"33018": "removed", "33017": "corrected"}),
    ("a newborn", "33017", {"33017": "removed", "33018": "corrected"}),
    ("the patient", "33018", {"33018": "not_verified"}),
])
def test_the_pericardial_drain_codes_follow_age_or_a_congenital_anomaly(patient, drafted,
                                                                          want) -> None:
    assert verdicts(f"{_DRAIN} for {patient}.", drafted) == want


def test_the_first_vessel_code_is_one_unit_and_the_rest_go_on_the_add_on() -> None:
    # 37252 is the first vessel, 37253 each one after it: drafted with units of its own
    # (x50, x100), the question's total of three sets them (x1, x2)
    q = "Intravascular ultrasound of three separate vessels during the leg intervention."
    draft = Draft(codes=(DraftCode("37252", 50, ()), DraftCode("37253", 100, ())), text="",
                  context=q)
    out = check_and_repair(draft, CAT)
    assert [(v.code, v.units, v.status.value) for v in out.verdicts] == [
        ("37252", 1, "corrected"), ("37253", 2, "corrected")]


@pytest.mark.parametrize(("question", "drafted", "want"), [
    # more units than any number the question says are the draft's own: both breasts is
    # one unit with -50, not 50 units
    ("Complete ultrasound of both breasts, all quadrants and retroareolar regions.",
     ("76641", 50), ("76641", 1, ("50",), "corrected")),
    ("Limited TTE for effusion.", ("93308", 3), ("93308", 1, (), "corrected")),
    # a count said without a number may be any count: left as drafted, not verified
    ("Ultrasound-guided FNA of several thyroid nodules.", ("10006", 4),
     ("10006", 4, (), "not_verified")),
])
def test_units_beyond_every_number_the_question_says_are_the_drafts_own(question, drafted,
                                                                        want) -> None:
    from guardrails import policy

    draft = Draft(codes=(DraftCode(drafted[0], drafted[1], ()),), context=question)
    got = {(v.code, v.units, v.modifiers, v.status.value)
           for v in policy.first_round(draft, CAT).outcome.verdicts}
    assert want in got


@pytest.mark.parametrize(("question", "most"), [
    ("both breasts, all four quadrants", 2), ("three lesions at 20 weeks, 4 cm", 3),
    ("a limited echo", 1), ("several nodules", None), ("x2 units", 2),
])
def test_stated_most(question, most) -> None:
    from guardrails.rules.units import stated_most

    assert stated_most(question) == most



def test_an_add_on_describes_the_sites_and_studies_of_each_of_its_primaries() -> None:
    """An add-on reported with a primary is about that primary's site and study: its own
    data must cover them, or the add-on is ruled out where its primary fits."""
    from guardrails.question.vocab import vocabulary_of

    v = vocabulary_of(CAT)
    gaps = []
    for code, e in CAT.codes.items():
        d = e.describes
        if not e.add_on or d is None:
            continue
        for p in e.primaries or ():
            pd = CAT.codes[p].describes if p in CAT.codes else None
            if pd is None:
                continue
            for mine, theirs in ((d.sites, pd.sites), (d.exams, pd.exams)):
                if mine and theirs and not any(v.related(a, b) for a in mine for b in theirs):
                    gaps.append((code, p, mine, theirs))
    assert gaps == []
