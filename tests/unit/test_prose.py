"""Drafted prose that contradicts the checked answer is withheld, sentence by sentence, the
same way every time (guardrails.prose), and the pipeline shows it so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_pipeline import KNEE_PASSAGES, ScriptedChatModel, code
from test_pipeline import FakeRetriever as Retriever

from advisor.pipeline import Advisor
from advisor.settings import Settings
from guardrails.prose import contradictions, withhold
from guardrails.report import CodeStatus
from knowledge.catalog import load_catalog

CAT = load_catalog()
V, C, R, N = (CodeStatus.VERIFIED, CodeStatus.CORRECTED, CodeStatus.REMOVED,
              CodeStatus.NOT_VERIFIED)
KNEE = {"20611": C, "20610": R, "76942": R}
LINE = {"36556": V, "76937": V}


@pytest.mark.parametrize(
    ("text", "statuses", "reason"),
    [
        ("Yes, 20610 with 76942 is ok.", KNEE, "20610 and 76942 are billed together"),
        ("You can bill 20611 together with 76942.", KNEE, "76942 is removed"),
        ("Use 36556 because the patient is under age 5.", LINE,
         '36556 for "under age 5"; 36556 is for patients age 5 or older'),
        ("36555 fits this adult.", {"36555": V}, "36555 is for patients under age 5"),
        ("99999 is a valid CPT code.", {"20611": V}, "99999 is an unknown code"),
        ("Report 99999 for the guidance.", {"20611": V}, "99999 is an unknown code"),
        ("76705 is the complete abdominal exam.", {"76705": V},
         "76705 the complete exam; 76705 is the limited code"),
        ("36556 and 76937 cannot be billed together.", LINE, "both are verified together"),
        ("Report 76942 for the guidance.", KNEE, "it recommends 76942, which the checker removed"),
    ],
)
def test_a_contradicting_sentence_is_found(text: str, statuses: Any, reason: str) -> None:
    found = contradictions(text, statuses, CAT)
    assert len(found) == 1, found
    assert reason in found[0].reason
    shown = withhold(text, found)
    assert shown.startswith("[statement withheld: ")
    assert text not in shown


@pytest.mark.parametrize(
    ("text", "statuses"),
    [
        ("Report 20611; 76942 is not billed with it.", KNEE),
        ("20611 includes the guidance, so 76942 is not billed with it.", KNEE),
        ("Report 36556 with 76937 for an adult central line.", LINE),
        ("36556 is for patients age 5 or older; under age 5 use 36555.", LINE),
        ("99999 is not a valid code.", {"20611": V}),
        ("76700 is the complete abdominal exam.", {"76700": V}),
    ],
)
def test_prose_that_agrees_is_kept(text: str, statuses: Any) -> None:
    assert contradictions(text, statuses, CAT) == ()


def test_only_the_contradicting_sentence_goes_and_the_same_way_every_time() -> None:
    text = ("Report 20611 for the guided injection. Yes, 20610 with 76942 is ok. "
            "Document the needle placement.")
    first = withhold(text, contradictions(text, KNEE, CAT))
    assert first == withhold(text, contradictions(text, KNEE, CAT))
    assert first.startswith("Report 20611 for the guided injection. [statement withheld: ")
    assert first.endswith("] Document the needle placement.")


# ------------------------------------------------------------------ through the pipeline


def _ask(tmp_path: Path, draft: dict[str, Any], question: str,
         candidates: tuple[str, ...]) -> Any:
    model = ScriptedChatModel(replies=[draft, draft])
    adv = Advisor(Settings(data_dir=tmp_path, backend="embedded", llm_timeout_s=5),
                  catalog=CAT, retriever=Retriever(CAT, candidates, KNEE_PASSAGES), model=model)
    return adv.ask(question)


def test_yes_to_a_pair_the_checker_fails_is_not_shown(tmp_path: Path) -> None:
    draft = {"codes": [code("20611", "P1"), code("76942", "P3")],
             "answer": "Yes, 20610 with 76942 is ok. 20611 is the guided code."}
    answer = _ask(tmp_path, draft, "What do I bill for an ultrasound-guided knee injection?",
                  ("20610", "20611", "76942"))
    assert {c.code: c.status.value for c in answer.codes} == {"20611": "verified"}
    assert "Yes, 20610 with 76942 is ok" not in answer.answer
    assert "[statement withheld: it says 20610 and 76942 are billed together" in answer.answer
    assert "20611 is the guided code." in answer.answer
    assert any(f["rule"] == "prose.contradicts_verdict" for f in answer.findings)


def test_an_age_the_table_contradicts_is_not_shown(tmp_path: Path) -> None:
    draft = {"codes": [code("36556", "P1"), code("76937", "P1")],
             "answer": "Use 36556 since the patient is under age 5, with 76937."}
    answer = _ask(tmp_path, draft,
                  "Adult right IJ central line placed with real-time ultrasound guidance.",
                  ("36556", "76937"))
    assert {c.code for c in answer.codes} >= {"36556"}
    assert "under age 5, with" not in answer.answer
    assert 'it uses 36556 for "under age 5"' in answer.answer


def test_an_unknown_code_in_the_prose_is_labelled_unknown(tmp_path: Path) -> None:
    draft = {"codes": [code("20611", "P1")],
             "answer": "Report 20611. The memo code 99998 does not apply here."}
    answer = _ask(tmp_path, draft, "What do I bill for an ultrasound-guided knee injection?",
                  ("20611",))
    assert "99998 [unknown code]" in answer.answer
    assert "[not checked]" not in answer.answer
