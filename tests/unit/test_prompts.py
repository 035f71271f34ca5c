"""The draft schema is narrowed to the candidate codes for constrained decoding."""

from __future__ import annotations

from dataclasses import dataclass

from advisor.prompts import DRAFT_SCHEMA, PromptContext, draft_schema


@dataclass
class Cand:
    code: str
    label: str


def test_draft_schema_restricts_codes_to_candidates():
    ctx = PromptContext("knee injection", candidates=[Cand("20611", "a"), Cand("20610", "b")])
    schema = draft_schema(ctx)
    codes = schema["properties"]["codes"]
    assert codes["items"]["properties"]["code"]["enum"] == ["20611", "20610"]
    assert codes["maxItems"] == 3
    # the general schema is untouched
    assert "enum" not in DRAFT_SCHEMA["properties"]["codes"]["items"]["properties"]["code"]


def test_draft_schema_without_candidates_is_general():
    assert draft_schema(PromptContext("x")) is DRAFT_SCHEMA
    assert draft_schema(None) is DRAFT_SCHEMA


def test_focus_keeps_the_sentences_that_speak_to_the_question() -> None:
    from advisor.prompts import focus

    text = ("Joint injection codes come in three sizes by joint. For a major joint such as the "
            "knee, 20610 is the code without imaging guidance. When ultrasound guidance with a "
            "permanent image is used, report 20611; do not add 76942. Fluoroscopic guidance is "
            "77002 and may be reported with 20610.")
    out = focus(text, "Ultrasound-guided knee injection?", ["20610", "20611", "76942"], 200)
    assert len(out) <= 200 + 4
    assert "report 20611; do not add 76942" in out
    assert "three sizes" not in out  # the opening says nothing to this question
    # Sentences keep their order; a short passage is left whole.
    assert out.index("20610 is the code") < out.index("20611")
    assert focus("Short passage.", "anything", [], 200) == "Short passage."
    # Nothing in common with the question: the opening, cut at a word boundary.
    assert focus(text, "zzzz", [], 60).startswith("Joint injection codes come")
