"""Result types of the checker: findings, fixes, per-code verdicts and the whole report.

A passing code is a bare verdict; a failing one carries its findings, each with the rule
id, severity, message, sources, confidence and, where one exists, a fix that is data
(codes to remove and add, units to set, modifiers to drop), never prose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class OnFail(StrEnum):
    """What is done about a finding, chosen per rule; :mod:`guardrails.policy` applies it."""

    FIX = "fix"  # apply the finding's deterministic fix
    REASK = "reask"  # ask the model once more with the finding
    DROP = "drop"  # remove the code and say why
    WARN = "warn"  # keep, show the finding


class CodeStatus(StrEnum):
    """Verdict for one recommended code."""

    VERIFIED = "verified"
    CORRECTED = "corrected"
    REMOVED = "removed"
    NOT_VERIFIED = "not_verified"


class Overall(StrEnum):
    """Verdict for the whole draft."""

    PASS = "pass"  # noqa: S105 - a verdict, not a secret
    REVIEW = "review"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class DraftCode:
    """One recommended code line of a structured draft."""

    code: str
    units: int = 1
    modifiers: tuple[str, ...] = ()
    reason: str = ""
    citations: tuple[str, ...] = ()
    add_on_mark: bool = False


@dataclass(frozen=True, slots=True)
class Draft:
    """What the checker is handed: recommended codes plus the prose that goes with them."""

    codes: tuple[DraftCode, ...] = ()
    text: str = ""
    context: str = ""  # the question: read for body sites only, never for codes
    # Earlier question(s) a follow-up builds on: read only for the topic check (a follow-up
    # like "and with fluoroscopy?" names no body site of its own).
    history: str = ""

    def code_list(self) -> list[str]:
        """Distinct codes in order."""
        seen: dict[str, None] = {}
        for c in self.codes:
            seen.setdefault(c.code, None)
        return list(seen)


@dataclass(frozen=True, slots=True)
class Fix:
    """A deterministic repair: remove codes, add codes, set units, drop or add modifiers."""

    description: str
    remove: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    set_units: tuple[tuple[str, int], ...] = ()
    drop_modifiers: tuple[tuple[str, str], ...] = ()
    add_modifiers: tuple[tuple[str, str], ...] = ()
    alternatives: tuple[str, ...] = ()  # other acceptable codes a person may choose instead

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "description": self.description,
            "remove": list(self.remove),
            "add": list(self.add),
            "set_units": dict(self.set_units),
            "drop_modifiers": [f"{c}-{m}" for c, m in self.drop_modifiers],
            "add_modifiers": [f"{c}-{m}" for c, m in self.add_modifiers],
            "alternatives": list(self.alternatives),
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of one rule."""

    rule: str  # a guardrails.registry.RuleId, or a data family's id (misconception.<id>)
    severity: Severity
    codes: tuple[str, ...]
    message: str
    sources: tuple[str, ...] = ()
    confidence: str = "high"
    fix: Fix | None = None
    on_fail: OnFail = OnFail.WARN
    span: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stable shape used by `advisor check --json`)."""
        return {
            "rule": str(self.rule),
            "severity": self.severity.value,
            "codes": list(self.codes),
            "message": self.message,
            "fix": self.fix.to_dict() if self.fix else None,
            "sources": list(self.sources),
            "confidence": self.confidence,
        }


@dataclass(frozen=True, slots=True)
class CodeVerdict:
    """Verdict for one code, with the findings about it."""

    code: str
    status: CodeStatus
    units: int = 1
    modifiers: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "code": self.code,
            "status": self.status.value,
            "units": self.units,
            "modifiers": list(self.modifiers),
            "findings": [str(f.rule) for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Everything the checker concluded about one draft."""

    draft: Draft
    findings: tuple[Finding, ...]
    verdicts: tuple[CodeVerdict, ...]
    overall: Overall
    ruleset: str
    warned: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def verdict_for(self, code: str) -> CodeVerdict | None:
        """The verdict of a code, if it was recommended."""
        for v in self.verdicts:
            if v.code == code:
                return v
        return None

    def rules_fired(self) -> set[str]:
        """Rule ids of all findings."""
        return {str(f.rule) for f in self.findings}

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stable shape)."""
        return {
            "verdict": self.overall.value,
            "codes": [v.to_dict() for v in self.verdicts],
            "findings": [f.to_dict() for f in self.findings],
            "ruleset": self.ruleset,
        }
