"""Compound terms that name their head study, yes/no questions about the extent, the
purpose of a lumbar puncture, and the approach of the limited OB study."""

from __future__ import annotations

import pytest
from reading_helpers import facts, status

from guardrails.fit import supported
from guardrails.question import Status, read_frame
from guardrails.question.vocab import vocabulary_of
from guardrails.report import CodeStatus
from knowledge.catalog import build_catalog


@pytest.fixture(scope="module")
def cat():
    return build_catalog()


@pytest.mark.parametrize(("question", "code"), [
    # 'OB ultrasound', 'head ultrasound': the longest term is kept, and it names the study
    ("OB ultrasound at 20 weeks, complete, single fetus.", "76805"),
    ("Head ultrasound in a newborn through the anterior fontanelle.", "76506"),
    ("Limited OB ultrasound to check the fetal heartbeat at 30 weeks.", "76815"),
])
def test_a_compound_names_its_head_study(cat, question, code) -> None:
    assert read_frame(question, cat).affirms("sonography")
    assert code in supported(cat, question)


def test_only_site_and_patient_compounds_take_their_head(cat) -> None:
    vocab = vocabulary_of(cat)
    # a patient's compound ('ob ultrasound') names the study too
    assert {"pregnant", "sonography"} <= set(vocab.terms["ob ultrasound"])
    # a guidance phrase ending in 'ultrasound' is guidance, not a diagnostic study
    assert "sonography" not in vocab.terms["real-time ultrasound"]
    assert "sonography" not in vocab.terms["under ultrasound"]


def test_a_guided_procedure_does_not_become_a_study(cat) -> None:
    q = "Knee injection under real-time ultrasound, image saved."
    assert not read_frame(q, cat).affirms("sonography")


@pytest.mark.parametrize(("question", "asked"), [
    ("I did a complete abdomen, every organ, but the pancreatic tail was hidden by bowel gas. "
     "Does that knock it down to limited?", True),
    ("Right kidney seen, left not seen. Is it still complete?", True),
    # a question that says what was done, not asks about it
    ("What code for a limited abdominal ultrasound of the liver?", False),
    ("Can I bill 76705 for a limited RUQ ultrasound?", False),
])
def test_an_extent_asked_about_is_not_said(cat, question, asked) -> None:
    extents = {f.status for f in read_frame(question, cat).facts if f.kind == "extent"
               and f.text.lower() in ("limited", "complete")}
    want = Status.HYPOTHETICAL if asked else Status.AFFIRMED
    assert want in extents


def test_the_study_described_keeps_its_extent_when_a_smaller_one_is_asked(cat) -> None:
    q = ("Sonographer question: I did a complete abdomen, liver, GB, ducts, pancreas, spleen, "
         "kidneys, aorta, IVC, but the pancreatic tail was hidden by bowel gas and I "
         "documented that. Does that knock it down to limited?")
    assert status(cat, q, "76700") == {"76700": CodeStatus.VERIFIED}
    assert status(cat, q, "76705")["76705"] is not CodeStatus.VERIFIED


@pytest.mark.parametrize(("question", "fits", "not_fit"), [
    ("Dx LP under fluoro.", "62328", "62329"),
    ("Bedside diagnostic LP by landmarks, CSF sent for cell count.", "62270", "62272"),
    ("Therapeutic LP under fluoroscopy for NPH, 40 mL of CSF removed.", "62329", "62328"),
    ("Large-volume tap at the bedside without imaging for NPH.", "62272", "62270"),
])
def test_a_puncture_to_drain_csf_is_told_from_a_diagnostic_one(cat, question, fits,
                                                               not_fit) -> None:
    assert fits in supported(cat, question)
    assert not_fit not in supported(cat, question)
    assert status(cat, question, fits) == {fits: CodeStatus.VERIFIED}
    assert status(cat, question, not_fit)[not_fit] is not CodeStatus.VERIFIED


def test_a_transvaginal_only_limited_ob_study_is_the_transvaginal_code(cat) -> None:
    q = ("ED: 6 weeks pregnant with spotting, I did a transvaginal scan only and saw an "
         "intrauterine pregnancy with cardiac activity. No transabdominal views.")
    assert status(cat, q, "76817") == {"76817": CodeStatus.VERIFIED}
    assert status(cat, q, "76815")["76815"] is not CodeStatus.VERIFIED
    # unsaid, the approach rules nothing out
    assert status(cat, "Limited OB ultrasound at 30 weeks for fetal position.", "76815") == {
        "76815": CodeStatus.VERIFIED}


def test_a_stress_tte_is_a_stress_echo_not_a_resting_tte(cat) -> None:
    q = "Stress TTE w/ continuous ECG monitoring, supervision, interp & report - CPT?"
    assert facts(cat, q).get("stress_echo") is Status.AFFIRMED
    assert supported(cat, q) == ["93351"]


@pytest.mark.parametrize(("question", "right", "wrong"), [
    # 'MR jet' is the mitral valve's regurgitation, and 'read the study' names no second
    # study: the TEE said is the study's approach
    ("TEE for suspected endocarditis: vegetation on the mitral valve, CW Doppler of the MR "
     "jet and color flow mapping performed; same cardiologist placed the probe and read the "
     "study.", "93312", "93306"),
    # a ventricular septal defect is a congenital anomaly
    ("Follow-up limited echo in a child with a known small muscular VSD, color flow only, no "
     "spectral Doppler.", "93304", "93308"),
    # 'the follow-up code' names a code; the study was complete
    ("First prenatal visit at 30 wk, no prior ultrasound; complete TA exam with biometry, "
     "anatomy, placenta and fluid. Do we use the follow-up code?", "76805", "76816"),
])
def test_words_read_as_what_they_name(cat, question, right, wrong) -> None:
    assert status(cat, question, right)[right] in (CodeStatus.VERIFIED, CodeStatus.CORRECTED)
    assert status(cat, question, wrong)[wrong] is not CodeStatus.VERIFIED


def test_mr_alone_is_still_the_mri(cat) -> None:
    assert facts(cat, "Knee MR without contrast.").get("mr") is Status.AFFIRMED
    assert "mr" not in facts(cat, "TTE, moderate MR jet by color Doppler.")


def test_dse_is_a_stress_echo(cat) -> None:
    q = "DSE w/ Definity for LV opacification, cardiologist supervised & interpreted."
    assert facts(cat, q).get("stress_echo") is Status.AFFIRMED


@pytest.mark.parametrize(("question", "right", "wrong"), [
    # an element of the complete exam not examined: the limited exam
    ("EXAM: US ABDOMEN. FINDINGS: Liver normal. Gallbladder without stones. CBD 4 mm. "
     "Pancreas unremarkable. Spleen 10 cm. Aorta and IVC normal caliber. Kidneys were not "
     "evaluated.", "76705", "76700"),
    # 'no US, no imaging': no guidance, whatever the comma joins
    ("Trigger point injections in two muscles, no US, no imaging.", "20552", "76942"),
    # a port placed through an arm vein is the peripherally inserted port
    ("L arm port via basilic, 48F, US gd access img saved + fluoro tip.", "36571", "36561"),
    # both iliac systems: the complete aortoiliac duplex, not the unilateral or limited one
    ("Duplex aorta and iliac arteries after EVAR: color and spectral Doppler of the aorta, "
     "stent graft and bilateral common, external and internal iliac arteries.", "93978",
     "93979"),
    # the code asked about is named, not said to have been done
    ("Complete transabdominal pelvic US of uterus, endometrium and both ovaries; a "
     "transvaginal scan was offered but declined. Should I also bill the endovaginal code?",
     "76856", "76830"),
])
def test_what_was_examined_decides_the_code(cat, question, right, wrong) -> None:
    assert status(cat, question, right)[right] in (CodeStatus.VERIFIED, CodeStatus.CORRECTED)
    assert status(cat, question, wrong)[wrong] is not CodeStatus.VERIFIED


def test_an_element_denied_as_a_finding_or_not_seen_is_not_left_out(cat) -> None:
    # 'no renal artery stenosis' denies a finding; 'not visualized' was looked for
    q = ("Renal artery duplex: both kidneys, main renal arteries and renal veins evaluated, "
         "aortic PSV. No renal artery stenosis.")
    assert status(cat, q, "93975")["93975"] is CodeStatus.VERIFIED
    q = ("Abdominal ultrasound: liver, gallbladder, CBD, pancreas, spleen, kidneys, aorta, "
         "IVC; the pancreatic tail was not visualized due to bowel gas.")
    assert status(cat, q, "76700")["76700"] is CodeStatus.VERIFIED


def test_no_saved_image_rules_out_a_study_whose_report_needs_one(cat) -> None:
    q = "Bedside RUQ POCUS for gallstones, no images saved, no report."
    assert status(cat, q, "76705")["76705"] is CodeStatus.REMOVED
    assert status(cat, "Bedside RUQ POCUS for gallstones, images saved, report written.",
                  "76705")["76705"] is CodeStatus.VERIFIED


def test_a_codes_requirement_counts_for_its_specificity(cat) -> None:
    # the NT study stays its own code beside the limited transabdominal OB study
    q = "Nuchal translucency measurement at 12 weeks, singleton, transabdominal."
    assert status(cat, q, "76813") == {"76813": CodeStatus.VERIFIED}
    assert "76813" in supported(cat, q) and "76815" not in supported(cat, q)


def test_tap_catheters_are_a_continuous_plane_block(cat) -> None:
    q = "bilat TAP catheters, US gd, img saved, codes?"
    assert status(cat, q, "64489")["64489"] in (CodeStatus.VERIFIED, CodeStatus.CORRECTED)
    assert status(cat, q, "76942")["76942"] is not CodeStatus.VERIFIED


@pytest.mark.parametrize(("question", "right", "wrong"), [
    # 'the back of the forearm' is a side of the forearm, not the back
    ("Focused ultrasound of a lump on the back of the forearm: only the mass and the "
     "subcutaneous tissue were evaluated, no joint assessment, no Doppler.", "76882", None),
    # an age in weeks is a baby's; 'born breech' is the birth, not a pregnancy today
    ("6-week-old born breech, hips scanned with stress maneuvers (Barlow and Ortolani) under "
     "ultrasound.", "76885", None),
    # arterial and venous waveforms of both testes: the complete scrotal duplex, not an
    # arterial physiologic study
    ("Acute right scrotal pain: grayscale of both testes plus color and spectral Doppler "
     "documenting arterial and venous waveforms in both testes, images saved and reported.",
     "93975", "93922"),
])
def test_words_read_for_what_they_say_of_the_patient_and_study(cat, question, right,
                                                              wrong) -> None:
    assert status(cat, question, right)[right] in (CodeStatus.VERIFIED, CodeStatus.CORRECTED)
    if wrong is not None:
        assert status(cat, question, wrong)[wrong] is not CodeStatus.VERIFIED


def test_a_birth_is_history(cat) -> None:
    frame = read_frame("Born at 32 weeks, now 3 months old; head ultrasound through the "
                       "fontanelle.", cat)
    assert frame.weeks is None
    assert facts(cat, "born breech").get("fetus") is Status.HISTORICAL


def test_subclavian_alone_is_neither_artery_nor_vein(cat) -> None:
    # the head noun of the list says arteries: no venous duplex
    q = ("EXAM: ARTERIAL DUPLEX BILATERAL UPPER EXTREMITIES. FINDINGS: Subclavian, axillary, "
         "brachial, radial and ulnar arteries patent bilaterally.")
    assert status(cat, q, "93930")["93930"] in (CodeStatus.VERIFIED, CodeStatus.CORRECTED)
    assert status(cat, q, "93970")["93970"] is not CodeStatus.VERIFIED
    # a subclavian line is still a central line
    assert supported(cat, "Right subclavian CVC under real-time ultrasound, image saved, "
                          "55-year-old.") == ["36556"]
