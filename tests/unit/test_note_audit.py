"""Note audit: every element of every documentation set is detected, missed and negated."""

from __future__ import annotations

import re

import pytest

from guardrails.audit import ElementStatus, audit_element, audit_note, split_sentences
from knowledge.catalog import load_catalog

CATALOG = load_catalog()

# One sentence per element that documents it (and nothing else of the same set), so a note
# built from the other sentences of the set must report exactly this element as missing.
SHOWS: dict[tuple[str, str], str] = {
    ("vascular_access_guidance", "sites_evaluated"): "Potential access sites were evaluated.",
    ("vascular_access_guidance", "vessel_patency"): "The right internal jugular was patent.",
    ("vascular_access_guidance", "realtime_needle_entry"):
        "Needle entry into the vein was visualized in real time.",
    ("vascular_access_guidance", "permanent_image"): "A permanent image was saved to the chart.",
    ("needle_guidance", "guidance_described"): "The cyst was aspirated under ultrasound.",
    ("needle_guidance", "permanent_image"): "An image was saved showing the needle in the cyst.",
    ("guided_joint", "guidance_described"): "The right knee was injected under ultrasound.",
    ("guided_joint", "permanent_image"): "Still images were archived.",
    ("picc_imaging", "vessel_patency"): "The basilic vein was patent.",
    ("picc_imaging", "realtime_needle_entry"): "Venipuncture was performed in real time.",
    ("picc_imaging", "permanent_image"): "An image was recorded.",
    ("picc_imaging", "final_position"):
        "The tip position was confirmed at the cavoatrial junction.",
    ("diagnostic_report", "indication"): "Indication: shortness of breath.",
    ("diagnostic_report", "structures_findings"): "Findings: small pericardial effusion.",
    ("diagnostic_report", "interpretation"): "Impression: preserved systolic function.",
    ("diagnostic_report", "permanent_image"): "Images were archived.",
    ("diagnostic_report", "performer"): "Performed by the attending physician.",
    ("ivus", "vessels_named"): "The left common iliac vein was examined.",
    ("ivus", "findings_measurements"): "Minimal luminal area was 80 square millimetres.",
    ("ivus", "permanent_image"): "Images were retained.",
    ("fluoro_guidance", "permanent_image"): "A spot film was saved.",
    ("strain_imaging", "quantitative_strain"): "Global longitudinal strain was -19 percent.",
    ("complete_76700", "liver"): "The liver is unremarkable.",
    ("complete_76700", "gallbladder"): "The gallbladder has no stones.",
    ("complete_76700", "common_bile_duct"): "The common bile duct measures 4 mm.",
    ("complete_76700", "pancreas"): "The pancreas is partly obscured by gas.",
    ("complete_76700", "spleen"): "The spleen is 10 cm.",
    ("complete_76700", "kidneys"): "Both kidneys are normal.",
    ("complete_76700", "upper_aorta"): "The aorta is not dilated.",
    ("complete_76700", "ivc"): "The IVC is unremarkable.",
    ("complete_76770", "kidneys"): "Both kidneys are normal.",
    ("complete_76770", "aorta"): "The aorta is not dilated.",
    ("complete_76770", "iliac_origins"): "The iliac origins are seen.",
    ("complete_76770", "ivc"): "The inferior vena cava is normal.",
    ("complete_76770", "bladder"): "The urinary bladder is distended.",
    ("complete_76856", "bladder"): "The urinary bladder is unremarkable.",
    ("complete_76856", "uterus_or_prostate"): "The uterus is anteverted.",
    ("complete_76856", "adnexa"): "Both ovaries are normal.",
    ("complete_76856", "pelvic_pathology"): "There is no free fluid.",
    ("complete_76881", "joint_space"): "A small joint effusion is present.",
    ("complete_76881", "muscles"): "The quadriceps muscle is intact.",
    ("complete_76881", "tendons"): "The patellar tendon is intact.",
    ("complete_76881", "other_soft_tissue"): "The medial collateral ligament is intact.",
    ("complete_76881", "abnormality"): "A small meniscal tear is seen.",
    ("complete_76641", "four_quadrants"): "All four quadrants were scanned.",
    ("complete_76641", "retroareolar"): "The retroareolar region is normal.",
    ("complete_76641", "axilla_when_done"): "The axilla shows normal nodes.",
    ("complete_76805", "fetal_number"): "Single live intrauterine pregnancy.",
    ("complete_76805", "biometry"): "Biparietal diameter is 45 mm.",
    ("complete_76805", "anatomy_survey"): "The four-chamber heart view is normal.",
    ("complete_76805", "cord_insertion"): "The cord insertion is normal.",
    ("complete_76805", "placenta"): "The placenta is posterior.",
    ("complete_76805", "amniotic_fluid"): "Amniotic fluid is normal.",
    ("complete_76805", "maternal_adnexa"): "Maternal ovaries are normal.",
    ("complete_93975", "arterial_inflow"): "Arterial inflow to the kidney is normal.",
    ("complete_93975", "venous_outflow"): "The renal vein outflow is normal.",
    ("complete_93975", "both_paired_organs"): "Both kidneys were studied.",
    ("complete_93970", "both_extremities"): "Both legs were studied.",
    ("complete_93970", "full_length"): "The common femoral and popliteal segments were followed.",
    ("complete_93970", "compression"): "Veins were fully compressible.",
    ("complete_93970", "doppler_flow"): "Color Doppler showed phasic flow.",
}

# For every negation regex of every element: a sentence that says the element was not done.
# Sets share their negations (documentation.yaml anchors), so most are keyed by the regex.
NEGATES: dict[tuple[str, str, str], str] = {
    ("vascular_access_guidance", "realtime_needle_entry", r"static (marking|image) only"):
        "Static marking only, then a blind real-time puncture.",
    ("vascular_access_guidance", "realtime_needle_entry", r"skin (was )?marked"):
        "The skin was marked and the needle tip was seen in the vein.",
    ("vascular_access_guidance", "realtime_needle_entry", r"vessel (was )?marked"):
        "The vessel was marked under real-time ultrasound before prep.",
}
_VEIN = (r"\b(?:IJs?|internal jugulars?|jugulars?|femorals?|subclavians?|basilic|brachial|"
         r"cephalic|axillary|veins?|vessels?|access sites?|sites?)")
_IMG = r"(?:image|images|picture|pictures|still|stills|clip|clips|loop|loops|spot films?|films?)"
_KEPT = r"(?:saved|stored|archived|retained|recorded|printed|uploaded|captured|sent)"
_BY_REGEX: dict[str, str] = {
    r"no (site|vessel) (evaluation|survey)": "There was no vessel survey before the puncture.",
    _VEIN + r"\s+(?:were|was)\s+not\s+(?:scanned|imaged|surveyed|interrogated|examined|"
    r"evaluated|assessed)": "The other veins were not scanned.",
    r"\bno\s+(?:ultrasound\s+|sonographic\s+|pre-?procedur\w*\s+)?(?:site\s+|vessel\s+|"
    r"vein\s+)?(?:survey|evaluation|assessment|scan)\b": "No ultrasound survey was done.",
    r"patency (was )?not (assessed|documented|evaluated|checked)": "Patency was not assessed.",
    r"compressib\w*\s+(?:was\s+)?not\s+(?:checked|assessed|documented|tested|evaluated)":
        "Compressibility was not checked.",
    r"static (marking|image) only": "Static image only.",
    r"skin (was )?marked": "The skin was marked.",
    r"vessel (was )?marked": "The vessel was marked.",
    r"\b(?:no|without)\s+real[- ]time": "Placed without real-time guidance.",
    r"\bnot\s+(?:under\s+)?real[- ]time": "The puncture was not under real-time guidance.",
    r"needle\s+(?:tip\s+)?(?:was\s+)?not\s+(?:visuali[sz]ed|seen|observed)":
        "The needle was not visualized in the vein.",
    r"\bno\s+(?:permanent\s+|static\s+|still\s+|representative\s+)?" + _IMG
    + r"\b[^.;]{0,30}\b(?:was|were)?\s*" + _KEPT: "No image saved.",
    r"\b" + _IMG + r"\s+(?:was\s+|were\s+)?not\s+" + _KEPT: "Images were not saved.",
    r"without (saving|storing|archiving|recording|retaining) (an |any )?images?":
        "The line was placed without saving an image.",
    r"\bno\s+(?:ultrasound|sonographic|image|imaging)\s+guid": "No ultrasound guidance was used.",
    r"\bwithout\s+(?:ultrasound|sonograph\w*|imaging)": "Injected by landmarks without imaging.",
}


def _elements() -> list[tuple[str, str]]:
    return [(s.id, e.id) for s in CATALOG.element_sets.values() for e in s.elements]


def _element(set_id: str, element_id: str):  # type: ignore[no-untyped-def]
    return next(e for e in CATALOG.element_sets[set_id].elements if e.id == element_id)


def _negations() -> list[tuple[str, str, str]]:
    return [
        (s.id, e.id, n)
        for s in CATALOG.element_sets.values()
        for e in s.elements
        for n in e.negations
    ]


def _negating_sentence(set_id: str, element_id: str, negation: str) -> str:
    return NEGATES.get((set_id, element_id, negation)) or _BY_REGEX[negation]


def test_every_element_has_a_test_sentence() -> None:
    """A new element in documentation.yaml must come with a sentence here."""
    assert set(SHOWS) == set(_elements())


def test_every_negation_has_a_test_sentence() -> None:
    for set_id, element_id, negation in _negations():
        assert _negating_sentence(set_id, element_id, negation), (set_id, element_id, negation)


@pytest.mark.parametrize(("set_id", "element_id"), _elements())
def test_element_detected_when_shown(set_id: str, element_id: str) -> None:
    sentence = SHOWS[(set_id, element_id)]
    note = f"Procedure note. {sentence} Patient tolerated the procedure."
    result = audit_element(note, _element(set_id, element_id))
    assert result.status is ElementStatus.PRESENT
    assert result.evidence == sentence


@pytest.mark.parametrize(("set_id", "element_id"), _elements())
def test_element_missing_from_note_of_the_other_elements(set_id: str, element_id: str) -> None:
    others = [SHOWS[(set_id, e.id)] for e in CATALOG.element_sets[set_id].elements
              if e.id != element_id]
    note = " ".join(others) or "Procedure completed without complication."
    result = audit_element(note, _element(set_id, element_id))
    assert result.status is ElementStatus.MISSING
    assert result.evidence is None
    # ... and each other element of the set is still found in that note.
    for other in CATALOG.element_sets[set_id].elements:
        if other.id != element_id:
            assert audit_element(note, other).present, other.id


@pytest.mark.parametrize(("set_id", "element_id", "negation"), _negations())
def test_negation_makes_element_missing(set_id: str, element_id: str, negation: str) -> None:
    sentence = _negating_sentence(set_id, element_id, negation)
    assert re.search(negation, sentence, re.IGNORECASE)
    result = audit_element(f"Procedure note. {sentence}", _element(set_id, element_id))
    assert result.status is ElementStatus.NEGATED
    assert result.evidence == sentence


@pytest.mark.parametrize(
    "set_id", sorted({s for s, e in _elements() if e == "permanent_image"
                      and _element(s, e).negations})
)
def test_image_negation_in_same_sentence_cancels_the_pattern(set_id: str) -> None:
    element = _element(set_id, "permanent_image")
    assert not audit_element("No image was saved.", element).present
    assert not audit_element("Images were not saved to PACS.", element).present
    assert audit_element("Images were saved to PACS.", element).present


def test_negation_only_cancels_its_own_sentence() -> None:
    element = _element("vascular_access_guidance", "realtime_needle_entry")
    same = "The vessel was marked and the needle tip was visualized in real time."
    assert audit_element(same, element).status is ElementStatus.NEGATED
    apart = "The vessel was marked. The needle tip was visualized in real time."
    assert audit_element(apart, element).status is ElementStatus.PRESENT


def test_abbreviation_does_not_end_a_sentence() -> None:
    note = "Performed by Dr. Lee. Images were not saved.\nImpression: normal."
    spans = split_sentences(note)
    assert [note[s:e] for s, e in spans] == [
        "Performed by Dr. Lee.", "Images were not saved.", "Impression: normal."
    ]


VASCULAR_NOTE = (
    "Right internal jugular central line. Potential access sites were evaluated with "
    "ultrasound. Under real-time ultrasound guidance the needle entry into the vein was "
    "visualized. Images were saved to PACS."
)


def test_76937_missing_patency() -> None:
    audit = audit_note(VASCULAR_NOTE, ["+76937"], CATALOG)
    code = audit.for_code("76937")
    assert code is not None
    assert code.known
    assert code.documented is False
    (docs,) = code.documentation
    status = {e.element: e.status for e in docs.elements}
    assert status == {
        "sites_evaluated": ElementStatus.PRESENT,
        "vessel_patency": ElementStatus.MISSING,
        "realtime_needle_entry": ElementStatus.PRESENT,
        "permanent_image": ElementStatus.PRESENT,
    }
    assert "Patency" in code.message
    assert audit.ruleset == CATALOG.ruleset


def test_76937_fully_documented() -> None:
    note = VASCULAR_NOTE + " The vein was patent and fully compressible."
    code = audit_note(note, ["76937"], CATALOG).for_code("76937")
    assert code is not None
    assert code.documented is True
    assert code.supported_extent is None


ABDOMEN = " ".join(SHOWS[("complete_76700", e.id)]
                   for e in CATALOG.element_sets["complete_76700"].elements)
REPORT = " ".join(SHOWS[("diagnostic_report", e.id)]
                  for e in CATALOG.element_sets["diagnostic_report"].elements)


def test_complete_abdomen_supports_complete() -> None:
    code = audit_note(f"{REPORT} {ABDOMEN}", ["76700"], CATALOG).for_code("76700")
    assert code is not None
    assert code.supported_extent == "complete"
    assert code.documented is True
    assert (code.complete_code, code.limited_code) == ("76700", "76705")


def test_abdomen_without_pancreas_supports_only_limited() -> None:
    note = f"{REPORT} {ABDOMEN}".replace(SHOWS[("complete_76700", "pancreas")], "")
    for code in ("76700", "76705"):  # the limited code is judged against the complete set
        result = audit_note(note, [code], CATALOG).for_code(code)
        assert result is not None
        assert result.supported_extent == "limited"
        assert result.complete_exam is not None
        assert [e.element for e in result.complete_exam.missing] == ["pancreas"]
        assert "76705" in result.message


def test_unknown_and_undocumented_codes() -> None:
    audit = audit_note("Anything.", ["99999", "76942", "76942"], CATALOG)
    assert [c.code for c in audit.codes] == ["99999", "76942"]
    unknown = audit.for_code("99999")
    assert unknown is not None
    assert not unknown.known
    assert "not in the ruleset" in unknown.message
    data = audit.to_dict()
    assert data["codes"][1]["documented"] is False
