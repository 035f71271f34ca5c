"""The coder-facing commands: lookup, check, kb, import-cms — exit codes and JSON shapes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from advisor.cli import app
from knowledge.catalog import clear_cache

runner = CliRunner()

LOOKUP_KEYS = {"code", "label", "family", "extent", "counterpart", "add_on", "primaries",
               "guidance_included", "unit_limit", "documentation", "pairs", "sources",
               "confidence", "status"}


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path / "data"))
    clear_cache()
    yield tmp_path / "data"
    clear_cache()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_help_teaches():
    r = run("--help")
    assert r.exit_code == 0
    for word in ("lookup", "check", "kb", "import-cms", "advisor check 20610 76942"):
        assert word in r.output


def test_lookup_76937_json():
    r = run("lookup", "76937", "--json")
    assert r.exit_code == 0
    (rec,) = json.loads(r.output)
    assert LOOKUP_KEYS <= set(rec)
    assert rec["add_on"] is True and rec["status"] == "active"
    elements = rec["documentation"][0]["elements"]
    assert len(elements) == 4
    labels = " ".join(e["label"].lower() for e in elements)
    for word in ("sites", "patency", "real-time", "permanent"):
        assert word in labels


def test_lookup_76604_single():
    r = run("lookup", "76604")
    assert r.exit_code == 0
    assert "single code (no complete/limited version)" in r.output


def test_lookup_37250_deleted():
    r = run("lookup", "37250")
    assert r.exit_code == 0
    assert "DELETED since 2016-01-01" in r.output and "37252" in r.output
    (rec,) = json.loads(run("lookup", "37250", "--json").output)
    assert rec["status"] == "deleted" and rec["replaced_by"] == ["37252"]


@pytest.mark.parametrize("bad", ["7694", "abc", "769421", "+"])
def test_lookup_malformed_exit_2(bad):
    r = run("lookup", bad)
    assert r.exit_code == 2
    assert "5 digits" in r.output


def test_lookup_unknown_exit_1():
    r = run("lookup", "76943", "--json")
    assert r.exit_code == 1
    assert json.loads(r.output)[0]["status"] == "unknown"


def test_lookup_several_codes():
    r = run("lookup", "20611", "+76937", "--json")
    recs = json.loads(r.output)
    assert [x["code"] for x in recs] == ["20611", "76937"]


def test_check_exit_codes_and_fix():
    r = run("check", "20610", "76942", "--json")
    assert r.exit_code == 1
    out = json.loads(r.output)
    assert out["verdict"] == "fail"
    assert [c["code"] for c in out["corrected_claim"]] == ["20611"]
    assert run("check", "36556", "76937").exit_code == 0
    assert run("check", "7694").exit_code == 2
    assert run("check", "76942-ZZ").exit_code == 2
    assert run("check").exit_code == 2


def test_check_text():
    r = run("check", "--text", "76937 is not an add-on; bill it alone.")
    assert r.exit_code == 1
    assert "descriptor.add_on" in r.output


def test_check_text_file(tmp_path):
    # A line with words is a drafted sentence: its codes are that line's claim.
    f = tmp_path / "draft.txt"
    f.write_text("Report 20611 for the guided knee injection; do not add 76942.")
    r = run("check", "--file", str(f), "--json")
    assert r.exit_code == 0, r.output
    claim, summary = (json.loads(line) for line in r.output.splitlines())
    assert claim["verdict"] == "pass" and summary["summary"]["pass"] == 1


def test_kb_validate_and_info():
    r = run("kb", "validate")
    assert r.exit_code == 0 and "knowledge base OK" in r.output
    info = json.loads(run("kb", "info", "--json").output)
    assert info["ruleset"].startswith("builtin ") and info["cms_quarter"] is None


PTP = (
    "CPT codes and descriptions only are copyright American Medical Association.\n"
    "Column 1,Column 2,\"*=in existence prior to 1996\",Effective Date,"
    "\"Deletion Date *=no data\",\"Modifier 0=not allowed 1=allowed 9=not applicable\","
    "PTP Edit Rationale\n"
    "20610,76942,,20150101,*,1,Misuse of column two code with column one code\n"
)


def test_import_cms_then_ruleset_shows_quarter(tmp_path):
    f = tmp_path / "ccipra-v323r0-f1.csv"
    f.write_text(PTP)
    r = run("import-cms", str(f), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert "CMS" in out["ruleset"]
    (rec,) = json.loads(run("lookup", "20610", "--json").output)
    edit = next(p for p in rec["pairs"] if p["other"] == "76942")
    assert edit["origin"] == "cms" and edit["modifier_indicator"] == 1
    # our repair stays attached to the CMS edit
    assert edit["fix"] == ["20611"]


def test_import_cms_malformed_keeps_old(tmp_path):
    good = tmp_path / "ccipra-v323r0-f1.csv"
    good.write_text(PTP)
    assert run("import-cms", str(good)).exit_code == 0
    bad = tmp_path / "ccipra-v324r0-f1.csv"
    bad.write_text(PTP.replace("20610,76942", "20610,ABCDE"))
    r = run("import-cms", str(bad))
    assert r.exit_code == 2
    assert "row" in r.output and "ABCDE" in r.output
    clear_cache()
    (rec,) = json.loads(run("lookup", "20610", "--json").output)
    assert any(p["origin"] == "cms" for p in rec["pairs"])


def test_import_cms_missing_file(tmp_path):
    r = run("import-cms", str(tmp_path / "nope.csv"))
    assert r.exit_code == 2
