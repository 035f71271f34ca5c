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
    item = codes["items"]["properties"]
    # The question grounds no modifier: the field is not drafted at all.
    assert "modifiers" not in item
    # No drafted reason (the label, verdict and passages say why); nothing else either.
    assert set(item) == {"code", "units", "citations"}
    assert codes["items"]["additionalProperties"] is False
    assert codes["items"]["required"] == ["code", "units", "citations"]
    assert item["citations"]["maxItems"] == 1  # no passage shown: one citation at most
    # the general schema is untouched
    assert "enum" not in DRAFT_SCHEMA["properties"]["codes"]["items"]["properties"]["code"]


def test_draft_schema_offers_only_the_modifiers_the_question_grounds():
    ctx = PromptContext("Bilateral lower extremity venous duplex, interpretation only",
                        candidates=[Cand("93970", "a")])
    mods = draft_schema(ctx)["properties"]["codes"]["items"]["properties"]["modifiers"]
    assert {"50", "RT", "LT", "26"} <= set(mods["items"]["enum"])
    assert "59" not in mods["items"]["enum"]
    assert mods["maxItems"] == 4  # the modifier positions of a claim line


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


def test_draft_schema_cites_each_passage_shown_at_most_once():
    @dataclass
    class Passage:
        id: str
        text: str = ""

    ctx = PromptContext("knee injection", candidates=[Cand("20611", "a")],
                        passages=[Passage("g1"), Passage("g2")])
    item = draft_schema(ctx)["properties"]["codes"]["items"]["properties"]
    assert item["citations"]["maxItems"] == 2
    assert item["citations"]["items"]["enum"] == ["P1", "P2"]  # only the short ids shown


def test_the_narrowed_schema_compiles_to_a_grammar_that_holds_the_lists_short():
    # The embedded backend turns the schema into a llama.cpp grammar: the closed sets and the
    # caps must survive that conversion (an unknown keyword would be silently dropped).
    import json

    from llama_cpp.llama_grammar import json_schema_to_gbnf

    ctx = PromptContext("TEE, interpretation only of both sides",
                        candidates=[Cand("93312", "a"), Cand("93355", "b")])
    gbnf = json_schema_to_gbnf(json.dumps(draft_schema(ctx)))
    rules = dict(ln.split(" ::= ", 1) for ln in gbnf.splitlines() if " ::= " in ln)
    assert rules["codes-item-code"] == '"\\"93312\\"" | "\\"93355\\""'
    # bounded lists: the repetition is spelled out (four modifiers), not an open-ended "*",
    # and each is one of the modifiers the question grounds
    assert "*" not in rules["codes-item-modifiers"]
    assert rules["codes-item-modifiers"].count("codes-item-modifiers-item") == 4
    assert '"\\"26\\""' in rules["codes-item-modifiers-item"]
    assert "59" not in rules["codes-item-modifiers-item"]
    # a question that grounds no modifier: only the empty list can be drafted
    bare = PromptContext("TEE", candidates=[Cand("93312", "a")])
    rules = dict(ln.split(" ::= ", 1) for ln in json_schema_to_gbnf(
        json.dumps(draft_schema(bare))).splitlines() if " ::= " in ln)
    assert not any(name.startswith("codes-item-modifiers") for name in rules)
    assert "reason" not in rules["codes-item"]
    assert "*" not in rules["codes-item-citations"]
