"""Knowledge base: loads whole, validates with file and line, checks every cross-reference."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from knowledge.catalog import DATA_DIR, build_catalog
from knowledge.corpus import load_guidelines
from knowledge.loader import KnowledgeError

REF = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "reference.json").read_text()
)


@pytest.fixture(scope="module")
def catalog():
    return build_catalog()


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(DATA_DIR, d)
    return d


def _edit(d: Path, fname: str, fn) -> None:
    p = d / fname
    data = yaml.safe_load(p.read_text())
    fn(data)
    p.write_text(yaml.safe_dump(data, sort_keys=False))


def _code(data: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c for c in data["codes"] if c["code"] == code)


def _problems(d: Path) -> list[str]:
    with pytest.raises(KnowledgeError) as ei:
        build_catalog(d)
    return ei.value.problems


def test_builtin_data_loads_and_covers_reference(catalog):
    facts = REF["codes"]
    singles = [c for c in facts if re.fullmatch(r"\d{5}", c)]
    ranges = [c for c in facts if not re.fullmatch(r"\d{5}", c)]
    assert len(facts) == 142
    for code in singles:
        assert code in catalog.codes, code
    # the three range entries are held as groups with explicit members
    assert len(ranges) == 3
    assert {g.ranges for g in catalog.groups.values()} >= {"36555-36571", "64400-64450"}
    for g in catalog.groups.values():
        assert all(m in catalog.codes for m in g.members)
    assert len(catalog.rules) >= 28


def test_every_reference_pair_rule_is_represented(catalog):
    rules = REF["pair_rules"]
    covered = 0
    for col1, col2 in rules:
        c1 = [c for c in col1 if re.fullmatch(r"\d{5}", c)]
        c2 = [c for c in col2 if re.fullmatch(r"\d{5}", c)]
        if not c1 or not c2:
            # policy rules without a concrete pair: unit limits and region policy
            covered += 1
            continue
        assert any(catalog.pair(a, b) for a in c1 for b in c2), (col1, col2)
        covered += 1
    assert covered == 28
    assert catalog.unit_limit("76942").value == 1
    assert catalog.unit_limit("77002").per == "encounter"
    assert catalog.unit_limit("77003").adjudication.value == "encounter_policy"


def test_key_facts(catalog):
    e = catalog.get("76937")
    assert e.add_on and len(catalog.element_sets[e.documentation[0]].elements) == 4
    assert not catalog.get("76942").add_on
    assert catalog.get("76604").extent.value == "single"
    assert catalog.status("37250") == "deleted"
    assert catalog.get("37250").replaced_by == ("37252",)
    for code in ("37251", "75945", "75946"):
        assert catalog.status(code) == "deleted"
    assert catalog.status("76943") == "unknown"
    for code in ("76700", "76770", "76856", "76881", "76641", "76805", "93975", "93970"):
        assert catalog.get(code).complete_elements, code
    for code in ("36572", "36573", "37252", "37253", "76942"):
        assert catalog.get(code).documentation, code
    assert set(catalog.modifiers) >= {"50", "52", "26", "TC", "59", "XE", "XP", "XS", "XU",
                                      "76", "77", "RT", "LT"}


def test_every_fact_has_sources_or_is_low(catalog):
    for c in catalog.codes.values():
        assert c.sources, c.code
        for k in c.sources:
            assert k in catalog.sources
    for r in catalog.rules.values():
        assert r.sources or r.confidence.value == "low"


def test_labels_are_short_own_words(catalog):
    for c in catalog.codes.values():
        assert len(c.label.split()) <= 20
        assert len(c.label) <= 140


def test_guideline_corpus(catalog):
    docs = load_guidelines(catalog=catalog)
    assert len(docs) >= 20
    errors = REF["web_error_claims"]
    text = "\n".join(d.body for d in docs)
    assert text.count("## Error") >= len(errors)


# -- schema validation errors: file and line -------------------------------------------


def test_misspelled_key_names_file_and_line(tmp_path):
    d = _copy(tmp_path)
    p = d / "codes.yaml"
    text = p.read_text().replace("  label: Abdominal ultrasound, complete",
                                 "  lable: Abdominal ultrasound, complete", 1)
    p.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "lable:" in ln)
    probs = _problems(d)
    assert any(f"codes.yaml:{line}:" in m and "lable" in m for m in probs), probs


def test_bad_value_names_file_and_line(tmp_path):
    d = _copy(tmp_path)
    p = d / "pairs.yaml"
    text = p.read_text().replace("  modifier_indicator: 0\n", "  modifier_indicator: 7\n", 1)
    p.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "modifier_indicator: 7" in ln)
    probs = _problems(d)
    assert any(f"pairs.yaml:{line}:" in m and "modifier_indicator" in m for m in probs), probs


def test_yaml_syntax_error(tmp_path):
    d = _copy(tmp_path)
    (d / "modifiers.yaml").write_text("modifiers: [\n  - bad")
    probs = _problems(d)
    assert any("modifiers.yaml:" in m and "YAML syntax" in m for m in probs)


def test_bad_code_shape_and_missing_source_confidence(tmp_path):
    d = _copy(tmp_path)

    def fn(data):
        _code(data, "76700")["code"] = "7670"
        _code(data, "76705")["sources"] = []

    _edit(d, "codes.yaml", fn)
    probs = _problems(d)
    assert any("codes.yaml:" in m and "pattern" in m for m in probs)
    assert any("without sources" in m for m in probs)


# -- cross references ------------------------------------------------------------------

CROSS = [
    ("codes.yaml", lambda x: _code(x, "76700").update(family="nowhere"), "unknown family"),
    ("codes.yaml", lambda x: _code(x, "76700").update(counterpart="76999"), "points"),
    ("codes.yaml", lambda x: _code(x, "76881").update(counterpart="12345"), "counterpart 12345"),
    ("codes.yaml", lambda x: _code(x, "76705").update(extent="complete"), "both complete"),
    ("codes.yaml", lambda x: _code(x, "36573").update(age_band="under_5"),
     "no code of the other band"),
    ("codes.yaml", lambda x: _code(x, "76802").update(primaries=["12345"]), "primary 12345"),
    ("codes.yaml", lambda x: _code(x, "76937").update(excluded_primaries=["12346"]),
     "excluded primary 12346"),
    ("codes.yaml", lambda x: _code(x, "20611").update(included_guidance=["12347"]),
     "included guidance 12347"),
    ("codes.yaml", lambda x: _code(x, "37250").update(replaced_by=["12348"]), "replacement 12348"),
    ("codes.yaml", lambda x: _code(x, "76700").update(sources=["NO_SUCH"]), "NO_SUCH"),
    ("codes.yaml", lambda x: _code(x, "76942")["unit_limit"].update(sources=["NO_SUCH2"]),
     "NO_SUCH2"),
    ("codes.yaml", lambda x: _code(x, "76706")["misreadings"][0].update(fix=["12349"]),
     "misreading fix 12349"),
    ("codes.yaml", lambda x: _code(x, "76942").update(documentation=["nope"]),
     "no documentation set nope"),
    ("codes.yaml", lambda x: _code(x, "76700").update(complete_elements="nope2"),
     "no complete-exam set nope2"),
    ("codes.yaml", lambda x: x["groups"][0]["members"].append("12350"), "group member 12350"),
    ("codes.yaml", lambda x: x["codes"].append(dict(_code(x, "76700"))), "duplicate code 76700"),
    ("pairs.yaml", lambda x: x["rules"][0]["column1"].append("12351"), "column-1 code 12351"),
    ("pairs.yaml", lambda x: x["rules"][0]["column2"].append("12352"), "column-2 code 12352"),
    ("pairs.yaml", lambda x: x["rules"][0].update(sources=["NO_SUCH3"]), "NO_SUCH3"),
    ("pairs.yaml", lambda x: x["rules"][1]["fix"]["replacements"].update({"76700": ["76705"]}),
     "76700 is not in column1"),
    ("pairs.yaml", lambda x: x["rules"][0].pop("modifier_indicator"), "needs a modifier_indicator"),
    ("pairs.yaml", lambda x: x["rules"].append(dict(x["rules"][0])), "duplicate rule id"),
    ("documentation.yaml", lambda x: x["sets"][0]["codes"].append("12353"), "code 12353"),
    ("documentation.yaml", lambda x: x["sets"][0].update(sources=["NO_SUCH4"]), "NO_SUCH4"),
    ("modifiers.yaml", lambda x: x["modifiers"][0].update(sources=["NO_SUCH5"]), "NO_SUCH5"),
    ("sources.yaml", lambda x: x["sources"].append(dict(x["sources"][1])), "duplicate source key"),
    # A source reaches only as far as its scope: AMA_CPT says a code exists, nothing more.
    # What a code describes names concepts of the question vocabulary, of the right kind.
    ("codes.yaml", lambda x: _code(x, "76818")["describes"].update(sites=["no_such_site"]),
     "no concept no_such_site"),
    ("codes.yaml", lambda x: _code(x, "76818")["describes"].update(sites=["doppler"]),
     "doppler is a feature concept"),
    ("vocabulary.yaml", lambda x: x["concepts"][0].update(parents=["no_such_parent"]),
     "no concept no_such_parent"),
    # an action defined as an action at a site names an existing action and site
    ("vocabulary.yaml",
     lambda x: next(c for c in x["concepts"] if c["id"] == "facet_injection").update(
         formed_by=[["injection", "no_such_site"]]), "must name an existing action and site"),
    ("codes.yaml", lambda x: _code(x, "76506").update(sources=["AMA_CPT"]),
     "76506 cites only AMA_CPT"),
    ("pairs.yaml", lambda x: x["rules"][0].update(sources=["AMA_CPT"]), "not this rule"),
    ("modifiers.yaml", lambda x: x["misconceptions"][0].update(sources=["AMA_CPT"]),
     "not this rule"),
]


def test_a_code_known_only_to_exist_is_low(catalog):
    """Codes that cite only the existence source load, and only as low confidence."""
    only = [e for e in catalog.codes.values() if set(e.sources) == {"AMA_CPT"}]
    assert only and all(e.confidence.value == "low" for e in only)


@pytest.mark.parametrize(("fname", "mutate", "expect"), CROSS)
def test_cross_reference_checks(tmp_path, fname, mutate, expect):
    d = _copy(tmp_path)
    _edit(d, fname, mutate)
    probs = _problems(d)
    hits = [m for m in probs if expect in m]
    assert hits, probs
    # every problem names a file and a line
    assert all(re.search(r"\.yaml:\d+: ", m) for m in hits), hits


def test_broken_data_never_half_loads(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "codes.yaml", lambda x: _code(x, "76700").update(family="nowhere"))
    with pytest.raises(KnowledgeError):
        build_catalog(d)


def test_addons_by_primary(catalog):
    # +77002 (fluoroscopic guidance) is listed with 20610; +19084 counts each further lesion.
    every = catalog.addons_by_primary()
    counted = catalog.addons_by_primary(counted=True)
    assert "77002" in every["20610"] and "77002" not in counted.get("20610", ())
    assert "19084" in counted["19083"]
    for primary, addons in every.items():
        for a in addons:
            assert primary in catalog.addon_primaries(a).primaries
    assert catalog.addons_by_primary() is every  # built once
