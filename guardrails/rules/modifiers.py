"""Modifiers: -50, -52, -26/-TC and RT/LT only where they apply."""

from __future__ import annotations

from collections.abc import Iterator

from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from guardrails.rules.descriptor import asked_extent, asks_one_side
from knowledge.schema import Bilateral, Extent, PcTc


def check(ctx: Context) -> Iterator[Finding]:
    """Findings for modifiers used where the catalog says they do not apply."""
    cat = ctx.catalog
    for code in ctx.known():
        entry = cat.codes[code]
        for mod in sorted(ctx.modifiers.get(code, frozenset())):
            rule = cat.modifiers.get(mod)
            if rule is None or mod in entry.allowed_modifiers:
                continue
            src = rule.sources
            conf = rule.confidence.value
            drop = Fix(f"Remove -{mod} from {code}.", drop_modifiers=((code, mod),))
            for cond in rule.not_on:
                if cond == "add_on" and cat.is_add_on(code):
                    yield Finding(
                        "modifiers.bilateral",
                        Severity.ERROR,
                        (code,),
                        f"{code} is an add-on code; add-ons take no -{mod}.",
                        sources=src,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if cond == "inherent_bilateral" and entry.bilateral is Bilateral.INHERENT:
                    other = cat.get(entry.counterpart) if entry.counterpart else None
                    if (
                        mod == "50"
                        and other is not None
                        and entry.extent is Extent.LIMITED
                        and other.bilateral is Bilateral.INHERENT
                        # one side studied, or the question rules the other code out:
                        # the modifier is what is wrong, not the code
                        and not asks_one_side(ctx.context)
                        and not any(
                            rx.search(ctx.context)
                            for rx, _ in ctx.compiled.misfits.get(other.code, ())
                        )
                    ):
                        fix = Fix(
                            f"Report {other.code} (both sides) instead of {code}-50.",
                            remove=(code,),
                            add=(other.code,),
                        )
                    else:
                        fix = drop
                    yield Finding(
                        "modifiers.bilateral" if mod == "50" else "modifiers.side",
                        Severity.ERROR if mod == "50" else Severity.WARNING,
                        (code,),
                        f"{code} already covers "
                        + ("both sides" if entry.extent is not Extent.LIMITED else "either side")
                        + f"; do not add -{mod}."
                        + (f" {rule.note}" if rule.note and mod == "50" else ""),
                        sources=src + entry.sources,
                        confidence=conf,
                        fix=fix,
                        on_fail=OnFail.FIX,
                    )
                    break
                if (
                    cond == "not_applicable_bilateral"
                    and entry.bilateral is Bilateral.NOT_APPLICABLE
                ):
                    yield Finding(
                        "modifiers.bilateral",
                        Severity.ERROR,
                        (code,),
                        f"{code} is not a sided service; -{mod} does not apply.",
                        sources=src,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if (
                    cond == "has_limited_counterpart"
                    and entry.extent is Extent.COMPLETE
                    and entry.counterpart
                    and asked_extent(ctx.context) == "complete"
                ):
                    yield Finding(
                        "modifiers.reduced",
                        Severity.ERROR,
                        (code,),
                        f"The question describes a complete exam: {code} is reported without "
                        f"-{mod}.",
                        sources=src + entry.sources,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if (
                    cond == "has_limited_counterpart"
                    and entry.extent is Extent.COMPLETE
                    and entry.counterpart
                ):
                    yield Finding(
                        "modifiers.reduced",
                        Severity.ERROR,
                        (code,),
                        f"A reduced {code} is reported with the limited code "
                        f"{entry.counterpart}, not with -{mod}.",
                        sources=src + entry.sources,
                        confidence=conf,
                        fix=Fix(
                            f"Report {entry.counterpart} instead of {code}-{mod}.",
                            remove=(code,),
                            add=(entry.counterpart,),
                        ),
                        on_fail=OnFail.FIX,
                    )
                    break
                if cond == "has_limited_counterpart" and entry.extent is Extent.LIMITED:
                    yield Finding(
                        "modifiers.reduced",
                        Severity.ERROR,
                        (code,),
                        f"{code} is already the limited code; do not add -{mod}.",
                        sources=src + entry.sources,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if cond == "no_pc_tc" and entry.pc_tc is PcTc.NONE:
                    yield Finding(
                        "modifiers.pc_tc",
                        Severity.ERROR,
                        (code,),
                        f"{code} has no professional/technical split; -{mod} does not apply.",
                        sources=src,
                        confidence=conf,
                        fix=drop,
                        on_fail=OnFail.FIX,
                    )
                    break
                if cond == "no_pc_tc" and entry.pc_tc is PcTc.UNKNOWN:
                    yield Finding(
                        "modifiers.pc_tc",
                        Severity.WARNING,
                        (code,),
                        f"Whether {code} has a professional/technical split is not known here: "
                        f"-{mod} not verified.",
                        sources=src,
                        confidence="low",
                    )
                    break
