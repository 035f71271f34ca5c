"""Facts a review of the knowledge base found wrong: each answer below was wrong before."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from guardrails.checker import check
from guardrails.repair import check_and_repair
from guardrails.report import CodeStatus, Draft, DraftCode
from knowledge.catalog import DATA_DIR, build_catalog
from knowledge.loader import KnowledgeError
from knowledge.schema import Adjudication, Confidence


@pytest.fixture(scope="module")
def cat():
    return build_catalog()


def asked(question: str, *lines: str) -> Draft:
    """Codes drafted in answer to ``question`` ("93970-59", "76815x2")."""
    from guardrails.claims import parse_claim_line

    codes = []
    for t in lines:
        ln = parse_claim_line(t)
        codes.append(DraftCode(ln.code, ln.units, ln.modifiers))
    return Draft(codes=tuple(codes), context=question.lower())


def kept(out) -> list[str]:
    return [c.code for c in out.draft.codes]


def status(out) -> dict[str, CodeStatus]:
    return {v.code: v.status for v in out.verdicts}


# -- genicular nerve ---------------------------------------------------------------------

def test_a_genicular_block_is_its_own_code_and_includes_the_guidance(cat):
    out = check_and_repair(asked("Ultrasound-guided genicular nerve block", "64450", "76942"),
                           cat)
    assert kept(out) == ["64454"]
    assert status(out) == {"64450": CodeStatus.REMOVED, "76942": CodeStatus.REMOVED,
                           "64454": CodeStatus.CORRECTED}
    # The destruction code, asked as such, with fluoroscopy: the code includes the imaging.
    rfa = check_and_repair(asked("Genicular nerve radiofrequency ablation under fluoroscopy",
                                 "64450", "77002"), cat)
    assert kept(rfa) == ["64624"]
    for code in ("64454", "64624"):
        entry = cat.codes[code]
        assert entry.guidance_included and {"76942", "77002", "77003"} <= set(
            entry.included_guidance)


# -- IVUS with an IVC filter -----------------------------------------------------------

def test_ivus_beside_a_filter_procedure_drops_the_add_on_not_the_procedure(cat):
    out = check_and_repair(asked("IVC filter placement with intravascular ultrasound",
                                 "37191", "37252"), cat)
    assert kept(out) == ["37191"]
    assert status(out)["37252"] is CodeStatus.REMOVED


def test_kb_validate_rejects_a_fix_that_drops_a_procedure_and_keeps_an_add_on(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(DATA_DIR, d)
    p = d / "pairs.yaml"
    data = yaml.safe_load(p.read_text())
    rule = next(r for r in data["rules"] if r["id"] == "ivus_not_with_filter")
    rule["column1"], rule["column2"] = rule["column2"], rule["column1"]
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(KnowledgeError) as ei:
        build_catalog(Path(d))
    assert any("keeps the add-on 37252" in m and "pairs.yaml:" in m for m in ei.value.problems)


# -- aorta: screening or not -----------------------------------------------------------

@pytest.mark.parametrize(("question", "want"), [
    ("Bedside ED ultrasound of the aorta for suspected AAA in a patient with back pain.",
     ["76775"]),
    ("Follow-up ultrasound of a known abdominal aortic aneurysm", ["76775"]),
    ("One-time AAA screening ultrasound in an asymptomatic 67-year-old male smoker",
     ["76706"]),
])
def test_the_screening_rule_fires_only_on_screening(cat, question, want):
    out = check_and_repair(asked(question, "76706", "76775"), cat)
    assert kept(out) == want
    assert status(out)[want[0]] is CodeStatus.VERIFIED


def test_a_screening_and_a_diagnostic_aorta_code_with_no_question_are_both_unverified(cat):
    r = check(Draft(codes=(DraftCode("76706", 1, ()), DraftCode("76770", 1, ()))), cat)
    assert {v.code: v.status for v in r.verdicts} == {
        "76706": CodeStatus.NOT_VERIFIED, "76770": CodeStatus.NOT_VERIFIED}


# -- upper plus lower extremity venous duplex ------------------------------------------

def test_upper_and_lower_venous_duplex_keeps_both_lines(cat):
    q = "Venous duplex of both upper and both lower extremities in one session"
    out = check_and_repair(asked(q, "93970", "93970-59"), cat)
    assert [(c.code, c.units, c.modifiers) for c in out.draft.codes] == [
        ("93970", 1, ()), ("93970", 1, ("59",))]
    assert status(out)["93970"] is CodeStatus.VERIFIED
    # Drafted as x2 on one line: not cut to one unit (the count is the question's own).
    two = check_and_repair(asked(q, "93970x2"), cat)
    assert [(c.code, c.units) for c in two.draft.codes] == [("93970", 2)]
    # Legs only: a second line is the draft's own and goes.
    legs = check_and_repair(asked("Venous duplex of both legs for DVT", "93970", "93970-59"),
                            cat)
    assert [(c.code, c.units) for c in legs.draft.codes] == [("93970", 1)]


# -- RT/LT on one-side codes -----------------------------------------------------------

@pytest.mark.parametrize(("question", "line"), [
    ("Right leg venous duplex for DVT", "93971-RT"),
    ("Left carotid duplex for a bruit", "93882-LT"),
    ("Right leg arterial duplex for claudication", "93926-RT"),
    ("Left arm arterial duplex", "93931-LT"),
])
def test_a_side_modifier_on_a_one_side_code_stands(cat, question, line):
    out = check_and_repair(asked(question, line), cat)
    code, side = line.split("-")
    assert [(c.code, c.modifiers) for c in out.draft.codes] == [(code, (side,))]
    assert status(out)[code] is CodeStatus.VERIFIED


def test_a_side_modifier_on_a_both_sides_code_is_still_flagged(cat):
    out = check_and_repair(asked("Right leg venous duplex", "93970-RT"), cat)
    assert any(f.rule == "modifiers.side" for f in out.first.findings)


# -- sacroiliac joint and named nerves -------------------------------------------------

def test_a_limb_joint_code_is_not_verified_for_a_sacroiliac_joint(cat):
    us = check_and_repair(asked("Ultrasound-guided sacroiliac joint injection", "20611"), cat)
    assert status(us)["20611"] is not CodeStatus.VERIFIED
    fluoro = check_and_repair(asked("SI joint injection under fluoroscopy", "20610", "77002"),
                              cat)
    assert kept(fluoro) == ["27096"]


@pytest.mark.parametrize(("question", "want"), [
    ("Ultrasound-guided suprascapular nerve block", ["76942", "64418"]),
    ("Ultrasound-guided greater occipital nerve block", ["76942", "64405"]),
    ("US-guided interscalene block for shoulder surgery", ["76942", "64415"]),
])
def test_other_nerve_gives_way_to_the_named_nerve_code(cat, question, want):
    out = check_and_repair(asked(question, "64450", "76942"), cat)
    assert kept(out) == want
    assert status(out)["64450"] is CodeStatus.REMOVED


def test_other_nerve_stands_when_no_named_code_fits(cat):
    out = check_and_repair(asked("Ultrasound-guided lateral femoral cutaneous nerve block",
                                 "64450", "76942"), cat)
    assert kept(out) == ["64450", "76942"]
    assert status(out)["64450"] is CodeStatus.VERIFIED


# -- dialysis access mapping: both arms and one arm ------------------------------------

def test_dialysis_mapping_codes_are_the_two_forms_of_one_study(cat):
    assert (cat.codes["93985"].side_counterpart, cat.codes["93986"].side_counterpart) == (
        "93986", "93985")
    one = check_and_repair(asked("Pre-op vessel mapping for dialysis access, left arm only",
                                 "93985"), cat)
    assert kept(one) == ["93986"]
    both = check_and_repair(asked("Dialysis access mapping of both arms", "93986"), cat)
    assert kept(both) == ["93985"]
    twice = check_and_repair(asked("Dialysis access mapping of both arms", "93985", "93986"),
                             cat)
    assert kept(twice) == ["93985"]


# -- 76815 and what its limit rests on -------------------------------------------------

def test_the_76815_limit_is_the_codes_own_count_not_a_national_edit(cat):
    limit = cat.unit_limit("76815")
    assert limit is not None and limit.adjudication is Adjudication.DESCRIPTOR
    assert limit.confidence is not Confidence.HIGH
    r = check(asked("Quick OB ultrasound to check heartbeat in twins", "76815x2"), cat)
    f = next(f for f in r.findings if f.rule == "units.over_limit")
    assert "cannot be appealed" not in f.message and "definition" in f.message


def test_policy_unit_limits_cite_a_policy_source(cat):
    """A limit read as NCCI or MUE policy cites a source that speaks of that policy."""
    policy = (Adjudication.ENCOUNTER_POLICY, Adjudication.DATE_POLICY,
              Adjudication.DATE_CLINICAL, Adjudication.LINE)
    for code, entry in cat.codes.items():
        limit = entry.unit_limit
        if limit is None or limit.adjudication not in policy:
            continue
        said = " ".join(f"{k} {cat.sources[k].supports}" for k in limit.sources)
        assert any(w in said for w in ("NCCI", "MUE", "CMS", "Medicare")), code


# -- question rules marked high on weaker or unrelated sources -------------------------

@pytest.mark.parametrize(("question", "code"), [
    ("TEE probe placement only, another physician interpreted", "93312"),
    ("TEE interpretation only; the probe was placed by the anesthesiologist", "93313"),
    ("Ultrasound-guided FNA of a thyroid nodule", "10021"),
    ("Radial arterial line with ultrasound guidance", "76942"),
    ("Arterial line in the radial artery", "36556"),
    ("Ultrasound-guided core biopsy of two liver lesions", "19083"),
])
def test_question_fit_is_no_surer_than_a_codes_description(cat, question, code):
    # A fit is read from the code's own description (descriptor scope): medium at most,
    # never the high confidence of a national edit.
    out = check(asked(question, code), cat)
    found = [f for f in out.findings if f.rule.startswith("fit.") and code in f.codes]
    assert found, (question, code)
    assert all(f.confidence != "high" for f in found)


@pytest.mark.parametrize("rule_id", ["age_variants_36555_36556", "age_variants_36557_36558",
                                     "age_variants_36560_36561", "age_variants_36570_36571"])
def test_age_variant_rules_cite_a_source_on_the_age_split(cat, rule_id):
    rule = cat.rules[rule_id]
    assert "AAPC_76937" not in rule.sources
    assert all("5" in cat.sources[k].supports for k in rule.sources)


# -- further codes files ---------------------------------------------------------------

def test_a_further_codes_file_loads_and_is_checked_with_its_own_file_and_line(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(DATA_DIR, d)
    entry = {"code": "99999", "label": "A test procedure", "family": "related",
             "kind": "procedure", "sources": ["AMA_CPT_descriptor"], "confidence": "medium"}
    (d / "codes-extra.yaml").write_text(yaml.safe_dump({"codes": [entry]}, sort_keys=False))
    cat = build_catalog(Path(d))
    assert cat.codes["99999"].label == "A test procedure"
    bad = dict(entry, family="nowhere")
    (d / "codes-extra.yaml").write_text(yaml.safe_dump({"codes": [entry, bad]}, sort_keys=False))
    with pytest.raises(KnowledgeError) as ei:
        build_catalog(Path(d))
    probs = ei.value.problems
    assert any(m.startswith(f"{d / 'codes-extra.yaml'}:") and "duplicate code 99999" in m
               for m in probs), probs
    assert any("codes-extra.yaml:" in m and "unknown family nowhere" in m for m in probs), probs
