"""Note audit "Suggest codes": a drafted suggestion is checked with the note as the question,
only verified or corrected codes are suggested, and an add-on never alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advisor.answer import Answer, CodeLine
from advisor.settings import Settings
from advisor.suggest import checked_suggestion, suggest_for_note
from guardrails.report import CodeStatus
from knowledge.catalog import load_catalog

CAT = load_catalog()
ADULT_IJ = (
    "Procedure: right internal jugular central venous catheter, 64-year-old man.\n"
    "Potential access sites were evaluated with ultrasound.\n"
    "Under real-time ultrasound guidance the needle entry into the vein was visualized.\n"
    "An image was saved to PACS."
)
SPARSE = "Line placed with ultrasound. Image saved."


def _answer(*codes: str) -> Answer:
    # What the drafting flow showed: the model's picks, each marked verified by the flow.
    return Answer(answer="", ruleset=CAT.ruleset, backend="test",
                  codes=[CodeLine(code=c, status=CodeStatus.VERIFIED) for c in codes])


def test_an_adult_line_gets_the_adult_code_and_no_unrelated_add_on() -> None:
    got = checked_suggestion(ADULT_IJ, ["36555", "76937", "37252"], CAT)
    assert set(got.codes) == {"36556", "76937"}
    assert "36555" in got.message and "37252" in got.message


def test_an_add_on_is_never_suggested_alone() -> None:
    got = checked_suggestion(SPARSE, ["76937"], CAT)
    assert got.codes == ()
    assert "76937 is an add-on" in got.message


def test_the_model_suggestion_goes_through_the_checker() -> None:
    asked: list[str] = []

    def ask(question: str) -> Answer:
        asked.append(question)
        return _answer("36555", "76937", "37252")

    got = suggest_for_note(ADULT_IJ, CAT, [], ask)
    assert asked and ADULT_IJ[:40] in asked[0]
    assert set(got.codes) == {"36556", "76937"}


def test_codes_named_in_the_note_are_kept_as_written() -> None:
    got = suggest_for_note("Bill +76937 for the line.", CAT, ["76937"], None)
    assert got.codes == ("76937",)
    assert "named in the note" in got.message


def test_the_app_suggests_what_the_checker_keeps(tmp_path: Path) -> None:
    import app

    class Drafting:
        def ask(self, question: str, history: Any = ()) -> Answer:
            return _answer("76937")

    state = app.AdvisorApp(Settings(data_dir=tmp_path, backend="embedded"), CAT,
                           advisor=Drafting())  # type: ignore[arg-type]
    state.warmup.done.set()  # nothing to load: the scripted advisor drafts at once
    codes, hint = state.suggest_codes(SPARSE)
    assert codes == ""
    assert "76937 is an add-on" in hint
