"""Properties of question fit that hold for every code and every question (issue 18).

- A sentence that says a feature was not used, or is only planned, changes no verdict: what
  was not done today is not a fact about today's service (unless the feature is part of what
  a code is: a denied saved image contradicts 76942).
- A question about an organ none of a code's sites covers never leaves that code verified.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from advisor.evaluation.suite import QuestionCase, load_suites
from guardrails.checker import check
from guardrails.question.dimensions import features_of
from guardrails.question.vocab import vocabulary_of
from guardrails.repair import check_and_repair
from guardrails.report import CodeStatus, Draft, DraftCode
from knowledge.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
CAT = load_catalog()
VOCAB = vocabulary_of(CAT)
# The public question cases as written, with the codes they expect (one turn: a follow-up's
# meaning depends on the turn before it).
CASES = [c for s in load_suites([REPO / "suites"], CAT) for c in s.cases
         if isinstance(c, QuestionCase) and c.tags.set == "public" and c.expect_codes
         and not c.earlier]
FEATURES = sorted(c.id for c in CAT.vocabulary.concepts if c.kind == "feature")
TERM = {c.id: (c.terms or c.case_terms)[0] for c in CAT.vocabulary.concepts
        if c.terms or c.case_terms}
# A negated or planned sentence, said after the question.
SENTENCES = (
    "No {} was used.",
    "{} was not performed.",
    "A {} study is planned for next month.",
    "We may add {} at a later visit.",
)


def _verified(question: str, codes: tuple[str, ...]) -> set[str]:
    draft = Draft(codes=tuple(DraftCode(c) for c in codes), context=question)
    return {v.code for v in check_and_repair(draft, CAT).verdicts
            if v.status in (CodeStatus.VERIFIED, CodeStatus.CORRECTED)}


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(CASES), feature=st.sampled_from(FEATURES),
       sentence=st.sampled_from(SENTENCES))
def test_a_negated_or_planned_feature_changes_no_verified_code(case, feature, sentence):
    question = case.turns[-1]
    codes = tuple(case.expect_codes)
    # A feature a code is defined by (a saved image for 76942) is no distractor: denying it
    # contradicts the code.
    # (its documentation's permanent image for a diagnostic study's report)
    assume(not any(feature in (*features_of(CAT, CAT.codes[c]), *d.requires) for c in codes
                   if (d := CAT.codes[c].describes) is not None))
    before = _verified(question, codes)
    said = sentence.format(TERM[feature])
    after = _verified(f"{question} {said[0].upper()}{said[1:]}", codes)
    assert after == before, (case.id, said)


# Organs far apart: for each code one is found that none of its sites covers.
ORGANS = ("liver", "breast", "thyroid", "knee", "heart", "kidney", "eye", "testis", "uterus",
          "shoulder")


def _sited_codes() -> list[str]:
    return sorted(c for c, e in CAT.codes.items() if e.active and e.describes is not None
                  and e.describes.sites and "any" not in e.describes.sites)


def _other_organ(code: str) -> str | None:
    d = CAT.codes[code].describes
    assert d is not None
    for organ in ORGANS:
        if organ in VOCAB.kinds and not any(VOCAB.related(organ, s) for s in d.sites):
            return organ
    return None


def test_every_sited_code_has_an_organ_to_test_with():
    assert len(_sited_codes()) > 100
    assert [c for c in _sited_codes() if _other_organ(c) is None] == []


@pytest.mark.parametrize("code", _sited_codes())
def test_a_question_about_another_organ_never_leaves_the_code_verified(code):
    organ = _other_organ(code)
    assert organ is not None
    question = f"Ultrasound of the {TERM[organ]} today, what do I bill?"
    report = check(Draft(codes=(DraftCode(code),), context=question), CAT)
    verdict = report.verdict_for(code)
    assert verdict is not None and verdict.status is not CodeStatus.VERIFIED, (
        code, question, [f.rule for f in report.findings])
