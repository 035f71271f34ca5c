"""The "why" beside a code: whole sentences, normalized text, never another code's label."""

from __future__ import annotations

from pathlib import Path

from test_pipeline import KNEE_PASSAGES, ScriptedChatModel
from test_pipeline import FakeRetriever as Retriever

from advisor.drafting import clean_reason, normalize_text, whole
from advisor.pipeline import Advisor
from advisor.prompts import REASON_CHARS, PromptContext
from advisor.settings import Settings
from knowledge.catalog import load_catalog

CAT = load_catalog()
LINE_Q = "Central line in the internal jugular with real-time ultrasound guidance: which codes?"


class Cand:
    def __init__(self, code: str) -> None:
        self.code, self.label = code, CAT.codes[code].label


CTX = PromptContext(LINE_Q, candidates=[Cand("36556"), Cand("76937")])


def test_a_look_alike_letter_inside_a_word_is_made_latin() -> None:
    assert normalize_text("ultrasound-gu\u0456ded  needle") == "ultrasound-guided needle"
    assert normalize_text("Ultrasound guidance \u0432 \u0440\u0443\u0441") == (
        "Ultrasound guidance \u0432 \u0440\u0443\u0441")  # a Cyrillic word stays as written


def test_a_reason_cut_by_the_length_cap_keeps_its_whole_sentences() -> None:
    cut = "Adult central line. Placed in the right internal jugular vein under"
    assert len(cut) >= REASON_CHARS
    assert whole(cut, REASON_CHARS) == "Adult central line."
    assert clean_reason(cut[:REASON_CHARS], "36556", CTX) == "Adult central line."
    assert clean_reason("Placed in the right internal jugular vein under real-time guid",
                        "36556", CTX) == ""


def test_another_codes_label_is_not_a_reason() -> None:
    assert clean_reason(CAT.codes["76937"].label, "36556", CTX) == ""
    assert clean_reason(CAT.codes["76937"].label, "76937", CTX) == CAT.codes["76937"].label
    assert clean_reason("Add-on to 36556 for the guidance", "76937", CTX) == (
        "Add-on to 36556 for the guidance")


def test_the_answer_shows_only_clean_reasons(tmp_path: Path) -> None:
    draft = {"codes": [
        {"code": "36556", "units": 1, "modifiers": [], "citations": ["P1"],
         "reason": CAT.codes["76937"].label},
        {"code": "76937", "units": 1, "modifiers": [], "citations": ["P1"],
         "reason": "Real-time ultrasound-gu\u0456ded vein access"},
    ], "answer": "Report 36556 with 76937."}
    model = ScriptedChatModel(replies=[draft, draft])
    adv = Advisor(Settings(data_dir=tmp_path, backend="embedded", llm_timeout_s=5), catalog=CAT,
                  retriever=Retriever(CAT, ("36556", "76937"), KNEE_PASSAGES), model=model)
    answer = adv.ask(LINE_Q)
    reasons = {c.code: c.reason for c in answer.codes}
    assert reasons == {"36556": "", "76937": "Real-time ultrasound-guided vein access"}
    assert "\u0456" not in answer.answer
