"""The repair loop cannot oscillate: fixes that undo each other stop it, and both codes are
shown "not verified" with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fakes import FakeRetriever, ScriptedChatModel, passage

import guardrails.checker
from advisor.pipeline import Advisor
from advisor.settings import Settings
from guardrails import check_claim
from guardrails.registry import RuleId
from guardrails.repair import check_and_repair
from guardrails.report import CodeStatus, Draft, DraftCode, Finding, Fix, OnFail, Severity
from knowledge.catalog import load_catalog

CAT = load_catalog()


def _swap(a: str, b: str) -> Any:
    """A rule family that always replaces ``a`` by ``b`` and ``b`` by ``a``."""

    def check(ctx: Any) -> Iterator[Finding]:
        for code, other in ((a, b), (b, a)):
            if code in ctx.codes:
                yield Finding(RuleId.FIT_EXTENT, Severity.ERROR, (code,),
                              f"{code} does not fit; {other} does.",
                              fix=Fix(f"Replace {code} with {other}.", remove=(code,),
                                      add=(other,)),
                              on_fail=OnFail.FIX)

    return SimpleNamespace(check=check)


@pytest.fixture
def disagreeing_rules(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Two rules that disagree (76700 <-> 76705); counts the checker's passes."""
    passes: list[int] = []
    real = guardrails.checker.check

    def counted(*args: Any, **kwargs: Any) -> Any:
        passes.append(1)
        return real(*args, **kwargs)

    families = (*guardrails.checker.RULE_FAMILIES, _swap("76700", "76705"))
    monkeypatch.setattr(guardrails.checker, "RULE_FAMILIES", families)
    monkeypatch.setattr("guardrails.repair.check", counted)
    return passes


def test_fixes_that_undo_each_other_stop_the_loop(disagreeing_rules: list[int]) -> None:
    out = check_and_repair(Draft(codes=(DraftCode("76700"),)), CAT, max_rounds=6)

    # 76700 -> 76705, and the next fix would bring 76700 back: stop there.
    assert len(disagreeing_rules) == 2
    assert {v.code: v.status for v in out.verdicts} == {
        "76700": CodeStatus.NOT_VERIFIED, "76705": CodeStatus.NOT_VERIFIED}
    osc = [f for f in out.findings if f.rule == RuleId.REPAIR_OSCILLATION]
    assert len(osc) == 1
    assert osc[0].codes == ("76700", "76705")
    assert "Replace 76700 with 76705" in osc[0].message
    assert "Replace 76705 with 76700" in osc[0].message
    assert all(osc[0] in v.findings for v in out.verdicts)
    assert out.to_dict()["verdict"] == "fail"


def test_a_chain_of_fixes_that_never_comes_back_is_no_oscillation() -> None:
    out = check_claim(["20610", "76942"], CAT)  # 20610 + 76942 -> 20611, one step
    assert RuleId.REPAIR_OSCILLATION not in {f.rule for f in out.findings}
    assert out.corrected_claim() == "20611"


# The question's words disagree with each other ("first trimester" is before 14 weeks, "16
# weeks" is not). The reading sees the conflict and concludes nothing about the gestational
# age: the drafted code is not verified, and no fix swaps it for the other (the swap 76801 ->
# 76805 -> 76801 that two pattern rules used to make).
OB_Q = "First trimester OB ultrasound at 16 weeks"


@pytest.mark.parametrize("drafted", ["76805", "76801"])
def test_words_that_disagree_leave_the_code_not_verified_without_a_swap(drafted: str) -> None:
    out = check_claim([drafted], CAT, question=OB_Q)
    assert {v.code: v.status for v in out.verdicts} == {drafted: CodeStatus.NOT_VERIFIED}
    assert RuleId.REPAIR_OSCILLATION not in {f.rule for f in out.findings}
    assert not out.claim_changed()


def test_the_answer_shows_both_codes_not_verified_with_the_reason(
    tmp_path, disagreeing_rules: list[int]
) -> None:
    draft = {"codes": [{"code": "76700", "units": 1, "modifiers": [], "reason": "abdomen",
                        "citations": ["p1"]}], "answer": "Report 76700."}
    model = ScriptedChatModel(replies=[draft])
    retriever = FakeRetriever(CAT, ("76700", "76705"), [
        passage("p1", "Abdominal ultrasound 76700 or 76705.", ["76700", "76705"])])
    advisor = Advisor(Settings(data_dir=tmp_path, backend="embedded"), catalog=CAT,
                      retriever=retriever, model=model)

    answer = advisor.ask("Abdominal ultrasound, which code?")

    shown = {c.code: c for c in answer.codes}
    assert {c: line.status.value for c, line in shown.items()} == {
        "76700": "not_verified", "76705": "not_verified"}
    assert all("repair.oscillation" in line.findings for line in shown.values())
    assert any(f["rule"] == "repair.oscillation" and "undo each other" in f["message"]
               for f in answer.findings)


def test_a_line_drafted_twice_and_collapsed_is_no_oscillation() -> None:
    # [76815, 76815] -> [76815]: the same codes, one line fewer; a set would call it a cycle.
    out = check_and_repair(Draft(codes=(DraftCode("76815"), DraftCode("76815"))), CAT)
    assert RuleId.REPAIR_OSCILLATION not in {f.rule for f in out.findings}
    assert [(c.code, c.units) for c in out.draft.codes] == [("76815", 1)]


SCREENING_Q = ("One-time screening ultrasound for abdominal aortic aneurysm in an asymptomatic "
               "67-year-old male smoker.")


def test_a_pair_the_repair_settled_is_not_re_asked_or_held_against_the_kept_code() -> None:
    """The screening code 76706 and the diagnostic 76775 are one study or the other; the
    question (screening) rules out 76775 and the repair removes it. The pair finding that
    names both must not stay open: the re-ask is about the prose alone, and after it the
    kept 76706 is not dropped (it was, when every finding naming a drafted code counted)."""
    from guardrails import policy

    cat = load_catalog()
    draft = Draft(
        codes=(DraftCode("76706", 1, (), "", ()), DraftCode("76775", 1, (), "", ())),
        text="Bill 76706 and 76775 for this study.", context=SCREENING_Q,
    )
    first = policy.first_round(draft, cat)
    assert {v.code: v.status for v in first.outcome.verdicts}["76706"] is CodeStatus.VERIFIED
    assert all(f.span is not None for f in first.reask)  # only the prose is re-asked about
    settled = policy.after_reask(first, draft, cat)  # the model answers the same again
    final = {v.code: v.status for v in settled.rounds[-1].outcome.verdicts}
    assert final["76706"] is CodeStatus.VERIFIED
    assert final["76775"] is CodeStatus.REMOVED
    assert not any(n.rule == RuleId.PIPELINE_DROPPED_AFTER_REASK for n in settled.notes)
