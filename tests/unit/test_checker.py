"""The checker: every web error caught, each rule family, each fix, the JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardrails.checker import check
from guardrails.repair import apply, check_and_repair
from guardrails.report import CodeStatus, Draft, DraftCode, OnFail, Overall, Severity
from knowledge.catalog import build_catalog

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "reference.json"


@pytest.fixture(scope="module")
def cat():
    return build_catalog()


def d(*lines: str, text: str = "") -> Draft:
    from guardrails.claims import parse_claim_line

    out = []
    for t in lines:
        ln = parse_claim_line(t)
        out.append(DraftCode(ln.code, ln.units, ln.modifiers))
    return Draft(codes=tuple(out), text=text)


def rules(report) -> set[str]:
    """The rule ids of the findings, and "fit" when a question-fit rule other than
    fit.unsupported fired (the question rules the code out, or speaks against it)."""
    out = {f.rule for f in report.findings}
    return out | {"fit" for r in out if r.startswith("fit.") and r != "fit.unsupported"}


def finding(report, rule: str, code: str | None = None):
    for f in report.findings:
        hit = f.rule == rule or (
            rule == "fit" and f.rule.startswith("fit.") and f.rule != "fit.unsupported")
        if hit and (code is None or code in f.codes):
            return f
    raise AssertionError(f"no {rule} for {code}: {[x.rule for x in report.findings]}")


# -- the 20 wrong claims from the web ----------------------------------------------------

WEB = [{"claim": c} for c in json.loads(FIXTURE.read_text())["web_error_claims"]]


def test_there_are_twenty_web_errors():
    assert len(WEB) == 20


def test_web01_joint_injection_20610_plus_76942(cat):
    r = check(WEB[0]["claim"], cat)
    f = finding(r, "pairs.bundled", "76942")
    assert f.severity is Severity.ERROR and f.fix and f.fix.add == ("20611",)
    out = check_and_repair(WEB[0]["claim"], cat)
    assert [c.code for c in out.draft.codes] == ["20611"]
    assert {v.code: v.status for v in out.verdicts} == {
        "20610": CodeStatus.REMOVED, "76942": CodeStatus.REMOVED, "20611": CodeStatus.CORRECTED}


def test_web02_20610_single_joint(cat):
    f = finding(check(WEB[1]["claim"], cat), "descriptor.meaning", "20610")
    assert "major joint" in f.message


def test_web03_20550_multiple_joints(cat):
    f = finding(check(WEB[2]["claim"], cat), "descriptor.meaning", "20550")
    assert "tendon" in f.message


def test_web04_76604_complete(cat):
    f = finding(check(WEB[3]["claim"], cat), "descriptor.extent", "76604")
    assert "single" in f.message


def test_web05_pocus_own_codes(cat):
    r = check(WEB[4]["claim"], cat)
    f = finding(r, "misconception.pocus_own_codes")
    assert "93308" in f.message and r.overall is Overall.FAIL


def test_web06_76937_not_add_on(cat):
    f = finding(check(WEB[5]["claim"], cat), "descriptor.add_on", "76937")
    assert "is an add-on" in f.message


def test_web07_76942_add_on(cat):
    f = finding(check(WEB[6]["claim"], cat), "descriptor.add_on", "76942")
    assert "is not an add-on" in f.message
    # A wrong statement in the prose: the model is asked again, then the prose is withheld.
    assert f.on_fail is OnFail.REASK and f.span is not None


def test_web08_fna_and_central_access(cat):
    r = check(WEB[7]["claim"], cat)
    f = finding(r, "pairs.bundled", "10005")
    assert f.fix and f.fix.remove == ("76942",)
    m = finding(r, "descriptor.meaning", "76942")
    assert "76937" in m.message


def test_web09_arterial_line_76942(cat):
    f = finding(check(WEB[8]["claim"], cat), "descriptor.meaning", "76942")
    assert f.fix and ("76937" in f.fix.add or "76937" in f.fix.alternatives)


def test_web10_abdomen_extent_hepatic_doppler_contrast(cat):
    r = check(WEB[9]["claim"], cat)
    assert finding(r, "descriptor.extent", "76705")
    assert finding(r, "descriptor.extent", "76700")
    assert "93975" in finding(r, "descriptor.meaning", "93880").message
    assert r.verdict_for("77602") is None or r.verdict_for("77602").status in (
        CodeStatus.NOT_VERIFIED, CodeStatus.REMOVED)


def test_web11_76706_surveillance(cat):
    f = finding(check(WEB[10]["claim"], cat), "descriptor.meaning", "76706")
    assert "76775" in f.message


def test_web12_breast_complete_and_typo(cat):
    r = check(WEB[11]["claim"], cat)
    f = finding(r, "descriptor.extent", "76642")
    assert f.fix and "76641" in f.fix.alternatives
    assert finding(r, "existence.unknown", "76442")


def test_web13_tee_codes(cat):
    r = check(WEB[12]["claim"], cat)
    assert "93312" in finding(r, "descriptor.meaning", "93355").message
    assert "93313" in finding(r, "descriptor.meaning", "93356").message
    assert "93314" in finding(r, "descriptor.meaning", "93350").message


def test_web14_guided_procedure_with_diagnostic_76882(cat):
    r = check(WEB[13]["claim"], cat)
    assert "pairs.modifier_required" in rules(r)
    assert finding(r, "descriptor.meaning", "20611")


def test_web15_warning_against_allowed_doppler_pair(cat):
    f = finding(check(WEB[14]["claim"], cat), "pairs.unfounded_warning")
    assert set(f.codes) == {"93320", "93325"}


def test_web16_nonexistent_codes_and_20612(cat):
    r = check(WEB[15]["claim"], cat)
    assert finding(r, "existence.unknown", "76943") and finding(r, "existence.unknown", "76944")
    f = finding(r, "descriptor.meaning", "20612")
    assert f.fix and "20611" in (f.fix.add + f.fix.alternatives)


def test_web17_deleted_ivus_codes(cat):
    r = check(WEB[16]["claim"], cat)
    for code, repl in (("37250", "37252"), ("37251", "37253"), ("75945", "37252"),
                       ("75946", "37253")):
        f = finding(r, "existence.deleted", code)
        assert f.fix and f.fix.add == (repl,)
        assert r.verdict_for(code).status is CodeStatus.REMOVED


def test_web18_picc_not_tunneled(cat):
    r = check(WEB[17]["claim"], cat)
    for code in ("36568", "36569", "36572", "36573"):
        assert "PICC" in finding(r, "descriptor.meaning", code).message


def test_web19_ceus_both_add_on(cat):
    assert finding(check(WEB[18]["claim"], cat), "misconception.ceus_both_add_on")


def test_web20_93307_with_doppler_review(cat):
    r = check(WEB[19]["claim"], cat)
    f = finding(r, "pairs.review", "93307")
    assert f.severity is Severity.WARNING and "93306" in (f.fix.alternatives if f.fix else ())
    assert r.overall is not Overall.PASS


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("Report 76942 for each lesion biopsied.", True),
        ("Needle guidance is billed per lesion.", True),
        # Letters that grow when lower-cased (İ) before the sentence must not shift it.
        ("İ" * 40 + " clinic. Report 76942 for each lesion.", True),
        ("Report 76942 once. Each lesion gets its own biopsy code.", False),
        ("One injection per site is documented.", False),
        ("Under NCCI, bill 76942 for each lesion; it is not an add-on.", True),
        # The right statement, said with a negation, is not the misconception.
        ("76942 is reported once per encounter, not per lesion.", False),
        ("No, 76942 is not an add-on code that you list for each needle pass.", False),
        ("Needle guidance is never billed per lesion under NCCI.", False),
        ("Don't bill 76942 per lesion.", False),
        ("Don’t bill 76942 per lesion.", False),
    ],
)
def test_guidance_per_lesion_misconception(cat, text, flagged):
    rule = "misconception.guidance_per_lesion_medicare"
    assert (rule in rules(check(text, cat))) is flagged


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("POCUS has its own CPT codes.", True),
        ("Bedside ultrasound uses its own codes.", True),
        ("POCUS does not have its own CPT codes; it uses the standard ones.", False),
        ("There are no codes specific to POCUS.", False),
        ("Point-of-care ultrasound doesn't get its own codes.", False),
    ],
)
def test_pocus_own_codes_misconception(cat, text, flagged):
    assert ("misconception.pocus_own_codes" in rules(check(text, cat))) is flagged


# -- rule families and fixes ---------------------------------------------------------------


def test_fix_20600_76942_to_20604(cat):
    out = check_and_repair(d("20600", "76942"), cat)
    assert [c.code for c in out.draft.codes] == ["20604"]


def test_fix_10021_76942_to_10005(cat):
    out = check_and_repair(d("10021", "76942"), cat)
    assert [c.code for c in out.draft.codes] == ["10005"]


def test_fix_36573_76937_drops_guidance(cat):
    out = check_and_repair(d("36573", "+76937"), cat)
    assert [c.code for c in out.draft.codes] == ["36573"]
    v = {x.code: x.status for x in out.verdicts}
    assert v == {"36573": CodeStatus.VERIFIED, "76937": CodeStatus.REMOVED}


def test_fix_93971_50_to_93970(cat):
    r = check(d("93971-50"), cat)
    f = finding(r, "modifiers.bilateral", "93971")
    assert f.fix.add == ("93970",)
    out = check_and_repair(d("93971-50"), cat)
    assert [(c.code, c.modifiers) for c in out.draft.codes] == [("93970", ())]


def test_complete_76705_suggests_76700_or_limited(cat):
    r = check(Draft(codes=(DraftCode("76705"),), text="Bill a complete 76705."), cat)
    f = finding(r, "descriptor.extent", "76705")
    assert "76700" in f.fix.alternatives and "limited" in f.message


def test_existence_unknown_not_verified(cat):
    r = check(d("99999"), cat)
    assert r.verdict_for("99999").status is CodeStatus.NOT_VERIFIED
    assert r.overall is Overall.REVIEW
    out = check_and_repair(d("99999", "76705"), cat)
    assert [c.code for c in out.draft.codes] == ["76705"]
    assert {v.code: v.status for v in out.verdicts}["99999"] is CodeStatus.REMOVED


def test_existence_malformed(cat):
    r = check(Draft(codes=(DraftCode("7694"),)), cat)
    assert finding(r, "existence.malformed", "7694").severity is Severity.ERROR


def test_deleted_code_is_error_with_replacement(cat):
    r = check(d("37250"), cat)
    assert r.overall is Overall.FAIL
    assert finding(r, "existence.deleted").fix.add == ("37252",)


def test_low_confidence_code_needs_review(cat):
    r = check(d("76825"), cat)
    assert r.verdict_for("76825").status is CodeStatus.NOT_VERIFIED
    assert "existence.low_confidence" in rules(r)


def test_add_on_alone(cat):
    r = check(d("37252"), cat)
    assert finding(r, "add_on.no_primary", "37252").severity is Severity.ERROR


def test_add_on_with_excluded_primary(cat):
    r = check(d("93306", "93320"), cat)
    assert finding(r, "add_on.excluded_primary", "93320")
    assert finding(r, "pairs.bundled", "93320")


def test_add_on_with_primary_verified(cat):
    r = check(d("36556", "76937"), cat)
    assert r.overall is Overall.PASS, [f.to_dict() for f in r.findings if f.severity != "info"]
    assert all(v.status is CodeStatus.VERIFIED for v in r.verdicts)


def test_add_on_of_add_on(cat):
    r = check(d("36005", "37252", "37253x2"), cat)
    assert "add_on.no_primary" not in rules(r)


def test_add_on_unlisted_primary_not_verified(cat):
    r = check(d("20610", "77003"), cat)
    assert r.verdict_for("77003").status is CodeStatus.NOT_VERIFIED


def test_units_one_per_encounter(cat):
    r = check(d("20552", "76942x3"), cat)
    f = finding(r, "units.over_limit", "76942")
    assert f.severity is Severity.ERROR and f.fix.set_units == (("76942", 1),)
    out = check_and_repair(d("20552", "76942x3"), cat)
    assert [(c.code, c.units) for c in out.draft.codes] == [("20552", 1), ("76942", 1)]
    assert {v.code: v.status for v in out.verdicts}["76942"] is CodeStatus.CORRECTED


def test_units_two_lines_count(cat):
    r = check(d("20552", "76942", "76942-59"), cat)
    assert finding(r, "units.over_limit", "76942")


def test_units_mue_unknown_adjudication_is_warning(cat):
    r = check(d("36005", "37252", "37253x6"), cat)
    assert finding(r, "units.over_limit", "37253").severity is Severity.WARNING


def test_modifier_50_on_add_on(cat):
    assert finding(check(d("36556", "76937-50"), cat), "modifiers.bilateral", "76937")


def test_modifier_52_with_limited_counterpart(cat):
    f = finding(check(d("76700-52"), cat), "modifiers.reduced", "76700")
    assert f.fix.add == ("76705",)


def test_modifier_52_without_limited_code_ok(cat):
    assert "modifiers.reduced" not in rules(check(d("76830-52"), cat))


def test_modifier_26_on_global_procedure(cat):
    assert finding(check(d("20611-26"), cat), "modifiers.pc_tc", "20611")


def test_modifier_26_on_split_code_ok(cat):
    r = check(d("76705-26"), cat)
    assert "modifiers.pc_tc" not in rules(r)


def test_modifier_59_cannot_bypass_indicator_0(cat):
    r = check(d("20611", "76942-59"), cat)
    assert finding(r, "modifiers.distinct_on_indicator_0", "76942")


def test_indicator_1_pair_warns_then_allows_with_modifier(cat):
    r = check(d("93975", "76700"), cat)
    f = finding(r, "pairs.modifier_required")
    assert "59" in f.message and f.severity is Severity.WARNING
    r2 = check(d("93975", "76700-XU"), cat)
    assert "pairs.allowed_with_modifier" in rules(r2)
    assert "pairs.modifier_required" not in rules(r2)


def asked(question: str, *lines: str, history: str = "") -> Draft:
    """Codes drafted in answer to ``question`` (the checker reads it as context)."""
    return Draft(codes=d(*lines).codes, context=question.lower(), history=history.lower())


def test_drafted_modifier_the_question_does_not_support_is_undone(cat):
    # A model answered "both legs, complete" with 93970-59 + 93971-59: two bills for one study.
    out = check_and_repair(asked("And if both legs are scanned completely?",
                                 "93970-59", "93971-59", history="Venous duplex for DVT?"), cat)
    f = finding(out.first, "pairs.modifier_unsupported", "93971")
    assert f.severity is Severity.WARNING and "59" in f.message
    status = {v.code: v for v in out.verdicts}
    assert status["93971"].status is CodeStatus.REMOVED
    assert status["93970"].status is CodeStatus.CORRECTED
    assert status["93970"].modifiers == ()


def test_drafted_modifier_stands_when_the_question_shows_distinct_services(cat):
    for question in ("Venous duplex of both legs and a separate study of the left arm",
                     "Both legs complete, then the upper and lower extremity on the left",
                     "Abdominal ultrasound and duplex at a different session, modifier 59"):
        out = check_and_repair(asked(question, "93975", "76700-59"), cat)
        assert "pairs.modifier_unsupported" not in rules(out.first), question
        assert "pairs.allowed_with_modifier" in rules(out.first), question


def test_the_same_side_on_both_codes_does_not_unbundle(cat):
    r = check(d("93970-LT", "93971-LT"), cat)
    assert "pairs.allowed_with_modifier" not in rules(r)
    assert finding(r, "pairs.modifier_required", "93971")
    r2 = check(d("93975-RT", "76700-LT"), cat)
    assert "pairs.allowed_with_modifier" in rules(r2)


@pytest.mark.parametrize(("question", "drafted", "right"), [
    ("PICC line with imaging guidance in a 3-year-old.", "36573", "36572"),
    ("PICC placed in a 60-year-old with ultrasound guidance", "36572", "36573"),
    ("Non-tunneled central line in a 4 year old child", "36556", "36555"),
    ("Central line, non-tunneled, age 5 or older", "36555", "36556"),
    ("PICC, the patient is 18 months old", "36573", "36572"),
    ("Tunneled catheter in a 72 yo man", "36557", "36558"),
])
def test_the_stated_age_picks_the_age_variant(cat, question, drafted, right):
    out = check_and_repair(asked(question, drafted), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status[drafted] is CodeStatus.REMOVED, question
    # The code for the stated age replaces it: corrected, or not verified when the question
    # leaves something else about it unsaid (the imaging a PICC code includes).
    assert status[right] is CodeStatus.CORRECTED or (
        status[right] is CodeStatus.NOT_VERIFIED
        and any(f.rule == "fit.unsupported" and right in f.codes for f in out.findings)
    ), question
    assert finding(out.first, "fit", drafted)
    # The right code for the stated age is left alone.
    again = check_and_repair(asked(question, right), cat)
    assert "fit" not in rules(again.first), question


def test_no_stated_age_leaves_both_variants_flagged_for_a_person(cat):
    for question in ("PICC line with ultrasound guidance", "", "Level 3 years ago, PICC"):
        out = check_and_repair(asked(question, "36572", "36573"), cat)
        status = {v.code: v.status for v in out.verdicts}
        assert status == {"36572": CodeStatus.NOT_VERIFIED, "36573": CodeStatus.NOT_VERIFIED}
        f = finding(out.first, "pairs.bundled", "36573")
        assert f.severity is Severity.ERROR and f.fix is not None
        assert set(f.fix.alternatives) == {"36572", "36573"} and "under 5" in f.fix.description


@pytest.mark.parametrize(("question", "drafted", "right"), [
    ("Complete TTE without any Doppler - which code?", "93306", "93307"),
    ("Complete transthoracic echo, no Doppler performed", "93306", "93307"),
    ("Complete TTE with spectral and color Doppler", "93307", "93306"),
    ("Resting ankle-brachial index, both legs, 1-2 levels.", "93923", "93922"),
])
def test_the_question_rules_out_a_code(cat, question, drafted, right):
    out = check_and_repair(asked(question, drafted), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status == {drafted: CodeStatus.REMOVED, right: CodeStatus.CORRECTED}, question
    assert finding(out.first, "fit", drafted)
    assert "fit" not in rules(check_and_repair(asked(question, right), cat).first)


def test_a_code_for_a_condition_the_question_never_names_is_not_verified(cat):
    out = check_and_repair(asked("Complete TTE without any Doppler", "93307", "93303"), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status == {"93307": CodeStatus.VERIFIED, "93303": CodeStatus.NOT_VERIFIED}
    assert finding(out.first, "fit.unsupported", "93303").severity is Severity.WARNING
    for question in ("Complete TTE for congenital heart disease in a child",
                     "TTE follow-up of a repaired tetralogy of Fallot"):
        again = check_and_repair(asked(question, "93303"), cat)
        assert "fit.unsupported" not in rules(again.first), question
    # A bare code check has no question to read.
    assert "fit.unsupported" not in rules(check(d("93303"), cat))


@pytest.mark.parametrize(("question", "drafted", "right"), [
    ("Venous duplex of the left leg for DVT.", "93970", "93971"),
    ("Unilateral lower extremity arterial duplex of a bypass graft.", "93925", "93926"),
    ("Unilateral carotid duplex, code?", "93880", "93882"),
    ("Duplex of one arm's arteries", "93930", "93931"),
])
def test_one_side_studied_is_the_unilateral_code(cat, question, drafted, right):
    out = check_and_repair(asked(question, drafted), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status == {drafted: CodeStatus.REMOVED, right: CodeStatus.CORRECTED}, question
    assert finding(out.first, "fit", drafted)


def test_both_sides_named_keeps_the_bilateral_code(cat):
    for question in ("Bilateral venous duplex, left leg worse", "Both legs, right calf pain"):
        assert "fit" not in rules(check_and_repair(
            asked(question, "93970"), cat).first), question


@pytest.mark.parametrize(("question", "history"), [
    # A follow-up: the earlier (ultrasound) question is history, read for the topic only.
    ("What if it was done under fluoroscopy instead?", "Ultrasound-guided knee injection?"),
    ("Knee injection by landmarks, no ultrasound", ""),
    ("CT-guided knee aspiration", ""),
])
def test_guidance_other_than_ultrasound_undoes_the_guided_code(cat, question, history):
    out = check_and_repair(asked(question, "20611", history=history), cat)
    status = {v.code: v.status for v in out.verdicts}
    expected = {"20611": CodeStatus.REMOVED, "20610": CodeStatus.CORRECTED}
    if question.startswith(("CT-guided", "What if it was done under fluoroscopy")):
        # 20610 includes no imaging guidance: CT guidance is reported with 77012, and
        # fluoroscopic guidance with +77002.
        expected["77012" if question.startswith("CT") else "77002"] = CodeStatus.CORRECTED
    assert status == expected, question
    assert finding(out.first, "fit", "20611")
    guided = check_and_repair(asked("Ultrasound-guided knee injection", "20611"), cat)
    assert "fit" not in rules(guided.first)


def test_one_stress_echo_code_per_study(cat):
    out = check_and_repair(d("93350", "93351"), cat)
    assert [c.code for c in out.draft.codes] == ["93351"]
    assert finding(out.first, "pairs.bundled", "93350")


def test_only_some_organs_scanned_is_a_limited_exam(cat):
    out = check_and_repair(asked("What if only the gallbladder and liver were scanned?",
                                 "76700"), cat)
    f = finding(out.first, "fit", "76700")
    assert f.fix is not None and f.fix.add == ("76705",)
    assert {v.code: v.status for v in out.verdicts} == {
        "76700": CodeStatus.REMOVED, "76705": CodeStatus.CORRECTED}
    assert "fit" not in rules(
        check_and_repair(asked("Only a complete abdominal ultrasound", "76700"), cat).first)
    # One quadrant is a limited exam too.
    ruq = check(asked("RUQ ultrasound for gallstones only, what do I code?", "76700"), cat)
    assert finding(ruq, "fit", "76700").fix.add == ("76705",)


@pytest.mark.parametrize(("question", "drafted", "right"), [
    ("Transabdominal OB ultrasound at 10 weeks, complete, single pregnancy.", "76805", "76801"),
    ("Complete OB ultrasound at 20 weeks, single fetus", "76801", "76805"),
    ("Twins at 22 weeks: the second gestation", "76802", "76810"),
])
def test_weeks_of_gestation_pick_the_ob_code(cat, question, drafted, right):
    out = check_and_repair(asked(question, drafted), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status[drafted] is CodeStatus.REMOVED and right in status, question
    assert finding(out.first, "fit", drafted)


def test_symptomatic_aorta_is_not_a_screening_study(cat):
    out = check_and_repair(asked("Bedside ED ultrasound of the aorta for suspected AAA in a "
                                 "patient with back pain.", "76706"), cat)
    # a symptomatic patient contradicts the screening code; the diagnostic code of the aorta
    # alone (limited retroperitoneal) takes its place
    f = finding(out.first, "fit", "76706")
    assert f.fix is not None and f.fix.add == ("76775",)
    assert [c.code for c in out.draft.codes] == ["76775"]
    screening = check_and_repair(asked("AAA screening in a 67-year-old smoker", "76706"), cat)
    assert "fit" not in rules(screening.first)


def test_transvaginal_code_for_a_transabdominal_question_is_removed(cat):
    # The question rules the code out and nothing takes its place.
    out = check_and_repair(asked("Transabdominal OB ultrasound at 10 weeks", "76801", "76817"),
                           cat)
    assert {v.code: v.status for v in out.verdicts}["76817"] is CodeStatus.REMOVED
    tv = check_and_repair(asked("Transvaginal ultrasound at 7 weeks pregnant", "76801"), cat)
    assert {v.code: v.status for v in tv.verdicts} == {
        "76801": CodeStatus.REMOVED, "76817": CodeStatus.CORRECTED}
    pelvis = check_and_repair(asked("Transvaginal pelvic ultrasound, not pregnant",
                                    "76830", "76856"), cat)
    assert [c.code for c in pelvis.draft.codes] == ["76830"]
    no_doppler = check_and_repair(asked("Complete TTE, no Doppler was done", "93307", "93325"),
                                  cat)
    assert [c.code for c in no_doppler.draft.codes] == ["93307"]
    both = check_and_repair(asked("Transabdominal and transvaginal OB ultrasound at 10 weeks",
                                  "76801", "76817"), cat)
    assert "fit" not in rules(both.first)


def test_transplant_kidney_code_includes_the_duplex(cat):
    out = check_and_repair(d("76776", "93975"), cat)
    assert {v.code: v.status for v in out.verdicts}["93975"] is CodeStatus.REMOVED


def test_an_add_on_is_not_verified_when_its_primary_is_not(cat):
    # 10005 + 76536 is an edit pair (modifier needed): 10005 is not verified, so neither is
    # its add-on 10006, though 10006's own rules pass.
    out = check_and_repair(d("10005", "10006", "76536"), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status["10005"] is CodeStatus.NOT_VERIFIED
    assert status["10006"] is CodeStatus.NOT_VERIFIED
    assert finding(out.first, "pairs.modifier_required", "10005")
    assert any(f.rule == "add_on.primary_not_verified" and f.codes == ("10006",)
               for f in out.findings)
    fine = check_and_repair(d("10005", "10006"), cat)
    assert {v.code: v.status for v in fine.verdicts}["10006"] is CodeStatus.VERIFIED


def test_without_any_imaging_undoes_the_guided_code(cat):
    out = check_and_repair(asked("Thoracentesis at the bedside without any imaging - code?",
                                 "32554", "32555"), cat)
    assert {v.code: v.status for v in out.verdicts} == {
        "32554": CodeStatus.VERIFIED, "32555": CodeStatus.REMOVED}


@pytest.mark.parametrize(("question", "codes", "expect"), [
    ("Contrast-enhanced ultrasound of one liver lesion", ("76978", "76979"),
     {"76978": CodeStatus.VERIFIED, "76979": CodeStatus.REMOVED}),
    ("CEUS of two liver lesions", ("76978", "76979"),
     {"76978": CodeStatus.VERIFIED, "76979": CodeStatus.VERIFIED}),
    # The question names the site, which rules the code it asks about out: the code for that
    # site takes its place (the complete abdominal-organ duplex; the guided major joint code).
    ("Hepatic duplex Doppler of the liver vessels, complete. 93880?", ("93880",),
     {"93880": CodeStatus.REMOVED, "93975": CodeStatus.CORRECTED}),
    ("Knee injection under ultrasound guidance: 20612?", ("20612",),
     {"20612": CodeStatus.REMOVED, "20611": CodeStatus.CORRECTED}),
    ("Trigger point injections in 2 muscles", ("20552", "20553"),
     {"20552": CodeStatus.VERIFIED, "20553": CodeStatus.REMOVED}),
    # Four muscles rule out the 1-2 muscle code; what was done to the trigger points
    # (injection or dry needling) is unsaid, so its replacement is not verified.
    ("Trigger points in four muscles", ("20552",),
     {"20552": CodeStatus.REMOVED, "20553": CodeStatus.NOT_VERIFIED}),
    ("Trigger point injections: which code?", ("20552", "20553"),
     {"20552": CodeStatus.NOT_VERIFIED, "20553": CodeStatus.NOT_VERIFIED}),
])
def test_more_of_the_question_read(cat, question, codes, expect):
    out = check_and_repair(asked(question, *codes), cat)
    assert {v.code: v.status for v in out.verdicts} == expect, question


def test_tte_pair_fix_defers_to_the_question(cat):
    # The one-TTE-per-session edit keeps 93306; the question says there was no Doppler.
    out = check_and_repair(asked("Complete TTE without any Doppler", "93306", "93307"), cat)
    assert [c.code for c in out.draft.codes] == ["93307"]


def test_complete_and_limited_same_region(cat):
    r = check(d("76770", "76775"), cat)
    assert finding(r, "pairs.bundled", "76775").severity is Severity.ERROR


def test_guidance_included_codes(cat):
    for proc, guide in (("19083", "76942"), ("32555", "76942"), ("49083", "76942"),
                        ("36572", "76937"), ("10005", "76942"), ("20606", "76942"),
                        ("64483", "76942")):
        r = check(d(proc, guide), cat)
        assert any(f.rule in ("pairs.bundled", "pairs.guidance_included") and
                   f.severity is Severity.ERROR for f in r.findings), (proc, guide)


def test_documentation_contradiction(cat):
    r = check("Bill 36556 with +76937; 76937 needs no permanent image.", cat)
    f = finding(r, "documentation.contradiction", "76937")
    assert "patency" in f.message.lower()


def test_documentation_requirements_info(cat):
    r = check(d("36556", "76937"), cat)
    f = finding(r, "documentation.requirements", "76937")
    assert f.severity is Severity.INFO


def test_apply_returns_corrected_draft(cat):
    r = check(d("20610-RT", "76942"), cat)
    fixed = apply(r)
    assert [(c.code, c.modifiers) for c in fixed.codes] == [("20611", ("RT",))]


def test_warned_codes_are_not_recommended(cat):
    r = check("Report 20611 alone; do not add 76942.", cat)
    assert [v.code for v in r.verdicts] == ["20611"]
    assert r.verdict_for("20611").status is CodeStatus.VERIFIED
    assert "76942" in r.warned
    assert "warned.unsupported" not in rules(r)


def test_unsupported_warning_is_noted(cat):
    r = check("Report 76705; do not add 93306.", cat)
    assert "warned.unsupported" in rules(r)


def test_json_shape_of_check(cat):
    out = check_and_repair(d("20610", "76942"), cat).to_dict()
    assert set(out) == {"verdict", "codes", "findings", "ruleset", "corrected_claim",
                        "corrected_claim_text", "claim_changed"}
    assert out["verdict"] == "fail"
    assert (out["corrected_claim_text"], out["claim_changed"]) == ("20611", True)
    assert set(out["codes"][0]) == {"code", "status", "units", "modifiers", "findings"}
    assert set(out["findings"][0]) == {"rule", "severity", "codes", "message", "fix", "sources",
                                       "confidence"}
    assert out["ruleset"].startswith("builtin ")


def test_checker_is_pure():
    import ast

    root = Path(__file__).resolve().parents[2] / "guardrails"
    banned = {"advisor", "langchain", "langchain_core", "chromadb", "gradio", "requests",
              "httpx", "socket", "subprocess", "os", "pathlib", "open"}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            assert not set(names) & banned, (path, names)


def test_site_rule_knee_is_major_joint(cat):
    draft = Draft(codes=(DraftCode("20606"),), context="Ultrasound-guided knee injection")
    r = check(draft, cat)
    f = finding(r, "fit", "20606")
    assert f.fix.add == ("20611",)
    out = check_and_repair(draft, cat)
    assert [c.code for c in out.draft.codes] == ["20611"]


def test_site_rule_quiet_when_site_matches_or_absent(cat):
    assert "fit" not in rules(
        check(Draft(codes=(DraftCode("20606"),), context="guided ankle aspiration"), cat))
    assert "fit" not in rules(check(Draft(codes=(DraftCode("20606"),)), cat))


def test_site_rule_age_for_central_lines(cat):
    draft = Draft(codes=(DraftCode("36555"), DraftCode("76937")),
                  context="CVC in the internal jugular of an adult under ultrasound")
    out = check_and_repair(draft, cat)
    assert [c.code for c in out.draft.codes] == ["76937", "36556"]
    assert {v.code: v.status for v in out.verdicts}["36556"] is CodeStatus.CORRECTED


def test_unguided_code_when_question_says_ultrasound_guided(cat):
    draft = Draft(codes=(DraftCode("20610"),), context="ultrasound-guided knee injection")
    out = check_and_repair(draft, cat)
    assert [c.code for c in out.draft.codes] == ["20611"]
    assert "fit" in rules(out)
    fna = Draft(codes=(DraftCode("10005"), DraftCode("10021")),
                context="Ultrasound-guided fine needle aspiration of a thyroid nodule")
    out = check_and_repair(fna, cat)
    assert [c.code for c in out.draft.codes] == ["10005"]


def test_guided_and_unguided_fna_together_not_verified(cat):
    r = check(d("10005", "10021"), cat)
    assert r.verdict_for("10021").status is not CodeStatus.VERIFIED


def test_side_modifiers_dropped_from_bilateral_code(cat):
    out = check_and_repair(d("93970-LT-RT"), cat)
    assert [(c.code, c.modifiers) for c in out.draft.codes] == [("93970", ())]
    assert {v.code: v.status for v in out.verdicts}["93970"] is CodeStatus.CORRECTED


def test_note_that_included_guidance_is_not_separate(cat):
    r = check(d("20611"), cat)
    f = finding(r, "pairs.guidance_not_separate", "20611")
    assert "76942" in f.codes and f.severity is Severity.INFO
    assert r.verdict_for("20611").status is CodeStatus.VERIFIED


def test_extent_asked_in_question(cat):
    r = check(Draft(codes=(DraftCode("76775"), DraftCode("76700")),
                    context="Limited retroperitoneal ultrasound of the kidneys"), cat)
    # The question affirms a limited study of the kidneys: the complete abdominal code is
    # ruled out and removed (no longer a warning); 76775, drafted beside it, stands.
    assert finding(r, "fit", "76700").severity is Severity.ERROR
    assert r.verdict_for("76700").status is CodeStatus.REMOVED
    assert r.verdict_for("76775").status is CodeStatus.VERIFIED


def test_context_survives_repair_rounds(cat):
    out = check_and_repair(Draft(codes=(DraftCode("20610"), DraftCode("20600")),
                                 context="ultrasound-guided shoulder joint injection"), cat)
    assert [c.code for c in out.draft.codes] == ["20611"]


def test_one_tte_code_per_session(cat):
    out = check_and_repair(d("93306", "93307"), cat)
    assert [c.code for c in out.draft.codes] == ["93306"]
    assert finding(check(d("93307", "93308"), cat), "pairs.bundled", "93308")


def test_age_variants_are_never_billed_together(cat):
    r = check(d("36572", "36573"), cat)
    f = finding(r, "pairs.bundled", "36573")
    assert f.severity is Severity.ERROR
    assert f.fix is not None and not f.fix.remove and not f.fix.add  # a person chooses
    assert r.verdict_for("36572").status is CodeStatus.NOT_VERIFIED
    assert r.verdict_for("36573").status is CodeStatus.NOT_VERIFIED


def test_correct_prose_about_guidance_is_not_flagged(cat):
    r = check("20611 includes the ultrasound guidance and is billed without a separate "
              "guidance code.", cat)
    assert "descriptor.meaning" not in rules(r)
    assert r.verdict_for("20611").status is CodeStatus.VERIFIED


def test_guidance_add_on_suggested_for_vascular_access(cat):
    r = check(Draft(codes=(DraftCode("36556"),),
                    context="Central line in the internal jugular with ultrasound guidance"), cat)
    f = finding(r, "descriptor.guidance_addon", "36556")
    assert "76937" in f.codes and f.severity is Severity.INFO
    assert r.verdict_for("36556").status is CodeStatus.VERIFIED
    assert r.verdict_for("76937") is None  # suggested, never recommended by the checker


def test_code_for_a_service_the_question_never_names_is_not_verified(cat):
    out = check_and_repair(asked("Limited bedside echo for a pericardial effusion",
                                 "93308", "76705"), cat)
    status = {v.code: v.status for v in out.verdicts}
    # The question affirms only the heart: the abdominal code is ruled out by the site it
    # names (removed, no longer merely not verified).
    assert status == {"93308": CodeStatus.VERIFIED, "76705": CodeStatus.REMOVED}
    f = finding(out.first, "fit.site", "76705")
    assert f.severity is Severity.ERROR and "abdomen" in f.message.lower()
    # Within a family a code's own words decide: a carotid question is no abdominal duplex.
    carotid = check(asked("Carotid duplex for a TIA, both sides", "93880", "93975"), cat)
    assert [f.codes for f in carotid.findings if f.rule.startswith("fit.")] == [("93975",)]
    assert finding(carotid, "fit.site", "93975").severity is Severity.ERROR


def test_topic_reads_the_earlier_question_and_codes_named_in_the_question(cat):
    follow_up = "And if both legs were scanned completely?"
    assert "fit.unsupported" in rules(check(asked(follow_up, "93970"), cat))
    assert "fit.unsupported" not in rules(
        check(asked(follow_up, "93970", history="Venous duplex of the left leg for DVT"), cat))
    assert "fit.unsupported" not in rules(check(asked("Is 93970 right here?", "93970"), cat))
    # A bare code check has no question: nothing to read the topic from.
    assert "fit.unsupported" not in rules(check(d("76705", "93308"), cat))


def test_a_follow_up_without_a_site_is_read_with_the_earlier_question(cat):
    knee = "What do I bill for an ultrasound-guided knee injection?"
    out = check_and_repair(asked("What if it was done under fluoroscopy instead?", "20600",
                                 history=knee), cat)
    assert finding(out.first, "fit", "20600")
    assert {v.code: v.status for v in out.verdicts}["20610"] is CodeStatus.CORRECTED
    # A follow-up that names its own site is read alone.
    shoulder = check(asked("And if it was the shoulder?", "20611", history=knee), cat)
    assert "fit" not in rules(shoulder)
    finger = check(asked("And if it was a finger joint?", "20611", history=knee), cat)
    assert "fit" in rules(finger)


def test_a_unit_limit_fix_collapses_repeated_lines(cat):
    # Twins: a model drafted the once-per-encounter limited OB code on two lines.
    out = check_and_repair(asked("Quick OB ultrasound to check heartbeat in twins",
                                 "76815", "76815"), cat)
    assert [(c.code, c.units) for c in out.draft.codes] == [("76815", 1)]
    assert {v.code: v.status for v in out.verdicts} == {"76815": CodeStatus.CORRECTED}


def test_a_modifier_the_question_contradicts_is_dropped_not_the_code(cat):
    one_side = check_and_repair(asked("Unilateral carotid duplex, code?", "93882-50"), cat)
    assert [(c.code, c.modifiers) for c in one_side.draft.codes] == [("93882", ())]
    complete = check_and_repair(asked("Complete transabdominal pelvic ultrasound, uterus and "
                                      "adnexa", "76856-52"), cat)
    assert [(c.code, c.modifiers) for c in complete.draft.codes] == [("76856", ())]
    # Without such words the fixes stay: -52 on a complete code -> the limited code.
    bare = check_and_repair(d("76856-52"), cat)
    assert [c.code for c in bare.draft.codes] == ["76857"]


def test_an_add_on_with_one_possible_primary_gets_it(cat):
    out = check_and_repair(asked("And a second nodule in the same session?", "10006", "76942",
                                 history="Ultrasound-guided FNA of a thyroid nodule"), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status["10005"] is CodeStatus.CORRECTED and status["10006"] is CodeStatus.VERIFIED
    assert status["76942"] is CodeStatus.REMOVED
    assert finding(out.first, "add_on.no_primary", "10006").fix.add == ("10005",)
    # Many possible primaries: nothing is guessed.
    alone = check_and_repair(d("76937"), cat)
    assert [c.code for c in alone.draft.codes] == ["76937"]
    assert finding(alone.first, "add_on.no_primary", "76937").fix is None


@pytest.mark.parametrize(("question", "code", "named"), [
    ("Coronary IVUS of one vessel during PCI, add-on code?", "92978", "pci"),
    ("Peripheral IVUS of the iliac artery during angiography: which code?", "37252",
     "angiography"),
    ("Fluoroscopic guidance for tunneled central venous catheter tip placement, add-on code?",
     "77001", "central venous catheter"),
])
def test_an_add_on_asked_about_during_its_named_primary_is_kept_with_a_note(
    cat, question, code, named
):
    out = check_and_repair(asked(question, code), cat)
    assert [(v.code, v.status) for v in out.verdicts] == [(code, CodeStatus.VERIFIED)]
    f = finding(out.first, "add_on.primary_in_question", code)
    assert f.severity is Severity.INFO and f"'{named}'" in f.message
    # The drafted primary is only weakly sourced (no rule against it): the add-on stands on
    # the question's primary; asked without one, it follows its unverified primary.
    pci = check_and_repair(asked("Coronary IVUS of one vessel during PCI, add-on code?",
                                 "92978", "92928"), cat)
    assert {v.code: v.status for v in pci.verdicts}["92978"] is CodeStatus.VERIFIED
    # Modifiers the question never asked for, dropped by a fix, are no finding against it.
    mods = check_and_repair(asked("Coronary IVUS of one vessel during PCI, add-on code?",
                                  "92978-26-LT", "92928-26-50"), cat)
    assert {v.code: v.status for v in mods.verdicts}["92978"] is CodeStatus.CORRECTED
    plain = check_and_repair(asked("Coronary IVUS of one vessel, codes?", "92978", "92928"), cat)
    assert {v.code: v.status for v in plain.verdicts}["92978"] is CodeStatus.NOT_VERIFIED
    # No primary named: still an error, the model is asked which primary.
    bare = check(asked("IVUS, which code?", "37252"), cat)
    assert finding(bare, "add_on.no_primary", "37252").severity is Severity.ERROR


def test_needle_passes_count_nothing(cat):
    out = check_and_repair(asked("Is 76942 listed for each needle pass in a trigger point "
                                 "injection of two muscles?", "76942", "20552x2"), cat)
    assert [(c.code, c.units) for c in out.draft.codes] == [("76942", 1), ("20552", 1)]


def test_units_the_question_never_counts_are_set_to_the_limit(cat):
    out = check_and_repair(asked("Venous duplex of the left leg for DVT.", "93971x2"), cat)
    assert [(v.code, v.status, v.units) for v in out.verdicts] == [
        ("93971", CodeStatus.CORRECTED, 1)]
    counted = check_and_repair(asked("Venous duplex, two studies the same day", "93971x2"), cat)
    assert counted.verdicts[0].status is CodeStatus.NOT_VERIFIED
    assert counted.verdicts[0].units == 2


def test_bilateral_modifier_fix_yields_to_what_the_question_rules_out(cat):
    # 93922-50 would become 93923, which "1-2 levels" rules out: the -50 goes instead.
    out = check_and_repair(asked("Resting ankle-brachial index, both legs, 1-2 levels.",
                                 "93922-50", "93923"), cat)
    assert [(c.code, c.modifiers) for c in out.draft.codes] == [("93922", ())]


def test_lower_and_upper_extremity_arterial_codes_read_the_limb(cat):
    out = check(asked("Unilateral lower extremity arterial duplex of a bypass graft",
                      "93926", "93931"), cat)
    # The question affirms the lower limb: the upper-limb code is ruled out by site.
    assert [(f.rule, f.codes) for f in out.findings if f.rule.startswith("fit.")] == [
        ("fit.site", ("93931",))]
    assert out.verdict_for("93931").status is CodeStatus.REMOVED
    assert out.verdict_for("93926").status is CodeStatus.VERIFIED


def test_a_joint_code_needs_a_joint_in_the_question(cat):
    out = check(asked("Ultrasound-guided plantar fascia injection with image saved.",
                      "20550", "20611"), cat)
    # The question affirms the plantar fascia, not a joint: the joint code is ruled out.
    assert [(f.rule, f.codes) for f in out.findings if f.rule.startswith("fit.")] == [
        ("fit.site", ("20611",))]
    assert out.verdict_for("20611").status is CodeStatus.REMOVED
    knee = check(asked("Ultrasound-guided knee injection", "20611"), cat)
    assert "fit.unsupported" not in rules(knee)


@pytest.mark.parametrize(("question", "drafted", "kept"), [
    ("Transvaginal ultrasound at 7 weeks pregnant to confirm intrauterine pregnancy.",
     ("76830",), ["76817"]),
    ("I used ultrasound only to mark the skin over the vein before a central line, no "
     "real-time guidance.", ("36556", "76937"), ["36556"]),
])
def test_question_words_that_leaked_in_the_suite_run(cat, question, drafted, kept):
    out = check_and_repair(asked(question, *drafted), cat)
    assert [c.code for c in out.draft.codes] == kept


def test_screening_aorta_code_is_not_verified_for_a_known_aneurysm(cat):
    out = check_and_repair(asked("Follow-up ultrasound of a known 4 cm abdominal aortic "
                                 "aneurysm", "76706"), cat)
    # A follow-up is no one-time screening: the limited retroperitoneal study takes its place.
    assert {v.code: v.status for v in out.verdicts} == {
        "76706": CodeStatus.REMOVED, "76775": CodeStatus.CORRECTED}
    assert finding(out.first, "fit", "76706")


def test_units_on_a_code_with_no_limit_held_are_not_verified(cat):
    # 190 of the built-in codes carry no unit limit until a CMS MUE file is imported: a line
    # of several units cannot be checked, so it is never shown as verified.
    r = check(d("36556x3", "10005", "10006x2"), cat)
    by = {v.code: v for v in r.verdicts}
    assert by["36556"].status is CodeStatus.NOT_VERIFIED
    assert by["10006"].status is CodeStatus.NOT_VERIFIED
    assert {f.codes for f in r.findings if f.rule == "units.no_limit"} == {("36556",), ("10006",)}
    assert r.overall is Overall.REVIEW
    # One unit per line, on two sided lines: nothing to say about the count.
    sided = check(d("76882-RT", "76882-LT"), cat)
    assert "units.no_limit" not in rules(sided)


def test_units_with_no_limit_the_question_never_counts_become_one(cat):
    out = check_and_repair(asked("Central line placement with ultrasound guidance, patient 40",
                                 "36556x3", "76937"), cat)
    assert finding(out.first, "units.uncounted", "36556").fix.set_units == (("36556", 1),)
    assert {c.code: c.units for c in out.draft.codes} == {"36556": 1, "76937": 1}
    counted = check(asked("US-guided FNA of three thyroid nodules", "10005", "10006x2"), cat)
    assert "units.uncounted" not in rules(counted)
    assert "units.no_limit" in rules(counted)


@pytest.mark.parametrize(("question", "drafted", "dropped"), [
    # the model's own guesses, seen in the suite run
    ("Transvaginal ultrasound at 7 weeks pregnant to confirm intrauterine pregnancy.",
     "76817-52", "52"),
    ("Ultrasound-guided plantar fascia injection with image saved.", "20550-RT", "RT"),
    ("Ultrasound of the left testicle for pain.", "76870-RT", "RT"),
    ("Ultrasound-guided knee injection", "20611-50", "50"),
])
def test_modifiers_the_question_gives_no_ground_for_are_dropped(cat, question, drafted, dropped):
    out = check_and_repair(asked(question, drafted), cat)
    code = drafted.split("-")[0]
    f = finding(out.first, "modifiers.unasked", code)
    assert f.fix.drop_modifiers == ((code, dropped),)
    lines = [(c.code, c.modifiers) for c in out.draft.codes]
    # 20550 includes no imaging guidance: the ultrasound guidance is added beside it.
    assert lines == [(code, ())] + ([("76942", ())] if code == "20550" else [])


@pytest.mark.parametrize(("question", "drafted"), [
    ("Right knee injection under ultrasound guidance", "20611-RT"),
    ("Ultrasound of the left testicle for pain.", "76870-LT"),
    ("The exam was stopped early because the patient could not tolerate it", "76856-52"),
])
def test_modifiers_the_question_grounds_are_kept(cat, question, drafted):
    r = check(asked(question, drafted), cat)
    assert "modifiers.unasked" not in rules(r)
    # Without a question (a coder's list or a pasted text) there is nothing to read.
    assert "modifiers.unasked" not in rules(check(d("20550-RT", "76817-52"), cat))


@pytest.mark.parametrize(("question", "drafted", "kept"), [
    ("Ultrasound-guided plantar fascia injection with image saved.",
     ("20550", "76942", "76882"), ["20550", "76942"]),
    ("Thoracentesis under ultrasound guidance.", ("32555", "76604"), ["32555"]),
    ("After an ultrasound-guided knee injection, can I bill 76882 separately for the "
     "ultrasound of the knee?", ("20611", "76882"), ["20611"]),
])
def test_diagnostic_exam_beside_guidance_the_question_gives_no_ground_for(
    cat, question, drafted, kept
):
    out = check_and_repair(asked(question, *drafted), cat)
    assert [c.code for c in out.draft.codes] == kept
    assert any(f.rule.startswith("fit.") and f.rule != "fit.unsupported" and f.fix.remove
               for f in out.first.findings)


@pytest.mark.parametrize(("question", "drafted"), [
    # a separate exam that found something new: both may be reported (the pair rule still
    # asks for 59/XU and its documentation)
    ("Diagnostic abdominal ultrasound showed new ascites, then ultrasound-guided "
     "paracentesis", ("49083", "76705")),
    ("Thyroid ultrasound for a palpable nodule", ("76536",)),
    ("Evaluate the thyroid with ultrasound", ("76536",)),
])
def test_diagnostic_exam_the_question_grounds_is_kept(cat, question, drafted):
    out = check(asked(question, *drafted), cat)
    assert not [f for f in out.findings if f.rule.startswith("fit.")
                and f.rule != "fit.unsupported" and drafted[-1] in f.codes]


def test_one_code_drafted_twice_is_counted_as_its_units(cat):
    # A model listed 93308 twice (two reasons, no modifiers): that is 2 units of one study.
    twice = Draft(codes=(DraftCode("93308"), DraftCode("93308")),
                  context="limited bedside echo to look for a pericardial effusion.")
    out = check_and_repair(twice, cat)
    assert [(v.code, v.status, v.units) for v in out.verdicts] == [
        ("93308", CodeStatus.CORRECTED, 1)]
    assert "units.no_limit" in rules(check(Draft(codes=twice.codes), cat))


@pytest.mark.parametrize(("question", "drafted", "units"), [
    # codes that already cover both sides: "bilateral" and "both legs" count nothing
    ("Bilateral complete carotid duplex ultrasound.", "93880x3", 1),
    ("Resting ankle-brachial index, both legs, 1-2 levels.", "93922x2", 1),
    ("Unilateral lower extremity arterial duplex of a bypass graft.", "93926x3", 1),
])
def test_units_on_a_code_covering_both_sides_are_one(cat, question, drafted, units):
    out = check_and_repair(asked(question, drafted), cat)
    assert [(v.status, v.units) for v in out.verdicts] == [(CodeStatus.CORRECTED, units)]


def test_both_sides_of_a_per_side_code_are_minus_50_not_two_units(cat):
    out = check_and_repair(asked("And if both knees were injected?", "20611x2",
                                 history="Ultrasound-guided knee injection"), cat)
    f = finding(out.first, "units.both_sides", "20611")
    assert f.fix.add_modifiers == (("20611", "50"),)
    assert f.fix.to_dict()["add_modifiers"] == ["20611-50"]
    assert [(c.code, c.units, c.modifiers) for c in out.draft.codes] == [("20611", 1, ("50",))]
    # Already sided (RT and LT lines, or -50): nothing to say.
    sided = check(asked("And if both knees were injected?", "20611-RT", "20611-LT"), cat)
    assert "units.both_sides" not in rules(sided)


def test_a_minus_50_line_drafted_twice_is_one_line_of_one_unit(cat):
    # The model listed 76641-50 twice for a bilateral breast exam: both sides, once.
    out = check_and_repair(asked("Complete bilateral breast ultrasound including axillae",
                                 "76641-50", "76641-50"), cat)
    assert "units.both_sides" in rules(out.first)
    assert [(c.code, c.units, c.modifiers) for c in out.draft.codes] == [("76641", 1, ("50",))]
    assert [v.status for v in out.verdicts] == [CodeStatus.CORRECTED]
    # -50 beside RT and LT lines: both sides said three times, still -50 x1.
    mixed = check_and_repair(asked("Complete bilateral breast ultrasound for Medicare",
                                   "76641-RT", "76641-LT", "76641-50"), cat)
    assert [(c.code, c.units, c.modifiers) for c in mixed.draft.codes] == [("76641", 1, ("50",))]
    # RT and LT lines alone are a right way to say both sides.
    sided = check(asked("Complete bilateral breast ultrasound", "76641-RT", "76641-LT"), cat)
    assert sided.verdict_for("76641").status is CodeStatus.VERIFIED


@pytest.mark.parametrize(("question", "drafted", "kept", "history"), [
    ("What about both legs?", ("93970", "93971"), ["93970"], "Venous duplex for DVT, one leg"),
    ("Bilateral lower extremity arterial duplex for claudication", ("93926",), ["93925"], ""),
    ("Transesophageal echo, complete, with probe placement and interpretation.",
     ("93312", "93313", "93314"), ["93312"], ""),
    ("Lower extremity arterial study at rest and after treadmill exercise.", ("93926",),
     ["93924"], ""),
])
def test_question_words_of_the_echo_and_vascular_misses(cat, question, drafted, kept, history):
    out = check_and_repair(asked(question, *drafted, history=history), cat)
    assert [c.code for c in out.draft.codes] == kept


def test_both_sides_leave_a_limited_or_one_side_question_alone(cat):
    for q in ("Limited bilateral venous duplex, calves only", "Venous duplex of the left leg"):
        assert "fit" not in rules(check(asked(q, "93971"), cat))


@pytest.mark.parametrize(("question", "kept"), [
    ("Complete TTE with Doppler plus global longitudinal strain imaging.", ()),
    ("Complete echo with Doppler: I only interpreted it.", ("26",)),
    ("Bedside echo in the ICU read by the intensivist", ("26",)),
])
def test_professional_component_needs_ground_in_the_question(cat, question, kept):
    out = check_and_repair(asked(question, "93306-26"), cat)
    assert out.draft.codes[0].modifiers == kept


def test_a_stress_echo_read_only_is_the_stress_echo_without_the_supervision(cat):
    # 93351 includes the ECG monitoring and supervision (its description): a physician who
    # only interprets reports 93350, which replaces a drafted resting TTE
    out = check_and_repair(asked("Stress echo interpretation only, with echo contrast.",
                                 "93306-26"), cat)
    assert [c.code for c in out.draft.codes] == ["93350"]


def test_a_monitoring_tee_is_93318_not_the_diagnostic_tee(cat):
    out = check_and_repair(asked("Intraoperative TEE for monitoring purposes during surgery.",
                                 "93318", "93312"), cat)
    assert [c.code for c in out.draft.codes] == ["93318"]


def test_an_unasked_modifier_is_dropped_even_where_its_use_is_unknown(cat):
    # 93356's 26/TC split is not known here (a warning with no fix); the question gives no
    # ground for -26 either, so the modifier goes and the code can be verified.
    out = check_and_repair(asked("Complete TTE with Doppler plus global longitudinal strain.",
                                 "93306", "93356-26"), cat)
    assert [(c.code, c.modifiers) for c in out.draft.codes] == [("93306", ()), ("93356", ())]


@pytest.mark.parametrize(("question", "drafted", "want"), [
    # numbers of quadrants are not a count of exams
    ("Complete right breast ultrasound including the axilla, all four quadrants and "
     "retroareolar region.", "76641x2", [("76641", 1, ())]),
    # a per-side code for both sides: -50 x1, not x2
    ("And if both breasts were scanned completely?", "76641x2", [("76641", 1, ("50",))]),
    ("Ultrasound-guided injections of both knees at the same visit.", "20611x2",
     [("20611", 1, ("50",))]),
    # a code that is not sided: "both kidneys" counts nothing
    ("Complete renal ultrasound of both kidneys and bladder for hydronephrosis.", "76770x2",
     [("76770", 1, ())]),
    # the muscle count picks 20553; it is one unit whatever the number
    ("Trigger point injections into three muscles with ultrasound guidance. How many "
     "units of guidance?", "20553x3", [("20553", 1, ()), ("76942", 1, ())]),
    # "both codes" is not two services
    ("Contrast-enhanced ultrasound of one liver lesion: are both CEUS codes add-ons?",
     "76978x2", [("76978", 1, ())]),
    # -50 (or RT and LT on one line) already says both sides: one unit
    ("How do I report a complete bilateral breast ultrasound to Medicare?", "76641-50-LT-RTx2",
     [("76641", 1, ("50",))]),
])
def test_units_read_from_what_the_question_counts(cat, question, drafted, want):
    out = check_and_repair(asked(question, drafted), cat)
    assert [(c.code, c.units, c.modifiers) for c in out.draft.codes] == want


@pytest.mark.parametrize(("question", "drafted", "kept"), [
    ("Chest ultrasound to look for a pleural effusion, no procedure done. What do I bill?",
     ("76604", "76942"), ["76604"]),
    ("Bedside ED ultrasound of the aorta for suspected AAA in a patient with back pain.",
     ("76770", "76775"), ["76775"]),
])
def test_question_words_of_the_diagnostic_misses(cat, question, drafted, kept):
    out = check_and_repair(asked(question, *drafted), cat)
    assert [c.code for c in out.draft.codes] == kept
    # a complete retroperitoneal exam that names the kidneys keeps 76770
    full = check(asked("Complete retroperitoneal ultrasound: kidneys and aorta", "76770"), cat)
    assert "fit" not in rules(full)


@pytest.mark.parametrize(("question", "drafted", "kept"), [
    ("Complete OB ultrasound at 20 weeks, single fetus, transabdominal, not a detailed "
     "anatomy scan.", ("76805", "76811"), ["76805"]),
    ("Fetal biophysical profile without non-stress test - code?", ("76819", "76818"),
     ["76819"]),
    ("Dynamic infant hip ultrasound with manipulation for developmental dysplasia.",
     ("76885", "76886"), ["76885"]),
    ("Limited static infant hip ultrasound, no manipulation - code?", ("76886", "76885"),
     ["76886"]),
    ("Ultrasound of a single Achilles tendon for a suspected tear.", ("76882", "76881"),
     ["76882"]),
])
def test_question_words_that_pick_one_of_two_near_codes(cat, question, drafted, kept):
    out = check_and_repair(asked(question, *drafted), cat)
    assert [c.code for c in out.draft.codes] == kept


def test_distinct_service_modifier_with_no_edit_to_bypass_is_dropped(cat):
    out = check_and_repair(d("76801-59", "76802-59"), cat)
    assert [(c.code, c.modifiers) for c in out.draft.codes] == [("76801", ()), ("76802", ())]
    assert {f.codes for f in out.first.findings if f.rule == "modifiers.distinct_unneeded"} == {
        ("76801",), ("76802",)}
    # With an edit to bypass, -59 is for the pair rules to judge, not this one.
    paired = check(d("76700-59", "49083"), cat)
    assert "modifiers.distinct_unneeded" not in rules(paired)
    # Two lines of one code told apart by -59: left alone.
    lines = check(d("76882-RT", "76882-59"), cat)
    assert "modifiers.distinct_unneeded" not in rules(lines)


@pytest.mark.parametrize(("question", "drafted", "kept"), [
    # coronary IVUS is not the non-coronary add-on, and no peripheral access code is added
    ("Coronary IVUS of one vessel during PCI, add-on code?", ("37252", "36005"), ["92978"]),
    ("IVUS of a second coronary vessel during PCI", ("92928", "92978", "37253"),
     ["92928", "92978", "92979"]),
    # a PICC is not a non-tunneled central line; the age still picks the code
    ("PICC line placement with ultrasound guidance and imaging, what codes?", ("36556",),
     ["36573"]),
    ("PICC line with ultrasound guidance in a 2-year-old", ("36556",), ["36572"]),
    # a tunneled catheter for a question that says non-tunneled
    ("Non-tunneled central line in an adult, no imaging", ("36558",), ["36556"]),
    # a ganglion cyst is not a joint, whatever joint it sits by (20612 is its own code)
    ("Aspiration of a wrist ganglion cyst with a needle", ("20605",), ["20612"]),
    ("Knee ganglion cyst injected under ultrasound", ("20611",), ["20612", "76942"]),
])
def test_question_words_that_name_a_different_service(cat, question, drafted, kept):
    out = check_and_repair(asked(question, *drafted), cat)
    assert [c.code for c in out.draft.codes] == kept


def test_non_coronary_ivus_keeps_its_codes(cat):
    r = check(asked("Non-coronary IVUS of the iliac artery during angiography",
                    "36200", "37252"), cat)
    assert "fit" not in rules(r)
    assert r.verdict_for("37252").status is CodeStatus.VERIFIED


def test_tendon_sheath_code_for_a_joint_question_is_not_verified(cat):
    r = check(asked("Can I use 20550 for injections into multiple joints at one visit?",
                    "20550", "20600", "20551"), cat)
    for code in ("20550", "20551"):
        f = finding(r, "fit", code)
        assert f.fix is not None and set(f.fix.alternatives) == {"20600", "20605", "20610"}
        assert r.verdict_for(code).status is not CodeStatus.VERIFIED
    # "multiple joints" names no joint size: the small-joint code is not contradicted, and
    # not verified either (the question does not say the joints were small)
    assert r.verdict_for("20600").status is CodeStatus.NOT_VERIFIED
    assert finding(r, "fit.unsupported", "20600")
    # a question that names the fascia is about 20550, joint or not
    fascia = check(asked("Plantar fascia injection, and a knee joint too", "20550"), cat)
    assert "fit" not in rules(fascia)


@pytest.mark.parametrize(("question", "lines", "want"), [
    # the total the question states, less the first, which is the primary
    ("Ultrasound-guided FNA of two thyroid nodules at the same session. Codes?",
     ("10005", "10006x2"), [("10005", 1), ("10006", 1)]),
    ("Twins at 10 weeks, first trimester OB ultrasound", ("76801", "76802x2"),
     [("76801", 1), ("76802", 1)]),
    ("Ultrasound-guided breast biopsies of 3 lesions", ("19083", "19084x3"),
     [("19083", 1), ("19084", 2)]),
    # "two additional" counts the add-on's own units: nothing to change
    ("FNA of two additional thyroid nodules after the first", ("10005", "10006x2"),
     [("10005", 1), ("10006", 2)]),
])
def test_each_additional_add_on_counts_after_the_first(cat, question, lines, want):
    out = check_and_repair(asked(question, *lines), cat)
    assert [(c.code, c.units) for c in out.draft.codes] == want
    fired = "units.each_additional" in rules(out.first)
    assert fired == (want != [(ln[:5], int(ln[6:] or 1)) for ln in lines])


def test_duplex_code_for_an_ivus_question_is_removed(cat):
    out = check_and_repair(asked("IVUS of the common iliac vein during venography, one vessel.",
                                 "37252", "93979", "36005"), cat)
    assert [c.code for c in out.draft.codes] == ["37252", "36005"]
    assert finding(out.first, "fit", "93979").fix.remove == ("93979",)
    # a duplex question keeps the duplex code; 'the iliac veins' names no side, and the
    # code is the unilateral or limited study: not verified, not removed
    duplex = check(asked("Duplex of the iliac veins before IVUS", "93979"), cat)
    assert duplex.verdict_for("93979").status is CodeStatus.NOT_VERIFIED
    duplex = check(asked("Duplex of the right iliac vein before IVUS", "93979"), cat)
    assert duplex.verdict_for("93979").status is CodeStatus.VERIFIED


@pytest.mark.parametrize(("question", "drafted", "want"), [
    ("CT guidance for needle placement for a bone biopsy - the guidance code?", "10009",
     ["77012"]),
    # the liver biopsy code takes the FNA code's place; the ultrasound guidance the FNA
    # code included is reported by 76942 beside it (47000 does not include it)
    ("Ultrasound-guided core needle biopsy of a liver lesion", "10005", ["47000", "76942"]),
    ("CT-guided FNA of a lung nodule", "10009", ["10009"]),
    # A breast core biopsy: its code includes the guidance (76942 -> 19083, and 10005 too).
    ("Ultrasound-guided core biopsy of a breast mass with clip placement.", "76942", ["19083"]),
    ("Ultrasound-guided core biopsy of a breast mass with clip placement.", "10005", ["19083"]),
])
def test_an_fna_code_for_a_bone_or_core_biopsy_becomes_the_guidance_code(
    cat, question, drafted, want
):
    out = check_and_repair(asked(question, drafted), cat)
    assert [c.code for c in out.draft.codes] == want
    assert ("fit" in rules(out.first)) == (want != [drafted])


def test_the_unlisted_code_only_fits_a_question_with_no_specific_code(cat):
    out = check_and_repair(asked("RUQ ultrasound for gallstones only, what do I code?",
                                 "76705", "76999"), cat)
    assert [c.code for c in out.draft.codes] == ["76705"]
    assert finding(out.first, "fit", "76999")
    for q in ("What code for an ultrasound procedure that has no specific CPT code?",
              "Is there an unlisted ultrasound code?"):
        assert check(asked(q, "76999"), cat).verdict_for("76999").status is CodeStatus.VERIFIED


@pytest.mark.parametrize(("question", "drafted", "want"), [
    # A complete abdomen already covers the kidneys, aorta and IVC.
    ("Full abdominal ultrasound: liver, gallbladder, pancreas, spleen, kidneys, aorta, IVC.",
     ("76700", "76770"), ["76700"]),
    ("Complete retroperitoneal ultrasound: kidneys, aorta, IVC", ("76770",), ["76770"]),
    # Kidneys and bladder are the retroperitoneal exam, not the pelvic one.
    ("Complete renal ultrasound of both kidneys and bladder for hydronephrosis.",
     ("76856", "76770"), ["76770"]),
    ("Complete pelvic ultrasound, uterus and ovaries, with bladder and kidneys", ("76856",),
     ["76856"]),
    # The axilla is the limited extremity code, not head and neck soft tissue.
    ("Axilla-only ultrasound for lymph nodes - which code?", ("76536", "76882"), ["76882"]),
    # Nuchal translucency alone is 76813, with no complete OB exam beside it.
    # The complete OB codes beside it are not contradicted (the question does not say the NT
    # was done alone): kept, not verified (test_nuchal_translucency_leaves_ob_codes_unverified).
    ("Nuchal translucency measurement, single fetus, transabdominal.",
     ("76813", "76801", "76805"), ["76813", "76801", "76805"]),
    ("Complete first trimester ultrasound with nuchal translucency", ("76801", "76813"),
     ["76801", "76813"]),
    # A nerve along its course is 76883, not the joint codes.
    ("Ultrasound of the median nerve through its entire course in one arm.",
     ("76883", "76881"), ["76883"]),
    ("Limited ultrasound of the wrist for a ganglion cyst", ("76882",), ["76882"]),
    # Tendon sheath or fascia vs tendon origin; a named nerve block vs "other nerve".
    ("Ultrasound-guided plantar fascia injection with image saved.",
     ("20550", "76942", "20551"), ["20550", "76942"]),
    ("Lateral epicondyle (tendon origin) injection under ultrasound guidance.",
     ("20550", "76942"), ["76942", "20551"]),
    ("Ultrasound-guided femoral nerve block, single injection, image saved.",
     ("64447", "76942", "64450"), ["64447", "76942"]),
    # Genicular branches have their own code (CPT 2020), which includes the imaging.
    ("Ultrasound-guided genicular nerve block", ("64450", "76942"), ["64454"]),
    # Ultrasound used by the surgeon during an operation is 76998, not needle guidance.
    ("Intraoperative ultrasound guidance during surgery, which code?", ("76998", "76942"),
     ["76998"]),
    # The aorta alone is retroperitoneal (76775), or the screening code when it is screening.
    ("Follow-up ultrasound of a known 4 cm abdominal aortic aneurysm: can I bill 76706?",
     ("76705", "76775"), ["76775"]),
    ("One-time screening ultrasound for AAA in an asymptomatic 67-year-old male smoker.",
     ("76705",), ["76706"]),
    ("Bedside FAST exam for trauma, includes the aorta", ("76705", "93308"), ["76705", "93308"]),
    # An arterial line is not a central venous catheter.
    ("I put in a radial arterial line with ultrasound guidance. Code 76942?",
     ("76937", "36620", "36556"), ["76937", "36620"]),
    ("Radial arterial line with ultrasound guidance", ("36556", "76937"), ["76937", "36620"]),
    # A guidance code of imaging the question does not name.
    ("CT guidance for needle placement for a bone biopsy - the guidance code?",
     ("77012", "77021"), ["77012"]),
    ("Fluoroscopic guidance for a tunneled central venous catheter, add-on code?",
     ("77001", "36558", "76937"), ["77001", "36558"]),
    ("Image-guided liver biopsy, which guidance code?", ("77012",), ["77012"]),
    ("CT or ultrasound guidance for a liver biopsy?", ("76942", "77012"), ["76942", "77012"]),
    # Spine fluoroscopy for a joint is the non-spine code; a biopsy clip is in the biopsy code;
    # a transplanted kidney is not the native retroperitoneal exam.
    ("Shoulder joint injection under fluoroscopic guidance.", ("20610", "77002", "77003"),
     ["20610", "77002"]),
    ("Ultrasound-guided core biopsy of a breast mass with clip placement.", ("19083", "19285"),
     ["19083"]),
    ("Ultrasound of a transplanted kidney with duplex Doppler, which code?", ("76776", "76770"),
     ["76776"]),
])
def test_codes_the_question_rules_out(cat, question, drafted, want):
    out = check_and_repair(asked(question, *drafted), cat)
    assert [c.code for c in out.draft.codes] == want


def test_a_guidance_code_for_a_question_that_names_no_imaging_is_not_verified(cat):
    # Silence about imaging is not a contradiction: the guidance code stays, not verified.
    out = check_and_repair(asked("Aspiration of a ganglion cyst on the wrist, code?",
                                 "20612", "76942"), cat)
    assert [c.code for c in out.draft.codes] == ["20612", "76942"]
    assert out.final.verdict_for("76942").status is CodeStatus.NOT_VERIFIED
    assert finding(out.first, "fit.unsupported", "76942")
    # Imaging named in the question, or in the question it follows up: kept.
    for q, history in (("Ganglion cyst aspiration under ultrasound, code?", ""),
                       ("And a second cyst?", "Ultrasound-guided ganglion cyst aspiration")):
        r = check(asked(q, "20612", "76942", history=history), cat)
        assert "fit" not in rules(r)


def test_nuchal_translucency_leaves_ob_codes_unverified(cat):
    r = check(asked("Nuchal translucency measurement, single fetus, transabdominal.",
                    "76813", "76801", "76805"), cat)
    assert r.verdict_for("76813").status is CodeStatus.VERIFIED
    for code in ("76801", "76805"):
        assert r.verdict_for(code).status is CodeStatus.NOT_VERIFIED
        assert finding(r, "fit.unsupported", code)


def test_the_carpal_tunnel_code_needs_a_carpal_tunnel_question(cat):
    r = check(asked("Lateral epicondyle injection under ultrasound guidance", "20551", "20526"),
              cat)
    # the question affirms another site (a tendon origin at the elbow): a contradiction,
    # and the code it names in its place (20551) is drafted already, so 20526 goes
    assert r.verdict_for("20526").status is CodeStatus.REMOVED
    assert finding(r, "fit.site", "20526").fix.alternatives == ("20551",)
    ok = check(asked("Carpal tunnel injection with ultrasound guidance", "20526"), cat)
    assert ok.verdict_for("20526").status is CodeStatus.VERIFIED


def test_organ_scan_beside_a_duplex_only_question_is_removed(cat):
    out = check_and_repair(asked("Complete hepatic duplex Doppler of the liver vessels: 93880?",
                                 "93975", "76700"), cat)
    assert [c.code for c in out.draft.codes] == ["93975"]
    assert finding(out.first, "fit", "76700").fix.remove == ("76700",)
    aorta = check_and_repair(asked("Complete aorto-iliac duplex to follow a repaired AAA.",
                                   "93978", "76770"), cat)
    assert [c.code for c in aorta.draft.codes] == ["93978"]
    # Both studies named: the pair edit speaks (a modifier is needed), nothing is removed.
    both = check(asked("Complete abdominal ultrasound and a duplex of the portal vein",
                       "93975", "76700"), cat)
    assert "fit" not in rules(both)
    assert "pairs.modifier_required" in rules(both)


@pytest.mark.parametrize(("question", "drafted", "want"), [
    # the guidance add-on the question names beside an access code that does not include it
    ("Central venous catheter placement (non-tunneled, age 5 or older) with ultrasound "
     "guidance", ("36556",), ["36556", "76937"]),
    ("I put in a radial arterial line with ultrasound guidance. Should I code 76942 for the "
     "guidance?", ("36620",), ["36620", "76937"]),
    # a FAST exam is both of its parts
    ("FAST exam in the emergency department: what do I code?", ("76705",),
     ["76705", "93308"]),
    ("Bedside FAST scan for trauma", ("93308",), ["93308", "76705"]),
    # IVUS named beside the catheter placement it goes with
    ("IVUS of one iliac vessel during angiography, with the catheter placed in the aorta",
     ("36200",), ["36200", "37252"]),
    ("Coronary IVUS of one vessel during PCI, add-on code?", ("92928",), ["92928", "92978"]),
    # the trigger point injections beside their guidance, by the number of muscles
    ("Is 76942 an add-on code that I list separately for each needle pass in a trigger point "
     "injection of two muscles?", ("76942",), ["76942", "20552"]),
    ("Ultrasound-guided trigger point injections in four muscles", ("76942",),
     ["76942", "20553"]),
])
def test_a_service_the_question_names_is_added(cat, question, drafted, want):
    out = check_and_repair(asked(question, *drafted), cat)
    assert [c.code for c in out.draft.codes] == want
    added = want[-1]
    f = finding(out.first, "omission.implied", added)
    assert f.fix is not None and f.fix.add == (added,) and f.sources


@pytest.mark.parametrize(("question", "drafted"), [
    # no real-time guidance, or no permanent image: nothing to add
    ("I used ultrasound only to mark the skin over the vein before a central line, no "
     "real-time guidance. Can I bill 76937?", ("36556",)),
    ("Central line with ultrasound guidance, no permanent image saved", ("36556",)),
    # a PICC code includes its guidance: the central line code is replaced, not joined
    ("PICC line placement with ultrasound guidance and imaging, what codes?", ("36556",)),
    # IVUS during an IVC filter placement is part of the filter code
    ("IVUS during IVC filter placement - can I bill 37252?", ("37191", "36005")),
    # the question names the service but no code it goes with is drafted
    ("Ultrasound-guided thyroid FNA, first nodule", ("10005",)),
    # trigger points with no count: 20552 or 20553 cannot be chosen for the user
    ("Trigger point injections under ultrasound", ("76942",)),
])
def test_nothing_is_added_where_the_question_does_not_support_it(cat, question, drafted):
    out = check_and_repair(asked(question, *drafted), cat)
    assert "omission.implied" not in rules(out.first)
    assert not {"76937", "37252", "20552", "20553"} & {c.code for c in out.draft.codes}


def test_omission_reads_the_question_not_the_history(cat):
    out = check_and_repair(asked("And if it was a PICC in an adult instead?", "36573",
                                 history="Central line in the jugular with ultrasound guidance"),
                           cat)
    assert [c.code for c in out.draft.codes] == ["36573"]
    # without a question, nothing is implied
    assert "omission.implied" not in rules(check(d("36556"), cat))


def test_needle_guidance_for_a_block_whose_code_includes_it_is_removed(cat):
    out = check_and_repair(asked("Bilateral TAP block by injection under ultrasound - can I "
                                 "add 76942?", "76942"), cat)
    # the bilateral TAP code (which includes the guidance) takes 76942's place
    assert [c.code for c in out.draft.codes] == ["64488"]
    f = finding(out.first, "fit", "76942")
    assert f.fix is not None and f.fix.remove == ("76942",) and f.fix.add == ("64488",)
    # a block whose code does not include guidance keeps it
    kept = check(asked("Femoral nerve block, single injection, under ultrasound guidance",
                       "64447", "76942"), cat)
    assert kept.verdict_for("76942").status is CodeStatus.VERIFIED


def test_unguided_fna_for_an_image_guided_question_is_not_verified(cat):
    r = check(asked("CT-guided fine needle aspiration of a lung lesion, first lesion.",
                    "10009", "10021"), cat)
    f = finding(r, "fit", "10021")
    assert f.fix is not None and "10009" in f.fix.alternatives
    assert r.verdict_for("10021").status is not CodeStatus.VERIFIED
    plain = check(asked("FNA of a palpable neck node without imaging guidance", "10021"), cat)
    assert "fit" not in rules(plain)


def test_needle_guidance_for_a_vascular_access_question_is_the_access_add_on(cat):
    q = ("I put in a radial arterial line with ultrasound guidance. Should I code 76942 for "
         "the guidance?")
    out = check_and_repair(asked(q, "76942", "36620"), cat)
    assert sorted(c.code for c in out.draft.codes) == ["36620", "76937"]
    alone = check(asked(q, "76942"), cat)
    assert alone.verdict_for("76942").status is CodeStatus.REMOVED
    # a needle into tissue keeps 76942
    kept = check(asked("Ultrasound-guided liver biopsy", "47000", "76942"), cat)
    assert not [f for f in kept.findings if "76942" in f.codes
                and f.rule.startswith("fit.") and f.rule != "fit.unsupported"]


def test_codes_a_text_gives_as_alternatives_are_not_a_claim_of_both(cat):
    # Issue 18 item 6: labelled option lines offer one code each; neither is removed.
    r = check("Limited: 93308.\nComplete: 93306.", cat)
    assert {v.code: v.status for v in r.verdicts} == {
        "93308": CodeStatus.VERIFIED, "93306": CodeStatus.VERIFIED}
    assert finding(r, "pairs.alternatives", "93308").severity is Severity.INFO
    assert "pairs.bundled" not in rules(r)
    # "bill A and B" is a claim of both: the pair edit applies
    both = check("Bill 93308 and 93306.", cat)
    assert "pairs.alternatives" not in rules(both)
    assert finding(both, "pairs.bundled", "93308")
    # one labelled line is not a list of alternatives
    one = check("Complete: 93306 and 93308.", cat)
    assert "pairs.alternatives" not in rules(one)


def test_a_fully_supported_replacement_is_not_left_out_for_an_unsupported_sibling(cat):
    # 93306 is ruled out (no Doppler); 93307 is the code the question fully supports. A
    # drafted TEE code, whose approach the question never states, does not take its place:
    # 93307 is added, and the TEE code stays, not verified (nothing contradicts it).
    out = check_and_repair(asked("Complete echo of the heart; Doppler was not performed.",
                                 "93306", "93312"), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status["93306"] is CodeStatus.REMOVED
    assert status["93307"] is CodeStatus.CORRECTED
    assert status["93312"] is CodeStatus.NOT_VERIFIED
    # A drafted sibling the question supports as fully covers it: nothing is added.
    out = check_and_repair(asked("Complete echo of the heart; Doppler was not performed.",
                                 "93306", "93307"), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status == {"93306": CodeStatus.REMOVED, "93307": CodeStatus.VERIFIED}


def test_guidance_code_alone_for_a_procedure_that_may_include_it_is_not_verified(cat):
    # A joint injection, no joint named: no one code fits, and every joint code that fits
    # best (20604, 20606, 20611) includes the ultrasound guidance, so 76942 alone is not
    # verified, with them named, and it is not removed (unknown is not wrong).
    r = check(asked("Ultrasound-guided injection of a joint.", "76942"), cat)
    assert r.verdict_for("76942").status is CodeStatus.NOT_VERIFIED
    f = finding(r, "fit.unsupported", "76942")
    assert f.fix is not None and set(f.fix.alternatives) == {"20604", "20606", "20611"}
    # a procedure whose code leaves the guidance separate keeps it verified
    r = check(asked("US-guided plantar fascia injection", "20550", "76942"), cat)
    assert r.verdict_for("76942").status is CodeStatus.VERIFIED
    r = check(asked("Ultrasound guided liver biopsy", "76942"), cat)
    assert not any(f.rule == "fit.unsupported" and "76942" in f.codes for f in r.findings)


def test_a_diagnostic_exam_where_ultrasound_is_named_only_as_guidance_is_not_verified(cat):
    # 'under ultrasound guidance' says the imaging guided a procedure, not that a diagnostic
    # study was done: the diagnostic code is not verified, and not removed (no affirmed
    # contradiction; the procedure itself is not read here).
    r = check(asked("Abdomen done under ultrasound guidance.", "76705"), cat)
    assert r.verdict_for("76705").status is CodeStatus.NOT_VERIFIED
    f = finding(r, "fit.unsupported", "76705")
    assert "only as the guidance" in f.message
    # the reason is NCCI's (a guided procedure's imaging is its guidance), and it is cited
    assert set(f.sources) == {"NCCI_IX_H9_medlearn2018", "NCCI_IX_H9_priority"}
    # ultrasound said apart from the guidance ('I also scanned ...') is a study of its own
    r = check(asked("Ultrasound-guided needle placement; I also scanned the abdomen, "
                    "limited, and found ascites.", "76705"), cat)
    assert not any(f.rule == "fit.unsupported" and "76705" in f.codes for f in r.findings)


def test_guidance_the_data_lists_as_included_counts_as_included(cat):
    # 33016's description names no guidance, but its data lists 76942 among the guidance
    # codes it includes: 76942 drafted for an ultrasound-guided pericardiocentesis is the
    # procedure's own code, not a separate guidance line.
    out = check_and_repair(asked("Pericardiocentesis under ultrasound guidance.", "76942"), cat)
    status = {v.code: v.status for v in out.verdicts}
    assert status.get("76942") is not CodeStatus.VERIFIED
    assert status.get("33016") is CodeStatus.CORRECTED


def test_a_loose_drainage_word_leaves_an_aspiration_code_unverified_not_removed(cat):
    # 'drained' is said of a needle aspiration too (vocabulary may_be): it does not rule the
    # aspiration code out, nor does it say an aspiration was done
    r = check(asked("Ganglion cyst of the wrist drained in clinic.", "20612"), cat)
    assert r.verdict_for("20612").status is CodeStatus.NOT_VERIFIED
    assert not any(f.rule == "fit.action" for f in r.findings)
    # drained with a needle is a needle aspiration (vocabulary)
    r = check(asked("Ganglion cyst of the wrist drained with a needle.", "20612"), cat)
    assert r.verdict_for("20612").status is CodeStatus.VERIFIED
    # an incision and drainage is a drainage of its own kind: it still rules it out
    r = check(asked("Incision and drainage of a ganglion cyst of the wrist.", "20612"), cat)
    assert r.verdict_for("20612").status is CodeStatus.REMOVED
    # and a question that says aspiration supports it
    r = check(asked("Ganglion cyst of the wrist aspirated with a needle.", "20612"), cat)
    assert r.verdict_for("20612").status is CodeStatus.VERIFIED


def test_the_limited_ob_exam_needs_the_question_to_say_limited(cat):
    # silence on extent verifies neither OB form: 76801 needs complete, 76815 limited
    q = "First trimester OB ultrasound at 9 weeks, single gestation, transabdominal."
    for code in ("76801", "76815"):
        assert check(asked(q, code), cat).verdict_for(code).status is CodeStatus.NOT_VERIFIED
    q = "Quick limited OB scan at 30 weeks for fetal heart activity and position."
    assert check(asked(q, "76815"), cat).verdict_for("76815").status is CodeStatus.VERIFIED


def test_a_tendon_sheath_beside_a_joint_is_not_the_joint(cat):
    # a tendon sheath injection at the wrist is 20550, not the wrist joint's 20606 (the joint
    # codes' data exclude the tendon sheath, as they exclude a ganglion cyst)
    q = "Tendon sheath injection at the wrist with ultrasound."
    assert check(asked(q, "20606"), cat).verdict_for("20606").status is not CodeStatus.VERIFIED
    assert check(asked(q, "20550", "76942"), cat).verdict_for("20550").status is (
        CodeStatus.VERIFIED)
