"""What the advisor answers: the Answer and its parts (codes with verdicts, citations, turns)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from guardrails.report import CodeStatus

PathKind = Literal["draft", "fallback", "lookup", "out_of_scope", "empty"]


class CodeLine(BaseModel):
    """One code of an answer with its verdict."""

    code: str = Field(description="The code.")
    status: CodeStatus = Field(description="verified, corrected, removed or not_verified.")
    label: str | None = Field(None, description="Catalog label; None for an unknown code.")
    units: int = Field(1, description="Units.")
    modifiers: list[str] = Field(default_factory=list, description="Modifiers.")
    findings: list[str] = Field(default_factory=list, description="Rule ids about this code.")
    reason: str = Field("", description="Why it is listed (model's reason or the fix).")


class CitationRef(BaseModel):
    """A retrieved passage the answer cited, with its text."""

    id: str = Field(description="Passage id (content hash).")
    source: str = Field(description="Document path or catalog:<code>.")
    title: str = Field(description="Document title.")
    section: str = Field(description="Section heading.")
    text: str = Field("", description="The passage text the answer cites.")
    source_keys: list[str] = Field(
        default_factory=list, description="Source keys of the passage (knowledge/data)."
    )


class Turn(BaseModel):
    """An earlier question and the codes it ended with, for follow-up questions."""

    question: str = Field(description="The earlier question (already scrubbed).")
    codes: list[str] = Field(default_factory=list, description="Codes the answer showed.")
    statuses: list[str] = Field(default_factory=list, description="Their verdicts.")


class Answer(BaseModel):
    """What the advisor answers: text, checked codes, findings, citations, provenance."""

    answer: str = Field(description="Text for the person; agrees with `codes`.")
    codes: list[CodeLine] = Field(default_factory=list, description="Codes the answer shows.")
    findings: list[dict[str, Any]] = Field(
        default_factory=list, description="Findings, in the shape of Finding.to_dict()."
    )
    citations: list[CitationRef] = Field(
        default_factory=list, description="Retrieved passages the final codes cite."
    )
    ruleset: str = Field(description="Ruleset version used by the checker.")
    backend: str = Field(description="What drafted the answer: 'embedded:default', 'none', ...")
    timings_ms: dict[str, int] = Field(
        default_factory=dict, description="retrieve, draft, check, total in milliseconds."
    )
    banner: str | None = Field(None, description="Notice shown above the answer.")
    warned: list[str] = Field(default_factory=list, description="Codes the text warns against.")
    removed: list[CodeLine] = Field(
        default_factory=list, description="Codes drafted or claimed and removed, with why."
    )
    question: str = Field("", description="The question as processed (after scrubbing).")
    path: PathKind = Field("draft", description="Which path answered.")
    model_calls: int = Field(0, description="Model calls made for this answer.")
    draft_text: str = Field("", description="The model's prose, before flagging.")
    model_error: str | None = Field(
        None,
        description="Why the model gave no draft ('ModelTimeout: ...'); None when it drafted "
        "or was not meant to (backend 'none', no candidates).",
    )
    lead: str = Field("", description="The direct answer, said first (e.g. 'No, not as "
                      "asked: ... Report 20611 instead.'); '' when there is none.")
    explanation: str = Field(
        "", description="The model's prose as shown: codes flagged, contradicting statements "
        "withheld; '' when there is none."
    )
    details: list[str] = Field(
        default_factory=list, description="What the ruleset holds about the codes asked about "
        "(lookup text), for a question about codes."
    )
    hint: str | None = Field(
        None,
        description="What the operator can do about a degraded answer (a setting, a command); "
        "printed by the CLI and logged, never shown in the chat.",
    )

    def to_json(self) -> dict[str, Any]:
        """JSON form: the stable keys first, then the extras."""
        data = self.model_dump(mode="json")
        head = ("answer", "codes", "findings", "citations", "ruleset", "backend", "timings_ms")
        return {k: data[k] for k in head} | {k: v for k, v in data.items() if k not in head}

    def turn(self) -> Turn:
        """This answer as history for a follow-up question."""
        return Turn(
            question=self.question,
            codes=[c.code for c in self.codes],
            statuses=[c.status.value for c in self.codes],
        )
