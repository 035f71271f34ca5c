"""Modifiers a model invents are not drafted; findings cite the sources of the rule that
fired, each once."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pipeline import KNEE_PASSAGES, ScriptedChatModel, code
from test_pipeline import FakeRetriever as Retriever

from advisor.pipeline import Advisor
from advisor.settings import Settings
from guardrails import check_claim
from guardrails.grounding import grounded_modifiers
from guardrails.rules.modifiers import implied_modifiers
from knowledge.catalog import load_catalog

CAT = load_catalog()
LINE_Q = "Central line in the internal jugular with real-time ultrasound guidance: which codes?"


def _ask(tmp_path: Path, draft: dict, question: str, candidates: tuple[str, ...]):  # type: ignore[no-untyped-def]
    model = ScriptedChatModel(replies=[draft, draft])
    adv = Advisor(Settings(data_dir=tmp_path, backend="embedded", llm_timeout_s=5),
                  catalog=CAT, retriever=Retriever(CAT, candidates, KNEE_PASSAGES), model=model)
    return adv.ask(question)


def test_invented_modifiers_are_not_drafted(tmp_path: Path) -> None:
    draft = {"codes": [code("36556", "P1", mods=["RT"]), code("76937", "P1", mods=["26", "LT"])],
             "answer": "Report 36556 with 76937."}
    answer = _ask(tmp_path, draft, LINE_Q, ("36556", "76937"))
    assert {c.code: (c.status.value, c.modifiers) for c in answer.codes} == {
        "36556": ("verified", []), "76937": ("verified", [])}
    assert not [f for f in answer.findings if f["rule"].startswith("modifiers.")]


def test_a_modifier_the_question_grounds_is_kept(tmp_path: Path) -> None:
    draft = {"codes": [code("93971", "P1", mods=["RT"])], "answer": "Report 93971-RT."}
    answer = _ask(tmp_path, draft, "Right leg venous duplex for DVT: which code?", ("93971",))
    assert [(c.code, c.modifiers) for c in answer.codes] == [("93971", ["RT"])]


def test_minus_50_on_a_guidance_code_is_not_drafted(tmp_path: Path) -> None:
    draft = {"codes": [code("20611", "P1", mods=["50"])], "answer": "Report 20611."}
    answer = _ask(tmp_path, draft, "What do I bill for an ultrasound-guided knee injection?",
                  ("20611",))
    assert [(c.code, c.status.value, c.modifiers) for c in answer.codes] == [
        ("20611", "verified", [])]


@pytest.mark.parametrize(
    ("question", "implied"),
    [
        ("Knee injection with ultrasound guidance", set()),
        ("Bilateral lower extremity venous duplex", {"50", "RT", "LT"}),
        ("Left breast ultrasound", {"LT"}),
        ("Carotid duplex, interpretation only", {"26", "TC", "52"}),
        ("Is 76942-59 correct here?", {"59"}),
    ],
)
def test_implied_modifiers(question: str, implied: set[str]) -> None:
    assert implied_modifiers(question) == implied


def test_a_grounded_modifier_the_code_does_not_take_is_not_drafted() -> None:
    # Both sides said, but 93970 itself covers both sides: no -50.
    assert grounded_modifiers(CAT, "93970", ["50"], "Bilateral venous duplex") == ()
    assert grounded_modifiers(CAT, "76642", ["50"], "Bilateral limited breast ultrasound") == (
        "50",)


def test_findings_cite_the_rule_sources_once_and_only_those_about_the_code() -> None:
    outcome = check_claim(["76942-50"], CAT)
    (f,) = [f for f in outcome.findings if f.rule.startswith("modifiers.")]
    assert len(f.sources) == len(set(f.sources))
    assert "AAPC_breast_2015" not in f.sources  # a breast article is not about 76942
    outcome = check_claim(["93970-50"], CAT)
    (f,) = [f for f in outcome.findings if f.rule == "modifiers.bilateral"]
    assert len(f.sources) == len(set(f.sources))
