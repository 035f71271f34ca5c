"""Existence: unknown codes are not verified, deleted codes are errors with their replacement."""

from __future__ import annotations

from collections.abc import Iterator

from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.schema import CODE_RE, Confidence


def check(ctx: Context) -> Iterator[Finding]:
    """Findings for codes that are malformed, unknown, deleted or only weakly sourced."""
    for code in ctx.codes:
        if not CODE_RE.match(code):
            yield Finding(
                RuleId.EXISTENCE_MALFORMED,
                Severity.ERROR,
                (code,),
                f"'{code}' is not a code: CPT codes are 5 digits, Category III codes 4 digits "
                "and T, HCPCS codes a letter and 4 digits.",
                on_fail=OnFail.DROP,
                fix=Fix(f"Remove '{code}'.", remove=(code,)),
            )
            continue
        entry = ctx.catalog.get(code)
        if entry is None:
            yield Finding(
                RuleId.EXISTENCE_UNKNOWN,
                Severity.WARNING,
                (code,),
                f"{code} is not in the ruleset, so nothing about it could be checked: "
                "not verified. Confirm the code in the current CPT/HCPCS code set.",
                on_fail=OnFail.DROP,
            )
            continue
        if not entry.active:
            since = entry.deleted.isoformat() if entry.deleted else "an earlier year"
            repl = entry.replaced_by
            yield Finding(
                RuleId.EXISTENCE_DELETED,
                Severity.ERROR,
                (code,),
                f"{code} was deleted on {since}."
                + (f" Use {' / '.join(repl)} instead." if repl else ""),
                sources=entry.sources,
                confidence=entry.confidence.value,
                fix=Fix(
                    f"Replace {code} with {repl[0]}." if repl else f"Remove {code}.",
                    remove=(code,),
                    add=repl[:1],
                    alternatives=repl[1:],
                ),
                on_fail=OnFail.FIX if len(repl) == 1 else OnFail.REASK if repl else OnFail.DROP,
            )
            continue
        if entry.confidence is Confidence.LOW:
            yield Finding(
                RuleId.EXISTENCE_LOW_CONFIDENCE,
                Severity.INFO,
                (code,),
                f"The facts held for {code} are weakly sourced: needs review before relying "
                "on them.",
                sources=entry.sources,
                confidence=entry.confidence.value,
            )
