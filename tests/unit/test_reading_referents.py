"""Denials and plans whose object is said apart from the cue: a pronoun ('never turned it
on'), a subject left out after a comma ('US available, not used'), a cue ended by a comma
right after it, and an option talked over ('we discussed a biopsy')."""

from __future__ import annotations

import pytest
from reading_helpers import facts, status

from guardrails.question import Status, read_frame
from guardrails.report import CodeStatus
from knowledge.catalog import build_catalog


@pytest.fixture(scope="module")
def cat():
    return build_catalog()




@pytest.mark.parametrize("question", [
    "Gave a knee injection; I had the ultrasound in the room but never turned it on.",
    "Knee injection. The ultrasound machine was at the bedside but we did not use it.",
    "Knee aspiration; the US was there, but I didn't use it for the tap.",
])
def test_it_after_a_denied_use_is_the_imaging_named_before(cat, question):
    assert facts(cat, question)["ultrasound"] is Status.NEGATED
    assert status(cat, question, "20611")["20611"] is not CodeStatus.VERIFIED


def test_without_it_denies_the_imaging_for_what_follows(cat):
    q = ("Thoracentesis; I looked with the ultrasound beforehand to mark the spot, then did "
         "the tap without it.")
    assert status(cat, q, "32555")["32555"] is not CodeStatus.VERIFIED


def test_it_that_is_used_or_is_not_a_tool_denies_nothing(cat):
    # 'it' after a verb that is not denied, or with no imaging before it
    q = "Knee injection under ultrasound; we used it to watch the needle, image saved."
    assert facts(cat, q)["guidance_ultrasound"] is Status.AFFIRMED
    assert status(cat, q, "20611")["20611"] is CodeStatus.VERIFIED
    q = ("The effusion was large and we did not drain it; ultrasound-guided knee injection, "
         "image saved.")
    assert facts(cat, q)["guidance_ultrasound"] is Status.AFFIRMED
    assert status(cat, q, "20611")["20611"] is CodeStatus.VERIFIED


def test_a_clause_of_not_and_a_participle_denies_what_the_comma_follows(cat):
    q = "Shoulder injection; US available, not used."
    assert status(cat, q, "20611")["20611"] is not CodeStatus.VERIFIED
    # with its own subject, the clause denies that subject only
    q = "Ultrasound-guided knee injection, fluoroscopy not used, image saved."
    assert status(cat, q, "20611")["20611"] is CodeStatus.VERIFIED


def test_a_comma_right_after_a_cue_ends_it(cat):
    q = ("We discussed an ultrasound-guided paracentesis; the patient declined, and a limited "
         "abdominal ultrasound was done.")
    f = facts(cat, q)
    assert f["paracentesis"] is Status.HYPOTHETICAL
    assert f["limited"] is Status.AFFIRMED
    assert status(cat, q, "49083")["49083"] is not CodeStatus.VERIFIED


def test_an_option_discussed_is_not_a_service_done(cat):
    q = "We discussed a US-guided thyroid biopsy but today only did a diagnostic thyroid ultrasound."
    assert facts(cat, q)["biopsy"] is Status.HYPOTHETICAL
    assert status(cat, q, "76536")["76536"] is CodeStatus.VERIFIED
    assert status(cat, q, "76942")["76942"] is not CodeStatus.VERIFIED


def test_consent_talk_does_not_defer_the_procedure(cat):
    q = ("Discussed risks and benefits of the ultrasound-guided knee injection with the "
         "patient; the knee was injected under ultrasound with an image saved.")
    assert status(cat, q, "20611")["20611"] is CodeStatus.VERIFIED


def test_a_semicolon_ends_a_cue_a_comma_already_shortened(cat):
    # medspaCy's overlap test, made symmetric: the ';' ends 'by another physician'
    q = ("Stress echo, interpretation only, with echo contrast; the ECG monitoring and "
         "supervision were done by another physician.")
    f = facts(cat, q)
    assert f["contrast"] is Status.AFFIRMED
    assert f["ecg_monitoring"] is Status.OTHER


@pytest.mark.parametrize("question", [
    "TRUS-guided prostate bx - code?",
    "Sono-guided liver biopsy, one lesion.",
])
def test_a_study_word_with_guided_after_it_is_guidance(cat, question):
    assert facts(cat, question)["guidance_ultrasound"] is Status.AFFIRMED


def test_a_diagnostic_study_is_not_verified_beside_a_guided_placement(cat):
    # NCCI Ch. IX: ultrasound that guides a procedure is not also a diagnostic exam; the
    # procedure may be named by the device placed ('catheter'), and 'US + fluoro' is guidance
    q = "Tunneled peritoneal catheter for malignant ascites, US + fluoro."
    assert facts(cat, q)["guidance_ultrasound"] is Status.AFFIRMED
    assert status(cat, q, "76700")["76700"] is not CodeStatus.VERIFIED
    assert status(cat, q, "49418")["49418"] is CodeStatus.VERIFIED
    assert status(cat, "TRUS-guided prostate bx.", "76872")["76872"] is not CodeStatus.VERIFIED


def test_a_transcranial_doppler_is_not_the_head_ultrasound(cat):
    # the intracranial arteries are vessels, studied by 93886/93888, not the brain (76506)
    q = "Complete TCD - CPT?"
    assert status(cat, q, "93886")["93886"] is CodeStatus.VERIFIED
    assert status(cat, q, "76506")["76506"] is not CodeStatus.VERIFIED


def test_imaging_that_only_marked_the_site_did_not_guide(cat):
    # a modality beside a procedure is read as its guidance, unless the question denies
    # real-time imaging or says the imaging marked the site
    q = ("Procedure: thoracentesis, left. Site marked with ultrasound beforehand, procedure "
         "performed afterward without real-time imaging. 900 mL removed.")
    assert "guidance_ultrasound" not in facts(cat, q)
    assert status(cat, q, "32555")["32555"] is not CodeStatus.VERIFIED
    assert status(cat, q, "32554")["32554"] is CodeStatus.VERIFIED


def test_a_bound_on_the_weeks_is_read_inside_it(cat):
    # '< 14 wks' is the first trimester (76801), '> 14 wks' the second (76805)
    assert read_frame("OB US < 14 wks, single, TA, compl - CPT?", cat).weeks < 14
    assert read_frame("OB US > 14 wks, singleton, complete.", cat).weeks > 14
    assert status(cat, "OB US < 14 wks, single, TA, compl - CPT?", "76805")["76805"] \
        is not CodeStatus.VERIFIED


@pytest.mark.parametrize(("question", "right", "wrong"), [
    ("TTE compl w/ spectral + color dopp - code?", "93306", "93308"),
    ("Ltd TTE, no dopp - CPT?", "93308", "93306"),
    ("Compl abd US - CPT?", "76700", "76705"),
])
def test_coder_shorthand_for_extent_and_doppler(cat, question, right, wrong):
    assert status(cat, question, right)[right] is CodeStatus.VERIFIED
    assert status(cat, question, wrong)[wrong] is not CodeStatus.VERIFIED
