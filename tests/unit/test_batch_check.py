"""Many claims at once: one line = one claim (`advisor check --file`, `-`, the claim box)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from advisor.batch import read_claims
from advisor.cli import app
from knowledge.catalog import build_catalog

runner = CliRunner()
CATALOG = build_catalog()

# Two encounters: a central line with its guidance, a guided knee injection. Read as one
# claim, 36556 would meet 76942 (and 20611 would meet 76937).
TWO = "36556 76937\n20611\n"


# Each test runs on its own empty data directory (tests/unit/conftest.py).
pytestmark = pytest.mark.usefixtures("private_data_dir")


def run(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def single(claim: str) -> dict:
    r = run("check", *claim.split(), "--json")
    return json.loads(r.output)


def test_each_line_of_a_file_is_its_own_claim(tmp_path) -> None:
    f = tmp_path / "claims.txt"
    f.write_text("20610 76942\n" + TWO)
    r = run("check", "--file", str(f), "--json")
    *claims, last = json_lines(r.output)
    assert [c["claim"] for c in claims] == ["20610 76942", "36556 76937", "20611"]
    assert [c["line"] for c in claims] == [1, 2, 3]
    # Each result is what the line gives checked alone; no finding spans two lines.
    for c in claims:
        alone = single(c["claim"])
        assert {k: c[k] for k in alone} == alone
    assert [c["verdict"] for c in claims] == ["fail", "pass", "pass"]
    assert last == {"summary": {"claims": 3, "pass": 2, "review": 0, "fail": 1, "empty": 0,
                                "error": 0, "changed": 1}}
    assert r.exit_code == 1


def test_stdin_dash_and_text_output_with_a_summary() -> None:
    r = run("check", "-", stdin=TWO)
    assert r.exit_code == 0, r.output
    assert "line 1: 36556 76937  PASS" in r.output
    assert "line 2: 20611  PASS" in r.output
    assert r.output.rstrip().endswith("2 claims: 2 pass; 0 corrected")
    assert run("check", "--file", "-", stdin=TWO).output == r.output


def test_a_bad_line_is_reported_with_its_number_and_the_others_are_checked() -> None:
    r = run("check", "-", "--json", stdin="20611\n\n# a comment\n7694\nhello there\n")
    rows = json_lines(r.output)
    assert [(x.get("line"), x.get("verdict")) for x in rows[:-1]] == [
        (1, "pass"), (4, "error"), (5, "empty")]
    assert "'7694' is not a code" in rows[1]["error"]
    assert rows[-1]["summary"]["error"] == 1
    assert r.exit_code == 2
    assert run("check", "-", stdin="\n# nothing\n").exit_code == 2


def test_csv_rows_grouped_by_the_id_column() -> None:
    text = ("encounter_id,code,modifier,units\n"
            "A,36556,,\nB,93971,RT,\nA,76937,,1\nB,37252,,\nB,37253,,2\n")
    claims = list(read_claims(text.splitlines()))
    assert [(c.id, c.keyed, c.line) for c in claims] == [
        ("A", "36556 76937", 2), ("B", "93971-RT 37252 37253x2", 3)]


def test_csv_without_ids_blank_lines_end_a_claim_else_one_claim_a_row(tmp_path) -> None:
    grouped = "code,units\n36556,\n76937,\n\n20611,\n"
    assert [c.keyed for c in read_claims(grouped.splitlines())] == ["36556 76937", "20611"]
    rows = "code\n20610 76942\n20611\n"
    assert [c.keyed for c in read_claims(rows.splitlines())] == ["20610 76942", "20611"]
    f = tmp_path / "claims.csv"
    f.write_text(grouped)
    r = run("check", "--file", str(f), "--json")
    assert [x.get("verdict") for x in json_lines(r.output)[:-1]] == ["pass", "pass"]


def test_plus_between_codes_is_two_lines() -> None:
    joined = single("20610+76942")
    assert joined == single("20610 76942")
    assert joined["corrected_claim_text"] == "20611"


def test_a_text_with_no_code_is_not_a_pass() -> None:
    r = run("check", "--text", "hello there, nothing to see")
    assert r.exit_code == 1
    assert "Nothing was checked" in r.output and "PASS" not in r.output
    data = json.loads(run("check", "--text", "no codes here", "--json").output)
    assert data["verdict"] == "empty"
    r = run("check", "--text", "-", stdin="Report 20611; do not add 76942.\n")
    assert r.exit_code == 0, r.output


def test_the_claim_box_checks_each_line_on_its_own(tmp_path) -> None:
    import app
    from advisor.settings import Settings

    state = app.AdvisorApp(Settings(data_dir=tmp_path, backend="none"), CATALOG)
    html, data = state.check_view("20610 76942\n36556 76937")
    assert [c["verdict"] for c in data["claims"]] == ["fail", "pass"]
    assert data["summary"]["claims"] == 2
    assert html.count('<section class="claim"') == 2
    assert "2 claims: 1 pass, 1 fail" in html
    _one, single_data = state.check_view("20610+76942")
    assert single_data["corrected_claim_text"] == "20611"
