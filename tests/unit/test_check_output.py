"""`advisor check` text output: labels, aligned columns, documentation, unknown codes."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from advisor.cli import app

runner = CliRunner()


# Each test runs on its own empty data directory (tests/unit/conftest.py).
pytestmark = pytest.mark.usefixtures("private_data_dir")


def table(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["code"])
    end = lines.index("", start)
    return lines[start:end]


def test_the_code_table_has_labels_and_aligned_columns() -> None:
    out = runner.invoke(app, ["check", "93971-RT", "76942-59x2", "20611"]).output
    rows = table(out)
    assert rows[0].split() == ["code", "units", "status", "label"]
    # Every column starts at the same place on every row, modifiers or not.
    status_at = {r.index(w) for r in rows[1:] for w in r.split()[2:3]}
    assert len(status_at) == 1, rows
    assert "Duplex extremity veins" in out  # the code's label


def test_documentation_requirements_are_shown_in_text() -> None:
    out = runner.invoke(app, ["check", "36556", "76937"]).output
    assert "documentation needed:" in out
    assert "76937 needs: Potential access sites evaluated with ultrasound" in out


def test_an_unknown_code_is_called_that_as_lookup_does() -> None:
    checked = runner.invoke(app, ["check", "76943", "20611"]).output
    looked = runner.invoke(app, ["lookup", "76943"]).output
    assert "not in the ruleset (unknown code)" in looked
    row = next(r for r in table(checked) if r.lstrip().startswith("76943"))
    assert "UNKNOWN CODE" in row and "not in the ruleset (unknown code)" in row
    assert "REMOVED" not in row


# ------------------------------------------------------------------------------ lookup


def test_lookup_json_is_a_list_for_one_code_or_several() -> None:
    import json

    one = json.loads(runner.invoke(app, ["lookup", "76937", "--json"]).output)
    two = json.loads(runner.invoke(app, ["lookup", "76937", "20611", "--json"]).output)
    assert isinstance(one, list) and [r["code"] for r in one] == ["76937"]
    assert [r["code"] for r in two] == ["76937", "20611"]


def test_lookup_all_shows_every_pair_and_the_most_asked_come_first() -> None:
    import json

    (rec,) = json.loads(runner.invoke(app, ["lookup", "76942", "--json"]).output)
    assert len(rec["pairs"]) > 12
    text = runner.invoke(app, ["lookup", "76942"]).output
    assert "more (use --all" in text
    every = runner.invoke(app, ["lookup", "76942", "--all"]).output
    assert "more (use --all" not in every
    pair_lines = [ln for ln in every.splitlines() if ln.startswith("    - ") and " / " in ln]
    assert len(pair_lines) == len(rec["pairs"])
    # 76942 with 20610 (the knee question: report 20611 instead) and with the procedures
    # that include it come first.
    assert "20610 / 76942" in " ".join(pair_lines[:12])
    asked = [p["most_asked"] for p in rec["pairs"]]
    assert asked == sorted(asked, reverse=True), "every most-asked pair before the others"
    assert next(p for p in rec["pairs"] if p["other"] == "20611")["most_asked"]


# -------------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", [["check"], ["lookup"], ["ask"], ["index"], ["eval"],
                                     ["kb", "validate"]])
def test_help_paragraphs_wrap_at_the_terminal_not_mid_sentence(command: list[str]) -> None:
    from advisor import cli

    wide = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "400"}).output
    callback = next(
        c.callback for c in [*cli.app.registered_commands,
                             *(x for g in cli.app.registered_groups
                               for x in g.typer_instance.registered_commands)]
        if c.callback is not None and (c.name or c.callback.__name__.rstrip("_")).replace(
            "_", "-") == command[-1]
    )
    import inspect

    doc = inspect.getdoc(callback) or ""
    for para in doc.split("\n\n")[1:]:
        if para.startswith(" "):
            continue
        # The paragraph, joined, is one line of the help on a wide terminal.
        joined = " ".join(para.split())
        assert any(joined in " ".join(line.split()) for line in wide.splitlines()), para


def test_square_brackets_in_help_are_shown() -> None:
    out = runner.invoke(app, ["check", "--help"], env={"COLUMNS": "200"}).output
    assert "CODE[-MOD...][xUNITS]" in out
