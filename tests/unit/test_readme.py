"""The README teaches what the code does: every setting is in its settings table, and the
suite-format example loads."""

from __future__ import annotations

import re
from pathlib import Path

from advisor.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_every_setting_has_a_row_in_the_settings_table() -> None:
    table = _section("Settings")
    documented = set(re.findall(r"`ADVISOR_([A-Z0-9_]+)`", table))
    missing = [f"ADVISOR_{name.upper()}" for name in Settings.model_fields
               if name.upper() not in documented]
    assert missing == []
    assert "`ADVISOR_LLM_TIMEOUT_S` | `120`" in table


def test_the_suite_format_example_loads(tmp_path: Path) -> None:
    from advisor.evaluation.suite import load_suites, select_cases
    from knowledge.catalog import load_catalog

    block = re.search(r"```yaml\n(suite: .*?)```", _section("Question suites"), re.S)
    assert block is not None
    path = tmp_path / "example.yaml"
    path.write_text(block.group(1), encoding="utf-8")
    suites = load_suites([path], load_catalog())
    assert [c.id for c in select_cases(suites)] == [
        "bursa-guided", "arm-duplex-then-both", "ho-tmj-landmark", "pair-check",
        "bursa-guided~v1", "bursa-guided~v2", "arm-duplex-then-both~v1"]


def test_every_readme_check_example_ends_on_a_corrected_claim_that_passes() -> None:
    """The corrected claim is the claim the findings describe, and it passes the checker
    (`check 93971-50 37253x6` ended on '37253x6 37252 93970', 37252 itself not verified)."""
    from guardrails import check_claim
    from knowledge.catalog import load_catalog

    catalog = load_catalog()
    examples = re.findall(r"advisor check ((?:[0-9A-Z+][0-9A-Za-z+x-]*\s?)+)", README)
    claims = {e.strip() for e in examples if e.strip()}
    assert "93971-50 37253x6" in claims
    for claim in sorted(claims):
        outcome = check_claim([claim.replace("+", " ")], catalog)
        if not outcome.claim_changed():
            continue
        fixed = outcome.corrected_claim()
        again = check_claim([fixed], catalog) if fixed else None
        assert again is not None and again.to_dict()["verdict"] == "pass", (claim, fixed)
        assert not again.claim_changed(), (claim, fixed)


def test_the_suite_section_lists_every_family() -> None:
    from knowledge.catalog import load_catalog

    section = _section("Question suites")
    missing = sorted(f for f in load_catalog().families if f"`{f}`" not in section)
    assert missing == [], f"add these family ids to the README's tags.family list: {missing}"
