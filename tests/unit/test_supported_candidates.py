"""Codes the question's reading alone supports reach the candidate list (guardrails.fit
.supported), whatever retrieval found."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeRetriever, ScriptedChatModel, passage

from advisor.pipeline import Advisor
from advisor.prompts import Task
from advisor.settings import Settings
from guardrails.fit import SUPPORTED_MAX, supported
from knowledge.catalog import load_catalog


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog()


@pytest.mark.parametrize(
    ("question", "code"),
    [
        ("Limited bedside echo to look for a pericardial effusion.", "93308"),
        ("Complete transthoracic echo with spectral and color Doppler.", "93306"),
        ("Ultrasound of the gallbladder only.", "76705"),
        ("Central venous catheter placed with ultrasound guidance in a 60-year-old.", "36556"),
    ],
)
def test_a_specific_question_names_its_code(catalog, question, code) -> None:
    found = supported(catalog, question)
    assert code in found
    assert 0 < len(found) <= SUPPORTED_MAX


@pytest.mark.parametrize("question", ["", "hello", "What is the weather like today?"])
def test_a_question_that_says_nothing_specific_adds_no_code(catalog, question) -> None:
    assert supported(catalog, question) == []


def test_a_negated_service_is_not_supported(catalog) -> None:
    # The echo was not done: the reading affirms no echo, so no echo code is "supported".
    found = supported(catalog, "No echocardiogram was done; we only placed a peripheral IV.")
    assert not {"93306", "93307", "93308"} & set(found)


def test_a_code_retrieval_missed_reaches_the_prompt(tmp_path, catalog) -> None:
    # Retrieval found only pericardial procedure and needle guidance codes.
    found = ["33016", "33017", "76942", "77002"]
    retriever = FakeRetriever(catalog, found, [passage("aaaa1111", "Pericardiocentesis.",
                                                       ["33016"])])
    draft = {"codes": [{"code": "93308", "units": 1, "citations": []}],
             "answer": "A limited echo is 93308."}
    model = ScriptedChatModel(replies=[draft])
    adv = Advisor(Settings(data_dir=tmp_path, backend="embedded", llm_timeout_s=5),
                  catalog=catalog, retriever=retriever, model=model)
    answer = adv.ask("Limited bedside echo to look for a pericardial effusion.")
    prompt = model.prompts(Task.DRAFT)[0]
    assert "93308" in prompt
    # It is listed first: the question supports it, and the retrieved codes only partly.
    assert prompt.index("93308") < min(prompt.index(c) for c in found)
    assert {c.code: c.status.value for c in answer.codes} == {"93308": "verified"}


@pytest.mark.parametrize("question", [
    "Knee arthroscopy with partial medial meniscectomy - what do I bill?",
    "MRI of the brain without contrast, code?",
    "CT abdomen with contrast",
    "Chest x-ray two views",
    "DEXA bone density scan of the hip and spine, code?",
])
def test_a_site_alone_supports_no_code(catalog, question) -> None:
    # The question names where, not what kind of study or procedure: no ultrasound code.
    assert supported(catalog, question) == []


def test_a_question_the_reading_ties_to_a_code_is_in_scope(tmp_path, catalog) -> None:
    # CT words and no ultrasound word, but the drainage code includes any imaging guidance.
    q = "Percutaneous catheter drainage of a retroperitoneal fluid collection under CT."
    assert "49406" in supported(catalog, q)
    draft = {"codes": [{"code": "49406", "units": 1, "citations": []}],
             "answer": "Image-guided catheter drainage is 49406."}
    model = ScriptedChatModel(replies=[draft])
    adv = Advisor(Settings(data_dir=tmp_path, backend="embedded", llm_timeout_s=5),
                  catalog=catalog, retriever=FakeRetriever(catalog, [], []), model=model)
    answer = adv.ask(q)
    assert answer.path == "draft"
    assert {c.code: c.status.value for c in answer.codes} == {"49406": "verified"}


def test_an_ultrasound_bone_density_is_still_supported(catalog) -> None:
    assert supported(catalog, "Quantitative ultrasound bone density of the heel") == ["76977"]
    assert supported(catalog, "Renal ultrasound; a CT last week showed a stone") == ["76775"]


@pytest.mark.parametrize(("question", "out"), [
    ("Arthroscopic partial meniscectomy of the left knee.", True),
    ("Hysterectomy, what code?", True),
    ("Knee injection with ultrasound guidance, then arthroscopy next month.", False),
    ("Intraoperative ultrasound during a laparoscopic cholecystectomy.", False),
    ("Wire localization of a breast lesion before lumpectomy.", False),
    ("Thyroid nodule, which code?", False),  # no service said: not ruled outside
    ("Arthroscopy was not done; knee aspiration only.", False),
])
def test_a_question_whose_services_no_code_describes_is_outside(catalog, question, out) -> None:
    from guardrails.fit import outside

    assert outside(catalog, question) is out
