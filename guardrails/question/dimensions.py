"""The dimensions of fit, one function each: the frame against one part of a code's
``describes`` block (see :mod:`guardrails.question.fit`). Each yields the code's misfits in
that dimension: contradictions (the question affirms the opposite) and silences."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from guardrails.question.elements import all_elements, most_elements, omitted, one_element
from guardrails.question.frame import Fact, Frame, Status
from guardrails.question.misfit import (
    _BAND,
    _VESSEL_WORDS,
    GUIDANCE_OF,
    NCCI_DIAGNOSTIC_WITH_GUIDANCE,
    Misfit,
    _range,
    _words,
)
from guardrails.question.numbers import thing_of
from knowledge.schema import AgeBand, CodeEntry, Confidence, Describes, Extent, Kind

if TYPE_CHECKING:
    from guardrails.question.fit import Fitter
    from knowledge.catalog import Catalog


def sites(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Sites."""
    v = fx.vocab
    code = e.code
    if d.sites and "any" not in d.sites:
        sites = fx._sites(frame, d.vessel is not None)
        ok = [f for f in sites if any(v.related(f.concept, s) for s in d.sites)
              and not any(v.is_a(f.concept, x) for x in d.exclude_sites)]
        own = [f for f in ok if any(v.is_a(f.concept, s) for s in d.sites)]
        other = [f for f in sites if f not in ok]
        heads = [f for f in frame.facts if f.affirmed and f.head and not f.inferred
                 and d.service == "diagnostic"
                 and f.concept not in _VESSEL_WORDS and f.concept != "soft_tissue"]
        # a site the code's data excludes, and that is not among its own kinds of site (a
        # ganglion cyst is not a joint, whatever joint it sits by): the question's service
        # is not this code's, whatever else it names
        barred = [f for f in sites if any(v.is_a(f.concept, x) for x in d.exclude_sites)
                  and not any(v.related(f.concept, s) for s in d.sites)]
        if barred and not named:
            yield fx._misfit(
                e, "site", True,
                f"{code} is not for {_words(d.exclude_sites)}; the question is about "
                f"'{barred[0].text}'.", barred[0].text)
        elif heads and not named and not any(
            v.related(h.concept, s) for h in heads for s in d.sites
        ):
            # the site the exam or procedure is said of ('renal ultrasound') is not one
            # the code is for, whatever else the question names
            yield fx._misfit(
                e, "site", True,
                f"{code} is for {_words(d.sites)}; the question's service is of "
                f"'{heads[0].text}'.", heads[0].text)
        elif (sites and not ok) or (other and not own):
            said = (other or sites)[0]
            yield fx._misfit(
                e, "site", True,
                f"{code} is for {_words(d.sites)}; the question is about "
                f"'{said.text}'.", said.text)
        elif not named and not any(
            any(v.is_a(f.concept, s) for s in d.sites) for f in ok
        ):
            yield fx._misfit(
                e, "site", False,
                f"the question does not name the site {code} is for ({_words(d.sites)})")
    elif d.exclude_sites:
        sites = fx._sites(frame)
        if sites and all(any(v.is_a(f.concept, x) for x in d.exclude_sites) for f in sites):
            yield fx._misfit(
                e, "site", True,
                f"{code} is not for {_words(d.exclude_sites)}; the question is about "
                f"'{sites[0].text}'.", sites[0].text)

def vessel(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Arteries or veins."""
    code = e.code
    if d.vessel is not None:
        other = "vein" if d.vessel == "artery" else "artery"
        mine = fx.has(frame, d.vessel)
        theirs = fx.has(frame, other, strong=True)
        if theirs is not None and mine is None:
            yield fx._misfit(e, "vessel", True,
                               f"{code} is a study of the {d.vessel}s; the question says "
                               f"'{theirs.text}'.", theirs.text)
        elif mine is None and not named:
            yield fx._misfit(e, "vessel", False,
                               f"{code} is a study of the {d.vessel}s, and the question "
                               "does not say which vessels")

def approach(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Approach: how the probe reaches the site."""
    v = fx.vocab
    code = e.code
    if d.approach:
        # the approaches said, and those an abbreviation implies ('TVUS': transvaginal)
        said_app = [f for f in frame.facts if f.affirmed and f.kind == "approach"]
        if said_app and not any(v.related(f.concept, a) for f in said_app
                                for a in d.approach) and not _study_without_approach(
                                    frame, said_app):
            yield fx._misfit(
                e, "approach", True,
                f"{code} is a {_words(d.approach)} study; the question says "
                f"'{said_app[0].text}'.", said_app[0].text)


_BY = re.compile(r"\b(?:by|via|through)\b", re.IGNORECASE)  # a study, then how it was done
_APPROACH_REACH = 25  # characters: 'transvaginal pelvic ultrasound' ties its approach to it


def _study_without_approach(frame: Frame, approaches: list[Fact]) -> bool:
    """True when the question names a study no approach word is said of, besides the one
    it is said of ('complete pelvic ultrasound and transvaginal ultrasound': two studies,
    the first by the usual approach): the approach said is then not this code's study's."""
    def near(first: tuple[int, int], then: tuple[int, int]) -> bool:
        return (0 <= then[0] - first[1] <= _APPROACH_REACH
                and not any(w in frame.text[first[1]:then[0]] for w in (",", ";", " and ")))

    def tied(f: Fact) -> bool:
        # 'transvaginal pelvic ultrasound', 'volume study by transrectal ultrasound'
        return any(a.span == f.span or near(a.span, f.span) or (
            near(f.span, a.span) and _BY.search(frame.text[f.span[1]:a.span[0]]) is not None)
            for a in approaches)
    # a generic word ('read the study', 'the exam') refers back to the study named; it
    # names no second one
    return any(f.affirmed and f.concept != "diagnostic_exam"
               and ((f.kind in ("exam", "modality") and not f.inferred)
                    or _STUDY_WORD.search(f.text) is not None)
               and not tied(f) for f in frame.facts)


# a word naming a study inside a term of another kind ('OB ultrasound': a pregnancy)
_STUDY_WORD = re.compile(r"\b(?:ultrasound|sonogra\w*|us|scan|echo\w*|duplex)\b", re.IGNORECASE)

def kinds(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Actions, exams, devices: any-of, with the hierarchy."""
    v = fx.vocab
    code = e.code
    for dim, kind, wanted, needed in (
        ("action", "action", d.actions, True),
        ("exam", "exam", d.exams, False),
        ("device", "device", d.devices, True),
    ):
        if not wanted:
            continue
        facts = [f for f in frame.facts if f.affirmed and f.kind == kind]
        if (kind == "exam" and not facts and not named
                and d.service in ("diagnostic", "screening") and _procedure_only(frame)):
            # a question about a procedure that never speaks of a study ('trigger point
            # injections, 2 muscles' and a diagnostic extremity code): not verified
            yield fx._misfit(e, dim, False, "the question does not say a study was done")
            continue
        if kind == "exam" and "sonography" not in wanted:
            # Plain 'ultrasound' fits any ultrasound study ('DVT ultrasound' is a duplex).
            facts = [f for f in facts if f.concept != "sonography"]
        # A general word ('study') says no more than a narrower one beside it ('study
        # ... after treadmill exercise': the physiologic study).
        facts = [f for f in facts if not any(
            g.concept != f.concept and v.is_a(g.concept, f.concept) for g in facts)]
        # The words said, not the ancestors they imply: 'radiofrequency ablation' is not
        # a laser ablation though both are ablations.
        facts = [f for f in facts if not f.inferred] or facts
        ok = [f for f in facts if any(v.related(f.concept, w) for w in wanted)]
        # a loose word ('drained') may describe the code's action too: silence, not contrary
        loose = [f for f in facts if any(v.is_a(w, m) for m in v.may_be.get(f.concept, ())
                                         for w in wanted)]
        if facts and not ok and not loose:
            strong = [f for f in facts if not f.inferred] or facts
            yield fx._misfit(
                e, dim, True,
                f"{code} is for {_words(wanted)}; the question describes "
                f"'{strong[0].text}'.", strong[0].text)
        elif needed and not ok and (no := next((
            f for f in frame.facts if f.status.value == "negated" and f.kind == kind
            and not f.inferred and all(v.is_a(w, f.concept) for w in wanted)
            and fx.denies(frame, f.concept)), None)) is not None:
            # 'no procedure done': every action the code is for is denied
            yield fx._misfit(
                e, dim, True,
                f"{code} is for {_words(wanted)}; the question says '{no.text}' was not "
                "done.", no.text)
        elif needed and not named and not any(
            any(v.is_a(f.concept, w) for w in wanted) for f in ok
        ):
            yield fx._misfit(
                e, dim, False, f"the question does not say {_words(wanted)} was done")

def _procedure_only(frame: Frame) -> bool:
    """The question affirms a procedure and no study, modality or study word."""
    affirmed = [f for f in frame.facts if f.affirmed]
    return (any(f.kind == "action" and not f.inferred for f in affirmed)
            and not any(f.kind in ("exam", "modality") for f in affirmed)
            and not any(_STUDY_WORD.search(f.text) for f in affirmed))


def features_of(catalog: Catalog, e: CodeEntry) -> dict[str, str]:
    """The code's features, with the saved image when its documentation needs a permanent
    image (documentation.yaml): 'no images were saved' then rules the code out."""
    out: dict[str, str] = dict(e.describes.features) if e.describes else {}
    if "image_saved" not in out and any(
            el.id == "permanent_image" for key in e.documentation
            if (es := catalog.element_sets.get(key)) is not None for el in es.elements):
        out["image_saved"] = "with"
    return out


def features(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Features present or absent."""
    code = e.code
    for feature, presence in features_of(fx.catalog, e).items():
        if presence == "with":
            denied = fx.denies(frame, feature)
            if denied is not None:
                yield fx._misfit(
                    e, "feature", True,
                    f"{code} includes {feature.replace('_', ' ')}; the question says "
                    f"'{denied.text}' was not done.", denied.text)
        else:
            present = fx.has(frame, feature, strong=True)
            if present is not None:
                yield fx._misfit(
                    e, "feature", True,
                    f"{code} is without {feature.replace('_', ' ')}; the question says "
                    f"'{present.text}'.", present.text)
    for concept in d.requires_absent:
        if fx.denies(frame, concept) is None and not named:
            yield fx._misfit(
                e, "feature", False,
                f"{code} is the code without {concept.replace('_', ' ')}, and the question "
                "does not say it was left out", need=concept)

def concepts(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Concepts the code rules out, or needs said."""
    code = e.code
    for concept in d.contradicted_by:
        # what the words imply counts ('transplanted kidney': a transplant), guidance
        # guessed from a modality beside a procedure does not
        hit = fx.has(frame, concept, strong=True) or (
            fx.has(frame, concept) if fx.vocab.kinds.get(concept) != "guidance"
            else None)
        if hit is not None:
            # a contradicting service, with the code's own action said apart as well ('knee
            # injection and a genicular block'): two services may have been done, so the
            # code is only not verified (a qualifier of the action itself still rules it out)
            apart = _own_action_apart(fx, frame, d, hit) if hit.kind == "action" else None
            # a site said apart from the service ('venous duplex of the left arm; she has a
            # right arm fistula') is not what was studied: only not verified
            aside = hit.kind == "site" and hit not in fx._sites(frame)
            yield fx._misfit(
                e, "service", apart is None and not aside,
                f"{code} ({e.label}) does not fit '{hit.text}' "
                f"({concept.replace('_', ' ')}).", hit.text)
    for concept in d.requires:
        if fx.has(frame, concept) is None and not named:
            # what the code needs, denied in so many words ('not pregnant'), rules it out
            denied = fx.denies(frame, concept)
            if denied is not None:
                yield fx._misfit(
                    e, "service", True,
                    f"{code} is for {concept.replace('_', ' ')}; the question says "
                    f"'{denied.text}'.", denied.text)
                continue
            yield fx._misfit(
                e, "service", False,
                f"{code} is for {concept.replace('_', ' ')}, which the question does not "
                "say", need=concept)

def _own_action_apart(fx: Fitter, frame: Frame, d: Describes, hit: Fact) -> Fact | None:
    """An affirmed action the code is for, said in words of its own (not the contradicting
    term, nor implied by it)."""
    return next((f for f in frame.facts if f.affirmed and f.kind == "action"
                 and not f.inferred and f.span != hit.span and f.concept in d.actions), None)


def age(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Patient age band."""
    code = e.code
    if e.age_band is not None:
        if frame.age_band is not None and frame.age_band is not e.age_band:
            yield fx._misfit(
                e, "age", True,
                f"{code} is for a patient {_BAND[e.age_band.value]}; the question's patient "
                f"is {_BAND[frame.age_band.value]}.", _BAND[frame.age_band.value])
        elif frame.age_band is None and e.age_band is not AgeBand.FIVE_AND_OLDER:
            # An age left unsaid is taken as the usual patient (5 or older); the code for
            # a young child needs the question to say so.
            yield fx._misfit(
                e, "age", False,
                f"{code} is for a patient {_BAND[e.age_band.value]}, and the question does "
                "not give the age")

def age_range(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
              ) -> Iterable[Misfit]:
    """Patient age in years against a code's range, unless the question affirms a fact
    that makes the code right at any age (a congenital anomaly for 33018)."""
    if d.age_min is None and d.age_below is None:
        return
    if any(frame.affirms(c) for c in d.any_age_with):
        return
    limit = " and ".join(x for x in (
        f"{d.age_min:g} or older" if d.age_min is not None else "",
        f"younger than {d.age_below:g}" if d.age_below is not None else "") if x)
    ages = set(frame.age_years)
    if len(ages) == 1:
        (a,) = ages
        if (d.age_min is not None and a < d.age_min) or (d.age_below is not None
                                                          and a >= d.age_below):
            yield fx._misfit(e, "age", True, f"{e.code} is for a patient {limit}; the "
                             f"question's patient is {a:g}.", f"{a:g} years")
        return
    # Without a number, 'infant' (through toddler, under 4) or 'adult' (18 or older) is
    # still outside some ranges.
    young, grown = frame.affirms("infant"), frame.affirms("adult")
    if not ages and young != grown and (
            (young and d.age_min is not None and d.age_min >= 4)
            or (grown and d.age_below is not None and d.age_below <= 18)):
        said = "an infant or toddler" if young else "an adult"
        yield fx._misfit(e, "age", True, f"{e.code} is for a patient {limit}; the question's "
                         f"patient is {said}.", said)
    elif not ages and not young and d.age_below is not None:
        # an age left unsaid is taken as the usual (older) patient: the code for a young
        # child needs the question to say so
        yield fx._misfit(e, "age", False, f"{e.code} is for a patient {limit}, and the "
                         "question does not give the age")


def weeks(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Gestational age."""
    code = e.code
    if d.weeks_below is not None or d.weeks_min is not None:
        w = frame.weeks
        if w is not None and d.weeks_below is not None and w >= d.weeks_below:
            yield fx._misfit(e, "weeks", True,
                               f"{code} is before {d.weeks_below:g} weeks; the question "
                               f"says {w:g} weeks.", f"{w:g} weeks")
        elif w is not None and d.weeks_min is not None and w < d.weeks_min:
            yield fx._misfit(e, "weeks", True,
                               f"{code} is for {d.weeks_min:g} weeks or later; the question "
                               f"says {w:g} weeks.", f"{w:g} weeks")
        elif w is None and not named:
            limit = (f"before {d.weeks_below:g} weeks" if d.weeks_below is not None
                     else f"{d.weeks_min:g} weeks or later")
            yield fx._misfit(e, "weeks", False,
                               f"{code} is {limit}, and the question does not give the "
                               "gestational age")

def counts(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Counts."""
    code = e.code
    if d.count is not None:
        n = frame.count_of(d.count.thing)
        extra = fx.has(frame, "each_additional")
        thing = d.count.thing
        fewer = frame.count_is_minimum(thing)  # 'several': two or more, not fewer than 3
        if n is not None and ((d.count.min is not None and n < d.count.min and not extra
                               and not fewer)
                              or (d.count.max is not None and n > d.count.max)):
            yield fx._misfit(e, "count", True,
                               f"{code} is for {_range(d.count.min, d.count.max)} "
                               f"{thing}(s); the question says {'at least ' if fewer else ''}"
                               f"{n}.", str(n))
        elif n is None and not extra and not named and (
            (d.count.min or 0) >= 2
        ) and not fx._several_named(frame, d):
            yield fx._misfit(e, "count", False,
                               f"{code} is for {_range(d.count.min, d.count.max)} "
                               f"{thing}(s), and the question does not say how many")
        elif n is None and d.count.max == 0 and (lesion := next((
                f for f in frame.facts if f.affirmed and not f.inferred
                and thing_of(f.text) == thing), None)
                ) is not None and not fx.has(frame, "parenchyma"):
            # the study of an organ's tissue, not of a lesion (76981), where the question
            # names a lesion and not the tissue: not verified
            yield fx._misfit(e, "count", False,
                             f"{code} is the study of an organ's tissue, not of a "
                             f"{thing}; the question names '{lesion.text}'")
        elif n is None and not extra and thing == "vessel" and d.count.max is not None and len(
                named_ := sorted(fx.vessels_named(frame, d))) > d.count.max:
            # a count said by naming the vessels: not verified rather than removed (one vein
            # may have two names)
            yield fx._misfit(e, "count", False,
                             f"{code} is for {_range(d.count.min, d.count.max)} {thing}(s); "
                             f"the question names {len(named_)}: "
                             f"{', '.join(c.replace('_', ' ') for c in named_)}.")

def sides(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Sides."""
    code = e.code
    if e.sides == "both" and frame.sides == "one":
        yield fx._misfit(e, "sides", True,
                           f"{code} is the study of both sides; the question says one side.",
                           "one side")
    elif e.sides == "one" and frame.sides == "both" and not fx._limited(frame):
        yield fx._misfit(e, "sides", True,
                           f"{code} is one side (or a limited study); the question says "
                           "both sides in full.", "both sides")
    elif e.sides is not None and frame.sides is None and not named and not (
        e.sides == "one" and fx._limited(frame)
    ):
        yield fx._misfit(e, "sides", False,
                           f"{code} is for {'both sides' if e.sides == 'both' else 'one side'}"
                           ", and the question does not say which")

def extent(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
        ) -> Iterable[Misfit]:
    """Extent."""
    code = e.code
    if e.extent in (Extent.COMPLETE, Extent.LIMITED):
        limited = fx.has(frame, "limited", strong=True)
        complete = fx.has(frame, "complete", strong=True)
        if e.extent is Extent.COMPLETE and limited is not None and complete is None:
            yield fx._misfit(e, "extent", True,
                               f"{code} is the complete exam; the question says "
                               f"'{limited.text}'.", limited.text)
        elif (e.extent is Extent.LIMITED and complete is not None and limited is None
              and not (e.sides == "one" and frame.sides == "one")):
            # a code of one side or a limited study (its counterpart is the study of both
            # sides) fits a complete study of one side
            yield fx._misfit(e, "extent", True,
                               f"{code} is the limited exam; the question says "
                               f"'{complete.text}'.", complete.text)
        elif (e.extent is Extent.LIMITED and limited is None and not named
              and (every := all_elements(fx.catalog, frame, e)) is not None):
            # the question names every element of the complete exam: it was complete
            yield replace(fx._misfit(
                e, "extent", True,
                f"{code} is the limited exam; the question names the elements that make the "
                f"complete exam {e.counterpart} "
                f"({', '.join(el.label.lower() for el in every.elements)}).",
                every.elements[0].label), sources=every.sources)
        elif (e.extent is Extent.COMPLETE and complete is None and not named
              and (left := omitted(fx.catalog, frame, e)) is not None):
            # an element of the complete exam not examined ('kidneys were not evaluated')
            yield fx._misfit(e, "extent", True,
                             f"{code} is the complete exam, which includes the "
                             f"{left.label.lower()}; the question says it was not examined.",
                             left.label)
        elif (e.extent is Extent.COMPLETE and limited is None and complete is None
              and not named and (implied := fx.has(frame, "limited")) is not None):
            # a word that implies a limited exam ('RUQ': a quadrant, CPT's limited abdomen)
            # with no extent said: not verified, never removed
            yield fx._misfit(e, "extent", False,
                             f"{code} is the complete exam; '{implied.text}' names a limited "
                             "one, and the question does not say complete", need="complete")
        elif (e.extent is Extent.LIMITED and limited is None and complete is None
              and not named and (most := most_elements(fx.catalog, frame, e)) is not None
              and omitted(fx.catalog, frame, e) is None):
            # most of the complete exam's organs named, and no extent said: not shown
            # limited (silence: not verified, never removed)
            yield fx._misfit(e, "extent", False,
                             f"{code} is the limited exam, and the question names most "
                             f"elements of the complete exam {e.counterpart} "
                             f"({', '.join(most)}) without saying limited", need="limited")
        elif (e.extent is Extent.COMPLETE and limited is None and complete is None
              and not named and (one := one_element(fx.catalog, frame, e)) is not None):
            # An exam of one organ of a complete exam's set is a limited exam unless the
            # question says complete (silence: not verified, never removed).
            yield fx._misfit(e, "extent", False,
                               f"{code} is the complete exam, and the question names only "
                               f"the {one}", need="complete")


def exam_said(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes, named: bool
              ) -> Iterable[Misfit]:
    """A diagnostic exam where the question speaks of its modality only as the guidance of
    a procedure ('US-guided ...') and names no exam: the question does not say a diagnostic
    study was done (a guided procedure's imaging is its guidance, NCCI Ch. IX). Silence: not
    verified, never removed."""
    if named or e.kind is not Kind.DIAGNOSTIC or d.service not in (None, "diagnostic"):
        return
    # the study itself denied in so many words beside another study that was done ('liver
    # elastography; no separate diagnostic ultrasound was reported'), and not said again:
    # not verified
    denied = next((f for f in frame.facts if f.status is Status.NEGATED and not f.inferred
                   and f.kind == "exam" and f.concept in d.exams), None)
    # (another study with codes of its own: an ABI is a part of the physiologic study)
    instead = denied is not None and any(
        f.affirmed and not f.inferred and f.kind == "exam" and f.concept not in d.exams
        and f.concept in fx._described for f in frame.facts)
    if instead and denied is not None and not any(f.affirmed and f.concept == denied.concept
                                                  for f in frame.facts):
        yield fx._misfit(e, "exam", False, f"{e.code} is a diagnostic study; the question "
                         f"says '{denied.text}' was not done", need="exam")
        return
    modality = e.modality or "ultrasound"  # a study names its modality only when not US
    own = GUIDANCE_OF.get(modality)
    guides = [f for f in frame.facts if f.affirmed and f.kind == "guidance"
              and f.concept == own and not f.inferred]
    if not guides or any(f.affirmed and f.kind == "exam" for f in frame.facts):
        return
    spans = {f.span for f in guides}
    if any(f.affirmed and f.kind == "modality" and f.concept == modality
           and f.span not in spans for f in frame.facts):
        return  # the modality is said apart from the guidance ('I also scanned ...')
    # The reason is NCCI's, not the code's description: cite it.
    yield replace(fx._misfit(
        e, "exam", False,
        f"the question names {modality} only as the guidance of a procedure and does not "
        f"say a diagnostic study was done", need="exam"),
        sources=NCCI_DIAGNOSTIC_WITH_GUIDANCE)


# The dimensions in the order they are judged (guidance comes after the first four).
BEFORE_GUIDANCE: tuple[Callable[..., Iterable[Misfit]], ...] = (sites, vessel, approach, kinds)
AFTER_GUIDANCE: tuple[Callable[..., Iterable[Misfit]], ...] = (
    features, concepts, age, age_range, weeks, counts, sides, extent, exam_said,
)


def diagnostic_with_guidance(fx: Fitter, frame: Frame, e: CodeEntry, d: Describes
                             ) -> Iterable[Misfit]:
    """A diagnostic exam beside an ultrasound-guided procedure (NCCI Ch. IX)."""
    guided = fx.has(frame, "guidance_ultrasound", strong=True)
    # the procedure: an action, or a device placed ('tunneled peritoneal catheter,
    # US + fluoro' names the placement by its device)
    action = next((f for f in frame.facts if f.affirmed and f.kind in ("action", "device")
                   and not f.inferred and f.concept not in ("surgery",)), None)
    if action is None or fx.has(frame, "separately_indicated"):
        return
    if guided is None:
        # ultrasound said beside the procedure ('closure of the saphenous vein with
        # ultrasound'): most likely its guidance, so a study of it is not verified
        # (unless the question names this code's own kind of study: 'contrast ultrasound
        # of two liver lesions' with its microbubble injections)
        own = any(f.affirmed and f.kind == "exam" and not f.inferred
                  and f.concept != "sonography"
                  and any(fx.vocab.related(f.concept, x) for x in d.exams)
                  for f in frame.facts)
        # ... or its guidance tried and not used ('ultrasound was tried first but could not
        # see the lesion, so no ultrasound guidance was used'), where no study of a site is
        # said ('chest ultrasound')
        tried = fx.denies(frame, "guidance_ultrasound") is not None and not any(
            f.affirmed and f.kind == "site" and f.head for f in frame.facts)
        if (fx.has(frame, "guidance_ultrasound") is not None or tried) and not own:
            yield fx._misfit(e, "diagnostic_with_guidance", False,
                             "the ultrasound the question names may be the procedure's "
                             "guidance, not a separate study")
        return
    yield Misfit(
        e.code, "diagnostic_with_guidance", True,
        "The question describes ultrasound used to guide a procedure. A diagnostic exam "
        "of the same region is not reported beside it unless it was separately indicated "
        "and found a new abnormality (then with 59/XU and its own report).",
        guided.text, sources=NCCI_DIAGNOSTIC_WITH_GUIDANCE, confidence=Confidence.HIGH,
    )
