"""Questions that name codes: answered by the checker as the claim they describe, never
refused as out of scope, and never handed to a model when the codes alone are the question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from advisor.pipeline import Advisor
from advisor.scope import claim_in_question, described_words, is_english, is_follow_up
from advisor.settings import Settings
from knowledge.catalog import load_catalog

CAT = load_catalog()
DESCRIBED = described_words(CAT)


class NoRetriever:
    """A claim question needs no guideline search: any search is a test failure."""

    def search(self, query: str, k: int | None = None) -> Any:
        raise AssertionError(f"retrieval was not expected for {query!r}")


@pytest.fixture
def advisor(tmp_path: Path) -> Advisor:
    # backend 'none': a claim question must be answered without a model.
    return Advisor(Settings(data_dir=tmp_path, backend="none"), catalog=CAT,
                   retriever=NoRetriever())


def shown(answer: Any) -> dict[str, str]:
    return {c.code: c.status.value for c in answer.codes}


@pytest.mark.parametrize(
    "question",
    ["Can I bill 20610 and 76942 together?", "Can I bill 20610 + 76942?",
     "can i bill 20610 with 76942", "Is it OK to report 20610 plus 76942 on the same day?"],
)
def test_a_pair_question_is_checked_as_its_claim(advisor: Advisor, question: str) -> None:
    answer = advisor.ask(question)
    assert answer.path == "lookup", answer.answer
    assert "outside what the advisor covers" not in answer.answer
    assert shown(answer) == {"20611": "corrected"}
    assert {c.code for c in answer.removed} == {"20610", "76942"}
    # The direct answer comes first and agrees with the table.
    assert answer.answer.startswith("No, not as asked: 20610 + 76942")
    assert "Report 20611 instead." in answer.answer.splitlines()[0]
    assert answer.question == question


def test_a_pair_that_passes_gets_yes(advisor: Advisor) -> None:
    answer = advisor.ask("Can I bill 36556 and 76937 together?")
    assert shown(answer) == {"36556": "verified", "76937": "verified"}
    assert answer.answer.startswith("Yes: 36556 + 76937 as one claim passes every check.")


def test_modifiers_and_units_in_the_question_are_kept(advisor: Advisor) -> None:
    answer = advisor.ask("Can I bill 93971-50 and 37253 x6?")
    assert answer.path == "lookup"
    assert answer.answer.startswith("No, not as asked: 93971-50 + 37253 x6")


def test_one_code_question_is_answered_with_what_the_ruleset_holds(advisor: Advisor) -> None:
    answer = advisor.ask("Is 76937 an add-on code?")
    assert answer.path == "lookup"
    assert "add-on: yes" in answer.answer
    # Reported alone an add-on is never verified: the answer says so, not "yes".
    assert answer.answer.startswith("Not verified: 76937 reported on its own")
    assert shown(answer) == {"76937": "not_verified"}


def test_the_question_describing_the_service_is_read_by_the_checker(advisor: Advisor) -> None:
    answer = advisor.ask("Can I bill 36556 and 76937 together for a PICC?")
    assert answer.path == "lookup"
    # A PICC placed with imaging guidance is 36573, which includes the guidance.
    assert shown(answer) == {"36573": "corrected"}


@pytest.mark.parametrize(
    ("question", "tokens", "described"),
    [
        ("Can I bill 20610 and 76942 together?", ("20610", "76942"), False),
        ("Can I bill +76937 with 36556?", ("+76937", "36556"), False),
        ("Can I bill 20611 without 76942?", ("20611",), False),
        ("I did an ultrasound-guided knee injection. Do I bill 20610 plus 76942?",
         ("20610", "76942"), True),
    ],
)
def test_claim_in_question(question: str, tokens: tuple[str, ...], described: bool) -> None:
    found = claim_in_question(question, DESCRIBED)
    assert found is not None
    assert found.tokens == tokens
    assert bool(found.context) is described


@pytest.mark.parametrize(
    "question",
    ["Should I use 20610 or 20611 for a guided knee injection?",
     "20611 instead of 20610 for the knee?",
     "Complete abdominal ultrasound of all organs: is that 76705?",
     "What do I bill for an ultrasound-guided knee injection?"],
)
def test_choices_and_which_code_questions_describe_no_claim(question: str) -> None:
    assert claim_in_question(question, DESCRIBED) is None


def test_a_question_naming_codes_is_never_out_of_scope(tmp_path: Path) -> None:
    class Empty:
        def search(self, query: str, k: int | None = None) -> Any:
            from advisor.retriever import RetrievalResult

            return RetrievalResult(query=query, passages=[], candidates=[])

    adv = Advisor(Settings(data_dir=tmp_path, backend="none"), catalog=CAT, retriever=Empty())
    answer = adv.ask("Should I use 20610 or 20611?")
    assert answer.path != "out_of_scope"
    assert "outside what the advisor covers" not in answer.answer


def test_advisor_ask_answers_a_pair_question(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from advisor.cli import app

    result = CliRunner().invoke(
        app, ["ask", "Can I bill 20610 and 76942 together?", "--no-llm"],
        env={"ADVISOR_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("No, not as asked: 20610 + 76942"), result.output
    assert "outside what the advisor covers" not in result.output


# ------------------------------------------------------------------ other languages


@pytest.mark.parametrize(
    "question",
    ["¿Puedo facturar una ecografía de rodilla con guía?",
     "Échographie du genou: quel code pour une infiltration?",
     "Wie rechne ich eine ultraschallgesteuerte Knieinjektion ab?",
     "Как оплатить УЗИ коленного сустава?"],
)
def test_a_question_in_another_language_is_told_only_english_is_supported(
    advisor: Advisor, question: str
) -> None:
    answer = advisor.ask(question)
    assert answer.answer.startswith("Only English is supported"), answer.answer
    assert "outside what the advisor covers" not in answer.answer
    assert answer.codes == []
    assert "pipeline.language" in {f["rule"] for f in answer.findings}


@pytest.mark.parametrize(
    "question",
    ["LA volume on TTE: which code?", "Injection for de Quervain with US guidance?",
     "FAST exam", "Can I bill a FAST exam in the ED?"],
)
def test_english_questions_with_foreign_looking_words_stay_english(question: str) -> None:
    assert is_english(question)


def test_codes_are_checked_whatever_the_language(advisor: Advisor) -> None:
    answer = advisor.ask("¿Puedo facturar 20610 y 76942 juntos?")
    assert answer.path == "lookup"
    assert shown(answer) == {"20611": "corrected"}


@pytest.mark.parametrize(("question", "follows"), [
    ("Correction from the note: 'PICC, right basilic vein, adult patient.' What changes?", True),
    ("Actually it was the left knee, does the code change?", True),
    ("And if it was done under fluoroscopy?", True),
    ("Ultrasound-guided thoracentesis on the right with a pigtail left in place: codes?", False),
])
def test_a_turn_that_leans_on_the_earlier_one_is_a_follow_up(question, follows):
    assert is_follow_up(question) is follows
