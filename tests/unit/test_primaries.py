"""The procedures guidance codes are billed with: every primary added in codes-procedures.yaml
passes with the right guidance (or alone, where its code includes the imaging), and the wrong
guidance code fails with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from guardrails.checker import check
from guardrails.repair import check_and_repair
from guardrails.report import CodeStatus, Draft, DraftCode, Severity
from knowledge.catalog import DATA_DIR, build_catalog

ADDED = yaml.safe_load((DATA_DIR / "codes-procedures.yaml").read_text())["codes"]


@pytest.fixture(scope="module")
def cat():
    return build_catalog()


def draft(*codes: str) -> Draft:
    return Draft(codes=tuple(DraftCode(c, 1, ()) for c in codes))


def statuses(report) -> dict[str, CodeStatus]:
    return {v.code: v.status for v in report.verdicts}


def _primaries(kind: str) -> list[str]:
    out = []
    for c in ADDED:
        if c.get("add_on") or c.get("deleted") or c["kind"] != "procedure":
            continue
        if c.get("guidance_included") is (kind == "included"):
            out.append(c["code"])
    return out


INCLUDED = _primaries("included")
SEPARATE = _primaries("separate")
# The guidance code these take beside them, by the imaging their sources name.
GUIDANCE_BESIDE = {"32550": "75989"}
# Ultrasound guidance of these is not settled by the sources held: left for review.
UNSETTLED = {"62270", "62272"}


def test_the_walk_covers_the_added_primaries():
    assert len(INCLUDED) >= 25 and len(SEPARATE) >= 15
    assert {"10030", "33016", "0213T", "36475", "76936"} <= set(INCLUDED)
    assert {"47000", "50200", "38505", "60100", "36002", "64420"} <= set(SEPARATE)


@pytest.mark.parametrize("code", INCLUDED)
def test_a_primary_that_includes_its_imaging_passes_alone_and_sheds_a_guidance_code(
    cat, code
):
    alone = check(draft(code), cat)
    assert statuses(alone)[code] is CodeStatus.VERIFIED, alone.findings
    for guide in cat.codes[code].included_guidance:
        out = check_and_repair(draft(code, guide), cat)
        f = next(f for f in out.first.findings
                 if f.rule in ("pairs.guidance_included", "pairs.bundled") and guide in f.codes)
        assert f.severity is Severity.ERROR and f.fix is not None and guide in f.fix.remove
        assert [c.code for c in out.draft.codes] == [code], (code, guide)
        assert statuses(out)[guide] is CodeStatus.REMOVED


@pytest.mark.parametrize("code", SEPARATE)
def test_a_primary_without_its_imaging_passes_with_its_guidance_code(cat, code):
    guide = GUIDANCE_BESIDE.get(code, "76942")
    r = check(draft(code, guide), cat)
    if code in UNSETTLED:
        assert statuses(r)[guide] is CodeStatus.NOT_VERIFIED
        assert any(f.rule == "pairs.review" for f in r.findings)
        return
    assert statuses(r) == {code: CodeStatus.VERIFIED, guide: CodeStatus.VERIFIED}, r.findings


WRONG = [
    # (primary, wrong guidance code, codes after the fix)
    *[(c, "76937", [c, "76942"]) for c in ("47000", "50200", "38505", "20206", "20220", "20225",
                                          "60100", "10160", "19000", "36002", "36470", "36471", "64420",
                                          "64425", "64430")],
    ("62270", "77003", ["62328"]),
    ("62272", "77012", ["62329"]),
    ("32550", "76942", ["32550", "75989"]),
    ("64490", "76942", ["0213T"]),
    ("64493", "76942", ["0216T"]),
]


@pytest.mark.parametrize(("code", "wrong", "want"), WRONG)
def test_the_wrong_guidance_code_fails_with_the_fix(cat, code, wrong, want):
    out = check_and_repair(draft(code, wrong), cat)
    assert any(f.severity is Severity.ERROR and f.fix is not None and wrong in f.fix.remove
               for f in out.first.findings), out.first.findings
    assert sorted(c.code for c in out.draft.codes) == sorted(want)


def test_every_separate_primary_has_a_wrong_guidance_case():
    walked = {c for c, _, _ in WRONG}
    assert set(SEPARATE) <= walked | {"36000", "36410", "36600"}, set(SEPARATE) - walked


@pytest.mark.parametrize(("primary", "addon"), [
    ("64420", "64421"), ("0213T", "0214T"), ("0213T", "0215T"), ("0216T", "0217T"),
    ("0216T", "0218T"), ("64490", "64491"), ("64493", "64494"), ("36475", "36476"),
    ("36478", "36479"), ("36482", "36483"), ("36473", "36474"),
])
def test_add_ons_stand_on_their_primary_and_not_alone(cat, primary, addon):
    assert statuses(check(draft(primary, addon), cat))[addon] is CodeStatus.VERIFIED
    alone = check_and_repair(draft(addon), cat)
    assert primary in [c.code for c in alone.draft.codes]


def test_lookup_knows_every_added_code(cat):
    from advisor.lookup import lookup

    for c in ADDED:
        rec = lookup(c["code"], cat)
        assert rec["label"] == c["label"] and rec["status"] != "unknown", c["code"]


def test_the_second_codes_file_is_validated_with_file_and_line(tmp_path):
    import shutil

    from knowledge.loader import KnowledgeError

    d = tmp_path / "data"
    shutil.copytree(DATA_DIR, d)
    p = d / "codes-procedures.yaml"
    data = yaml.safe_load(p.read_text())
    next(c for c in data["codes"] if c["code"] == "47000")["family"] = "nowhere"
    next(c for c in data["codes"] if c["code"] == "36476")["primaries"] = ["12345"]
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(KnowledgeError) as ei:
        build_catalog(Path(d))
    probs = ei.value.problems
    assert any("codes-procedures.yaml:" in m and "unknown family nowhere" in m for m in probs)
    assert any("codes-procedures.yaml:" in m and "primary 12345" in m for m in probs)
