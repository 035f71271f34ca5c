"""Descriptor: what the text says a code is (extent, add-on, guidance, meaning) must match."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from typing import TYPE_CHECKING

from guardrails.claims import Polarity, lower_keep_offsets
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context, compiled_for
from knowledge.schema import AgeBand, CodeEntry, Confidence, Extent, Kind

if TYPE_CHECKING:
    from knowledge.catalog import Catalog


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
    yield from _sites(ctx)
    yield from _guidance_context(ctx)
    yield from _extent_context(ctx)
    yield from _age_context(ctx)
    yield from _question_misfits(ctx)
    yield from _unilateral_context(ctx)
    yield from _both_sides_context(ctx)
    yield from _other_guidance_context(ctx)
    yield from _off_topic(ctx)
    yield from _guidance_unsaid(ctx)
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


_US_GUIDED = re.compile(
    r"\b(?:ultrasound|sonograph\w*|us)[- ](?:guided|guidance)\b|\bunder (?:real[- ]time )?"
    r"ultrasound\b|\bwith (?:real[- ]time )?ultrasound\b"
)
_NO_GUIDANCE = re.compile(
    r"\b(?:without|no) (?:any )?(?:ultrasound|imaging|image guidance|imaging guidance)\b"
)


def _replace(rule: str, code: str, by: str, message: str, basis: CodeEntry) -> Finding:
    """An error the question settles: ``code`` is wrong here and ``by`` is the fix."""
    return Finding(
        rule,
        Severity.ERROR,
        (code,),
        message,
        sources=basis.sources,
        confidence=basis.confidence.value,
        fix=Fix(f"Replace {code} with {by}.", remove=(code,), add=(by,)),
        on_fail=OnFail.FIX,
    )


def says_us_guidance(text: str) -> bool:
    """True if ``text`` (lower case) says ultrasound guidance was used (and not that it wasn't)."""
    return bool(text) and _US_GUIDED.search(text) is not None and not _NO_GUIDANCE.search(text)


def _guidance_context(ctx: Context) -> Iterator[Finding]:
    """An unguided code recommended where the question says ultrasound guidance was used."""
    if not says_us_guidance(ctx.context):
        return
    cat = ctx.catalog
    us_addons = [
        c for c, e in cat.codes.items() if e.add_on and e.family == "guidance" and e.active
    ]
    for code in ctx.active():
        entry = cat.codes[code]
        guided = entry.with_us_guidance
        if guided is None:
            for addon in us_addons:
                ap = cat.addon_primaries(addon)
                if addon in ctx.codes or ap is None or code not in ap.primaries:
                    continue
                needs = cat.codes[addon].documentation
                what = cat.element_sets[needs[0]].title if needs else addon
                yield Finding(
                    "descriptor.guidance_addon",
                    Severity.INFO,
                    (code, addon),
                    f"The question says ultrasound guidance was used: +{addon} may be added "
                    f"to {code} when its documentation requirements are met ({what}).",
                    sources=cat.codes[addon].sources,
                    confidence=cat.codes[addon].confidence.value,
                )
            continue
        g = cat.codes[guided]
        yield _replace(
            "descriptor.guidance_context", code, guided,
            f"The question says ultrasound guidance was used; {code} is the code without "
            f"imaging guidance. With ultrasound guidance report {guided} ({g.label}).",
            entry,
        )


_ASKED_LIMITED = re.compile(
    r"\blimited\b|\bfollow[- ]?up\b|\bsingle[- ]organ\b|\bfocused\b|\btargeted\b|\bquick\b"
    # "only the gallbladder and liver were scanned", "just the right kidney was imaged"
    r"|\b(?:only|just) (?:the |one |a |an )?(?:[a-z]+ ){0,4}(?:was |were )?"
    r"(?:scanned|imaged|examined|evaluated|studied|looked at)\b"
    # one quadrant of the abdomen: "RUQ ultrasound for gallstones"
    r"|\b(?:ruq|luq|rlq|llq)\b|\b(?:right|left) (?:upper|lower) quadrant\b|\bsingle quadrant\b"
)
_ASKED_COMPLETE = re.compile(r"\bcomplete(?:ly)?\b")


def asked_extent(question: str) -> str | None:
    """'limited' or 'complete' when the (lowercased) question settles it, else None."""
    if not question:
        return None
    limited = _ASKED_LIMITED.search(question) is not None
    if limited == (_ASKED_COMPLETE.search(question) is not None):
        return None  # neither or both: the question does not settle it
    return "limited" if limited else "complete"


def _extent_context(ctx: Context) -> Iterator[Finding]:
    """A complete code where the question asks for a limited exam, or the reverse."""
    asked = asked_extent(ctx.context)
    if asked is None:
        return
    cat = ctx.catalog
    for code in ctx.active():
        entry = cat.codes[code]
        if entry.extent.value not in ("complete", "limited") or entry.extent.value == asked:
            continue
        other = (
            f" The {asked} code of that region is {entry.counterpart}."
            if (entry.counterpart)
            else ""
        )
        yield Finding(
            "descriptor.extent_context",
            Severity.WARNING,
            (code,),
            f"The question asks about a {asked} exam; {code} is the {entry.extent.value} "
            f"code.{other} Not verified: confirm what was done and documented.",
            sources=entry.sources,
            confidence=entry.confidence.value,
            fix=Fix(
                "Use the code that matches the exam done.",
                alternatives=(entry.counterpart,) if entry.counterpart else (),
            ),
        )


_NUM = r"(\d{1,3}(?:\.\d)?)"
# "under 5", "younger than age 5", "less than 5 years": a band edge, checked first.
_AGE_OF = r"\s+(?:the\s+)?(?:age\s+(?:of\s+)?)?"
_AGE_BELOW = re.compile(r"\b(?:under|younger than|less than|below)" + _AGE_OF + _NUM + r"\b")
_AGE_ATLEAST = re.compile(
    _NUM + r"\s*(?:years?|yrs?|y)?\s*(?:of age\s*)?(?:or|and)\s*(?:older|over|above)\b"
    r"|\b(?:over|older than|above)" + _AGE_OF + _NUM + r"\b"
)
_AGE_YEARS = re.compile(r"\b" + _NUM + r"[- ]?(?:years?|yrs?|y)[- ]?(?:old|of age|/o)\b|\b"
                        + _NUM + r"\s*(?:yo|y/o|yr old)\b|\bage[ds]?\s*(?:of\s*)?:?\s*"
                        + _NUM + r"\b")
_AGE_SMALL = re.compile(r"\b\d{1,2}[- ]?(?:months?|mos?|weeks?|wks?|days?)[- ]?(?:old|of age)\b|"
                        r"\b(?:infant|neonat\w*|newborn|baby|toddler|preemie|premature)\b")
_AGE_GROWN = re.compile(r"\b(?:adults?|elderly|teen(?:ager)?s?|adolescents?|grown)\b")


def question_age_band(text: str) -> AgeBand | None:
    """The age band (under 5 / 5 and older) a question states, or None if it does not
    say or says both."""
    bands: set[AgeBand] = set()
    rest = text
    for m in _AGE_BELOW.finditer(text):  # "under 18" says nothing about 5
        if float(m.group(1)) <= 5:
            bands.add(AgeBand.UNDER_5)
        rest = rest.replace(m.group(0), " ")
    for m in _AGE_ATLEAST.finditer(rest):  # "older than 3" says nothing about 5
        if float(m.group(1) or m.group(2)) >= 5:
            bands.add(AgeBand.FIVE_AND_OLDER)
        rest = rest.replace(m.group(0), " ")
    for m in _AGE_YEARS.finditer(rest):
        n = float(next(g for g in m.groups() if g))
        bands.add(AgeBand.UNDER_5 if n < 5 else AgeBand.FIVE_AND_OLDER)
    if _AGE_SMALL.search(rest):
        bands.add(AgeBand.UNDER_5)
    if _AGE_GROWN.search(rest):
        bands.add(AgeBand.FIVE_AND_OLDER)
    return bands.pop() if len(bands) == 1 else None


_BAND_WORDS = {AgeBand.UNDER_5: "under 5", AgeBand.FIVE_AND_OLDER: "5 or older"}


def _age_context(ctx: Context) -> Iterator[Finding]:
    """A code for one age band recommended where the question states the other."""
    if not ctx.context:
        return
    band = question_age_band(ctx.context)
    if band is None:
        return
    cat = ctx.catalog
    for code in ctx.active():
        entry = cat.codes[code]
        if entry.age_band is None or entry.age_band is band:
            continue
        sibling = next(
            (c for c, e in cat.codes.items()
             if e.site_group == entry.site_group and e.age_band is band and e.active),
            None,
        )
        fix = (Fix(f"Replace {code} with {sibling}.", remove=(code,), add=(sibling,))
               if sibling else None)
        yield Finding(
            "descriptor.age",
            Severity.ERROR,
            (code,),
            f"{code} is for a patient {_BAND_WORDS[entry.age_band]}; the question's patient is "
            f"{_BAND_WORDS[band]}" + (f", which is reported with {sibling} "
                                      f"({cat.codes[sibling].label})." if sibling else "."),
            sources=entry.sources,
            confidence=entry.confidence.value,
            fix=fix,
            on_fail=OnFail.FIX if fix else OnFail.REASK,
        )


def _question_misfits(ctx: Context) -> Iterator[Finding]:
    """A recommended code that the question's own words rule out ('TTE without Doppler')."""
    if not ctx.context:
        return
    cat = ctx.catalog
    for code in ctx.active():
        for rx, i in ctx.compiled.misfits.get(code, ()):
            if not rx.search(ctx.context):
                continue
            mf = cat.codes[code].question_misfits[i]
            if len(mf.fix) == 1:
                fix = Fix(f"Replace {code} with {mf.fix[0]}.", remove=(code,), add=mf.fix)
                on_fail = OnFail.FIX
            elif not mf.fix:  # nothing takes its place ("no Doppler": no Doppler add-on)
                fix = Fix(f"Remove {code}.", remove=(code,))
                on_fail = OnFail.FIX
            else:
                fix = Fix("Choose the code that fits the question.", alternatives=mf.fix)
                on_fail = OnFail.REASK
            yield Finding(
                "descriptor.question",
                _severity(mf.confidence),
                (code,),
                mf.message,
                sources=mf.sources,
                confidence=mf.confidence.value,
                fix=fix,
                on_fail=on_fail,
            )
            break
    for code in ctx.active():
        need = ctx.compiled.requires.get(code)
        if need is None or need.search(ctx.context):
            continue
        entry = cat.codes[code]
        yield Finding(
            "descriptor.question_lacks",
            Severity.WARNING,
            (code,),
            f"{code} ({entry.label}) fits only questions that say so; this question does not. "
            "Not verified: confirm the service matches the code.",
            sources=entry.sources,
            confidence=entry.confidence.value,
            fix=Fix("Use the code that matches the service."),
        )


_ONE_SIDE = re.compile(
    r"\bunilateral\b|\b(?:one|single|left|right|lt|rt) (?:leg|arm|limb|extremity|side|"
    r"lower (?:extremity|limb)|upper (?:extremity|limb)|calf|thigh|carotid)\b"
)
_BOTH_SIDES = re.compile(r"\bbilateral\b|\bboth\b|\bleft and right\b|\bright and left\b")


def asks_one_side(question: str) -> bool:
    """True when the (lowercased) question says one side was studied, and not both."""
    return bool(question) and bool(_ONE_SIDE.search(question)) and not _BOTH_SIDES.search(
        question
    )


_BOTH_LIMBS = re.compile(
    r"\bbilateral(?:ly)?\b|\bleft and right\b|\bright and left\b|\bboth (?:\w+ )?(?:legs|arms|"
    r"sides|limbs|extremities|lower|upper|carotids|feet|hands|calves|thighs)\b"
)


def _both_sides_context(ctx: Context) -> Iterator[Finding]:
    """A one-side-or-limited code where the question says both sides were studied in full."""
    if (
        not ctx.context
        or not _BOTH_LIMBS.search(ctx.context)
        or asks_one_side(ctx.context)
        or asked_extent(ctx.context) == "limited"
    ):
        return
    cat = ctx.catalog
    for code in ctx.active():
        entry = cat.codes[code]
        other = cat.codes.get(entry.counterpart or "")
        if (
            entry.extent is not Extent.LIMITED
            or entry.bilateral.value != "inherent"
            or "unilateral" not in entry.label.lower()
            or other is None
            or other.extent is not Extent.COMPLETE
            or "bilateral" not in other.label.lower()
        ):
            continue
        yield _replace(
            "descriptor.both_sides", code, other.code,
            f"The question says both sides were studied; {code} is the one-side or limited "
            f"study. Both sides in full are reported once with {other.code} ({other.label}).",
            other,
        )


def _unilateral_context(ctx: Context) -> Iterator[Finding]:
    """A complete bilateral study where the question says one side was studied."""
    if not asks_one_side(ctx.context):
        return
    cat = ctx.catalog
    for code in ctx.active():
        entry = cat.codes[code]
        other = cat.codes.get(entry.counterpart or "")
        if (
            entry.extent is not Extent.COMPLETE
            or entry.bilateral.value != "inherent"
            or other is None
            or "unilateral" not in other.label.lower()
        ):
            continue
        yield _replace(
            "descriptor.one_side", code, other.code,
            f"The question says one side was studied; {code} is the complete bilateral study. "
            f"One side is reported with {other.code} ({other.label}).",
            entry,
        )


_OTHER_GUIDANCE = re.compile(
    r"\bfluoro\w*|\bct[- ]guid\w*|\bunder ct\b|\blandmarks?\b|\bpalpation\b|\bblind(?:ly)?\b"
)


def _other_guidance_context(ctx: Context) -> Iterator[Finding]:
    """An ultrasound-guided code where the question says the guidance was not ultrasound."""
    if not ctx.context or says_us_guidance(ctx.context):
        return
    if not (_OTHER_GUIDANCE.search(ctx.context) or _NO_GUIDANCE.search(ctx.context)):
        return
    cat = ctx.catalog
    unguided_of = {e.with_us_guidance: c for c, e in cat.codes.items() if e.with_us_guidance}
    for code in ctx.active():
        base = unguided_of.get(code)
        if base is None:
            continue
        yield _replace(
            "descriptor.not_ultrasound", code, base,
            f"{code} includes ultrasound guidance; the question says the procedure was done "
            f"without it (fluoroscopic, CT or no imaging guidance). Report {base} "
            f"({cat.codes[base].label}), plus the code of the guidance used, if any.",
            cat.codes[code],
        )


def fits_topic(catalog: Catalog, code: str, text: str) -> bool:
    """True unless ``text`` (a question) misses the topic words of the code's family or
    of the code itself.

    The code's own number in the text counts as its topic: a question about 93880 by number
    is about 93880.
    """
    rxs = compiled_for(catalog).topics.get(code, ())
    return code in text or all(rx.search(text) is not None for rx in rxs)


def _off_topic(ctx: Context) -> Iterator[Finding]:
    """A recommended code for a service the question never speaks of (76705 for an echo)."""
    if not ctx.context:
        return
    cat = ctx.catalog
    text = f"{ctx.history}\n{ctx.context}" if ctx.history else ctx.context
    for code in ctx.active():
        if fits_topic(cat, code, text):
            continue
        entry = cat.codes[code]
        family = cat.families.get(entry.family)
        what = family.title.lower() if family is not None else entry.family
        yield Finding(
            "descriptor.off_topic",
            Severity.WARNING,
            (code,),
            f"{code} ({entry.label}) is a {what} code, and the question names no such "
            "service. Not verified: confirm the service matches the code.",
            sources=entry.sources,
            confidence=entry.confidence.value,
            fix=Fix("Use the code for the service the question describes."),
        )


# Words that name one imaging modality (or a guidance code of it by number), and words that
# say imaging was used without naming which.
_MODALITY_SAID = {
    "ultrasound": re.compile(
        r"ultrasound|sonogra|\bu/?s\b|\bpocus\b|echo|\btee\b|doppler|duplex|76942|76937"
    ),
    "fluoroscopy": re.compile(r"fluoro|\bx-?ray|c-?arm|7700[123]"),
    "ct": re.compile(r"\bct\b|computed tomograph|77012"),
    "mr": re.compile(r"\bmri?\b|magnetic resonance|77021"),
}
_IMAGING_UNNAMED = re.compile(r"guid|imag|magnetic|scan|visuali[sz]|probe|real[- ]time|radiolog")


def _guidance_unsaid(ctx: Context) -> Iterator[Finding]:
    """An imaging guidance code for a question (and the one it follows up) that names no
    imaging at all ("Aspiration of a ganglion cyst, code?" is not answered with 76942), or
    names only other imaging ("CT guidance for a bone biopsy" is not answered with 77021)."""
    if not ctx.context:
        return
    text = f"{ctx.history}\n{ctx.context}" if ctx.history else ctx.context
    named = {m for m, rx in _MODALITY_SAID.items() if rx.search(text)}
    unsaid = not named and not _IMAGING_UNNAMED.search(text)
    cat = ctx.catalog
    for code in ctx.active():
        entry = cat.codes[code]
        if entry.kind is not Kind.GUIDANCE:
            continue
        if unsaid:
            why = "and the question names none"
        elif named and entry.modality is not None and entry.modality not in named:
            why = f"and the question names {' and '.join(sorted(named))} guidance only"
        else:
            continue
        yield Finding(
            "descriptor.guidance_unsaid",
            _severity(entry.confidence),
            (code,),
            f"{code} ({entry.label}) reports imaging guidance, {why}. "
            "A guidance code is added only for the imaging that guided the needle or catheter, "
            "when the note documents it.",
            sources=entry.sources,
            confidence=entry.confidence.value,
            fix=Fix(f"Remove {code}.", remove=(code,)),
            on_fail=OnFail.FIX,
        )


def _sites(ctx: Context) -> Iterator[Finding]:
    """A code for one body site recommended where the question names another site.

    A follow-up that names no site of the code's group ("what if it was done under
    fluoroscopy?") is read with the earlier question it builds on.
    """
    if not ctx.context:
        return
    cat = ctx.catalog
    sites = ctx.compiled.sites
    for code in ctx.active():
        own = sites.get(code)
        entry = cat.codes[code]
        if own is None or entry.site_group is None:
            continue
        siblings = [
            (other, rx)
            for other, rx in sites.items()
            if other != code
            and cat.codes[other].site_group == entry.site_group
            and cat.codes[other].active
        ]
        for text in (ctx.context, ctx.history):
            if not text or own.search(text):
                break
            found = next(
                ((other, hit) for other, rx in siblings if (hit := rx.search(text))), None
            )
            if found is None:
                continue  # this text names no site of the group: read the earlier question
            other, hit = found
            yield _replace(
                "descriptor.site", code, other,
                f"{code} is for {entry.sites[0]}-type cases; the question says "
                f"'{hit.group(0)}', which is reported with {other} "
                f"({cat.codes[other].label}).",
                cat.codes[other],
            )
            break
