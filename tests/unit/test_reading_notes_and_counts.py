"""Words of procedure notes and coder shorthand read as what they say: a needle seen in real
time, a return visit, a name said twice, 'no other vessel', a code named by a determiner;
and catalog facts that say which code a service is (the dialysis access duplex, the
transplanted kidney, the prostate volume study, the parenchyma elastography)."""

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


@pytest.mark.parametrize(("question", "right", "wrong"), [
    # a note names ultrasound once and says the needle was seen in real time: it guided
    ("Right IJ central line in an adult. Ultrasound was used to check both internal jugular "
     "veins; the right was patent. Needle entry into the vein was visualized in real time. "
     "Image saved with a report.", "76937", None),
    # 'used for guidance': the modality guided the procedure (not a diagnostic study)
    ("Radiofrequency ablation of one liver tumor (47382 coded), ultrasound used for guidance "
     "and monitoring of the ablation zone. Imaging code?", "76940", "76705"),
    # 'came back for': a return visit, not the back
    ("Non-pregnant patient with an ovarian cyst came back for a follow-up transvaginal "
     "ultrasound.", "76830", None),
    # the transplanted kidney's study includes its duplex; another organ's transplant is the
    # organ duplex code's
    ("Renal transplant duplex of the allograft vessels.", "76776", "93975"),
    ("Liver transplant recipient: duplex of the hepatic artery, portal vein and hepatic veins, "
     "arterial inflow and venous outflow.", "93975", None),
    # the iliac fossa is where the transplanted kidney lies, not an iliac vessel
    ("Renal transplant in the right iliac fossa, grayscale with color and spectral Doppler.",
     "76776", None),
    # the volume study is for seed planning; a volume measured in a diagnostic TRUS is not it
    ("Transrectal ultrasound to measure the prostate volume for BPH; not for seed implant "
     "planning.", "76872", "76873"),
    ("Prostate volume study by TRUS for brachytherapy planning.", "76873", "76872"),
    # a dialysis access duplex (inflow artery to outflow vein) is 93990
    ("EXAM: DUPLEX LEFT FOREARM AV FISTULA. Brachial artery inflow, anastomosis and cephalic "
     "outflow vein evaluated.", "93990", "93971"),
    # the FAST's pelvic view is one of its abdominal views (76705), not a pelvic study
    ("FAST exam with RUQ, LUQ, pelvic and subxiphoid cardiac views plus lung windows on both "
     "sides for pneumothorax.", "76604", "76857"),
    # the infant brain is scanned through the fontanelle
    ("NICU 2 day old, head u/s thru anterior fontanelle r/o IVH, perm imgs + rpt", "76506",
     None),
    # coder shorthand: 'elasto', 'spectral + color'
    ("thyroid nodule strain elasto, 2 target nodules", "76982", "76981"),
    ("TEE complete adult, probe placement, acquisition and interpretation, spectral + color",
     "93325", None),
    # the probe placement denied, not the TEE
    ("Cardiologist did not place the TEE probe (anesthesia did) but did the image acquisition, "
     "interpretation and report.", "93314", "93312"),
    # an element of the complete joint exam by a joint's own name
    ("Diagnostic ultrasound of the right shoulder: rotator cuff tendons, biceps tendon, AC "
     "joint and subacromial bursa, with dynamic views.", "76881", "76882"),
    # an infant's hips have their own codes (the general joint codes are ruled out)
    ("6-week-old born breech, hips scanned with Barlow and Ortolani maneuvers under "
     "ultrasound.", "76885", "76881"),
    # 'images were retained' denied: no diagnostic code that needs a saved image
    ("Bedside thoracentesis. A quick handheld ultrasound look confirmed the pocket, but no "
     "images were retained and no report was written. 800 mL removed.", "32554", "76604"),
    # both kidneys named by their own side words, and the bladder: the complete study
    ("RENAL US. Right kidney 11.2 cm and left 11.0 cm, no hydronephrosis; urinary bladder "
     "normal. Impression: normal kidneys and bladder.", "76770", "76775"),
    # 'each gestation fully evaluated': the complete first-trimester study
    ("First trimester OB ultrasound, transabdominal, 11w4d, twins, each gestation fully "
     "evaluated with the uterus and adnexa.", "76801", None),
    # a vessel names no level of a limb: the ankles and the arms are not three levels
    ("ABI at rest: brachial pressures on both arms, dorsalis pedis and posterior tibial "
     "pressures at both ankles. No segmental pressures, no exercise.", "93922", "93923"),
    # a supervision done by another group is not this claim's
    ("stress echo where our doc only interpreted the images, the supervision and ecg were by "
     "another group, no contrast", "93350", "93351"),
    # 'full' said of a study with its sites between ('full renal/retroperitoneal study')
    ("did a full renal/retroperitoneal study today", "76770", "76775"),
])
def test_notes_and_shorthand_read_as_said(cat, question, right, wrong) -> None:
    assert status(cat, question, right)[right] in SHOWN
    if wrong is not None:
        assert status(cat, question, wrong)[wrong] is not CodeStatus.VERIFIED


def test_real_time_words_need_a_single_modality(cat) -> None:
    # two imaging modalities named: which one guided is not said by 'in real time'
    q = ("Right IJ central line. Both internal jugular veins were checked with ultrasound. A "
         "CT of the chest was reviewed. Needle entry was visualized in real time.")
    assert not read_frame(q, cat).affirms("guidance_ultrasound")
    one = q.replace(" A CT of the chest was reviewed.", "")
    assert read_frame(one, cat).affirms("guidance_ultrasound")


def test_a_site_said_apart_from_the_service_only_leaves_the_code_unverified(cat) -> None:
    # the fistula is the patient's, not what was studied: not removed, not verified
    q = "Upper extremity venous duplex of the left arm for swelling; she has a right arm AV fistula."
    assert status(cat, q, "93971")["93971"] is CodeStatus.NOT_VERIFIED


def test_a_name_said_again_more_closely_is_one_vessel(cat) -> None:
    q = ("Left iliac vein stenting. IVUS of the left common iliac vein before and after the "
         "stent.")
    assert status(cat, q, "37252")["37252"] in SHOWN
    assert status(cat, q, "37252", "37253")["37253"] is not CodeStatus.VERIFIED


@pytest.mark.parametrize(("question", "n"), [
    ("IVUS of the LAD during PCI; no other vessel was imaged.", 1),
    ("IVUS of the LAD, no additional vessels imaged.", 1),
    ("IVUS of the LAD and a second vessel.", 2),
])
def test_no_other_vessel_counts_one(cat, question, n) -> None:
    assert read_frame(question, cat).count_of("vessel") == n


def test_no_other_vessel_rules_out_the_additional_vessel_code(cat) -> None:
    q = "During PCI of the LAD I used IVUS to size the stent; no other vessel was imaged."
    assert status(cat, q, "92978")["92978"] in SHOWN
    assert status(cat, q, "92979")["92979"] is CodeStatus.REMOVED


def test_an_earlier_study_is_history(cat) -> None:
    q = ("Twin pregnancy at 30 weeks, complete exam done earlier in the pregnancy; today a "
         "follow-up scan of growth and fluid in both fetuses.")
    assert facts(cat, q)["complete"] is Status.HISTORICAL
    assert status(cat, q, "76816")["76816"] in SHOWN
    assert status(cat, q, "76805")["76805"] is not CodeStatus.VERIFIED


@pytest.mark.parametrize(("question", "concept", "said"), [
    # a determiner and 'code' after the word: a code's name, not what was done
    ("Known AAA, surveillance scan of the aorta only. Can I use the screening code?",
     "screening", Status.HYPOTHETICAL),
    # no determiner: the study asked a code for
    ("Medicare AAA screening ultrasound code?", "screening", Status.AFFIRMED),
    # a cue is not a study's name: 'an unlisted code' is what is asked for
    ("Is there an unlisted ultrasound code?", "unlisted", Status.AFFIRMED),
])
def test_a_code_named_by_its_word(cat, question, concept, said) -> None:
    assert facts(cat, question)[concept] is said


def test_no_saved_image_leaves_the_unguided_joint_code(cat) -> None:
    q = "US used for R shoulder inj but no perm img saved, no US rpt"
    assert status(cat, q, "20610")["20610"] is CodeStatus.VERIFIED
    assert status(cat, q, "20611")["20611"] is CodeStatus.REMOVED
    # with the image saved, the guided code is the one
    q2 = "Ultrasound-guided shoulder injection, image saved and report written."
    assert status(cat, q2, "20610")["20610"] is not CodeStatus.VERIFIED


def test_a_lesion_named_keeps_the_parenchyma_elastography_unverified(cat) -> None:
    q = ("Limited right breast US with elastography: targeted solid mass at 10 o'clock, shear "
         "wave elastography of the mass.")
    assert status(cat, q, "76981")["76981"] is CodeStatus.NOT_VERIFIED
    assert status(cat, "Liver shear wave elastography for fibrosis staging.",
                  "76981")["76981"] is CodeStatus.VERIFIED


def test_ultrasound_tried_and_not_used_is_no_study(cat) -> None:
    q = ("CT-guided fine needle aspiration of one lung lesion; ultrasound was tried first but "
         "could not see the lesion, so no ultrasound guidance was used.")
    assert status(cat, q, "10009")["10009"] in SHOWN
    assert status(cat, q, "76604")["76604"] is CodeStatus.NOT_VERIFIED
    # a study of a site said in so many words stays a study
    q2 = "Chest ultrasound showed a large effusion. Thoracentesis by landmarks, no ultrasound."
    assert status(cat, q2, "76604")["76604"] is CodeStatus.VERIFIED


def test_a_side_named_twice_is_not_one_side(cat) -> None:
    assert read_frame("Right kidney 11.2 cm and left 11.0 cm.", cat).sides is None
    # a side said of history is not today's
    assert read_frame("History of DVT in the left leg, today's venous duplex of the right "
                      "leg.", cat).sides == "one"


def test_an_alternative_is_a_code_the_question_could_mean(cat) -> None:
    from guardrails.question.fit import fitter_for

    q = ("Bedside thoracentesis. A quick handheld ultrasound look confirmed the pocket, but no "
         "images were retained. 800 mL removed.")
    alts = fitter_for(cat).alternatives(read_frame(q, cat), "76604")
    # no 3D rendering, contrast study or catch-all follow-up code the question never names
    assert not set(alts) & {"76376", "76377", "76978", "76970"}
