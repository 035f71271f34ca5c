"""Fit: each drafted code against the question's encounter frame.

A code the question contradicts (it affirms a liver and the code is for a breast; it says
"transvaginal" and the code is transabdominal) is an error: replaced when one code fits in
its place, re-asked with the codes that fit when several do, removed when none does. A code
the question does not fully support (it never names the site, the age, the gestational age)
is not verified, with the codes that would fit named; silence never removes a code.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from guardrails.question.fit import Fitter, fitter_for
from guardrails.question.frame import Frame
from guardrails.question.misfit import GUIDANCE_OF, Misfit, included_modalities
from guardrails.registry import RuleId
from guardrails.report import Finding, Fix, OnFail, Severity
from guardrails.rules.base import Context
from knowledge.schema import Confidence

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

# Rule id of each kind of misfit (fit.<dimension>); silence is fit.unsupported.
UNSUPPORTED = RuleId.FIT_UNSUPPORTED
RULE_OF: dict[str, RuleId] = {
    "site": RuleId.FIT_SITE,
    "vessel": RuleId.FIT_VESSEL,
    "approach": RuleId.FIT_APPROACH,
    "action": RuleId.FIT_ACTION,
    "exam": RuleId.FIT_EXAM,
    "device": RuleId.FIT_DEVICE,
    "guidance": RuleId.FIT_GUIDANCE,
    "feature": RuleId.FIT_FEATURE,
    "service": RuleId.FIT_SERVICE,
    "age": RuleId.FIT_AGE,
    "weeks": RuleId.FIT_WEEKS,
    "count": RuleId.FIT_COUNT,
    "sides": RuleId.FIT_SIDES,
    "extent": RuleId.FIT_EXTENT,
    "residual": RuleId.FIT_RESIDUAL,
    "diagnostic_with_guidance": RuleId.FIT_DIAGNOSTIC_WITH_GUIDANCE,
    "guidance_included": RuleId.FIT_GUIDANCE_INCLUDED,
}


def _alternatives_text(codes: tuple[str, ...], catalog: Catalog) -> str:
    if not codes:
        return ""
    named = ", ".join(f"{c} ({catalog.codes[c].label})" for c in codes if c in catalog.codes)
    return f" Codes that fit the question: {named}."


def finding_for(
    fitter: Fitter, frame: Frame, code: str, drafted: Collection[str] = ()
) -> Finding | None:
    """The one finding of ``code`` against ``frame`` (``drafted``: the codes drafted with
    it): its first contradiction, else what the question leaves unsaid, else None."""
    key = (fitter, frame, code, frozenset(drafted))
    if key in _FINDINGS:
        return _FINDINGS[key]
    f = _finding_for(fitter, frame, code, drafted)
    if len(_FINDINGS) > 20_000:
        _FINDINGS.clear()
    _FINDINGS[key] = f
    return f


# Findings are immutable and depend only on the fitter's catalog, the frame, the code and
# the codes drafted with it: a draft checked again (each repair round) reuses them.
_FINDINGS: dict[tuple[Fitter, Frame, str, frozenset[str]], Finding | None] = {}


def _finding_for(
    fitter: Fitter, frame: Frame, code: str, drafted: Collection[str]
) -> Finding | None:
    found = fitter.assess(frame, code)
    if not found:
        return _unanchored_guidance(fitter, frame, code, drafted)
    first = found[0]
    if first.contradiction:
        return _contradiction(fitter, frame, first, drafted)
    return _unsupported(fitter, frame, code, found)


def _contradiction(
    fitter: Fitter, frame: Frame, m: Misfit, drafted: Collection[str]
) -> Finding:
    code = m.code
    alts = m.alternatives or fitter.alternatives(frame, code)
    alts = tuple(a for a in alts if a != code)
    # The codes the question does not contradict; the closest to what was drafted wins (a
    # complete OB code at the wrong week becomes the complete one of the right week, not a
    # limited one the question says no more about).
    # A fix changes what the question contradicts and keeps what the code does (a breast
    # biopsy code becomes the liver biopsy code, not an FNA code).
    acts = _actions(fitter, code)
    gaps = _gaps(fitter, frame, code)
    # ... and the question speaks of the kind of service it is for (no drainage code for a
    # duplex question whose drainage code the site rules out).
    fitting = tuple(a for a in alts if fitter.score(frame, a) >= 1
                    and _actions(fitter, a) == acts
                    and _gaps(fitter, frame, a) <= gaps
                    and _kind_spoken(fitter, frame, a)) or tuple(
        a for a in alts if fitter.score(frame, a) == 2)
    if m.dimension == "guidance_included" and alts:
        if any(a in drafted for a in alts) or len(alts) > 1:
            fix = Fix(f"Remove {code}.", remove=(code,), alternatives=alts)
        else:
            fix = Fix(f"Replace {code} with {alts[0]}.", remove=(code,), add=(alts[0],))
        on_fail = OnFail.FIX
    elif m.dimension == "diagnostic_with_guidance" or not alts:
        fix = Fix(f"Remove {code}.", remove=(code,))
        on_fail = OnFail.FIX
    elif _covered(fitter, frame, code, drafted, fitting,
                  best := _closest(fitter, frame, code, fitting, m.dimension)):
        # Another drafted code already reports the service and the question does not rule
        # it out: the wrong one goes, nothing is added beside it.
        fix = Fix(f"Remove {code}.", remove=(code,), alternatives=alts)
        on_fail = OnFail.FIX
    elif best is not None:
        # One code fits and keeps the most of what was drafted (93306 for a fetal heart
        # becomes 76825, the complete fetal echo, not its follow-up form).
        fix = Fix(f"Replace {code} with {best}.", remove=(code,), add=(best,),
                  alternatives=tuple(a for a in alts if a != best))
        on_fail = OnFail.FIX
    elif len(fitting) > 1:
        fix = Fix("Choose the code that fits the question.", alternatives=fitting)
        on_fail = OnFail.REASK
    else:
        # Ruled out, and no code takes its place without saying more than the question
        # does: removed, with the codes to consider named.
        fix = Fix(f"Remove {code}.", remove=(code,), alternatives=alts)
        on_fail = OnFail.FIX
    if fix.remove == (code,) and m.dimension not in _GUIDANCE_DIMENSIONS:
        fix = _with_carried_guidance(fitter, frame, code, fix, drafted)
    severity = Severity.WARNING if m.confidence is Confidence.LOW else Severity.ERROR
    return Finding(
        RULE_OF[m.dimension],
        severity,
        (code,),
        m.message + _alternatives_text(alts, fitter.catalog),
        sources=m.sources,
        confidence=m.confidence.value,
        fix=fix,
        on_fail=on_fail,
    )


_GUIDANCE_DIMENSIONS = frozenset({"guidance", "guidance_included", "diagnostic_with_guidance"})


def _with_carried_guidance(fitter: Fitter, frame: Frame, code: str, fix: Fix,
                           drafted: Collection[str]) -> Fix:
    """A procedure code that includes its imaging guidance, replaced for another reason (an
    FNA code for a core biopsy), leaves the guidance the question affirms unreported when
    the code in its place does not include it: the one guidance code of that modality that
    fits is added (CT-guided bone biopsy: 77012 beside the bone biopsy code)."""
    cat = fitter.catalog
    d = cat.codes[code].describes
    if d is None or d.service != "procedure":
        return fix
    modalities = [g for g in d.guidance if g in GUIDANCE_OF
                  and fitter.has(frame, GUIDANCE_OF[g], strong=True) is not None]
    if len(modalities) != 1:
        return fix
    modality = modalities[0]
    for added in fix.add:
        ad = cat.codes[added].describes
        if ad is None or "none" not in ad.guidance:
            return fix  # the code in its place includes guidance, or may
    guides = [c for c in fitter.guidance_codes(modality) if fitter.score(frame, c) >= 1
              and any(fitter.vocab.related(a, b) for a in d.actions
                      for b in cat.codes[c].describes.actions)]  # type: ignore[union-attr]
    if len(guides) != 1 or guides[0] in drafted or guides[0] in fix.add:
        return fix
    guide = guides[0]
    return Fix(f"{fix.description} Report the {modality.upper() if modality == 'ct' else modality}"
               f" guidance as {guide}.", remove=fix.remove, add=(*fix.add, guide),
               alternatives=tuple(a for a in fix.alternatives if a != guide))


def _kind_spoken(fitter: Fitter, frame: Frame, code: str) -> bool:
    """True when the question speaks of the kind of service ``code`` is for: an action
    (device) related to one it is for ('a biopsy' for an FNA code), or, when it names no
    service at all, a site or feature of the code ('trigger points in four muscles',
    'tunneled catheter in a 72 yo man'). A duplex question speaks of no drainage code."""
    d = fitter.catalog.codes[code].describes
    if d is None or not (d.actions or d.devices):
        return True
    v = fitter.vocab
    said = [f for f in frame.facts if f.affirmed]
    if any((f.kind == "action" and any(v.related(f.concept, w) for w in d.actions))
           or (f.kind == "device" and any(v.related(f.concept, w) for w in d.devices))
           for f in said):
        return True
    if any(f.kind in ("action", "device", "exam") for f in said):
        return False
    return any((f.kind == "site" and any(v.is_a(f.concept, s) for s in d.sites))
               or (f.kind == "feature" and d.features.get(f.concept) == "with")
               for f in said)


def _gaps(fitter: Fitter, frame: Frame, code: str) -> frozenset[tuple[str, str]]:
    """What the question leaves unsaid about ``code``: a replacement adds no new gap (a
    screening question's code is not replaced by the follow-up code it never asks for)."""
    return frozenset((m.dimension, m.need) for m in fitter.assess(frame, code)
                     if not m.contradiction)


def _actions(fitter: Fitter, code: str) -> frozenset[str]:
    d = fitter.catalog.codes[code].describes
    return frozenset(d.actions) if d is not None else frozenset()


def _covered(fitter: Fitter, frame: Frame, code: str, drafted: Collection[str],
             fitting: tuple[str, ...], best: str | None) -> bool:
    """True when another drafted code takes the ruled-out code's place already: the one code
    that would replace it, one of several that fit (no single one does), or a primary code of
    the same family and kind of service that the question does not rule out (add-ons stack:
    a second vessel's code is added beside the first). A drafted code the question supports
    less than the replacement does not cover it: a replacement the question fully supports
    (93307 for a complete echo without Doppler) is not left out for a sibling whose own
    facts the question never states (a TEE code, when no approach is said)."""
    if best is not None and best in drafted:
        return True
    if best is None and any(a in drafted for a in fitting):
        return True
    e = fitter.catalog.codes[code]
    if e.add_on or e.describes is None:
        return False
    needed = fitter.score(frame, best) if best is not None else 1
    for c in drafted:
        o = fitter.catalog.get(c)
        if (c != code and o is not None and o.describes is not None and not o.add_on
                and o.family == e.family and o.kind is e.kind
                and o.describes.service == e.describes.service
                and fitter.score(frame, c) >= max(needed, 1)):
            return True
    return False


def _closest(fitter: Fitter, frame: Frame, code: str, fitting: tuple[str, ...],
             dimension: str = "") -> str | None:
    """The one fitting code closest to ``code``, or None when none or a tie. A code described
    by what the question says in the contradicted dimension comes first (a transvaginal
    question: the transvaginal code, not one for any approach)."""
    if not fitting:
        return None
    scored = sorted((((fitter.speaks_to(frame, a, dimension), fitter.similarity(code, a),
                       fitter.score(frame, a)), a) for a in fitting), reverse=True)
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        return None
    return scored[0][1]


def _unanchored_guidance(fitter: Fitter, frame: Frame, code: str,
                         drafted: Collection[str]) -> Finding | None:
    """A guidance code drafted with no procedure code, for a question whose procedure the
    reading cannot pin to one code, when every code the question fits best includes that
    guidance itself (0216T, 20611, 10005, 49083 ...): the guidance code is not verified,
    and those codes are named. A procedure code drafted beside it is judged with it by the
    pair rules instead."""
    cat = fitter.catalog
    e = cat.codes[code]
    d = e.describes
    if d is None or d.service != "guidance" or e.add_on or code in frame.codes:
        return None
    modality = d.guidance[0] if d.guidance else e.modality
    if modality is None or modality not in GUIDANCE_OF:
        return None
    for c in drafted:
        o = cat.get(c)
        if c != code and o is not None and o.describes is not None and (
                o.describes.service == "procedure"):
            return None
    # The procedure codes the question could be about: of an action it affirms, not
    # contradicted; those it supports best decide.
    acts = [f.concept for f in frame.facts if f.affirmed and f.kind == "action"]
    scored = [(fitter.score(frame, c), c) for c, o in cat.codes.items()
              if o.active and not o.add_on and o.describes is not None
              and o.describes.service == "procedure"
              and any(fitter.vocab.related(a, b) for a in acts for b in o.describes.actions)]
    best = max((sc for sc, _ in scored), default=0)
    top = [c for sc, c in scored if sc == best and sc >= 1]
    if not top or any(modality not in included_modalities(cat.codes[c], cat) for c in top):
        # no code of the catalog is for the question's procedure, or one that may be
        # reports its guidance separately
        return None
    including = tuple(top[:3])
    return Finding(
        UNSUPPORTED,
        Severity.WARNING,
        (code,),
        f"{code} ({e.label}) is not verified: it is reported beside the procedure's own "
        "code, and the question's procedure could not be matched to a code that leaves the "
        f"{modality} guidance to be reported separately."
        + _alternatives_text(including, cat),
        sources=e.sources,
        confidence=e.confidence.value,
        fix=Fix("Confirm from the note which procedure was done.", alternatives=including),
        on_fail=OnFail.WARN,
    )


def _unsupported(fitter: Fitter, frame: Frame, code: str, found: tuple[Misfit, ...]) -> Finding:
    alts = tuple(a for a in fitter.alternatives(frame, code) if fitter.score(frame, a) == 2)
    entry = fitter.catalog.codes[code]
    if not alts and not entry.add_on:
        # none of its kin fits: the codes the question fully supports are named instead (a
        # TEE code drafted for a stress echo question: 93350)
        alts = tuple(c for c in fitter.supported(frame) if c != code)[:3]
    gaps = "; ".join(dict.fromkeys(m.message for m in found))
    # Each gap cites its own rule: the code's description for most, NCCI for a study the
    # question names only as guidance.
    sources = tuple(dict.fromkeys(s for m in found for s in m.sources)) or entry.sources
    return Finding(
        UNSUPPORTED,
        Severity.WARNING,
        (code,),
        f"{code} ({entry.label}) is not verified: {gaps}."
        + _alternatives_text(alts, fitter.catalog),
        sources=sources,
        confidence=entry.confidence.value,
        fix=Fix("Confirm from the note what was done.", alternatives=alts),
        on_fail=OnFail.WARN,
    )


def check(ctx: Context) -> Iterator[Finding]:
    """One finding per drafted code that the question contradicts or leaves unsaid."""
    frame = ctx.frame
    if frame is None or frame.empty:
        return
    fitter = fitter_for(ctx.catalog)
    for code in ctx.active():
        f = finding_for(fitter, frame, code, ctx.codes)
        if f is not None:
            yield f
