"""Documentation: statements that contradict a code's documentation requirements."""

from __future__ import annotations

from collections.abc import Iterator

from guardrails.registry import RuleId
from guardrails.report import Finding, OnFail, Severity
from guardrails.rules.base import Context

# Element names used by claims extraction -> element ids in the documentation sets.
_ELEMENT = {
    "permanent_image": "permanent_image",
    "vessel_patency": "vessel_patency",
    "sites_evaluated": "sites_evaluated",
    "realtime_needle_entry": "realtime_needle_entry",
    "written_report": "interpretation",
    "medical_necessity": "indication",
}


def check(ctx: Context) -> Iterator[Finding]:
    """Errors for statements that a required element is not needed; info on requirements."""
    cat = ctx.catalog
    for st in ctx.claims.docs:
        if st.required:
            continue
        # A statement tied to no code speaks about the claim as a whole.
        targets = (st.code,) if st.code is not None else tuple(ctx.active())
        element_id = _ELEMENT.get(st.element, st.element)
        for code in targets:
            entry = cat.get(code)
            if entry is None:
                continue
            for set_id in entry.documentation:
                es = cat.element_sets[set_id]
                if any(e.id == element_id for e in es.elements):
                    yield Finding(
                        RuleId.DOCUMENTATION_CONTRADICTION,
                        Severity.ERROR,
                        (code,),
                        f"{code} requires what the text says is not needed or not done. "
                        f"Required for {code}: {ctx.compiled.requirements[set_id]}.",
                        sources=es.sources,
                        confidence=es.confidence.value,
                        on_fail=OnFail.WARN,
                        span=(st.start, st.end),
                    )
                    break
    for code in ctx.active():
        entry = cat.codes[code]
        for set_id in entry.documentation:
            es = cat.element_sets[set_id]
            yield Finding(
                RuleId.DOCUMENTATION_REQUIREMENTS,
                Severity.INFO,
                (code,),
                f"{code} needs: {ctx.compiled.requirements[set_id]}.",
                sources=es.sources,
                confidence=es.confidence.value,
            )
