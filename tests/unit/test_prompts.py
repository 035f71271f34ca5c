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
