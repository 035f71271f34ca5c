"""The golden snapshot: every suite question and claim line gives what it gave when stored.

A difference is either a regression or a change made on purpose. On purpose: regenerate
with ``make golden`` (``.venv/bin/python tests/golden/snapshot.py --write``) and say in the
commit which records changed and why.
"""

from __future__ import annotations

import sys

import pytest
from helpers import REPO

from knowledge.catalog import build_catalog

sys.path.insert(0, str(REPO / "tests" / "golden"))
import snapshot


@pytest.fixture(scope="module")
def built(golden_run) -> dict[str, list[tuple[str, str]]]:
    return golden_run.records


@pytest.mark.parametrize("name", snapshot.FILES)
def test_snapshot_unchanged(built: dict[str, list[tuple[str, str]]], name: str) -> None:
    path = snapshot.HERE / name
    stored = snapshot.parse(path.read_text(encoding="utf-8"))
    problems = snapshot.diff(name, stored, dict(built[name]))
    if problems:
        pytest.fail(
            f"{name} differs from the stored snapshot (below). If the "
            "change is on purpose, run `make golden` and say why in the commit.\n"
            + "\n".join(problems),
            pytrace=False,
        )


def test_diff_is_readable() -> None:
    stored = {"a": "pass | 20611=verified | rules: -", "b": "x"}
    now = {"a": "fail | 20611=removed | rules: pairs.bundled", "c": "y"}
    out = "\n".join(snapshot.diff("f.txt", stored, now))
    assert "f.txt: a" in out and "- pass | 20611=verified" in out
    assert "+ fail | 20611=removed" in out
    assert "gone: pass 20611=verified" in out and "new: fail 20611=removed" in out
    json_diff = snapshot.diff("cli.txt", {"k": 'exit 0 {"a":[1,2],"b":"x"}'},
                              {"k": 'exit 1 {"a":[1,3],"b":"x"}'})
    assert "      exit 0 -> exit 1" in json_diff and "      a[1]: 2 -> 3" in json_diff
    assert "f.txt: b\n    - x" in out and "f.txt: c\n    + y" in out


def test_cli_and_web_app_agree_whether_each_claim_changed(
    built: dict[str, list[tuple[str, str]]],
) -> None:
    # Both show the corrected claim exactly when Outcome.claim_changed() says so.
    records = dict(built["claims.txt"])
    assert len(records) == 14 * len(build_catalog().codes)  # 14 claim lines per code
    disagree = [k for k, v in records.items()
                if v.endswith(("ui=True cli=False", "ui=False cli=True"))]
    assert disagree == []
    assert records["76506-59x2"].endswith("claim: 76506x2 | rules: modifiers.distinct_unneeded "
                                          "units.no_limit | changed: ui=True cli=True")
