"""The encounter frame: each assertion status and each frame field, read with medspaCy."""

from __future__ import annotations

import pytest

from guardrails.question import Status, read_frame
from knowledge.catalog import load_catalog
from knowledge.schema import AgeBand

CAT = load_catalog()


def frame(q: str, history: str = ""):
    return read_frame(q, CAT, history)


def status_of(q: str, concept: str, history: str = "") -> set[Status]:
    return {f.status for f in frame(q, history).facts if f.concept == concept}


# ------------------------------------------------------------------ assertion status
@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("TTE without contrast, complete study.", "contrast"),
        ("No Doppler was performed during the echo.", "doppler"),
        ("Complete TTE, Doppler not performed.", "doppler"),
        ("Fetal survey at 20 weeks, no congenital anomalies seen.", "congenital"),
        ("Pelvic ultrasound, patient not currently pregnant.", "pregnant"),
        ("Knee injection by palpation, not ultrasound-guided.", "guidance_ultrasound"),
    ],
)
def test_negated_facts_are_not_affirmed(question, concept):
    f = frame(question)
    assert Status.NEGATED in status_of(question, concept)
    assert not f.affirms(concept)


def test_negated_guidance_names_the_technique_used():
    f = frame("Knee aspiration by landmarks, no imaging.")
    assert f.affirms("guidance_none")
    assert not f.affirms("guidance_ultrasound")


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("Ultrasound of the right upper quadrant today; repeat scan planned in 4 weeks.",
         "follow_up"),
        ("Thyroid ultrasound done; FNA scheduled for next week.", "fna"),
        ("Renal ultrasound today. Consider a CT if the kidneys are normal.", "ct"),
    ],
)
def test_planned_facts_are_hypothetical(question, concept):
    assert status_of(question, concept) == {Status.HYPOTHETICAL}
    assert not frame(question).affirms(concept)


def test_history_is_not_today_and_today_ends_it():
    q = "History of DVT in the left leg, today's venous duplex of the right leg."
    f = frame(q)
    assert status_of(q, "vein") >= {Status.HISTORICAL}
    # the study done today is affirmed
    assert f.affirms("duplex")
    assert f.sides == "one"


def test_prior_study_is_historical():
    q = "Prior abdominal ultrasound last year showed gallstones; today a limited RUQ scan."
    assert Status.HISTORICAL in status_of(q, "gallbladder")
    assert frame(q).affirms("ruq")


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("Twins at 22 weeks, complete exam; a detailed anatomy scan was not requested.",
         "detailed"),
        ("Complete echo, Doppler not recorded.", "doppler"),
        ("Knee injection. Ultrasound was not employed.", "ultrasound"),
    ],
)
def test_not_with_any_past_participle_denies_what_precedes(question, concept):
    # English passive negation, read by grammar (not + a past participle), not a word list
    assert status_of(question, concept) == {Status.NEGATED}


def test_a_service_considered_or_recommended_is_not_done():
    # the passive of consider, discuss, offer, recommend speaks of what precedes it
    q = "Paracentesis was considered but not done; limited abdominal ultrasound."
    assert status_of(q, "paracentesis") == {Status.HYPOTHETICAL}
    assert frame(q).affirms("limited")
    assert status_of("A biopsy was recommended for the nodule.", "biopsy") == {
        Status.HYPOTHETICAL}
    # 'but' still ends a denial's reach: the aspiration was done
    q = "The cyst was aspirated but not injected."
    assert frame(q).affirms("aspiration") and status_of(q, "injection") == {Status.NEGATED}


def test_a_participle_denied_by_its_own_cue():
    # 'not aspirated': the participle is the action, inside the cue's own words
    assert status_of("The knee was not aspirated.", "aspiration") == {Status.NEGATED}


@pytest.mark.parametrize(
    ("question", "done", "denied"),
    [
        ("The injection was not done by palpation: ultrasound guided the needle.",
         "injection", "guidance_none"),
        ("The biopsy was not performed under ultrasound guidance.", "biopsy",
         "guidance_ultrasound"),
        ("The thyroid biopsy was not done with ultrasound; palpation guided it.", "biopsy",
         "ultrasound"),
        # the means runs to the end of its clause
        ("The paracentesis was not performed under ultrasound guidance or any imaging.",
         "paracentesis", "guidance_imaging"),
    ],
)
def test_not_with_a_participle_and_a_means_denies_the_means_only(question, done, denied):
    # 'not done by palpation' says how it was not done: the procedure is affirmed, the
    # means is denied, and what follows the means' own clause is not reached
    f = frame(question)
    assert f.affirms(done)
    assert status_of(question, denied) == {Status.NEGATED}
    if "ultrasound guided the needle" in question:
        assert f.affirms("guidance_ultrasound")


@pytest.mark.parametrize(
    ("question", "denied", "done"),
    [
        ("This was not a blind injection; ultrasound guided it into the bursa.",
         "guidance_none", "injection"),
        ("Not a complete abdominal ultrasound: the liver only.", "complete", "sonography"),
        ("It was not a knee injection but a hip injection.", "knee", "injection"),
    ],
)
def test_not_a_modified_noun_denies_the_modifier_not_the_head(question, denied, done):
    # 'not a blind injection' presupposes the injection: the negation is of its first word
    assert Status.NEGATED in status_of(question, denied)
    assert frame(question).affirms(done)


def test_no_means_after_a_verb_of_seeing_or_an_agent():
    # after a verb of seeing, 'with Y' names the study that was done
    assert frame("The appendix was not visualized with ultrasound.").affirms("sonography")
    assert frame("Flow was not seen with color Doppler.").affirms("color_doppler")
    # an agent is no means: the act is denied
    assert status_of("ECG monitoring was not performed by me.", "ecg_monitoring") == {
        Status.NEGATED}


def test_not_a_single_noun_is_still_denied():
    assert status_of("Not a DVT study candidate; no biopsy either.", "biopsy") == {
        Status.NEGATED}
    assert status_of("Patient is not a candidate for biopsy.", "biopsy") == {Status.NEGATED}
    # a site first is no 'how': the whole phrase is denied
    assert status_of("There was not a renal biopsy.", "biopsy") == {Status.NEGATED}
    # the denied 'a knee' is no count of joints
    counts = frame("It was not a knee injection but a hip injection.").counts
    assert [c.text for c in counts] == ["a hip"]


def test_a_study_at_another_visit_is_historical():
    q = "Knee arthroscopy today. A knee ultrasound was done at a prior visit."
    assert status_of(q, "sonography") == {Status.HISTORICAL}
    q = "At her last visit a renal ultrasound was done; today a limited renal ultrasound."
    assert Status.HISTORICAL in status_of(q, "sonography")
    assert frame(q).affirms("limited") and frame(q).affirms("sonography")


def test_family_member_is_another_experiencer():
    q = "Family history of congenital heart disease; adult TTE for murmur."
    assert status_of(q, "congenital") == {Status.OTHER}
    assert not frame(q).affirms("congenital")


def test_fetal_heart_is_not_the_patients_heart():
    f = frame("Fetal echocardiography at 22 weeks for a suspected heart defect in the fetus.")
    assert f.affirms("fetal_heart")
    assert f.affirms("fetal_echo")
    assert Status.OTHER in status_of(f.text, "heart")
    assert not f.affirms("heart")


def test_fetal_findings_are_the_fetus_and_the_exam_stays_obstetric():
    q = "Fetal survey at 20 weeks: fetal kidneys show pyelectasis, heart looks normal."
    f = frame(q)
    assert not f.affirms("kidney") and not f.affirms("heart")
    assert f.affirms("fetus") and f.affirms("pregnant")


# ------------------------------------------------------------------ frame fields
@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("TTE for murmur", "transthoracic"),
        ("TEE before cardioversion", "transesophageal"),
        ("CVC in the right IJ", "central_venous_catheter"),
        ("CVC in the right IJ", "central_vein"),
        ("PICC placement", "picc"),
        ("US-guided FNA of a thyroid nodule", "fna"),
        ("US-guided FNA of a thyroid nodule", "guidance_ultrasound"),
        ("DVT study of the leg", "vein"),
        ("AAA screening", "aorta"),
        ("RUQ ultrasound", "ruq"),
        ("Transvaginal scan to confirm an IUP", "pregnant"),
        ("U/S of the knee", "ultrasound"),
        ("TVUS for pelvic pain", "transvaginal"),
        ("SI jt inj under fluoro", "sacroiliac_joint"),
        ("GON block under US", "occipital_nerve"),
    ],
)
def test_abbreviations_are_read(question, concept):
    assert frame(question).affirms(concept)


def test_us_the_pronoun_is_not_ultrasound():
    assert not frame("Can you tell us the code for a knee injection?").affirms("ultrasound")
    assert frame("Knee injection, US guided").affirms("guidance_ultrasound")


@pytest.mark.parametrize(
    ("question", "thing", "count"),
    [
        ("US-guided FNA of two thyroid nodules", "lesion", 2),
        ("One nodule in each lobe of the thyroid, FNA with ultrasound", "lesion", 2),
        ("Trigger point injections into three muscles", "muscle", 3),
        ("Trigger points in 4 muscles", "muscle", 4),
        ("Twin pregnancy at 22 weeks", "gestation", 2),
        ("IVUS of three vessels", "vessel", 3),
        ("Transforaminal injection at two levels", "level", 2),
        ("Biopsy of a single breast lesion", "lesion", 1),
        # any describing words between the number and the thing
        ("Core biopsies of two hypoechoic solid breast masses", "lesion", 2),
        ("Aspiration of 3 small complex cysts", "lesion", 3),
        ("Sclerotherapy of four incompetent varicose veins", "vessel", 4),
        # coder shorthand: a count written with 'x'
        ("IVUS x3 vessels during the intervention", "vessel", 3),
        ("US-guided FNA, thyroid nodules x 2", "lesion", 2),
        # lesions told apart by labels
        ("Lesion A at 10 o'clock and lesion B at 7 o'clock, each core biopsied", "lesion", 2),
        ("Nodule #1 in the right lobe and nodule #2 in the left, FNA of both", "lesion", 2),
    ],
)
def test_counts_in_words_and_digits(question, thing, count):
    assert frame(question).count_of(thing) == count


@pytest.mark.parametrize("question", [
    "Venous duplex today; repeat in 2 weeks the left leg veins.",  # a measure, not a count
    "Ablation of the GSV and an accessory saphenous vein.",  # an article is not 'only one'
    "Nodule measuring 2 cm on the right.",
    "Left breast 2 o'clock mass, core needle biopsy.",  # a clock-face position
    "Thyroid nodule 1 cm and cyst 2 cm seen; FNA.",  # a size after the noun, no label
])
def test_what_is_not_a_count(question):
    f = frame(question)
    assert f.count_of("vessel") is None and f.count_of("lesion") is None


def test_several_is_two_or_more():
    f = frame("Sclerotherapy of several incompetent veins of the left leg")
    assert f.count_of("vessel") == 2 and f.count_is_minimum("vessel")
    assert not frame("Sclerotherapy of two veins").count_is_minimum("vessel")


def test_a_planned_count_does_not_count():
    f = frame("FNA of one thyroid nodule; two more nodules will be biopsied next month.")
    assert f.count_of("lesion") == 1


@pytest.mark.parametrize(
    ("question", "band"),
    [
        ("PICC line in a 3-year-old", AgeBand.UNDER_5),
        ("Central line in a 45 yo", AgeBand.FIVE_AND_OLDER),
        ("Central line in a newborn", AgeBand.UNDER_5),
        ("PICC in an adult", AgeBand.FIVE_AND_OLDER),
        ("Central line, patient under 5", AgeBand.UNDER_5),
        ("Central line, no age given", None),
    ],
)
def test_age_band(question, band):
    assert frame(question).age_band is band


@pytest.mark.parametrize(
    ("question", "weeks"),
    [
        ("Complete OB ultrasound at 20 weeks", 20),
        ("Transvaginal ultrasound at 7 weeks pregnant", 7),
        ("OB ultrasound, GA 11 weeks, singleton", 11),
        ("Complete OB ultrasound in the first trimester", 10),
        ("OB ultrasound at 20 weeks; repeat in 4 weeks", 20),
        ("Knee pain for 4 weeks, knee ultrasound", None),
        # a stated age outranks a trimester word that agrees with it; one that disagrees
        # leaves the age unknown
        ("Second trimester OB ultrasound at 22 weeks", 22),
        ("First trimester scan, 12 weeks pregnant", 12),
        ("Third trimester growth scan at 22 weeks pregnant", None),
    ],
)
def test_gestational_age(question, weeks):
    assert frame(question).weeks == weeks


def test_a_follow_up_turn_reads_weeks_with_the_earlier_pregnancy():
    # the follow-up names no pregnancy word of its own; the earlier turn's OB exam does
    earlier = "Complete OB ultrasound of a singleton pregnancy at 20 weeks."
    assert frame("And what if it was at 12 weeks instead?", earlier).weeks == 12
    # without the pregnancy, 'at 12 weeks' is no gestational age
    assert frame("And what if it was at 12 weeks instead?").weeks is None


@pytest.mark.parametrize(
    ("question", "sides"),
    [
        ("Venous duplex of both legs", "both"),
        ("Bilateral lower extremity venous duplex", "both"),
        ("Venous duplex of one leg", "one"),
        ("Left leg venous duplex for DVT", "one"),
        ("Unilateral carotid duplex", "one"),
        ("Complete abdominal ultrasound", None),
        # a side said on its own is one side
        ("Venous duplex of the leg on the right side for swelling", "one"),
        ("Carotid duplex on the right only, after a prior left endarterectomy.", "one"),
        ("Left-sided breast ultrasound, targeted", "one"),
        ("Carotid duplex, stenosis on the left.", "one"),
        ("Duplex of the legs, swelling on the left and right", "both"),
    ],
)
def test_sides(question, sides):
    assert frame(question).sides == sides


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("Complete abdominal ultrasound", "complete"),
        ("Limited abdominal ultrasound", "limited"),
        ("Gallbladder only, what code?", "limited"),
        ("Only the right kidney was imaged", "limited"),
        ("Follow-up OB ultrasound for growth", "follow_up"),
        ("Detailed fetal anatomic exam", "detailed_fetal"),
    ],
)
def test_extent_words(question, concept):
    assert frame(question).affirms(concept)


def test_guidance_modality_and_marking():
    assert frame("Shoulder injection under fluoroscopy").affirms("guidance_fluoroscopy")
    assert frame("CT-guided lung biopsy").affirms("guidance_ct")
    f = frame("Ultrasound used only to mark the skin over the vein before a central line")
    assert f.affirms("marking_only")


def test_weak_words_give_inferred_guidance():
    f = frame("Knee injection with ultrasound")
    guided = [x for x in f.facts if x.concept == "guidance_ultrasound"]
    assert guided and all(x.inferred for x in guided)
    # a diagnostic scan with no procedure is not guidance
    assert not frame("Knee evaluated with ultrasound").affirms("guidance_ultrasound")


def test_features_present_and_absent():
    f = frame("TTE with spectral and color Doppler, no contrast")
    assert f.affirms("spectral_doppler") and f.affirms("color_doppler")
    assert f.denies("contrast")


def test_patient_facts():
    assert frame("Ultrasound of a transplanted kidney").affirms("transplant")
    assert frame("TTE in a child with congenital heart disease").affirms("congenital")


def test_follow_up_turn_replaces_what_it_says_and_keeps_the_rest():
    f = frame("What if it was done under fluoroscopy instead?",
              history="Knee injection with ultrasound guidance - code?")
    assert f.affirms("guidance_fluoroscopy")
    assert not f.affirms("guidance_ultrasound")
    assert f.affirms("knee")


def test_code_numbers_and_spans():
    f = frame("Can I bill 20610 with 76942 for a knee injection?")
    assert f.codes == ("20610", "76942")
    knee = next(x for x in f.facts if x.concept == "knee")
    assert f.text[knee.span[0]:knee.span[1]].lower() == "knee"


def test_frame_is_read_once_per_question():
    q = "Limited RUQ ultrasound for gallstones"
    assert read_frame(q, CAT) is read_frame(q, CAT)


# ------------------------------------------------------------------ extent words kept
@pytest.mark.parametrize(
    ("question", "extent"),
    [
        ("Complete echo with Doppler and color flow, code?", "complete"),
        ("Limited echo for effusion.", "limited"),
        ("Limited bedside echo to look for a pericardial effusion.", "limited"),
        ("Focused cardiac ultrasound in the ED.", "limited"),
    ],
)
def test_an_extent_word_before_an_exam_is_read(question, extent):
    assert frame(question).affirms(extent)


def test_no_exam_term_swallows_an_extent_word():
    # A term such as "complete echo" (an extent word, then a term of the exam) is matched
    # whole, as the exam alone, and the extent would be lost: the two words are read apart.
    from guardrails.question.vocab import vocabulary_of

    v = vocabulary_of(CAT)

    def of_kind(term: str, *kinds: str) -> bool:
        return any(v.kinds[c] in kinds for c in v.terms.get(term, ()))

    bad = [
        term for term in v.terms
        if " " in term and of_kind(term.split(" ", 1)[0], "extent")
        and not of_kind(term, "extent") and of_kind(term.split(" ", 1)[1], "exam", "modality")
    ]
    assert bad == []


def test_a_vague_term_is_read_but_names_no_modality_alone():
    # "scan" is read as ultrasound, but is said of a CT or a DEXA too: a DEXA scan question
    # supports no diagnostic ultrasound code, an ultrasound scan question does.
    from guardrails.question.fit import fitter_for
    from guardrails.question.vocab import vocabulary_of

    v = vocabulary_of(CAT)
    assert {"scan", "scans", "scanned"} <= v.vague
    assert all(t in v.terms for t in v.vague)
    fitter = fitter_for(CAT)
    dexa = fitter.supported(read_frame("DEXA scan of the hip for osteoporosis.", CAT))
    us = fitter.supported(read_frame("Ultrasound scan of the right hip in an adult.", CAT))
    assert not any(CAT.codes[c].describes.service == "diagnostic" for c in dexa)
    assert any(CAT.codes[c].describes.service == "diagnostic" for c in us)


@pytest.mark.parametrize(
    ("question", "levels"),
    [
        ("Intercostal nerve blocks at T5 and T6.", 2),
        ("Facet injections at L4-L5 and L5-S1.", 2),
        ("Blocks at C5, C6 and C7.", 3),
        ("Facet injections L3-4 + L4-5 + L5-S1 under fluoroscopy", 3),
        ("Facet injections at L4-L5 only.", None),
    ],
)
def test_named_spinal_levels_are_counted(question, levels):
    assert frame(question).count_of("level") == levels


@pytest.mark.parametrize(
    ("question", "concept", "status"),
    [
        # an event after an earlier one is that event's time, not today's service
        ("Hematoma a week after the biopsy; today a limited ultrasound of the site.",
         "biopsy", Status.HISTORICAL),
        # a service someone else performed is not this claim's
        ("The TEE was done by another physician; I did the TTE.", "transesophageal",
         Status.OTHER),
    ],
)
def test_timing_and_other_performer_cues(question, concept, status):
    assert status in status_of(question, concept)
    assert not frame(question).affirms(concept)


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("US-guided thora for a pleural effusion", "thoracentesis"),
        ("Prostate ultrasound through the rectum", "transrectal"),
        ("Femoral nerve blk under ultrasound", "nerve_block"),
        ("Lumbar facet inj at two levels with fluoro", "facet_injection"),
        ("Stress echo; I supervised and watched the ECG throughout", "ecg_monitoring"),
    ],
)
def test_shorthand_is_read(question, concept):
    assert frame(question).affirms(concept)


@pytest.mark.parametrize(
    ("question", "limited"),
    [
        ("I only scanned the gallbladder today.", True),
        ("Abdominal ultrasound: the only finding in the liver was a cyst.", False),
        ("Not only the liver but the whole abdomen was scanned.", False),
        # 'only' reaches the site through the clause, not across punctuation
        ("I only looked at the one lump in her left breast.", True),
        ("Only one view was needed, then the whole breast was scanned.", False),
    ],
)
def test_only_before_a_site_says_limited(question, limited):
    assert frame(question).affirms("limited") is limited


@pytest.mark.parametrize(
    ("question", "pregnant"),
    [
        # a last menstrual period is recorded for any patient; a negative test negates
        ("Pelvic ultrasound for pain; LMP 3 weeks ago.", None),
        ("Transvaginal pelvic scan, negative pregnancy test.", False),
        ("Anatomy survey at 20 weeks, what code?", True),
    ],
)
def test_what_says_pregnant_and_what_does_not(question, pregnant):
    f = frame(question)
    if pregnant is None:
        assert not f.affirms("pregnant") and Status.NEGATED not in status_of(question, "pregnant")
    else:
        assert f.affirms("pregnant") is pregnant
        if not pregnant:
            assert Status.NEGATED in status_of(question, "pregnant")


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("Needle asp of a subcut seroma with US", "aspiration"),
        ("Needle asp of a subcut seroma with US", "soft_tissue"),
        ("Fem nerve block under ultrasound for a hip fracture", "femoral_nerve"),
    ],
)
def test_clinical_abbreviations_are_read(question, concept):
    assert frame(question).affirms(concept)


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("What if I skipped the Doppler entirely?", "doppler"),
        ("Complete TTE; the Doppler was left out.", "doppler"),
        ("Renal ultrasound, omitting the Doppler of the renal arteries.", "doppler"),
        ("Echo without contrast, forgoing the strain imaging.", "strain"),
    ],
)
def test_verbs_of_leaving_out_negate(question, concept):
    assert Status.NEGATED in status_of(question, concept)
    assert not frame(question).affirms(concept)


@pytest.mark.parametrize(
    ("question", "concept", "affirmed"),
    [
        # the words name the code asked about, not the service done
        ("Rescan of a known aneurysm. Is that the screening code 76706?", "screening", False),
        ("Gallbladder only; can I bill the complete code 76700?", "complete", False),
        ("Can I report 76700 (complete) for a gallbladder scan?", "complete", False),
        # said of the service, the same words are facts
        ("Screening ultrasound for AAA in a 67-year-old smoker: 76706?", "screening", True),
        ("Complete abdominal ultrasound, is it 76700?", "complete", True),
    ],
)
def test_words_that_describe_a_named_code_are_not_facts_of_the_service(
        question, concept, affirmed):
    assert frame(question).affirms(concept) is affirmed


def test_a_guidance_code_named_still_says_its_guidance_when_its_words_are_a_label():
    f = frame("Bill 76942 (ultrasound guidance) with the knee injection?")
    assert f.affirms("guidance_ultrasound")


@pytest.mark.parametrize(
    ("question", "complete"),
    [
        ("I did a full transthoracic echo with Doppler.", True),
        ("Full abdominal ultrasound of all the organs.", True),
        ("Pelvic ultrasound with a full bladder.", False),
    ],
)
def test_full_said_of_a_study_is_complete(question, complete):
    assert frame(question).affirms("complete") is complete


def test_a_full_bladder_is_a_preparation_not_the_organ_examined():
    f = frame("Pelvic ultrasound with a full bladder.")
    assert not any(x.concept == "bladder" for x in f.facts)


def test_a_rescan_is_a_follow_up():
    assert frame("Rescanning her known gallbladder polyp today.").affirms("follow_up")


@pytest.mark.parametrize(
    ("question", "compound"),
    [
        ("The L4-5 facet joints were injected under ultrasound.", "facet_injection"),
        ("I injected three cervical facet joints.", "facet_injection"),
        ("We aspirated fluid from the right pleural space.", "thoracentesis"),
        ("Ascites aspirated at the bedside.", "paracentesis"),
        ("Pericardial effusion aspirated under echo.", "pericardiocentesis"),
        ("Biopsy of a bone lesion in the iliac crest.", "bone_biopsy"),
    ],
)
def test_an_action_at_a_site_is_the_procedure_it_defines(question, compound):
    assert frame(question).affirms(compound)


@pytest.mark.parametrize(
    ("question", "compound"),
    [
        # not in one sentence, or not with the same status: not the compound
        ("Knee injected today. Lumbar facet arthropathy on the MRI.", "facet_injection"),
        ("Pleural effusion seen; no fluid was aspirated.", "thoracentesis"),
    ],
)
def test_an_action_and_a_site_apart_are_not_composed(question, compound):
    assert not frame(question).affirms(compound)


def test_a_site_defined_by_two_sites_is_read_from_both():
    # the nerves of the sacroiliac joint are the sacroiliac joint's nerves (64625's site)
    assert frame("RFA of the nerves to the sacroiliac joint.").affirms("sacroiliac_nerve")
    # a narrower nerve beside the site is that nerve, not the compound
    f = frame("Femoral nerve block for knee surgery.")
    assert not f.affirms("genicular_nerve") and f.affirms("femoral_nerve")


def test_a_short_word_names_its_procedure_only_beside_the_site():
    # 'para' beside ascites is a paracentesis; in an obstetric history it is parity
    assert frame("US-guided para for ascites.").affirms("paracentesis")
    assert not frame("G2 para 1 at 20 weeks, complete anatomy scan.").affirms("paracentesis")
    assert not frame("Para 2, here for a pelvic ultrasound.").affirms("paracentesis")
    # 'NB' beside a nerve is a nerve block; alone (nota bene, newborn) nothing
    assert frame("US-guided genicular NB, right knee.").affirms("nerve_block")
    assert not frame("NB: newborn, head ultrasound.").affirms("nerve_block")


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("Left kidney lower pole biopsied with a 16 g needle, two cores.", "core_biopsy"),
        ("Injected polidocanol foam into the great saphenous vein.", "sclerotherapy"),
        ("The GSV was closed with vein glue.", "adhesive_closure"),
        ("Bupivacaine injected around the suprascapular nerve.", "nerve_block"),
    ],
)
def test_procedure_words_said_as_verbs_drugs_or_at_a_site(question, concept):
    assert frame(question).affirms(concept)


def test_a_general_word_in_a_follow_up_keeps_the_earlier_specific_procedure():
    f = frame("What if I also sampled another nodule at the same visit?",
              history="Ultrasound-guided FNA of a thyroid nodule?")
    assert f.affirms("fna")
    # a different specific procedure now replaces the earlier one
    f = frame("What if it was a core biopsy instead?",
              history="Ultrasound-guided FNA of a thyroid nodule?")
    assert f.affirms("core_biopsy") and not f.affirms("fna")


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("Diagnostic tap of the belly fluid at the bedside.", "paracentesis"),
        ("Calcific tendinitis barbotage of the shoulder.", "procedure"),
        ("Ropivacaine infiltrated along the wound.", "injection"),
        ("800 mL of fluid was withdrawn from the pleural space.", "thoracentesis"),
    ],
)
def test_lay_words_for_a_site_and_needle_procedure_verbs(question, concept):
    assert frame(question).affirms(concept)


@pytest.mark.parametrize(
    ("question", "levels"),
    [
        ("Segmental pressures and PVR at thigh, calf and ankle, both legs.", 3),
        ("Pressures at the high thigh, low thigh, calf and ankle bilaterally.", 4),
        ("Ankle and toe pressures, both feet.", 2),
        ("ABI at the ankle only.", None),
    ],
)
def test_limb_levels_named_in_a_list_are_counted(question, levels):
    assert frame(question).count_of("level") == levels


@pytest.mark.parametrize("question", ["TVUS at 7 weeks to confirm an IUP.",
                                      "TRUS of the prostate for volume."])
def test_an_approach_abbreviation_names_the_ultrasound_study_too(question):
    # TVUS, TRUS: transvaginal / transrectal ultrasound, the approach and the study
    f = frame(question)
    assert f.affirms("sonography")
    assert any(x.kind == "approach" and x.affirmed for x in f.facts)


def test_an_axillary_lymph_node_is_a_node_in_the_axilla():
    from guardrails.question.vocab import vocabulary_of

    vocab = vocabulary_of(CAT)
    f = frame("Axillary lymph node core biopsy with ultrasound.")
    (site,) = [x.concept for x in f.affirmed("site")]
    assert vocab.is_a(site, "lymph_node") and vocab.is_a(site, "axilla")
    assert frame("Tendon sheath injection for trigger finger.").affirms("tendon_sheath")
