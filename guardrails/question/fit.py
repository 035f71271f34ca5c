"""Does a code fit the question? The frame compared with what the code describes.

Each code's ``describes`` block (knowledge/data/codes.yaml) says in data what it is for:
sites, actions, exams, devices, approach, the guidance it includes, features present or
absent, patient facts, gestational age, counts, sides. :func:`assess` compares the frame of a
question with that block, one dimension at a time:

- a **contradiction** is a fact the question affirms that the code cannot describe (a liver
  is not a breast; "transvaginal" is not the transabdominal code; "no Doppler" is not the
  Doppler add-on). Only a contradiction may remove or replace a code.
- **unsupported** means the question does not say what the code needs (no site the code is
  for, no age where codes differ by age, "without Doppler" never said). The code is then
  "not verified", with the codes that would fit named; it is never removed for silence.

Facts that are negated, historical, planned or about someone else never count as affirmed.
Alternatives are computed from the catalog, not listed by hand: codes of the same kind of
service that the frame does not contradict, the best supported first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from guardrails.question.dimensions import (
    AFTER_GUIDANCE,
    BEFORE_GUIDANCE,
    diagnostic_with_guidance,
)
from guardrails.question.frame import Fact, Frame, adjacent
from guardrails.question.misfit import (
    _VESSEL_WORDS,
    GUIDANCE_OF,
    Misfit,
    included_modalities,
    modalities_of,
)
from guardrails.question.specific import most_specific
from guardrails.question.vocab import Vocabulary, vocabulary_of
from knowledge.schema import CodeEntry, Confidence, Describes, Kind, PairRelation

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

# The guidance concept that names each modality, and back.
MODALITY_OF = {v: k for k, v in GUIDANCE_OF.items()}
_OTHER_MODALITIES = ("fluoroscopy", "ct", "mr")
_OTHER_STUDIES = (*_OTHER_MODALITIES, "mammography")
_WORDS = {
    "guidance_ultrasound": "ultrasound guidance",
    "guidance_fluoroscopy": "fluoroscopic guidance",
    "guidance_ct": "CT guidance",
    "guidance_mr": "MR guidance",
    "guidance_none": "no imaging guidance",
    "guidance_imaging": "imaging guidance",
}


class Fitter:
    """Fit of codes to frames for one catalog. Results are cached per frame and code."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.vocab: Vocabulary = vocabulary_of(catalog)
        self._cache: dict[tuple[Frame, str], tuple[Misfit, ...]] = {}
        self._per_frame: dict[tuple[str, Frame], tuple[str, ...]] = {}
        self._alts: dict[tuple[Frame, str, int], tuple[str, ...]] = {}
        self._guides: dict[str, tuple[str, ...]] = {}
        self._decides: dict[str, bool] = {}
        self._lock = threading.Lock()
        # Every exam, action and device concept some code's description names.
        self._described = frozenset(
            x for e in catalog.codes.values() if e.describes is not None
            for x in (*e.describes.exams, *e.describes.actions, *e.describes.devices))
        # Where a code is the unguided form of another, and the reverse.
        self._unguided_of = {
            e.with_us_guidance: c for c, e in catalog.codes.items() if e.with_us_guidance
        }

    # ----------------------------------------------------------------- frame helpers
    def has(self, frame: Frame, concept: str, *, strong: bool = False) -> Fact | None:
        """The first affirmed fact naming ``concept`` or a narrower concept."""
        for f in frame.facts:
            if f.affirmed and not (strong and f.inferred) and self.vocab.is_a(f.concept, concept):
                return f
        return None

    def denies(self, frame: Frame, concept: str) -> Fact | None:
        """A negated fact naming ``concept`` (or narrower), when nothing affirms it."""
        if self.has(frame, concept):
            return None
        for f in frame.facts:
            if f.status.value == "negated" and self.vocab.is_a(f.concept, concept):
                return f
        return None

    def _sites(self, frame: Frame, vessel_kind: bool = False) -> list[Fact]:
        """The sites of today's service: said beside a procedure or exam word when any are,
        else all affirmed sites; sites only implied (TTE: the heart) when none is said.
        ``vessel_kind``: the code says arteries or veins itself, so the bare words for them
        ('venous', 'arterial') are its vessel kind, not a site."""
        sites = [f for f in frame.facts if f.affirmed and f.kind == "site"
                 and not (vessel_kind and f.concept in _VESSEL_WORDS)]
        # the sites an exam or procedure word names ('FAST exam': abdomen and heart; 'IVC
        # filter': the IVC; 'thoracentesis': the pleura) count as said
        exams = {f.span for f in frame.facts if f.affirmed and f.kind in ("exam", "action")
                 and not f.inferred}
        said = [f for f in sites if not f.inferred or f.span in exams] or sites
        if any(f.concept != "soft_tissue" for f in said):
            # 'liver abscess', 'a lump in the breast': the organ says where it is
            said = [f for f in said if f.concept != "soft_tissue"]
        near = [f for f in said if f.near_action] or said
        # a general word says no more than a narrower one beside it ('the iliac vein, one vessel')
        return [f for f in near if not any(
            g.concept != f.concept and self.vocab.is_a(g.concept, f.concept) for g in near)]

    # ----------------------------------------------------------------- assessment
    def assess(self, frame: Frame, code: str) -> tuple[Misfit, ...]:
        """Every misfit of ``code`` to ``frame``: contradictions first, then what is unsaid."""
        key = (frame, code)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        entry = self.catalog.get(code)
        out: tuple[Misfit, ...] = ()
        if entry is not None and entry.describes is not None and not frame.empty:
            found = list(self._assess(frame, entry, entry.describes))
            found.sort(key=lambda m: not m.contradiction)
            out = tuple(found)
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = out
        return out

    def contradictions(self, frame: Frame, code: str) -> tuple[Misfit, ...]:
        """Only the misfits the question affirms."""
        return tuple(m for m in self.assess(frame, code) if m.contradiction)

    def score(self, frame: Frame, code: str) -> int:
        """2: fits and is supported; 1: not contradicted but not all said; 0: contradicted."""
        found = self.assess(frame, code)
        if any(m.contradiction for m in found):
            return 0
        return 1 if found else 2

    def _conf(self, entry: CodeEntry) -> Confidence:
        # A fit read from the code's description is medium at most (descriptor scope).
        return Confidence.LOW if entry.confidence is Confidence.LOW else Confidence.MEDIUM

    def _misfit(self, entry: CodeEntry, dim: str, contradiction: bool, message: str,
                said: str = "", need: str = "") -> Misfit:
        return Misfit(entry.code, dim, contradiction, message, said,
                      sources=entry.sources, confidence=self._conf(entry), need=need)

    def _assess(self, frame: Frame, e: CodeEntry, d: Describes) -> Iterable[Misfit]:
        code = e.code
        # A code named is only asked about when nothing else is said ('is 76942 an add-on?')
        named = code in frame.codes and not frame.describes_service
        for dim in BEFORE_GUIDANCE:
            yield from dim(self, frame, e, d, named)
        yield from self._guidance(frame, e, d)
        for dim in AFTER_GUIDANCE:
            yield from dim(self, frame, e, d, named)
        # ---- an 'other' code where a specific one fits
        if d.residual:
            specific = self._specific_for(frame, e)
            if specific:
                yield Misfit(code, "residual", True,
                             f"{code} is for a service no specific code describes; the "
                             f"question's service has its own code ({', '.join(specific)}).",
                             alternatives=specific, sources=e.sources,
                             confidence=self._conf(e))
        # ---- a diagnostic exam beside an ultrasound-guided procedure (NCCI Ch. IX)
        if e.kind is Kind.DIAGNOSTIC and d.service in (None, "diagnostic"):
            yield from diagnostic_with_guidance(self, frame, e, d)
        # ---- a guidance code where the question's procedure code includes the guidance
        if d.service == "guidance":
            yield from self._guidance_included(frame, e, d)

    def _limited(self, frame: Frame) -> bool:
        return self.has(frame, "limited") is not None

    def _guidance(self, frame: Frame, e: CodeEntry, d: Describes) -> Iterable[Misfit]:
        code = e.code
        # Naming a guidance code says its imaging was used ('is 76942 billed per pass?').
        named = code in frame.codes
        strong = {f.concept: f for f in frame.facts
                  if f.affirmed and f.kind == "guidance" and not f.inferred}
        soft = {f.concept: f for f in frame.facts
                if f.affirmed and f.kind == "guidance" and f.inferred}
        said_modalities = {MODALITY_OF[c] for c in strong if c in MODALITY_OF}
        none = strong.get("guidance_none")
        if d.service == "guidance" or e.kind is Kind.GUIDANCE:
            modality = d.guidance[0] if d.guidance else e.modality
            if modality is None or modality in ("none", "imaging"):
                return
            own = GUIDANCE_OF.get(modality, "")
            denied = self.denies(frame, own) if own else None
            if own in strong or own in soft:
                return
            if said_modalities:
                other = next(iter(sorted(said_modalities)))
                yield self._misfit(e, "guidance", True,
                                   f"{code} reports {modality} guidance; the question says "
                                   f"'{strong[GUIDANCE_OF[other]].text}'.",
                                   strong[GUIDANCE_OF[other]].text)
            elif none is not None or denied is not None:
                said = (none or denied)
                assert said is not None
                yield self._misfit(e, "guidance", True,
                                   f"{code} reports {modality} guidance; the question says "
                                   f"'{said.text}'.", said.text)
            elif not named:
                yield self._misfit(e, "guidance", False,
                                   f"the question does not say {modality} guided the needle or "
                                   "catheter")
            return
        if not d.guidance:
            return
        if d.guidance == ("none",):
            # The unguided code where the question says imaging guided it: only wrong when a
            # code for the guided form exists (20610 -> 20611; 10021 -> 10005 ...).
            used = said_modalities or {MODALITY_OF[c] for c in soft if c in MODALITY_OF}
            if not used:
                return
            # a guided form ruled out by what was not documented ('no image saved': not 20611)
            guided = tuple(g for g in self._guided_forms(e, used) if not any(
                m.contradiction and m.dimension == "feature" for m in self.assess(frame, g)))
            if not guided:
                return
            firm = bool(said_modalities)
            said = next(iter(strong.values())) if firm else next(iter(soft.values()))
            yield Misfit(code, "guidance", firm,
                         f"{code} is the code without imaging guidance; the question says "
                         f"'{said.text}', which is reported with {', '.join(guided)}.",
                         said.text, alternatives=guided, sources=e.sources,
                         confidence=self._conf(e))
            return
        wanted = modalities_of(d.guidance)
        if said_modalities & wanted or {MODALITY_OF.get(c) for c in soft} & wanted:
            return
        if "imaging" in d.guidance and ("guidance_imaging" in strong or
                                        "guidance_imaging" in soft):
            return
        own_denied = [self.denies(frame, GUIDANCE_OF[m]) for m in wanted]
        denied = next((x for x in own_denied if x is not None), None)
        what = " or ".join("imaging" if g == "imaging" else g for g in d.guidance)
        if said_modalities or none is not None or denied is not None:
            said_fact = (none or denied or strong[GUIDANCE_OF[sorted(said_modalities)[0]]])
            yield self._misfit(e, "guidance", True,
                               f"{code} includes {what} guidance; the question says "
                               f"'{said_fact.text}'.", said_fact.text)
        elif not named and self._guidance_decides(e):
            yield self._misfit(e, "guidance", False,
                               f"{code} includes {what} guidance, and the question does not say "
                               "it was used")

    def _several_named(self, frame: Frame, d: Describes) -> bool:
        """The question names as many of the code's sites as its count needs ('at T5 and
        T6', 'the GSV and an accessory saphenous vein'): a count said by listing."""
        if d.count is None or d.count.min is None:
            return False
        if d.count.min <= 2 and frame.affirms("several"):
            return True  # 'several veins', 'multiple levels'
        if d.count.thing == "lesion":
            # lesions are not counted by naming their organ twice: only distinct sites list them
            v = self.vocab
            return len({f.concept for f in frame.facts if f.affirmed and f.kind == "site"
                        and not f.inferred and any(v.is_a(f.concept, s) for s in d.sites)}
                       ) >= d.count.min
        return len(self.sites_named(frame, d)) >= d.count.min

    def sites_named(self, frame: Frame, d: Describes) -> set[str]:
        """The words naming the code's sites, one each ('the GSV and the SSV': two veins); a
        name ending a longer one names it less closely ('iliac vein', 'common iliac vein')."""
        if d.count is None or not d.sites:
            return set()
        v = self.vocab
        level = d.count.thing == "level"  # a vessel ('dorsalis pedis') names no level
        kinds = (*d.sites, "spine") if level else d.sites
        names = {f.text.lower() for f in frame.facts
                 if f.affirmed and f.kind == "site" and not f.inferred
                 and any(v.is_a(f.concept, s) for s in kinds)
                 and not (level and v.is_a(f.concept, "vessel"))}
        return {n for n in names if not any(m != n and m.endswith(" " + n) for m in names)}

    def vessels_named(self, frame: Frame, d: Describes) -> set[str]:
        """The distinct named vessels narrower than the code's sites ('the GSV and the SSV':
        two veins; 'the truncal vein, the GSV': one named vein)."""
        v = self.vocab
        return {f.concept for f in frame.facts
                if f.affirmed and f.kind == "site" and not f.inferred
                and v.is_a(f.concept, "vessel") and f.concept not in d.sites
                and any(v.is_a(f.concept, s) for s in d.sites)}

    def _guidance_decides(self, e: CodeEntry) -> bool:
        """True when another code describes the same service with other guidance (20610 and
        20611): then the question must say which. A service always done under imaging
        (vein ablation) needs no word for it."""
        hit = self._decides.get(e.code)
        if hit is None:
            d = e.describes
            hit = d is not None and any(
                c != e.code and o.active and o.describes is not None
                and o.describes.service == d.service
                and set(o.describes.guidance) != set(d.guidance)
                and set(o.describes.actions) & set(d.actions)
                and set(o.describes.sites) == set(d.sites)
                for c, o in self.catalog.codes.items()
            )
            self._decides[e.code] = hit
        return hit

    def _guided_forms(self, e: CodeEntry, used: set[str]) -> tuple[str, ...]:
        """Codes for the same service with the guidance the question says was used."""
        out = []
        if "ultrasound" in used and e.with_us_guidance:
            out.append(e.with_us_guidance)
        d = e.describes
        for c, other in self.catalog.codes.items():
            od = other.describes
            if (c == e.code or c in out or not other.active or od is None or d is None
                    or other.add_on != e.add_on or other.family != e.family
                    or not modalities_of(od.guidance) & used):
                continue
            if set(od.actions) == set(d.actions) and set(od.sites) == set(d.sites) and (
                od.count == d.count and od.features == d.features
            ):
                out.append(c)
        return tuple(out)

    def _specific_for(self, frame: Frame, e: CodeEntry) -> tuple[str, ...]:
        """Non-residual codes of the same kind that fully fit the frame (of any kind for the
        unlisted code, which is for what no specific code describes)."""
        out = []
        for c, other in self.catalog.codes.items():
            od = other.describes
            if (c == e.code or not other.active or od is None or od.residual
                    or other.add_on or other.kind is Kind.UNLISTED
                    or (other.kind is not e.kind and e.kind is not Kind.UNLISTED)):
                continue
            if e.family not in ("misc",) and other.family != e.family:
                continue
            if self.score(frame, c) == 2 and od.sites and "any" not in od.sites:
                out.append(c)
        return tuple(out[:4])

    def supported(self, frame: Frame) -> tuple[str, ...]:
        """Primary codes the frame fully supports: the question names the kind of study,
        procedure or device the code is (not only a site), everything the code's description
        needs is affirmed and nothing contradicts it. Empty for an empty frame (which says
        nothing, so every code would "fit")."""
        return most_specific(self.vocab, self.catalog, frame, self._fitting(frame))

    def less_specific(self, frame: Frame) -> tuple[str, ...]:
        """Codes that fully fit the frame but that another fitting code describes more
        exactly (see :func:`~guardrails.question.specific.most_specific`)."""
        best = self.supported(frame)
        return tuple(c for c in self._fitting(frame) if c not in best)

    def _fitting(self, frame: Frame) -> tuple[str, ...]:
        return () if frame.empty else self._codes_per_frame("supported", frame,
                                                            self._build_supported)

    def _build_supported(self, frame: Frame) -> tuple[str, ...]:
        kinds = ("exam", "action", "device")
        said = [f.concept for f in frame.facts if f.affirmed and f.kind in kinds]
        # A study of another modality (a DEXA, a CT) is no ultrasound exam, whatever it is of.
        # A vague term ('scan', said of CT and DEXA too) names no modality.
        named_us = any(f.affirmed and self.vocab.is_a(f.concept, "ultrasound")
                       and f.text.lower() not in self.vocab.vague for f in frame.facts)
        other = not named_us and any(self.has(frame, m) is not None
                                     for m in _OTHER_MODALITIES)
        return tuple(
            c for c, e in self.catalog.codes.items()
            if e.active and not e.add_on and e.describes is not None
            and not (other and e.describes.service == "diagnostic")
            and any(self.vocab.related(x, y) for x in said
                    for y in (*e.describes.exams, *e.describes.actions, *e.describes.devices))
            and self.score(frame, c) == 2
        )

    def unserved(self, frame: Frame) -> tuple[Fact, ...]:
        """The services the question affirms when no code describes any of them and it
        names no ultrasound or imaging guidance (a knee arthroscopy): a question outside
        the catalog. Empty otherwise."""
        kinds = ("exam", "action", "device")
        affirmed = [f for f in frame.facts if f.affirmed]
        if any(f.kind in ("guidance", "approach") or self.vocab.is_a(f.concept, "ultrasound")
               for f in affirmed):
            return ()
        others = [f for f in affirmed if f.kind == "modality" and f.concept in _OTHER_STUDIES]
        # an exam word beside another modality's word names that study ('screening
        # mammogram', 'CT scan'), not an ultrasound exam
        said = [f for f in affirmed if f.kind in kinds
                and not (f.kind == "exam" and any(adjacent(frame.text, f, o) for o in others))]
        if not said:
            # A study of another modality and no procedure (an MRI of the knee, a chest
            # x-ray, a mammogram): no ultrasound code describes it, whatever ultrasound the
            # question says was not done, is planned or was done before.
            return tuple(others)
        if any(self.vocab.related(f.concept, d) for f in said for d in self._described):
            return ()
        return tuple(said)

    def procedures_for(self, frame: Frame) -> tuple[str, ...]:
        """Primary procedure codes that fully fit the frame (supported, nothing contradicts)."""
        return self._codes_per_frame("procedures", frame, self._build_procedures)

    def _build_procedures(self, frame: Frame) -> tuple[str, ...]:
        return tuple(
            c for c, e in self.catalog.codes.items()
            if e.active and not e.add_on and e.describes is not None
            and e.describes.service == "procedure" and e.describes.actions
            and self.score(frame, c) == 2
        )

    def _codes_per_frame(self, what: str, frame: Frame,
                         build: Callable[[Frame], tuple[str, ...]]) -> tuple[str, ...]:
        """A catalog scan per frame, cached (bounded: cleared past 10,000 frames)."""
        key = (what, frame)
        hit = self._per_frame.get(key)
        if hit is not None:
            return hit
        out = build(frame)
        with self._lock:
            if len(self._per_frame) > 10_000:
                self._per_frame.clear()
            self._per_frame[key] = out
        return out

    def _guidance_included(self, frame: Frame, e: CodeEntry, d: Describes) -> Iterable[Misfit]:
        modality = d.guidance[0] if d.guidance else e.modality
        if modality is None:
            return
        procs = self.procedures_for(frame)
        if not procs:
            return
        # a guidance code the procedure lists as included, or one whose imaging (75989: any
        # modality) the procedure's included imaging covers
        covers = modalities_of((modality,))
        including = [c for c in procs
                     if e.code in self.catalog.codes[c].included_guidance or (covers
                     and covers <= included_modalities(self.catalog.codes[c], self.catalog))]
        # A procedure whose pair rule reports its guidance with another code (the tunneled
        # pleural catheter 32550: 75989, not 76942)
        elsewhere = {c: p for c in procs if c not in including
                     and (p := self.catalog.pair(c, e.code)) is not None
                     and p.relation is PairRelation.BUNDLED and p.replacement
                     and e.code not in p.replacement}
        if elsewhere and len(including) + len(elsewhere) == len(procs):
            # the guidance code the pair names (the procedure's own code is the omission
            # rule's to add, where the question affirms it)
            instead = tuple(dict.fromkeys(x for p in elsewhere.values()
                                          for x in p.replacement or () if x not in procs))
            yield Misfit(
                e.code, "guidance_included", True,
                f"The question's procedure is reported with {', '.join(elsewhere)}, whose "
                f"imaging guidance is reported with {' or '.join(instead) or 'no other code'}, "
                f"not {e.code}.",
                alternatives=instead,
                sources=tuple(dict.fromkeys(s for p in elsewhere.values() for s in p.sources)),
                confidence=min((p.confidence for p in elsewhere.values()),
                               key=_CONF_ORDER.index),
            )
            return
        if including and len(including) == len(procs):
            yield Misfit(
                e.code, "guidance_included", True,
                f"The question's procedure is reported with {', '.join(including)}, which "
                f"includes the imaging guidance; {e.code} is not added.",
                alternatives=tuple(including),
                sources=tuple(dict.fromkeys(
                    s for c in including for s in self.catalog.codes[c].sources)),
                confidence=min((self.catalog.codes[c].confidence for c in including),
                               key=_CONF_ORDER.index),
            )

    # ----------------------------------------------------------------- alternatives
    def guidance_codes(self, modality: str) -> tuple[str, ...]:
        """The active primary codes that report guidance of ``modality`` (built once)."""
        hit = self._guides.get(modality)
        if hit is None:
            hit = tuple(c for c, e in self.catalog.codes.items()
                        if e.active and not e.add_on and e.describes is not None
                        and e.describes.service == "guidance"
                        and modality in e.describes.guidance)
            self._guides[modality] = hit
        return hit

    def alternatives(self, frame: Frame, code: str, limit: int = 3) -> tuple[str, ...]:
        """Codes that would fit the question better than ``code``, best first."""
        key = (frame, code, limit)
        hit = self._alts.get(key)
        if hit is None:
            hit = self._alternatives(frame, code, limit)
            with self._lock:
                if len(self._alts) > 50_000:
                    self._alts.clear()
                self._alts[key] = hit
        return hit

    def _alternatives(self, frame: Frame, code: str, limit: int) -> tuple[str, ...]:
        e = self.catalog.get(code)
        if e is None or e.describes is None:
            return ()
        own = [m for m in self.assess(frame, code) if m.alternatives]
        if own:
            return own[0].alternatives[:limit]
        d = e.describes
        pool = []
        for c, other in self.catalog.codes.items():
            od = other.describes
            if (c == code or not other.active or od is None or other.add_on != e.add_on
                    or (od.service or "") not in _KIN_SERVICES.get(d.service or "",
                                                                   (d.service or "",))):
                continue
            if other.family != e.family and not self._overlap(d, od):
                continue
            s = self.score(frame, c)
            # a study or feature never named (3D, contrast), or a catch-all: only if it fits
            if s == 0 or (s == 1 and (od.residual or any(
                    self.vocab.kinds.get(m.need) in ("exam", "feature")
                    for m in self.assess(frame, c)))):
                continue
            pool.append((-s, -self._similar(d, od, e, other), c))
        pool.sort()
        return tuple(c for *_, c in pool[:limit])

    def _overlap(self, a: Describes, b: Describes) -> bool:
        v = self.vocab
        return any(v.related(x, y) for x in a.actions for y in b.actions) or any(
            v.related(x, y) for x in a.exams for y in b.exams) or any(
            v.related(x, y) for x in a.devices for y in b.devices)

    def speaks_to(self, frame: Frame, code: str, dimension: str) -> bool:
        """True when ``code`` is described by what the question affirms in ``dimension``
        (a transvaginal question and the transvaginal code), not merely left uncontradicted
        (a code for any approach)."""
        d = (self.catalog.codes[code].describes or Describes()) if code in self.catalog.codes \
            else Describes()
        wanted = {"site": d.sites, "approach": d.approach, "action": d.actions,
                  "exam": d.exams, "device": d.devices}.get(dimension, ())
        return any(f.affirmed and f.kind == dimension and not f.inferred
                   and any(self.vocab.is_a(f.concept, w) for w in wanted)
                   for f in frame.facts)

    def similarity(self, code: str, other: str) -> int:
        """How much of what ``code`` describes ``other`` shares (higher: closer)."""
        ea, eb = self.catalog.codes[code], self.catalog.codes[other]
        if ea.describes is None or eb.describes is None:
            return 0
        return self._similar(ea.describes, eb.describes, ea, eb)

    def _not_services(self, concepts: tuple[str, ...]) -> frozenset[str]:
        return frozenset(c for c in concepts if self.vocab.kinds.get(c) != "action")

    def _similar(self, a: Describes, b: Describes, ea: CodeEntry, eb: CodeEntry) -> int:
        n = 0
        n += ea.family == eb.family
        n += set(a.sites) == set(b.sites)
        n += set(a.actions) == set(b.actions)
        n += set(a.exams) == set(b.exams)
        n += a.guidance == b.guidance
        n += set(a.approach) == set(b.approach)
        n += ea.extent == eb.extent
        n += set(a.devices) == set(b.devices)
        n += a.features == b.features
        n += set(a.requires) == set(b.requires)
        # a service that rules a code out (a nerve block for a joint code) says what it is
        # not, not what it is: only the other exclusions measure likeness
        n += self._not_services(a.contradicted_by) == self._not_services(b.contradicted_by)
        n += a.count == b.count
        return n


_CONF_ORDER = [Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH]
# Services whose codes stand in for one another: a screening study the question rules out
# (a symptomatic patient, a known aneurysm) is reported as the diagnostic study of the site.
_KIN_SERVICES = {
    "screening": ("screening", "diagnostic"),
    "diagnostic": ("diagnostic", "screening"),
}


_FITTERS: dict[int, tuple[Catalog, Fitter]] = {}
_FLOCK = threading.Lock()


def fitter_for(catalog: Catalog) -> Fitter:
    """The fitter of a catalog, built once."""
    hit = _FITTERS.get(id(catalog))
    if hit is not None and hit[0] is catalog:
        return hit[1]
    with _FLOCK:
        f = Fitter(catalog)
        _FITTERS[id(catalog)] = (catalog, f)
        return f
