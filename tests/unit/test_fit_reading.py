"""Reading and fit of questions in words the suites do not use: each test names the data or
rule it rests on (vocabulary, a code's description, an element set), not a suite case."""

from __future__ import annotations

import pytest
from reading_helpers import facts, status

from guardrails.checker import check
from guardrails.question import Status, read_frame
from guardrails.report import CodeStatus, Draft, DraftCode
from knowledge.catalog import build_catalog


@pytest.fixture(scope="module")
def cat():
    return build_catalog()




# ---------------------------------------------------------------- assertion status
def test_an_adjective_of_time_defers_its_noun_only(cat):
    # 'for later excision': the excision waits, the seed was placed today
    f = facts(cat, "US-guided placement of a radioactive seed into a breast mass for later "
                   "excision.")
    assert f["localization"] is Status.AFFIRMED
    assert f["breast"] is Status.AFFIRMED
    f = facts(cat, "Magnetic seeds placed in two breast lesions, for a future lumpectomy.")
    assert f["localization"] is Status.AFFIRMED
    assert f["surgery"] is Status.HYPOTHETICAL
    # the bare word still defers what it is said of
    assert facts(cat, "Knee injection done today; a biopsy later.")["biopsy"] \
        is Status.HYPOTHETICAL


def test_a_catheter_drainage_of_the_pleura_is_the_pleural_catheter(cat):
    # vocabulary: pleural_catheter is formed by catheter_drainage at the pleura
    q = "Non-tunneled pleural drainage catheter inserted with ultrasound guidance."
    assert status(cat, q, "32557")["32557"] is CodeStatus.VERIFIED
    assert status(cat, q, "32555")["32555"] is not CodeStatus.VERIFIED


def test_drained_with_a_needle_is_an_aspiration(cat):
    q = "Wrist ganglion drained with a needle; no imaging."
    assert status(cat, q, "20612")["20612"] is CodeStatus.VERIFIED


def test_a_side_line_said_by_its_vein(cat):
    q = "No ultrasound was used; the right IJ line was placed by landmarks, adult."
    assert status(cat, q, "36556")["36556"] is CodeStatus.VERIFIED
    assert status(cat, q, "76937")["76937"] is not CodeStatus.VERIFIED


def test_one_side_said_with_only(cat):
    assert read_frame("Carotid duplex, right side only, for a bruit.", cat).sides == "one"
    assert read_frame("Carotid duplex of the left only.", cat).sides == "one"
    assert status(cat, "Carotid duplex, right side only.", "93882")["93882"] \
        is CodeStatus.VERIFIED


def test_localization_devices_by_their_names(cat):
    q = "Two magnetic seeds placed into two separate breast lesions under sonographic guidance."
    got = status(cat, q, "19285", "19286")
    assert got == {"19285": CodeStatus.VERIFIED, "19286": CodeStatus.VERIFIED}


# ---------------------------------------------------------------- approach
def test_an_approach_its_abbreviation_implies_rules_out_another(cat):
    # 'TVUS' implies transvaginal; 76857 is a transabdominal study
    q = "TVUS only for an ovarian cyst follow-up."
    assert status(cat, q, "76857")["76857"] is CodeStatus.REMOVED
    assert status(cat, q, "76830")["76830"] is CodeStatus.VERIFIED


def test_the_transrectal_or_transvaginal_drainage_needs_its_approach_said(cat):
    # 49407's description: by the rectum or the vagina (approach endocavitary)
    q = "Percutaneous drain placed into a pelvic abscess with US guidance."
    assert status(cat, q, "49407")["49407"] is CodeStatus.NOT_VERIFIED
    q = "Transvaginal drainage catheter placed into a pelvic abscess with ultrasound."
    assert status(cat, q, "49407")["49407"] is CodeStatus.VERIFIED
    assert status(cat, q, "49406")["49406"] is not CodeStatus.VERIFIED


# ---------------------------------------------------------------- guidance included
def test_a_guidance_code_the_procedure_lists_as_included_is_not_added(cat):
    # 49405 lists 75989 among the guidance it includes (codes-procedures.yaml)
    q = "Catheter drainage of a liver abscess with ultrasound guidance."
    assert status(cat, q, "75989")["75989"] is not CodeStatus.VERIFIED
    assert status(cat, q, "49405")["49405"] is CodeStatus.VERIFIED


# ---------------------------------------------------------------- counts
def test_veins_named_one_by_one_are_counted_not_verified_for_one_vein(cat):
    q = "Polidocanol microfoam injected into the GSV and the SSV of the right leg with ultrasound."
    got = status(cat, q, "36465", "36466")
    assert got["36466"] is CodeStatus.VERIFIED
    assert got["36465"] is CodeStatus.NOT_VERIFIED  # two names may be one vein: not removed
    # one vein said twice is one vein
    q = "Foam sclerotherapy of the GSV (great saphenous vein) with ultrasound, Varithena."
    assert status(cat, q, "36465")["36465"] is CodeStatus.VERIFIED


# ---------------------------------------------------------------- extent from elements
def test_every_element_of_the_complete_exam_named_rules_out_the_limited_code(cat):
    # element set complete_76700 (documentation.yaml)
    q = ("Findings: liver, gallbladder, CBD, pancreas, spleen, both kidneys, aorta and IVC "
         "visualized. Impression: hepatic steatosis.")
    got = status(cat, q, "76705")
    assert got["76705"] is not CodeStatus.VERIFIED
    assert status(cat, q, "76700")["76700"] is CodeStatus.VERIFIED
    # one organ of the set: the complete code is not verified
    assert status(cat, "Ultrasound of the gallbladder only.", "76700")["76700"] \
        is not CodeStatus.VERIFIED


def test_elements_that_are_no_sites_count_against_one_element(cat):
    # complete_93970 names compression and Doppler besides the veins: naming them is not
    # 'one element only'
    q = ("Bilateral lower extremity venous duplex: compression, color and spectral Doppler "
         "of the femoral, popliteal and calf veins. No DVT.")
    assert status(cat, q, "93970")["93970"] is CodeStatus.VERIFIED


# ---------------------------------------------------------------- replacements
def test_a_ruled_out_code_is_not_replaced_by_a_service_the_question_never_names(cat):
    # a breast biopsy code drafted for an abdominal study: removed, and not replaced by the
    # liver biopsy code (no biopsy is said)
    draft = Draft(codes=(DraftCode("19083"),),
                  context="Complete abdominal ultrasound: liver, gallbladder, pancreas.")
    report = check(draft, cat)
    assert report.verdict_for("19083").status is CodeStatus.REMOVED
    assert not any(f.fix is not None and "47000" in f.fix.add for f in report.findings)


# ---------------------------------------------------------------- more of the question read
def test_what_may_follow_today_is_not_done_today(cat):
    q = ("Limited static infant hip ultrasound with no manipulation; a dynamic study may follow "
         "at 3 months if abnormal.")
    assert facts(cat, q)["manipulation"] is not Status.AFFIRMED
    assert status(cat, q, "76885")["76885"] is not CodeStatus.VERIFIED
    # 'to follow' is also 'to monitor': not a cue ('duplex to follow a repaired AAA')
    assert facts(cat, "Complete aorto-iliac duplex to follow a repaired AAA.")["duplex"] \
        is Status.AFFIRMED


def test_organs_said_of_the_fetus_on_an_anatomy_survey_are_the_fetus(cat):
    q = "The fetus shows a normal four-chamber heart on the anatomy survey at 20 weeks, complete."
    assert status(cat, q, "93306")["93306"] is not CodeStatus.VERIFIED
    # the mother's own echo in pregnancy stays hers
    q = "Maternal echo for shortness of breath at 30 weeks pregnant, complete TTE with Doppler."
    assert status(cat, q, "93306")["93306"] is CodeStatus.VERIFIED


def test_a_guided_joint_code_needs_its_recording_when_the_question_denies_it(cat):
    # 20611 includes the permanent recording (image_saved: with, its description)
    q = "Shoulder injection guided by ultrasound but no image was recorded."
    assert status(cat, q, "20611")["20611"] is CodeStatus.REMOVED
    q = "Knee injected with steroid under US guidance; image saved."
    assert status(cat, q, "20611")["20611"] is CodeStatus.VERIFIED


def test_a_note_names_the_site_in_its_indication_and_the_act_later(cat):
    q = ("PROCEDURE NOTE. Indication: symptomatic right pleural effusion. The needle was "
         "advanced under real-time ultrasound visualization; 1.2 L serous fluid removed.")
    assert status(cat, q, "32555")["32555"] is CodeStatus.VERIFIED
    # a sentence that names its own site keeps it: a knee aspiration is no thoracentesis
    q = "Indication: pleural effusion on CXR. Today the knee was aspirated under ultrasound."
    assert status(cat, q, "32555")["32555"] is not CodeStatus.VERIFIED


def test_the_ankle_brachial_index_is_a_study_of_the_legs(cat):
    q = "ABI at rest and after treadmill exercise."
    assert status(cat, q, "93924")["93924"] is CodeStatus.VERIFIED


def test_a_stress_echo_said_with_its_kind_of_stress(cat):
    q = ("Exercise stress echo on the treadmill with continuous ECG monitoring, supervised by "
         "me, interpretation and report.")
    got = status(cat, q, "93351", "93306")
    assert got["93351"] is CodeStatus.VERIFIED
    assert got["93306"] is not CodeStatus.VERIFIED


def test_a_biopsy_said_as_needle_sampling(cat):
    q = "US-guided 18-gauge needle sampling of a liver lesion, three specimens sent to pathology."
    got = status(cat, q, "47000", "76942")
    assert got == {"47000": CodeStatus.VERIFIED, "76942": CodeStatus.VERIFIED}


def test_the_foam_codes_are_for_the_saphenous_trunks(cat):
    # 36465/36466: truncal veins (vocabulary truncal_vein: the saphenous trunks)
    q = "Sclerosant injected into a single incompetent perforator vein of the leg."
    got = status(cat, q, "36465", "36470")
    assert got == {"36465": CodeStatus.REMOVED, "36470": CodeStatus.VERIFIED}
    q = "Ultrasound-guided injection of foam into an incompetent great saphenous vein."
    assert status(cat, q, "36465")["36465"] is CodeStatus.VERIFIED


def test_a_tunneled_pleural_drain(cat):
    # 32556 is the non-tunneled indwelling catheter (features tunneled: without)
    q = "Tunneled pleural drain placed for recurrent malignant effusion."
    got = status(cat, q, "32550", "32556")
    assert got == {"32550": CodeStatus.VERIFIED, "32556": CodeStatus.REMOVED}
    # the site a procedure word names stays when a longer term takes the words
    q = "I placed a tunneled pleural catheter with a cuff using ultrasound."
    assert status(cat, q, "32550")["32550"] is CodeStatus.VERIFIED


# ---------------------------------------------------------------- what a review found
def test_a_cue_after_a_service_reaches_only_the_words_before_it(cat):
    # 'if needed' defers the injection, not the aspiration said before it
    q = "Ultrasound-guided knee aspiration with steroid injection if needed."
    assert status(cat, q, "20611")["20611"] is CodeStatus.VERIFIED
    # 'later this afternoon' is later, whatever 'for' is before it
    q = "Ultrasound-guided thoracentesis is booked for later this afternoon."
    assert status(cat, q, "32555")["32555"] is not CodeStatus.VERIFIED
    # 'discussed' is not a cue: a consent talk comes before the procedure done
    q = ("After we discussed the risks the patient consented and ultrasound-guided "
         "paracentesis was performed with 4 L removed.")
    assert status(cat, q, "49083")["49083"] is CodeStatus.VERIFIED


def test_an_approach_said_of_one_study_leaves_another_studys_code(cat):
    # two studies, the first by its usual approach: the transabdominal code stays
    for q in ("Complete pelvic ultrasound and transvaginal ultrasound for pelvic pain, "
              "not pregnant.",
              "Complete pelvic ultrasound and TVUS for pelvic pain in a non-pregnant woman."):
        assert status(cat, q, "76856")["76856"] is CodeStatus.VERIFIED
    q = "Complete OB ultrasound at 20 weeks with TVUS for cervical length."
    assert status(cat, q, "76805")["76805"] is CodeStatus.VERIFIED
    # one study, said with its approach: the other approach's code is ruled out
    q = "Transvaginal pelvic ultrasound for postmenopausal bleeding."
    assert status(cat, q, "76856")["76856"] is CodeStatus.REMOVED


def test_a_guidewire_beside_a_breast_diagnosis_is_no_localization(cat):
    q = ("PICC placed in the right basilic vein over a guide wire under ultrasound guidance "
         "in a patient with breast cancer.")
    assert "localization" not in facts(cat, q)
    # a seed placed in the breast is
    q = "A magnetic seed was placed in the breast lesion under ultrasound."
    assert status(cat, q, "19285")["19285"] is CodeStatus.VERIFIED


def test_a_catheter_of_a_named_tap_is_not_an_indwelling_catheter(cat):
    q = ("Ultrasound-guided thoracentesis using a pigtail catheter with 1.5 L removed and the "
         "catheter withdrawn at the end.")
    assert status(cat, q, "32557")["32557"] is not CodeStatus.VERIFIED
    assert "pleural_catheter" not in facts(cat, q)


def test_a_diagnostic_trus_that_measures_the_volume_is_still_76872(cat):
    q = "Transrectal ultrasound of the prostate for elevated PSA; prostate volume 48 cc."
    assert status(cat, q, "76872")["76872"] is CodeStatus.VERIFIED


def test_a_plain_saphenous_vein_is_a_truncal_vein(cat):
    q = "Ultrasound-guided foam sclerotherapy of the incompetent right saphenous vein."
    assert status(cat, q, "36465")["36465"] is CodeStatus.VERIFIED


def test_services_no_ultrasound_code_describes_are_outside(cat):
    from guardrails.fit import outside
    for q in ("Which E/M level for an established patient office visit of 30 minutes?",
              "Knee scope w/ partial medial menisectomy - CPT?",
              "Screening mammogram of both breasts with 3D tomosynthesis. What code?"):
        assert outside(cat, q), q
    # an ultrasound beside a visit is in scope
    assert not outside(cat, "Office visit plus a limited bedside ultrasound of the heart.")


def test_a_femoral_psa_repaired_by_probe_pressure(cat):
    # 'femoral PSA' is the pseudoaneurysm; 'post-cath' names the earlier catheterization only
    q = "US-guided compression repair femoral PSA post-cath - CPT?"
    assert status(cat, q, "76936")["76936"] is CodeStatus.VERIFIED
    q = ("I fixed a femoral pseudoaneurysm after a cath by pressing on it with the ultrasound "
         "probe. What do I bill?")
    assert status(cat, q, "76936")["76936"] is CodeStatus.VERIFIED
    # 'PSA' alone in a prostate question stays the antigen
    assert "pseudoaneurysm" not in facts(cat, "TRUS of the prostate for a raised PSA.")


# ---------------------------------------------------------------- batch 3-4 probes
def test_the_ac_joint_is_an_intermediate_joint(cat):
    # CPT lists the acromioclavicular joint among the intermediate joints (supercoder_2061x)
    q = "Injection into the AC joint, ultrasound-guided, image saved."
    got = status(cat, q, "20606", "20611")
    assert got["20606"] is CodeStatus.VERIFIED
    assert status(cat, q, "20611")["20611"] is not CodeStatus.VERIFIED


def test_a_header_answered_no_is_denied_but_a_finding_is_not(cat):
    f = facts(cat, "Thyroid US: no nodules.")
    assert f["thyroid"] is Status.AFFIRMED
    assert facts(cat, "TTE complete. Doppler: no.")["doppler"] is Status.NEGATED


def test_w_slash_o_is_without(cat):
    assert facts(cat, "TTE w/o doppler, complete 2D.")["doppler"] is Status.NEGATED
    assert status(cat, "TTE w/o doppler, complete 2D.", "93307")["93307"] \
        is CodeStatus.VERIFIED


def test_a_sided_limb_abbreviation_says_one_side(cat):
    assert read_frame("RLE arterial duplex.", cat).sides == "one"
    assert read_frame("BLE venous duplex.", cat).sides == "both"
    assert status(cat, "DVT study LUE.", "93971")["93971"] is CodeStatus.VERIFIED


def test_a_unilateral_or_limited_code_fits_a_complete_study_of_one_side(cat):
    # 93971 is the study of one side or a limited study; 93970 is both sides
    q = "Today: left lower extremity venous duplex, complete, negative."
    assert status(cat, q, "93971")["93971"] is CodeStatus.VERIFIED
    assert status(cat, q, "93970")["93970"] is not CodeStatus.VERIFIED


def test_a_few_organs_of_a_large_set_are_not_the_complete_exam(cat):
    q = ("Indication: RUQ pain. Technique: grayscale images of the liver, gallbladder and "
         "common bile duct. Findings: cholelithiasis.")
    assert status(cat, q, "76700")["76700"] is CodeStatus.NOT_VERIFIED
    assert status(cat, q, "76705")["76705"] is CodeStatus.VERIFIED


def test_kidneys_and_bladder_make_the_complete_retroperitoneal_exam(cat):
    # element set complete_76770: also_complete [kidneys, bladder] (legalclarity_76775)
    q = "Renal US bilat w/ bladder."
    assert status(cat, q, "76770")["76770"] is CodeStatus.VERIFIED
    assert status(cat, q, "76775")["76775"] is not CodeStatus.VERIFIED
    # one kidney and the bladder stay the limited study
    assert status(cat, "Renal US of the left kidney and bladder.", "76775")["76775"] \
        is CodeStatus.VERIFIED


def test_a_rotator_cuff_study_is_a_shoulder_joint_study(cat):
    q = "Exam: US of the right shoulder, non-vascular, complete rotator cuff evaluation."
    assert facts(cat, q)["vessel"] is Status.NEGATED
    assert status(cat, q, "76881")["76881"] is CodeStatus.VERIFIED


def test_breast_cyst_aspiration_is_19000_with_its_guidance(cat):
    q = "Procedure: US-guided aspiration of a breast cyst, single cyst."
    got = status(cat, q, "19000", "76942")
    assert got == {"19000": CodeStatus.VERIFIED, "76942": CodeStatus.VERIFIED}
    assert status(cat, q, "19083")["19083"] is not CodeStatus.VERIFIED


def test_lumbar_puncture_guidance_is_unsettled_not_removed(cat):
    # pairs.yaml lumbar_puncture_ultrasound_unsettled: review, never a removal
    q = "Procedure: US-guided lumbar puncture, L3-4."
    got = status(cat, q, "62270", "76942")
    assert got["76942"] is CodeStatus.NOT_VERIFIED


# ---------------------------------------------------------------- batch 5-6 probes
def test_a_recommendation_after_its_object_is_planned(cat):
    f = facts(cat, "BREAST US RIGHT. 8 mm mass. Biopsy recommended.")
    assert f["biopsy"] is Status.HYPOTHETICAL
    assert f["breast"] is Status.AFFIRMED
    # said before its object, the recommendation still reaches forward
    assert facts(cat, "Breast US done. We recommended a biopsy.")["biopsy"] \
        is Status.HYPOTHETICAL


def test_a_time_from_now_is_planned_and_a_gestational_age_is_not(cat):
    f = facts(cat, "Complete pelvic US today, repeat in 6 weeks.")
    assert f["pelvis"] is Status.AFFIRMED
    assert facts(cat, "OB ultrasound at 20 weeks, anatomy survey.")["pregnant"] \
        is Status.AFFIRMED


def test_a_limited_code_is_not_shown_by_most_organs_of_the_complete_exam(cat):
    q = ("Report: 'PELVIC US, TRANSABDOMINAL AND TRANSVAGINAL. Uterus and both ovaries "
         "seen.' Codes?")
    assert status(cat, q, "76857")["76857"] is CodeStatus.NOT_VERIFIED
    # one organ said: the limited code stands
    assert status(cat, "Pelvic ultrasound of the right ovary only.", "76857")["76857"] \
        is CodeStatus.VERIFIED


def test_everyday_words_for_fluid_needles_and_guidance(cat):
    q = "Drained fluid around the lung with a needle under ultrasound."
    assert status(cat, q, "32555")["32555"] is CodeStatus.VERIFIED
    q = "Took a sample from a lump in the neck with a thin needle while watching on ultrasound."
    assert status(cat, q, "10005")["10005"] is CodeStatus.VERIFIED
    assert status(cat, q, "76942")["76942"] is not CodeStatus.VERIFIED
    q = "Drew off fluid from his elbow bursa with the probe guiding me, image saved."
    assert status(cat, q, "20606")["20606"] is CodeStatus.VERIFIED


def test_a_drainage_done_with_a_needle_is_an_aspiration(cat):
    # vocabulary: aspiration formed_by [drainage, by_needle]; a composed aspiration composes
    # further (at the peritoneum: the paracentesis)
    q = "Ultrasound-guided drainage of ascites with a needle, 4 L removed."
    assert status(cat, q, "49083")["49083"] is CodeStatus.VERIFIED
    q = "I drained a ganglion cyst on the back of the wrist with a needle."
    assert status(cat, q, "20612")["20612"] is CodeStatus.VERIFIED
    # without the needle, a drainage stays unsure (not verified, not removed)
    assert status(cat, "I drained a ganglion cyst of the wrist.", "20612")["20612"] \
        is CodeStatus.NOT_VERIFIED


def test_a_question_answered_no_is_denied_and_the_answer_is_not(cat):
    q = ("Tunneled dialysis catheter? No - a non-tunneled right IJ central venous catheter "
         "with US guidance, adult.")
    f = facts(cat, q)
    assert f["tunneled"] is Status.NEGATED
    assert f["central_venous_catheter"] is Status.AFFIRMED
    assert status(cat, q, "36556")["36556"] is CodeStatus.VERIFIED
    assert facts(cat, "Was ultrasound used? No.")["ultrasound"] is Status.NEGATED
    # 'No' as a determiner still negates what follows
    assert facts(cat, "Knee injection. No ultrasound was used.")["ultrasound"] \
        is Status.NEGATED
    # the answer's own words are not denied by its 'No'
    f = facts(cat, "Was ultrasound used? No, a landmark technique; knee injection.")
    assert f["ultrasound"] is Status.NEGATED
    assert f["guidance_none"] is Status.AFFIRMED


def test_a_probe_placed_with_only_beside_it_is_the_placement_alone(cat):
    # vocabulary: probe_placement_only formed_by [probe_placement, only]
    q = "I placed the TEE probe for the cardiologist, nothing else."
    assert status(cat, q, "93313")["93313"] is CodeStatus.VERIFIED
    assert status(cat, q, "93312")["93312"] is not CodeStatus.VERIFIED
    # placing the probe is part of the complete study
    q = "I placed the TEE probe and interpreted the study."
    assert status(cat, q, "93312")["93312"] is CodeStatus.VERIFIED


# ---------------------------------------------------------------- catalog facts, 2026-12
def test_a_bladder_scanner_volume_is_51798_not_an_imaging_study(cat):
    # 51798 (cms_A57050, codingahead_51798): a non-imaging volume; imaging codes need images
    q = "Bladder scan for post-void residual with a portable device."
    got = status(cat, q, "51798")
    assert got["51798"] is CodeStatus.VERIFIED
    for code in ("76857", "76775"):
        assert status(cat, q, code)[code] is not CodeStatus.VERIFIED
    q = "Limited pelvic ultrasound for post-void residual with images and a report."
    assert status(cat, q, "76857")["76857"] is CodeStatus.VERIFIED
    # a pulse volume recording is not a bladder volume
    assert status(cat, "Pulse volume recordings of both legs.", "51798")["51798"] \
        is not CodeStatus.VERIFIED


def test_an_endoscopic_study_is_not_the_abdominal_ultrasound(cat):
    # 76700/76705 are studies through the abdominal wall; EUS is 76975 (codingahead_eus_blog)
    q = "Endoscopic ultrasound of the pancreas, supervision and interpretation."
    assert status(cat, q, "76975")["76975"] is CodeStatus.VERIFIED
    assert status(cat, q, "76705")["76705"] is not CodeStatus.VERIFIED
    assert status(cat, "Limited RUQ ultrasound for gallstones.", "76705")["76705"] \
        is CodeStatus.VERIFIED


def test_a_volume_study_for_brachytherapy_is_76873_not_76872(cat):
    # aapc_uro_brachy_steps: the planning volume study is 76873
    q = "Prostate volume study by TRUS for brachytherapy planning."
    assert status(cat, q, "76873")["76873"] is CodeStatus.VERIFIED
    assert status(cat, q, "76872")["76872"] is not CodeStatus.VERIFIED


def test_a_nerve_block_is_not_a_joint_injection(cat):
    # joint codes (20600-20611) are for a joint or bursa; nerve blocks are 644xx
    for q, block in (("US-guided genicular NB, R knee - CPT?", "64454"),
                     ("US-guided suprascapular nerve block for a frozen shoulder, image "
                      "stored.", "64418")):
        assert status(cat, q, "20611")["20611"] is not CodeStatus.VERIFIED
        assert status(cat, q, block)[block] is CodeStatus.VERIFIED
    # both services said apart: the joint code is not verified, never removed
    q = ("Ultrasound-guided right knee injection and a genicular nerve block in the same "
         "visit, images saved.")
    assert status(cat, q, "20611")["20611"] is CodeStatus.NOT_VERIFIED


def test_a_diagnostic_code_for_a_procedure_question_that_names_no_study(cat):
    # the question speaks of a procedure only: a diagnostic study code is not verified
    assert status(cat, "Trigger point injections, 2 muscles.", "76882")["76882"] \
        is CodeStatus.NOT_VERIFIED
    q = ("Procedure: trigger point injections, 2 muscles, no ultrasound. A diagnostic shoulder "
         "ultrasound was done at another facility last week.")
    assert status(cat, q, "76882")["76882"] is not CodeStatus.VERIFIED
    # a report that lists organs is a study, procedure word or not
    q = "Findings: liver, gallbladder, CBD, pancreas, spleen, both kidneys, aorta and IVC normal."
    assert status(cat, q, "76700")["76700"] is CodeStatus.VERIFIED


def test_the_infant_head_study_is_of_the_brain(cat):
    # 76506 is the brain (echoencephalography); the head and neck soft tissues are 76536
    q = "Soft tissue ultrasound of the head and neck (parotid) - which CPT code?"
    assert status(cat, q, "76506")["76506"] is not CodeStatus.VERIFIED
    assert status(cat, q, "76536")["76536"] is CodeStatus.VERIFIED
    assert status(cat, "Cranial ultrasound, newborn.", "76506")["76506"] is CodeStatus.VERIFIED


def test_a_study_beside_a_procedure_done_with_ultrasound_is_not_verified(cat):
    # NCCI Ch. IX: the ultrasound said with a procedure is likely its guidance
    q = "Cyanoacrylate adhesive closure of the great saphenous vein with ultrasound."
    assert status(cat, q, "76882")["76882"] is CodeStatus.NOT_VERIFIED
    assert status(cat, q, "36482")["36482"] is CodeStatus.VERIFIED
    # the study the question names for itself stays (the contrast injection is its own)
    q = ("Contrast ultrasound of two different liver lesions, with a separate microbubble "
         "injection for each.")
    assert status(cat, q, "76978")["76978"] is CodeStatus.VERIFIED


def test_a_service_being_planned_and_an_approach_said_after_its_study(cat):
    q = "Prostate volume study by transrectal ultrasound for brachytherapy planning."
    got = status(cat, q, "76873")
    assert got["76873"] is CodeStatus.VERIFIED
    assert status(cat, q, "76965")["76965"] is not CodeStatus.VERIFIED  # planned, not done
    assert status(cat, q, "76856")["76856"] is CodeStatus.REMOVED  # transrectal, not TA
