"""Read a question into an encounter frame with medspaCy.

medspaCy's sentence splitter (PyRuSH), target matcher (the vocabulary's terms) and ConText
(assertion: negation, history, hypothetical, other experiencer) run over the question; the
matched concepts become facts with their status. Numbers (ages, weeks, counts) are read by
:mod:`guardrails.question.numbers` and kept only where no ConText cue reaches them.

The pipeline (:mod:`guardrails.question.context`) is built once per process per vocabulary
(about a second) and only when a question is first read, so lookups and claim checks never
pay for it. A frame is read once per question: repeated reads of the same text come from a
small cache.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from guardrails.question import numbers
from guardrails.question.anaphora import referred_denied
from guardrails.question.asked import asked, choice, names_code
from guardrails.question.context import (
    ACTION_MATCHERS,
    SPANS_OF_TIME,
    categories_of,
    pipeline,
    scopes_of,
    self_denied,
    status_at,
    status_of,
)
from guardrails.question.frame import Count, Fact, Frame, Status
from guardrails.question.sides import sides_of
from guardrails.question.spelling import speller
from guardrails.question.vocab import Vocabulary, vocabulary_of
from knowledge.schema import AgeBand

if TYPE_CHECKING:
    from knowledge.catalog import Catalog


# Kinds whose words say what was done (a site near one of them is the service's site).
_SERVICE_KINDS = frozenset({"action", "exam", "device", "approach", "guidance", "service"})
# Kinds where the turn asked now replaces what the earlier turn said.
_OVERRIDING_KINDS = frozenset({
    "site", "approach", "guidance", "action", "exam", "device", "extent", "service",
    "feature", "patient",
})
# Words after a site that say only that site was examined ("gallbladder only").
_ONLY = frozenset({"only", "alone", "just", "solely", "exclusively"})
_FULL = frozenset({"full", "fully"})
_NOT_ONLY = frozenset({"the", "an", "a", "not", "her", "his", "its", "their", "my"})
_NEAR = 6  # tokens: how close a site must be to a service word to be the service's site


_FETAL_ROOTS = ("fetus", "pregnancy_site", "pregnant", "fetal_echo", "nt_measurement",
                "biophysical_profile", "sonography", "ultrasound", "echocardiography",
                "doppler", "diagnostic_exam", "extent", "complete", "limited", "detailed")


def _fetal(vocab: Vocabulary, concept: str) -> bool:
    """Concepts that a 'fetal' cue describes rather than moves to another experiencer."""
    kind = vocab.kinds.get(concept)
    if kind in ("extent", "approach", "modality", "guidance", "cue", "count"):
        return True
    return any(vocab.is_a(concept, root) for root in _FETAL_ROOTS)


_PAUSE = frozenset({",", "-", "\u2013", "\u2014", ":", ";", ".", "!"})


def _answered_no(doc: Any) -> set[int]:
    """The tokens of a question the text answers 'No -' right after ('Tunneled catheter?
    No - a non-tunneled one'; 'Was ultrasound used? No.'): what was asked is denied."""
    out: set[int] = set()
    for t in doc:
        if t.text != "?" or t.i + 1 >= len(doc) or doc[t.i + 1].lower_ != "no":
            continue
        after = doc[t.i + 2] if t.i + 2 < len(doc) else None
        if after is not None and after.text not in _PAUSE:
            continue
        start = t.sent.start
        for j in range(t.i - 1, start - 1, -1):
            if doc[j].text in (".", "?", "!"):
                start = j + 1
                break
        out.update(range(start, t.i))
    return out


def _read_turn(text: str, vocab: Vocabulary, turn: int) -> tuple[list[Fact], list[Any], Any]:
    nlp = pipeline(vocab)
    doc = nlp(text)
    facts: list[Fact] = []
    service_tokens: list[int] = []
    exam_tokens: set[int] = set()
    sites: list[tuple[Any, list[Fact]]] = []
    denied = self_denied(doc) | _answered_no(doc) | referred_denied(doc, vocab)
    for ent in doc.ents:
        rule = getattr(ent._, "target_rule", None)
        meta = getattr(rule, "metadata", None) or {}
        concepts = meta.get("concepts", ())
        cats = categories_of(ent)
        if denied.intersection(range(ent.start, ent.end)):  # 'the knee was not aspirated'
            cats.add("NEGATED_EXISTENCE")
        status = status_of(cats)
        made: list[Fact] = []
        for concept in concepts:
            for c in vocab.closure(concept):
                kind = vocab.kinds.get(c, "")
                own = _own_status(status, kind, c, cats, vocab, doc, ent)
                made.append(Fact(c, kind, own, (ent.start_char, ent.end_char), ent.text, turn,
                                 inferred=c not in concepts))
                negated = vocab.negates.get(c)
                if negated is not None and status is Status.AFFIRMED:
                    made.append(Fact(negated, vocab.kinds.get(negated, ""), Status.NEGATED,
                                     (ent.start_char, ent.end_char), ent.text, turn))
        facts.extend(made)
        if any(f.kind in _SERVICE_KINDS or f.concept == "sonographic_view" for f in made):
            service_tokens.extend(range(ent.start, ent.end))
        if any(f.kind == "exam" and not f.inferred for f in made):
            exam_tokens.add(ent.start)
        if any(f.kind == "site" for f in made):
            sites.append((ent, made))
        # "gallbladder only", "only the right kidney": one structure, a limited exam
        # (a site the words name, not one an exam word implies: 'stress echo interpretation
        # only' is not a limited study of the heart)
        if status is Status.AFFIRMED and any(f.kind == "site" and not f.inferred
                                             for f in made) and _only_said(doc, ent):
            facts.append(Fact("limited", "extent", Status.AFFIRMED,
                              (ent.start_char, ent.end_char), ent.text, turn))
        # 'a full transthoracic echo', 'full abdominal ultrasound': 'full' said of the
        # study is its complete form ('a full bladder' is said of a site, not a study)
        if status is Status.AFFIRMED and any(f.kind in ("exam", "approach") for f in made):
            # ('a full renal/retroperitoneal study': site words between, joined by '/')
            before = [t for t in doc[max(0, ent.start - 4):ent.start]]
            hit = next((t for t in before if t.lower_ in _FULL), None)
            if hit is not None and not any(t.is_punct and t.text not in "/-" for t in before
                                           if t.i > hit.i):
                facts.append(Fact("complete", "extent", Status.AFFIRMED,
                                  (hit.idx, hit.idx + len(hit.text)), hit.text, turn))
    facts += _overlapping_actions(doc, vocab, turn, facts)
    facts += _composed(facts, doc, vocab, turn)
    # A site said near a service word is the service's own site.
    near: set[int] = set()
    for ent, _made in sites:
        sent = ent.sent
        if any(sent.start <= t < sent.end and (abs(t - ent.start) <= _NEAR or
                                                abs(t - (ent.end - 1)) <= _NEAR)
               for t in service_tokens):
            near.add(ent.start_char)
    # The site an exam word is said of, as the word right before it ('renal ultrasound',
    # 'pelvic ultrasound'): the exam's own site.
    head: set[int] = set()
    for ent, _made in sites:
        after = doc[ent.end:ent.end + 1]
        if after and after[0].i in exam_tokens:
            head.add(ent.start_char)
    facts = [
        Fact(f.concept, f.kind, f.status, f.span, f.text, f.turn, f.inferred,
             near_action=f.span[0] in near, head=f.span[0] in head)
        if f.kind == "site" and f.span[0] in near | head else f
        for f in facts
    ]
    return facts, scopes_of(doc, vocab), doc


def _own_status(status: Status, kind: str, concept: str, cats: set[str], vocab: Vocabulary,
                doc: Any, ent: Any) -> Status:
    """A concept's status, from its words' status and what they are said of."""
    if status is not Status.AFFIRMED:
        return status
    if (kind == "extent" and (asked(ent.sent) or choice(doc, ent, _kind_of(vocab)))) or (
            kind in ("extent", "approach") and names_code(doc, ent)) or (
            kind in ("exam", "patient", "feature") and names_code(doc, ent, any_kind=True)):
        # 'does that make it limited?', 'do we use the follow-up code?', 'bill the
        # endovaginal code?': asked about, or a code's name, not said of the study
        return Status.HYPOTHETICAL
    if kind == "extent" and vocab.is_a(concept, "follow_up") and _time_from_now(doc, ent):
        return Status.HYPOTHETICAL  # 'repeat 12 mo', 'f/u 6 wks': the next study, not this
    if "FETUS" in cats and not _fetal(vocab, concept):
        return Status.OTHER  # a fetal organ or finding, not the patient's
    return status


def _time_from_now(doc: Any, ent: Any) -> bool:
    """A span of time right after the word ('repeat 12 mo', 'recheck in 6 weeks')."""
    words = [t for t in doc[ent.end:ent.end + 3]]
    if words and words[0].lower_ == "in":
        words = words[1:]
    return (len(words) >= 2 and words[0].like_num
            and words[1].lower_.rstrip(".") in SPANS_OF_TIME)


def _kind_of(vocab: Vocabulary) -> Callable[[Any], str | None]:
    """A target's kind: that of its first concept."""
    def kind(ent: Any) -> str | None:
        rule = getattr(ent._, "target_rule", None)
        concepts = (getattr(rule, "metadata", None) or {}).get("concepts", ())
        return vocab.kinds.get(concepts[0]) if concepts else None
    return kind


def _only_said(doc: Any, ent: Any) -> bool:
    """'only' said of a site: in its clause up to six words before ('I only looked at the
    liver'), or right after it ('gallbladder only'); 'the only finding in the liver' and
    'not only' say nothing of the extent."""
    before = doc[max(0, ent.start - 6):ent.start]
    # the clause the site is in: nothing across punctuation
    cut = max((t.i + 1 for t in before if t.is_punct), default=before.start)
    window = [t.lower_ for t in doc[cut:ent.start]
              if not (t.lower_ == "only" and t.i > 0 and doc[t.i - 1].lower_ in _NOT_ONLY)]
    window += [t.lower_ for t in doc[ent.end:ent.end + 2]]
    return bool(_ONLY & set(window))


def _sentence_of(doc: Any) -> Callable[[Fact], int]:
    """A fact's sentence (its start offset; -1 when the fact's span starts no token)."""
    sent_of: dict[int, int] = {t.idx: t.sent.start_char for t in doc}
    return lambda f: sent_of.get(f.span[0], -1)


def _composed(facts: list[Fact], doc: Any, vocab: Vocabulary, turn: int) -> list[Fact]:
    """Actions that are by definition an action at a site (vocabulary ``formed_by``): 'the
    facet joints were injected' is the facet injection, 'fluid aspirated from the pleural
    space' the thoracentesis, when the action and the site are said in one sentence with
    the same status and nothing names the compound already. Sites likewise: 'the nerves of
    the sacroiliac joint' are the sacroiliac joint's nerves."""
    if not vocab.formed_by:
        return []
    sentence = _sentence_of(doc)

    # an action word, or a cue that names the action only beside its site ('para'); for a
    # site formed by two sites, the first site ('the nerves of the SI joint')
    acts = [f for f in facts if not f.inferred and (
        f.kind in ("action", "site") or (f.kind == "cue" and any(
            vocab.is_a(f.concept, c) for c in vocab.forming_cues)))]
    sites = [f for f in facts if f.kind == "site"]
    # a procedure said by name that is of the site ('thoracentesis using a pigtail catheter':
    # the catheter is the tap's, not an indwelling pleural catheter)
    named = [f for f in facts if f.kind == "action" and f.affirmed and not f.inferred]
    # a means said apart from its action ('drained the ganglion with a needle'): a cue
    # ... or a patient said with the site ('a 6-week-old's hips': the infant's hips)
    means = [f for f in facts if f.kind in ("cue", "patient")]
    out: list[Fact] = []
    for compound, action, site in vocab.formed_by:
        if any(vocab.is_a(f.concept, compound) for f in facts + out):
            continue
        if vocab.kinds.get(compound) == "action" and any(
                not vocab.is_a(f.concept, action) and not vocab.is_a(action, f.concept)
                and site in vocab.closure(f.concept) for f in named):
            continue
        compound_site = vocab.kinds.get(compound) == "site"
        # an action composed above composes further ('drained ascites with a needle': an
        # aspiration, at the peritoneum a paracentesis)
        for a in acts + [o for o in out if not o.inferred and o.kind == "action"]:
            # a site part is the word itself ('nerves'), not a narrower one ('femoral nerve')
            if not vocab.is_a(a.concept, action) or (compound_site and a.concept != action):
                continue
            s = next((x for x in sites + means if vocab.is_a(x.concept, site) and x is not a
                      and x.status is a.status and sentence(x) == sentence(a)), None)
            if (s is None and not compound_site and a.kind == "action" and a.affirmed
                    and vocab.kinds.get(site) == "site"
                    and not any(sentence(x) == sentence(a) for x in sites if not x.inferred)):
                # a note's indication names the site, a later sentence the act ('Indication:
                # pleural effusion. ... 1.2 L removed'): the one site the question names
                only = [x for x in sites if x.affirmed and not x.inferred]
                if only and all(vocab.is_a(x.concept, site) for x in only):
                    s = only[0]
            if s is not None:
                for c in vocab.closure(compound):
                    out.append(Fact(c, vocab.kinds.get(c, ""), a.status, a.span, a.text,
                                    turn, inferred=c != compound))
                break
    return out


def _overlapping_actions(doc: Any, vocab: Vocabulary, turn: int, facts: list[Fact]
                         ) -> list[Fact]:
    """Action facts from terms the target matcher dropped for an overlapping one."""
    matcher = ACTION_MATCHERS.get(id(pipeline(vocab)))
    if matcher is None:
        return []
    have = {(f.concept, f.span) for f in facts}
    # Only where the overlapping term named no action itself ('genicular nerve block', a
    # site): inside 'radiofrequency ablation' the bare 'ablation' says less, not more.
    acted = [f.span for f in facts if f.kind == "action"]
    scopes = scopes_of(doc, vocab)
    out: list[Fact] = []
    for match_id, start, end in matcher(doc):
        span = doc[start:end]
        chars = (span.start_char, span.end_char)
        if any(s <= chars[0] and chars[1] <= e for s, e in acted):
            continue
        term = doc.vocab.strings[match_id]
        status = status_at(chars, scopes)
        for concept in vocab.terms.get(term, ()):
            acting = vocab.kinds.get(concept) == "action"
            for c in vocab.closure(concept):
                kind = vocab.kinds.get(c)
                # the action, and the site an action word names ('pleural catheter': pleura)
                if (kind == "action" or (acting and kind == "site")) and (c, chars) not in have:
                    have.add((c, chars))
                    out.append(Fact(c, kind, status, chars, span.text, turn,
                                    inferred=c != concept))
    return out


def _coordinated_guidance(facts: list[Fact], text: str) -> list[Fact]:
    """'CT or ultrasound guidance': a modality joined by 'or'/'and' to the modality of a
    guidance phrase is guidance too, with the same status."""
    out: list[Fact] = []
    guides = [f for f in facts if f.kind == "guidance" and not f.inferred]
    have = {f.concept for f in guides}
    for f in facts:
        if f.kind != "modality" or f"guidance_{f.concept}" in have:
            continue
        for g in guides:
            # 'no US, no imaging': no modality is coordinated with 'no imaging', and a word
            # said otherwise than the guidance ('no US, fluoro guidance') is its own
            if g.concept == "guidance_none" or f.status is not g.status:
                continue
            gap = text[f.span[1]:g.span[0]].strip().lower()
            if gap in ("or", "and", ",", "/", "and/or", ", or", ", and", "+", "&", "plus"):
                out.append(Fact(f"guidance_{f.concept}", "guidance", g.status, f.span,
                                f.text, f.turn))
                have.add(f"guidance_{f.concept}")
                break
    return out


# ... or 'used for guidance', 'used to guide' ('ultrasound used for guidance and monitoring')
_GUIDED = re.compile(r"\s*-?\s*(?:(?:(?:was|were)\s+)?used\s+for\s+(?:the\s+)?guidance|"
                     r"(?:(?:(?:was|were)\s+)?used\s+)?(?:for\s+guidance|to\s+guide)|"
                     r"guided|guidance|guiding|gd)\b", re.IGNORECASE)


_ULTRASOUND = ("ultrasound", "sonography", "echocardiography")


def _guided_by(facts: list[Fact], text: str, vocab: Vocabulary) -> list[Fact]:
    """'TRUS-guided biopsy', 'sono-guided': a study or modality word with 'guided' (or
    'guidance') right after it is guidance by its imaging, with the word's status."""
    have = {f.concept for f in facts if f.kind == "guidance"}
    out: list[Fact] = []
    for f in facts:
        if f.kind not in ("modality", "exam") or _GUIDED.match(text, f.span[1]) is None:
            continue
        # an echocardiogram is an ultrasound study: 'TEE guiding the closure'
        mod = "ultrasound" if any(vocab.is_a(f.concept, u) for u in _ULTRASOUND) else f.concept
        concept = f"guidance_{mod}"
        if concept in vocab.kinds and concept not in have:
            out.append(Fact(concept, "guidance", f.status, f.span, f.text, f.turn))
            have.add(concept)
    return out


def _obstetric_scan(facts: list[Fact], vocab: Vocabulary) -> list[Fact]:
    """'A quick scan' of a pregnant patient: a vague word for a study names an ultrasound
    study in obstetrics, where other imaging is named by its own word (MRI, CT)."""
    if not any(f.affirmed and f.concept == "pregnant" for f in facts):
        return []
    if any(f.affirmed and f.kind == "exam" for f in facts):
        return []
    return [Fact("sonography", "exam", Status.AFFIRMED, f.span, f.text, f.turn, inferred=True)
            for f in facts if f.affirmed and f.concept == "ultrasound"
            and f.text.lower() in vocab.vague][:1]


def _infer_guidance(facts: list[Fact], doc: Any, known: Collection[str]) -> list[Fact]:
    """'Knee injection with ultrasound': a modality named in the sentence of an affirmed
    procedure says (less firmly) that it guided the procedure. ``known``: the vocabulary's
    concept ids (only a guidance concept it has is inferred)."""
    if any(f.kind == "guidance" and f.affirmed for f in facts):
        return []
    # 'without real-time imaging': the modality did not guide the procedure
    denied = [f.concept for f in facts if f.kind == "guidance" and not f.inferred
              and f.status is Status.NEGATED]
    out: list[Fact] = []
    sentence = _sentence_of(doc)
    actions = {sentence(f) for f in facts if f.kind == "action" and f.affirmed
               and f.concept not in ("surgery",)}
    # a note that names one imaging modality and says the needle was seen in real time
    # ('needle entry into the vein was visualized in real time'): that modality guided it
    modalities = {f.concept for f in facts if f.kind == "modality" and f.affirmed}
    if len(modalities) == 1 and actions and any(
            f.concept == "realtime_needle" and f.affirmed for f in facts):
        actions |= {sentence(f) for f in facts if f.kind == "modality" and f.affirmed}
    for f in facts:
        if (f.kind == "modality" and f.affirmed and sentence(f) in actions
                and f"guidance_{f.concept}" in known
                and not any(f"guidance_{f.concept}" == d or d == "guidance_imaging"
                            for d in denied)):
            out.append(Fact(f"guidance_{f.concept}", "guidance", Status.AFFIRMED, f.span,
                            f.text, f.turn, inferred=True))
    return out


def _numbers(text: str, scopes: list[tuple[int, int, str]], turn: int, context: str = ""
             ) -> tuple[list[Count], list[float], list[float], list[int]]:
    counts: list[Count] = []
    for n in numbers.counts(text):
        if status_at(n.span, scopes) is Status.AFFIRMED:
            counts.append(Count(n.what, int(n.value), n.span, n.text, n.at_least))
    ages = [n.value for n in numbers.ages(text) if status_at(n.span, scopes) is Status.AFFIRMED]
    weeks = [n.value for n in numbers.gestational_weeks(text, context)
             if status_at(n.span, scopes) is Status.AFFIRMED]
    return counts, ages, weeks, []




_CACHE: OrderedDict[tuple[int, str, str], Frame] = OrderedDict()
_CACHE_SIZE = 4096
_CACHE_LOCK = threading.Lock()


def read_frame(question: str, catalog: Catalog, history: str = "") -> Frame:
    """The frame of ``question`` (with ``history``, the earlier turn it follows up)."""
    if not question.strip() and not history.strip():
        return Frame(text="")
    key = (id(catalog.vocabulary), question, history)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    frame = _read(question, vocabulary_of(catalog), history, _guidance_codes(catalog))
    with _CACHE_LOCK:
        _CACHE[key] = frame
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return frame


_GUIDES: dict[int, dict[str, str]] = {}


def _guidance_codes(catalog: Catalog) -> dict[str, str]:
    """Guidance codes of one modality: code -> the guidance concept it reports."""
    key = id(catalog.codes)
    hit = _GUIDES.get(key)
    if hit is None:
        hit = {c: f"guidance_{e.describes.guidance[0]}" for c, e in catalog.codes.items()
               if e.describes is not None and e.describes.service == "guidance"
               and len(e.describes.guidance) == 1
               and e.describes.guidance[0] in ("ultrasound", "fluoroscopy", "ct", "mr")}
        _GUIDES[key] = hit
    return hit


def _named_guidance(question: str, guides: dict[str, str], facts: list[Fact]) -> list[Fact]:
    """'Can I bill 36556 and 76937 for a PICC?': a guidance code named as billed says its
    imaging guided the service (unless the question's own words say otherwise)."""
    # guidance only planned or only the asker's reading of a code says nothing either way
    said = {f.concept for f in facts if f.kind == "guidance"
            and f.status is not Status.HYPOTHETICAL}
    out: list[Fact] = []
    for m in numbers.CODE_NUMBER.finditer(question):
        concept = guides.get(m.group(1).upper())
        if concept is not None and concept not in said and not said:
            out.append(Fact(concept, "guidance", Status.AFFIRMED, m.span(1), m.group(1), 0,
                            inferred=True))
            said.add(concept)
    return out


# Words that name a code rather than the service: 'the screening code 76706', 'the add-on
# code +93320', '76706 (screening)'. They say what the asker thinks the code is, not what
# was done, so they are read as the question's hypothesis, not as facts of the service.
_CODE = r"\+?(?:\d{4}[\dT]|[A-HJ-NP-V]\d{4})\b"
_NAMING = (
    re.compile(r"\b(?:the|a|an|that|this)\s+((?:[a-z][\w/-]*,?\s+){1,4}?)(?:cpt\s+)?"
               r"codes?\s*[:(]?\s*" + _CODE, re.IGNORECASE),
    re.compile(_CODE + r"\s*\(([^)(]{1,60})\)", re.IGNORECASE),
)


_BABY = frozenset({"baby", "babies"})


def _unborn(facts: list[Fact], text: str) -> list[Fact]:
    """'Both babies' of a pregnant patient are her fetuses, not infant patients; 'the
    baby's heart rate' only says whose the heart rate is (ConText's fetal cue), no study."""
    if not any(f.affirmed and f.concept == "pregnant" for f in facts):
        return facts
    out = []
    for f in facts:
        if f.concept != "infant" or f.text.lower() not in _BABY:
            out.append(f)
        elif not text[f.span[1]:f.span[1] + 2].startswith(("'", "\u2019")):
            out.append(Fact("fetus", "site", f.status, f.span, f.text, f.turn, f.inferred))
    return out


def _naming_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of words that describe a code the question names (see _NAMING)."""
    return [m.span(1) for rx in _NAMING for m in rx.finditer(text)]


def _about_codes(facts: list[Fact], spans: list[tuple[int, int]]) -> list[Fact]:
    """Facts said inside a code's description are the asker's hypothesis, not the service."""
    if not spans:
        return facts
    return [
        Fact(f.concept, f.kind, Status.HYPOTHETICAL, f.span, f.text, f.turn, f.inferred,
             f.near_action, f.head)
        if f.affirmed and any(s <= f.span[0] and f.span[1] <= e for s, e in spans) else f
        for f in facts
    ]


def _read(question: str, vocab: Vocabulary, history: str,
          guides: dict[str, str] | None = None) -> Frame:
    fix = speller(vocab).correct  # 'thoracentsis' is read as 'thoracentesis'
    question, history = fix(question), fix(history)
    facts, scopes, doc = _read_turn(question, vocab, 0)
    facts = _about_codes(facts, _naming_spans(question))
    facts += _coordinated_guidance(facts, question)
    facts += _guided_by(facts, question, vocab)
    facts += _named_guidance(question, guides or {}, facts)
    facts += _infer_guidance(facts, doc, vocab.kinds)
    facts += _obstetric_scan(facts, vocab)
    facts = _unborn(facts, question)
    counts, ages, weeks, _ = _numbers(question, scopes, 0, history)
    sides = sides_of(facts, doc)
    if history.strip():
        old, old_scopes, old_doc = _read_turn(history, vocab, 1)
        old = _about_codes(old, _naming_spans(history))
        old += _coordinated_guidance(old, history)
        old += _guided_by(old, history, vocab)
        old += _infer_guidance(old, old_doc, vocab.kinds)
        said_now = {f.kind for f in facts if f.affirmed}
        # A follow-up that names new sites keeps the earlier turn's vessel kind ('venous
        # duplex of one leg' then 'what about both legs?': still veins).
        vessels_now = any(f.affirmed and f.kind == "site" and vocab.is_a(f.concept, "vessel")
                          for f in facts)
        # What this turn negates overrides what the earlier turn affirmed ('what if no
        # Doppler was done?').
        denied_now = [f.concept for f in facts if f.status is Status.NEGATED and not f.inferred]
        old = [f for f in old if not any(vocab.is_a(f.concept, c) or vocab.is_a(c, f.concept)
                                         for c in denied_now)]
        # A general word for the procedure now says no more than the earlier turn's narrower
        # one ('FNA of a nodule', then 'what if I also sampled another?': still an FNA).
        acts_now = [f.concept for f in facts
                    if f.affirmed and not f.inferred and f.kind == "action"]

        def narrower(f: Fact) -> bool:
            return f.kind == "action" and bool(acts_now) and all(
                vocab.is_a(f.concept, g) for g in acts_now)

        facts += [f for f in old if f.kind not in said_now or f.kind not in _OVERRIDING_KINDS
                  or (f.kind == "site" and not vessels_now
                      and f.concept in ("vein", "artery"))
                  or (f.affirmed and narrower(f))]
        o_counts, o_ages, o_weeks, _ = _numbers(history, old_scopes, 1)
        counts = counts or o_counts
        ages = ages or o_ages
        weeks = weeks or o_weeks
        sides = sides or sides_of(old, old_doc)
    bands = {numbers.band_of(a) for a in ages}
    kinds = {f.concept for f in facts if f.affirmed}
    if "infant" in kinds:
        bands.add(AgeBand.UNDER_5)
    if "adult" in kinds:
        bands.add(AgeBand.FIVE_AND_OLDER)
    band = bands.pop() if len(bands) == 1 else None
    affirmed = frozenset(f.concept for f in facts if f.affirmed)
    negated = frozenset(f.concept for f in facts if f.status is Status.NEGATED)
    return Frame(
        text=question,
        facts=tuple(facts),
        counts=tuple(counts),
        age_years=tuple(ages),
        age_band=band,
        weeks=weeks[0] if weeks and len(set(weeks)) == 1 else None,
        sides=sides,
        codes=numbers.code_numbers(f"{history}\n{question}" if history else question),
        _affirmed=affirmed,
        _negated=negated,
    )
