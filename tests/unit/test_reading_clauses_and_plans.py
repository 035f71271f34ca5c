"""English grammar the reader follows: a negation contracted or said after its object, a
cue kept inside its parentheses or its clause, a study yet to be done, a choice asked, a
level argued over, every element said; and catalog facts for the imaging-guided taps (no
saved image, no guided code) and the screening that a surveillance is not."""

from __future__ import annotations

import pytest
from reading_helpers import facts, status

from guardrails.question import Status, read_frame
from guardrails.report import CodeStatus
from knowledge.catalog import build_catalog

SHOWN = (CodeStatus.VERIFIED, CodeStatus.CORRECTED)


@pytest.fixture(scope="module")
def cat():
    return build_catalog()


@pytest.mark.parametrize(("question", "concept", "said"), [
    # a contracted negation after its object ('wasn't performed')
    ("Complete transthoracic echo; Doppler wasn't performed.", "doppler", Status.NEGATED),
    ("Complete transthoracic echo; Doppler was not performed.", "doppler", Status.NEGATED),
    # the passive infinitive after its object: yet to be done
    ("Limited right upper quadrant scan today. A formal Doppler study is to be scheduled.",
     "doppler", Status.HYPOTHETICAL),
    # a level argued over is a proposal about the claim, not what was done
    ("The auditor would downgrade it to limited.", "limited", Status.HYPOTHETICAL),
    # a choice of two extents asked: neither is said
    ("Left kidney scanned. Is that complete or limited?", "complete", Status.HYPOTHETICAL),
    ("Left kidney scanned. Is that complete or limited?", "limited", Status.HYPOTHETICAL),
    # ... but a single extent in a question is still said
    ("We did a limited study of the left kidney, which code?", "limited", Status.AFFIRMED),
    # a follow-up word with a span of time after it names the next study
    ("Aortoiliac duplex today; repeat 12 months.", "follow_up", Status.HYPOTHETICAL),
    ("Follow-up renal scan for a known stone.", "follow_up", Status.AFFIRMED),
    # a later visit's service
    ("Targeted breast ultrasound of a mass; she will return for a core biopsy.", "biopsy",
     Status.HYPOTHETICAL),
])
def test_grammar_of_status(cat, question, concept, said) -> None:
    assert facts(cat, question)[concept] is said


@pytest.mark.parametrize("question", [
    # a negation inside parentheses stays there
    "Limited liver ultrasound (no focal mass) plus duplex of the portal vein.",
    # a passive negation after a semicolon denies its own clause only
    "Duplex of the portal vein; the hepatic artery was not interrogated.",
])
def test_a_cue_stays_in_its_clause(cat, question) -> None:
    assert facts(cat, question)["duplex"] is Status.AFFIRMED


def test_every_element_said_is_the_complete_exam(cat) -> None:
    q = "Abdominal ultrasound with all eight required elements documented."
    assert facts(cat, q)["complete"] is Status.AFFIRMED
    assert status(cat, q, "76700")["76700"] in SHOWN
    # 'all structures' of a report's findings says nothing of the extent
    assert "complete" not in facts(cat, "RUQ ultrasound: all visualized structures normal.")


def test_a_side_said_by_its_abbreviation(cat) -> None:
    q = "Carotid duplex, R side only, for a bruit."
    assert read_frame(q, cat).sides == "one"
    assert status(cat, q, "93882")["93882"] in SHOWN


def test_an_echocardiogram_that_guides_is_ultrasound_guidance(cat) -> None:
    q = "Intraprocedural TEE guiding a transcatheter left atrial appendage closure."
    assert read_frame(q, cat).affirms("guidance_ultrasound")
    assert status(cat, q, "93355")["93355"] in SHOWN


@pytest.mark.parametrize(("question", "right", "wrong"), [
    # no permanent image: the imaging-guided tap is not the code (medlearn_guidance2016)
    ("Paracentesis after the site was found with ultrasound; no images were saved.",
     "49082", "49083"),
    ("Thoracentesis at a spot marked with the probe, without saving any images.",
     "32554", "32555"),
    # a surveillance of a known aneurysm is not the screening
    ("Aortic ultrasound for surveillance of a 4 cm aneurysm.", "76775", "76706"),
    # 'sono' is the study; the prostate by its zones
    ("Complete right shoulder sono for a rotator cuff tear.", "76881", "76882"),
    ("TRUS: gland 40 cc, hypoechoic PZ nodule.", "76872", None),
])
def test_catalog_facts_and_words(cat, question, right, wrong) -> None:
    assert status(cat, question, right)[right] in SHOWN
    if wrong is not None:
        assert status(cat, question, wrong)[wrong] is not CodeStatus.VERIFIED


def test_the_guided_tap_stays_when_images_are_not_mentioned(cat) -> None:
    assert status(cat, "Ultrasound-guided paracentesis, 3 L removed.",
                  "49083")["49083"] is CodeStatus.VERIFIED


def test_babies_of_a_pregnant_patient_are_fetuses(cat) -> None:
    q = "Twin pregnancy at 34 weeks: I checked both babies' presentation and the fluid."
    f = read_frame(q, cat)
    assert f.affirms("fetus") and not f.affirms("infant") and f.age_band is None
    assert read_frame("Hip ultrasound of a 6 week old baby.", cat).affirms("infant")


def test_a_detailed_fetal_survey_says_the_patient_is_pregnant(cat) -> None:
    q = "Detailed fetal anatomic survey at 20 weeks; the standard anatomy exam was not also done."
    assert facts(cat, q)["standard_anatomy"] is Status.NEGATED
    assert status(cat, q, "76811")["76811"] in SHOWN


def test_the_baby_whose_heart_rate_is_no_fetal_study(cat) -> None:
    # the possessive only says whose the heart rate is: the gallbladder study is no OB code
    q = ("Pregnant at 26 weeks with right upper quadrant pain: I scanned only the gallbladder; "
         "the baby's heart rate was normal on the monitor.")
    assert status(cat, q, "76815")["76815"] is not CodeStatus.VERIFIED
    assert status(cat, q, "76705")["76705"] in SHOWN


def test_a_study_denied_beside_another_study_is_not_verified(cat) -> None:
    q = ("Shear wave elastography of the liver for fibrosis; no separate diagnostic abdominal "
         "ultrasound was reported.")
    assert status(cat, q, "76705")["76705"] is CodeStatus.NOT_VERIFIED
    assert status(cat, q, "76981")["76981"] in SHOWN
    # a study denied as history ('no prior ultrasound') beside today's exam is no denial
    q2 = "No prior ultrasound; complete transabdominal OB exam at 22 weeks with biometry."
    assert status(cat, q2, "76805")["76805"] in SHOWN


def test_a_modal_passive_negation(cat) -> None:
    q = "Renal duplex of both kidneys; the renal veins could not be interrogated."
    negated = [f.concept for f in read_frame(q, cat).facts if f.status is Status.NEGATED]
    assert negated, "the renal veins are denied"


def test_an_aortogram_is_a_catheter_procedure_of_the_aorta(cat) -> None:
    q = "Abdominal aortogram with IVUS of the right common iliac artery."
    f = read_frame(q, cat)
    assert f.affirms("aortography") and f.affirms("aorta")
    assert status(cat, q, "37252")["37252"] is not CodeStatus.REMOVED
