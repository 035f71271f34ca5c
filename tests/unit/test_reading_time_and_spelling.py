"""Another day than the encounter's, the writer's own plans, relatives, 'zero', a denied
saved image, spectral against colour Doppler, and misspelled vocabulary words."""

from __future__ import annotations

import pytest
from reading_helpers import status

from guardrails.question import Status, read_frame
from guardrails.question.spelling import one_edit, speller
from guardrails.question.vocab import vocabulary_of
from guardrails.report import CodeStatus
from knowledge.catalog import build_catalog


@pytest.fixture(scope="module")
def cat():
    return build_catalog()




def statuses_of(cat, question: str, concept: str) -> set[Status]:
    return {f.status for f in read_frame(question, cat).facts if f.concept == concept}


@pytest.mark.parametrize(("question", "concept", "want"), [
    ("She had a complete pelvic ultrasound six weeks ago.", "pelvis", Status.HISTORICAL),
    ("A TTE was done yesterday.", "echocardiography", Status.HISTORICAL),
    ("Paracentesis by landmarks; the ultrasound was only done the next day.", "ultrasound",
     Status.HYPOTHETICAL),
    ("Right kidney only, no Doppler. I'll order a full renal ultrasound if it looks off.",
     "ultrasound", Status.HYPOTHETICAL),
    ("We will get a formal echo.", "echocardiography", Status.HYPOTHETICAL),
    ("Her mother had breast cancer.", "breast", Status.OTHER),
    ("66-year-old, zero symptoms, AAA screening.", "symptomatic", Status.NEGATED),
    ("Knee aspiration under US; the machine did not save any images.", "image_saved",
     Status.NEGATED),
    ("Limited TTE, color Doppler only, no spectral Doppler.", "spectral_doppler",
     Status.NEGATED),
])
def test_the_status_of_a_fact_said_with_a_time_a_plan_or_a_relative(cat, question, concept,
                                                                    want) -> None:
    assert statuses_of(cat, question, concept) == {want}


def test_today_facts_beside_another_day_stay_affirmed(cat) -> None:
    q = "She had a TTE yesterday. Today a limited echo for the effusion."
    assert Status.AFFIRMED in statuses_of(cat, q, "echocardiography")
    assert status(cat, q, "93308") == {"93308": CodeStatus.VERIFIED}


@pytest.mark.parametrize(("question", "code", "want"), [
    # an ultrasound only on another day guided nothing today
    ("Paracentesis without ultrasound; the ultrasound was only done the next day.", "49083",
     CodeStatus.NOT_VERIFIED),
    # the study the writer will order is not today's: the limited one is
    ("Quick look at just the right kidney for hydro, no Doppler. I'll order a full renal "
     "ultrasound if anything looks off.", "76770", CodeStatus.REMOVED),
    ("Quick look at just the right kidney for hydro, no Doppler. I'll order a full renal "
     "ultrasound if anything looks off.", "76775", CodeStatus.VERIFIED),
    # a relative's breast cancer is no second breast lesion
    ("Left breast 12 o'clock mass, BI-RADS 4B. Ultrasound-guided core biopsy, five cores, "
     "clip placed. Her mother had breast cancer at 52.", "19084", CodeStatus.NOT_VERIFIED),
    # the joint code with guidance needs the image the question says was not saved; so does
    # the guidance code
    ("Knee aspiration watching the needle on ultrasound, but the machine didn't save any "
     "images.", "20611", CodeStatus.REMOVED),
    ("Knee aspiration watching the needle on ultrasound, but the machine didn't save any "
     "images.", "76942", CodeStatus.REMOVED),
    # spectral Doppler denied: not the spectral Doppler add-on
    ("Limited TTE for effusion with color Doppler only, no spectral Doppler.", "93321",
     CodeStatus.REMOVED),
])
def test_codes_follow_those_statuses(cat, question, code, want) -> None:
    assert status(cat, question, code)[code] is want


@pytest.mark.parametrize(("word", "meant"), [
    ("thoracentsis", "thoracentesis"), ("paracentisis", "paracentesis"),
    ("thyriod", "thyroid"), ("popliteel", "popliteal"),
    # English words and words of the vocabulary are left alone
    ("infection", None), ("injection", None), ("hydronephrosis", None),
    # short words are more often abbreviations than typos
    ("biospy", None),
])
def test_a_misspelled_vocabulary_word_is_read_as_the_word_meant(cat, word, meant) -> None:
    assert speller(vocabulary_of(cat)).meant(word) == meant


def test_a_misspelled_procedure_is_read(cat) -> None:
    frame = read_frame("thoracentsis under US guidance, R effusion", cat)
    assert frame.affirms("thoracentesis")
    assert status(cat, "paracentisis under ultrasound guidance", "49083") == {
        "49083": CodeStatus.VERIFIED}


@pytest.mark.parametrize(("a", "b", "want"), [
    ("thyroid", "thyriod", True), ("abcdefg", "abcdefgh", True), ("abcdefg", "abcxefg", True),
    ("abcdefg", "abcdefg", False), ("abcdefg", "abdcefh", False), ("abcdefg", "abcde", False),
])
def test_one_edit(a, b, want) -> None:
    assert one_edit(a, b) is want


@pytest.mark.parametrize(("question", "best", "vaguer"), [
    # a specific study of the organ is the code, not also the general organ study
    ("Shear wave elastography of the liver parenchyma for fibrosis.", "76981", "76705"),
])
def test_the_most_specific_fitting_code_is_offered_as_fitting(cat, question, best,
                                                              vaguer) -> None:
    from guardrails.fit import fit_score, less_specific, supported

    assert fit_score(cat, vaguer, question) == 2  # it fits, only less exactly
    assert best in supported(cat, question) and vaguer not in supported(cat, question)
    assert less_specific(cat, question) == {vaguer}


def test_codes_of_different_services_are_not_compared_for_specificity(cat) -> None:
    from guardrails.fit import supported

    # the guidance code is no vaguer form of the biopsy it guides
    got = supported(cat, "US-guided percutaneous core biopsy of a liver mass, image saved.")
    assert {"47000", "76942"} <= set(got)


def test_a_scan_of_a_pregnant_patient_is_an_ultrasound_study(cat) -> None:
    from guardrails.fit import supported

    q = "Twins came to L&D triage and I did a quick scan for heartbeats and presentation."
    assert supported(cat, q) == ["76815"]
    # another modality's scan stays that modality's; no pregnancy, no study named
    assert not read_frame("Pregnant at 20 weeks; CT scan of the chest.", cat).affirms(
        "sonography")
    assert not read_frame("Knee scan for effusion.", cat).affirms("sonography")
