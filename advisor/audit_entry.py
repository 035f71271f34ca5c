"""One audit-log record (the masked question and answer, its codes, verdicts and findings) and
the time helpers the log uses; the log itself is :mod:`advisor.audit`."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditCode(BaseModel):
    """A code the answer showed (or removed), with its verdict."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="The code.")
    status: str = Field(description="verified, corrected, removed or not_verified.")
    units: int = Field(1, description="Units.")
    modifiers: list[str] = Field(default_factory=list, description="Modifiers.")


class AuditEntry(BaseModel):
    """One answered question as stored (free text is masked before it is written)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        default_factory=lambda: uuid.uuid4().hex,
        description="The answer's id: recording it again stores nothing new.",
    )
    question: str = Field(description="The question, PHI masked.")
    answer: str = Field(description="The answer text shown, PHI masked.")
    codes: list[AuditCode] = Field(default_factory=list, description="Codes with verdicts.")
    findings: list[dict[str, Any]] = Field(default_factory=list, description="Findings.")
    ruleset: str = Field("", description="Ruleset version used by the checker.")
    backend: str = Field("", description="Drafting backend: embedded, openai, ollama, none.")
    model: str = Field("", description="Model name or preset at that backend.")
    passage_ids: list[str] = Field(default_factory=list, description="Retrieved passage ids.")
    timings_ms: dict[str, int] = Field(default_factory=dict, description="Timings in ms.")
    path: str = Field("", description="Which pipeline path answered.")
    created_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When it was answered (UTC)."
    )

    @classmethod
    def from_answer(cls, answer: Any, *, passage_ids: list[str] | None = None) -> AuditEntry:
        """Build from a pipeline ``Answer`` (read by attribute, so no import of the pipeline)."""
        backend, _, model = str(getattr(answer, "backend", "")).partition(":")
        lines = list(getattr(answer, "codes", [])) + list(getattr(answer, "removed", []))
        codes = [
            AuditCode(
                code=c.code,
                status=getattr(c.status, "value", str(c.status)),
                units=c.units,
                modifiers=list(c.modifiers),
            )
            for c in lines
        ]
        if passage_ids is None:
            passage_ids = [c.id for c in getattr(answer, "citations", [])]
        return cls(
            question=getattr(answer, "question", ""),
            answer=getattr(answer, "answer", ""),
            codes=codes,
            findings=list(getattr(answer, "findings", [])),
            ruleset=getattr(answer, "ruleset", ""),
            backend=backend,
            model=model,
            passage_ids=passage_ids,
            timings_ms=dict(getattr(answer, "timings_ms", {})),
            path=getattr(answer, "path", ""),
        )


def parse_since(value: str) -> datetime:
    """A ``--since`` value (``YYYY-MM-DD`` or an ISO time) as an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"Cannot read the date {value!r}: use YYYY-MM-DD (e.g. 2026-11-01) or an ISO time."
        ) from None
    return _utc(parsed)


def _utc(value: date | datetime) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, dtime.min)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    """A stored time as the export writes it (UTC, microseconds): the same from either store."""
    return _utc(value).isoformat(timespec="microseconds")
