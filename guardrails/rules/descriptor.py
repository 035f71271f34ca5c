"""Descriptor: what the text says a code is (extent, add-on, guidance, meaning) must match."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator

from guardrails.claims import Polarity, lower_keep_offsets
from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.schema import Confidence, Extent


def _sentences_with(
    low: str, sentences: tuple[tuple[int, int], ...], starts: list[int], words: tuple[str, ...]
) -> list[tuple[int, int]]:
    """The sentences, in text order, that hold one of ``words`` whole (``starts``: theirs)."""
    hits: set[int] = set()
    for w in words:
        p = low.find(w)
        while p >= 0:
            k = bisect_right(starts, p) - 1
            if k >= 0 and p + len(w) <= sentences[k][1]:
                hits.add(k)
            p = low.find(w, p + 1)
    return [sentences[k] for k in sorted(hits)]


def _severity(conf: Confidence) -> Severity:
    return Severity.ERROR if conf is not Confidence.LOW else Severity.WARNING


def check(ctx: Context) -> Iterator[Finding]:
    """Findings for wrong extent, add-on, guidance statements, misreadings, misconceptions."""
    cat = ctx.catalog
    claims = ctx.claims
    seen: set[tuple[str, str, str]] = set()
    for a in claims.extents:
        entry = cat.get(a.code)
        if entry is None or (a.code, "extent", a.extent) in seen:
            continue
        seen.add((a.code, "extent", a.extent))
        if entry.extent is Extent.SINGLE:
            yield Finding(
                "descriptor.extent",
                _severity(entry.confidence),
                (a.code,),
                f"{a.code} is a single code with no complete or limited version; report it "
                "as is, without a modifier to make it complete or limited.",
                sources=entry.sources,
                confidence=entry.confidence.value,
                fix=Fix(f"Call {a.code} by its own description; no complete/limited split."),
                span=(a.start, a.end),
            )
        elif entry.extent.value != a.extent:
            other = entry.counterpart
            if other:
                desc = (
                    f"{other} is the {a.extent} code; keep {a.code} only if the exam was "
                    f"{entry.extent.value}."
                )
            else:
                desc = f"{a.code} is the {entry.extent.value} code."
            yield Finding(
                "descriptor.extent",
                _severity(entry.confidence),
                (a.code,),
                f"{a.code} is {entry.extent.value}, not {a.extent}. {desc}",
                sources=entry.sources,
                confidence=entry.confidence.value,
                fix=Fix(desc, alternatives=(other,) if other else ()),
                on_fail=OnFail.REASK,
                span=(a.start, a.end),
            )
    for b in claims.add_ons:
        entry = cat.get(b.code)
        if entry is None:
            continue
        actual = cat.is_add_on(b.code)
        if actual != b.is_add_on and (b.code, "addon", "") not in seen:
            seen.add((b.code, "addon", ""))
            yield Finding(
                "descriptor.add_on",
                _severity(entry.confidence),
                (b.code,),
                f"{b.code} {'is' if actual else 'is not'} an add-on code"
                + (
                    "; it is reported only with an allowed primary procedure."
                    if actual
                    else "; it is reported on its own line, not as an add-on."
                ),
                sources=entry.sources,
                confidence=entry.confidence.value,
                on_fail=OnFail.REASK,
                span=(b.start, b.end),
            )
    for g in claims.guidance:
        entry = cat.get(g.code)
        if entry is None or entry.guidance_included is None:
            continue
        if entry.guidance_included != g.includes_guidance:
            yield Finding(
                "descriptor.guidance",
                _severity(entry.confidence),
                (g.code,),
                f"{g.code} {'includes' if entry.guidance_included else 'does not include'} "
                "imaging guidance.",
                sources=entry.sources,
                confidence=entry.confidence.value,
                on_fail=OnFail.REASK,
                span=(g.start, g.end),
            )
    fired: set[tuple[str, int]] = set()
    for m in claims.mentions:
        if m.polarity is Polarity.WARNED:
            continue
        patterns = ctx.compiled.misreadings.get(m.code)
        if not patterns:
            continue
        s, e = claims.sentences[m.sentence]
        sentence = claims.text[s:e]
        entry = cat.codes[m.code]
        for rx, i in patterns:
            if (m.code, i) in fired or not rx.search(sentence):
                continue
            fired.add((m.code, i))
            mr = entry.misreadings[i]
            recommended = m.code in ctx.codes
            if len(mr.fix) == 1 and recommended:
                fix = Fix(f"Replace {m.code} with {mr.fix[0]}.", remove=(m.code,), add=mr.fix)
                on_fail = OnFail.FIX
            elif mr.fix:
                fix = Fix("Choose the right code.", alternatives=mr.fix)
                on_fail = OnFail.REASK
            else:
                fix, on_fail = None, OnFail.WARN
            yield Finding(
                "descriptor.meaning",
                _severity(mr.confidence),
                (m.code,),
                mr.message,
                sources=mr.sources,
                confidence=mr.confidence.value,
                fix=fix,
                on_fail=on_fail,
                span=(m.start, m.end),
            )
    yield from _guidance_addon(ctx)
    low = lower_keep_offsets(claims.text) if ctx.compiled.misconceptions else ""
    sentences = claims.sentences or ((0, len(low)),)
    starts = [s for s, _ in sentences]
    for rx, i, requires, unless in ctx.compiled.misconceptions:
        # Run the pattern only over sentences that hold a trigger word: long alternations
        # are slow to scan across a whole answer.
        hit = None
        for s, e in _sentences_with(low, sentences, starts, requires) if requires else sentences:
            hit = rx.search(claims.text, s, e)
            if hit is not None and unless is not None and unless.search(claims.text, s, hit.end()):
                hit = None  # "76942 is billed once, not per lesion" says it the right way
            if hit is not None:
                break
        if hit is None:
            continue
        mc = cat.misconceptions[i]
        yield Finding(
            f"misconception.{mc.id}",
            _severity(mc.confidence),
            (),
            mc.message,
            sources=mc.sources,
            confidence=mc.confidence.value,
            span=(hit.start(), hit.end()),
        )


def _guidance_addon(ctx: Context) -> Iterator[Finding]:
    """The question says ultrasound guided a procedure whose code does not include it: the
    ultrasound guidance add-on may be reported beside it when its elements are documented."""
    frame = ctx.frame
    if frame is None or not frame.affirms("guidance_ultrasound"):
        return
    cat = ctx.catalog
    us_addons = [
        c for c, e in cat.codes.items() if e.add_on and e.family == "guidance" and e.active
    ]
    for code in ctx.active():
        if cat.codes[code].with_us_guidance is not None:
            continue  # its guided form is the answer (fit.guidance says so)
        for addon in us_addons:
            ap = cat.addon_primaries(addon)
            if addon in ctx.codes or ap is None or code not in ap.primaries:
                continue
            needs = cat.codes[addon].documentation
            what = cat.element_sets[needs[0]].title if needs else addon
            yield Finding(
                RuleId.DESCRIPTOR_GUIDANCE_ADDON,
                Severity.INFO,
                (code, addon),
                f"The question says ultrasound guidance was used: +{addon} may be added "
                f"to {code} when its documentation requirements are met ({what}).",
                sources=cat.codes[addon].sources,
                confidence=cat.codes[addon].confidence.value,
            )
